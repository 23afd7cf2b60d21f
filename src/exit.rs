//! Every exit-status rule of SPEC §9 in one place.
//!
//! The numbers pidzero exits with (and counts a daemon's end as) are decided by
//! several layers: preflight (126/127), spawning (126/127), the supervisor
//! (128+N, a vital daemon's clean exit as 1), the command line and the control API
//! setup (2). They live here so that each rule is written once and a reader of
//! the spec finds it in one file. Pure: no I/O.

/// A configuration or usage error: nothing was started.
pub const USAGE_ERROR: i32 = 2;

/// An internal error, or non-vital daemons that all ended with some failure.
pub const FAILURE: i32 = 1;

/// The command exists but cannot be executed (a shell's convention, which pidzero reuses).
pub const NOT_EXECUTABLE: i32 = 126;

/// The command was not found (a shell's convention, which pidzero reuses).
pub const NOT_FOUND: i32 = 127;

/// How a process ended, as `waitpid` reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The shell convention: the code, or 128+N when killed by signal N.
    pub fn as_status(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(n) => 128 + n,
        }
    }

    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// SPEC §5: a vital daemon's non-zero code as is, 128+N for signal N, 1 for a
/// clean exit (a vital daemon must not stop); the main command's status as is.
pub fn vital_status(is_main: bool, status: ExitStatus) -> i32 {
    match status {
        ExitStatus::Code(0) if !is_main => FAILURE,
        other => other.as_status(),
    }
}

/// The status pidzero exits with once every daemon ended on its own (no vital
/// exit, no shutdown): 0 when all of them exited 0, else 1.
pub fn all_ended_status(all_succeeded: bool) -> i32 {
    if all_succeeded {
        0
    } else {
        FAILURE
    }
}

/// The status a daemon that could not be started counts as: 127 when its
/// program was not found, 126 when it could not be executed.
pub fn unstartable_status(not_found: bool) -> i32 {
    if not_found {
        NOT_FOUND
    } else {
        NOT_EXECUTABLE
    }
}

/// The byte a process exits with; a status that does not fit is an internal error.
pub fn process_code(status: i32) -> u8 {
    u8::try_from(status).unwrap_or(FAILURE as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vital_status_rules() {
        assert_eq!(vital_status(false, ExitStatus::Code(0)), 1);
        assert_eq!(vital_status(false, ExitStatus::Code(7)), 7);
        assert_eq!(vital_status(false, ExitStatus::Signal(9)), 137);
        assert_eq!(vital_status(true, ExitStatus::Code(0)), 0);
        assert_eq!(vital_status(true, ExitStatus::Signal(15)), 143);
    }

    #[test]
    fn codes_that_do_not_fit_a_byte_are_failures() {
        assert_eq!(process_code(0), 0);
        assert_eq!(process_code(143), 143);
        assert_eq!(process_code(300), 1);
        assert_eq!(process_code(-1), 1);
    }

    #[test]
    fn unstartable_commands() {
        assert_eq!(unstartable_status(true), 127);
        assert_eq!(unstartable_status(false), 126);
        assert_eq!(all_ended_status(true), 0);
        assert_eq!(all_ended_status(false), 1);
    }
}

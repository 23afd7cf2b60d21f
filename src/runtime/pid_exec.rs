//! An exec whose environment holds the child's own pid: `WATCHDOG_PID`.
//!
//! sd_notify clients (libsystemd's `sd_watchdog_enabled`) send keep-alives
//! only when `WATCHDOG_PID` is their own pid, so the helpers a daemon runs do
//! not think the watchdog is theirs. The pid is known only after the fork,
//! and std builds the environment before it; so for a daemon with a watchdog
//! everything (program, argv, environment with room for the digits) is built
//! here before the fork, and the child fills the digits in and calls
//! `execve` itself, as the last step of its setup. Nothing in the child
//! allocates.

use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const VAR: &[u8] = b"WATCHDOG_PID=";

/// Room for any pid (at most 10 digits for an i32) and the NUL.
const DIGITS: usize = 11;

pub struct PidExec {
    program: CString,
    /// Owns the strings `argv` points into.
    _args: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh PROGRAM ARGS…`, for a program the kernel cannot exec
    /// (ENOEXEC: a script without `#!`), as glibc's `execvp` (std's exec) does.
    sh: CString,
    sh_argv: Vec<*const libc::c_char>,
    /// Owns the strings `envp` points into; the last is `WATCHDOG_PID=`.
    _vars: Vec<Vec<u8>>,
    envp: Vec<*const libc::c_char>,
    /// Where the digits of the pid go (inside the last of `_vars`).
    digits: *mut u8,
}

// SAFETY: the raw pointers point into heap buffers this value owns and never
// changes after `new`; the child writes the digits in its own copy of memory.
unsafe impl Send for PidExec {}
// SAFETY: as above; the parent only reads, the child writes after the fork.
unsafe impl Sync for PidExec {}

impl PidExec {
    /// `None` when `program` is not a path (the exec must then search `PATH`,
    /// which std does; the daemon goes without `WATCHDOG_PID`).
    pub fn new(
        program: &Path,
        argv: &[String],
        env: &[(OsString, OsString)],
    ) -> io::Result<Option<PidExec>> {
        if !program.as_os_str().as_bytes().contains(&b'/') {
            return Ok(None);
        }
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        let program = CString::new(program.as_os_str().as_bytes())
            .map_err(|_| invalid("the program path holds a NUL byte"))?;
        let args = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("an argument holds a NUL byte"))?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let sh = CString::new("/bin/sh").map_err(|_| invalid("/bin/sh"))?;
        let mut sh_argv = vec![sh.as_ptr(), program.as_ptr()];
        sh_argv.extend(args.iter().skip(1).map(|a| a.as_ptr()));
        sh_argv.push(std::ptr::null());
        let mut vars =
            environment(env).ok_or_else(|| invalid("an environment entry is invalid"))?;
        let mut own = VAR.to_vec();
        own.resize(VAR.len() + DIGITS, 0);
        vars.push(own);
        let mut envp: Vec<*const libc::c_char> = vars.iter().map(|v| v.as_ptr().cast()).collect();
        envp.push(std::ptr::null());
        let last = vars.len() - 1;
        // SAFETY: VAR.len() is inside the buffer (DIGITS more bytes follow).
        let digits = unsafe { vars[last].as_mut_ptr().add(VAR.len()) };
        Ok(Some(PidExec {
            program,
            _args: args,
            argv,
            sh,
            sh_argv,
            _vars: vars,
            envp,
            digits,
        }))
    }

    /// In the child: writes its pid into `WATCHDOG_PID` and execs. Returns
    /// only on failure. Async-signal-safe: no allocation, no lock.
    pub fn exec(&self) -> io::Error {
        // SAFETY: getpid is a plain syscall; the digits go into the
        // DIGITS-byte room after `WATCHDOG_PID=` (10 digits and a NUL at
        // most); execve gets NUL-terminated arrays built in `new`.
        unsafe {
            let mut pid = libc::getpid() as u32;
            let mut text = [0u8; DIGITS];
            let mut len = 0;
            loop {
                text[len] = b'0' + (pid % 10) as u8;
                len += 1;
                pid /= 10;
                if pid == 0 {
                    break;
                }
            }
            for k in 0..len {
                *self.digits.add(k) = text[len - 1 - k];
            }
            *self.digits.add(len) = 0;
            libc::execve(
                self.program.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            );
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::ENOEXEC) {
                return error;
            }
            libc::execve(self.sh.as_ptr(), self.sh_argv.as_ptr(), self.envp.as_ptr());
        }
        io::Error::last_os_error()
    }
}

/// `KEY=VALUE\0` entries, a later duplicate of a key replacing the earlier
/// (as `Command::env` does), without any `WATCHDOG_PID` (it is added last).
fn environment(env: &[(OsString, OsString)]) -> Option<Vec<Vec<u8>>> {
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut vars: Vec<Vec<u8>> = Vec::new();
    for (key, value) in env {
        let (key, value) = (key.as_bytes(), value.as_bytes());
        if key.is_empty() || key.contains(&b'=') || key.contains(&0) || value.contains(&0) {
            return None;
        }
        if key == &VAR[..VAR.len() - 1] {
            continue;
        }
        let mut entry = Vec::with_capacity(key.len() + value.len() + 2);
        entry.extend_from_slice(key);
        entry.push(b'=');
        entry.extend_from_slice(value);
        entry.push(0);
        match keys.iter().position(|k| *k == key) {
            Some(at) => vars[at] = entry,
            None => {
                keys.push(key);
                vars.push(entry);
            }
        }
    }
    Some(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn later_duplicates_win_and_watchdog_pid_is_ours() {
        let vars = environment(&os(&[
            ("A", "1"),
            ("WATCHDOG_PID", "7"),
            ("B", "2"),
            ("A", "3"),
        ]))
        .unwrap_or_default();
        assert_eq!(vars, vec![b"A=3\0".to_vec(), b"B=2\0".to_vec()]);
        assert!(environment(&os(&[("A=B", "1")])).is_none());
        assert!(environment(&os(&[("A", "a\0b")])).is_none());
    }

    #[test]
    fn only_paths_are_exec_ed_here() {
        let plain = PidExec::new(Path::new("sleep"), &["sleep".into()], &[]);
        assert!(matches!(plain, Ok(None)));
        let path = PidExec::new(Path::new("/bin/sleep"), &["sleep".into()], &[]);
        assert!(matches!(path, Ok(Some(_))));
    }
}

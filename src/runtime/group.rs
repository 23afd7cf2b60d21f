//! Signalling what is left of a process group, with the answer of whether
//! anything was.

use std::io;

/// What `kill(-pgid, sig)` said about the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// It holds a process (signalled, or one pidzero may not signal).
    Alive,
    /// It holds none: nothing was signalled.
    Gone,
}

/// Reads a `kill` result: only ESRCH says the group is empty (EPERM means a
/// member exists that pidzero may not signal, which is still a member).
pub fn state_after_kill(rc: i32, errno: Option<i32>) -> GroupState {
    if rc == 0 || errno != Some(libc::ESRCH) {
        GroupState::Alive
    } else {
        GroupState::Gone
    }
}

/// Sends `sig` to every process of group `pgid` and says whether there was
/// any: one syscall where a liveness check (`kill(-pgid, 0)`) and the signal
/// were two. Groups 0 and 1 are never signalled (pidzero's own, or every
/// process) and count as gone.
pub fn signal(pgid: i32, sig: i32) -> GroupState {
    if pgid <= 1 {
        return GroupState::Gone;
    }
    // SAFETY: plain syscall on a negative pid (a process group).
    let rc = unsafe { libc::kill(-pgid, sig) };
    let errno = (rc != 0)
        .then(|| io::Error::last_os_error().raw_os_error())
        .flatten();
    state_after_kill(rc, errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_esrch_means_gone() {
        assert_eq!(state_after_kill(0, None), GroupState::Alive);
        assert_eq!(state_after_kill(-1, Some(libc::ESRCH)), GroupState::Gone);
        assert_eq!(state_after_kill(-1, Some(libc::EPERM)), GroupState::Alive);
    }

    #[test]
    fn never_signals_group_0_or_1() {
        assert_eq!(signal(0, 0), GroupState::Gone);
        assert_eq!(signal(1, 0), GroupState::Gone);
    }

    #[test]
    fn an_empty_group_is_gone_and_a_live_one_alive() {
        // This test process's own group is alive; signal 0 only checks.
        // SAFETY: plain syscall.
        let own = unsafe { libc::getpgrp() };
        if own > 1 {
            assert_eq!(signal(own, 0), GroupState::Alive);
        }
        // A pid far above pid_max is nobody's group.
        assert_eq!(signal(i32::MAX - 1, 0), GroupState::Gone);
    }
}

//! Process syscalls: start a process, signal its group, reap every child.
//!
//! Every process pidzero starts (daemons, the main command, command health
//! probes) goes through [`spawn`]: std's `Command` (fork, then exec, with exec
//! errors reported back) plus one `pre_exec` step that gives the child the
//! signal state pidzero inherited, the terminal when it is the main command,
//! and its user. Never `Child::wait`: all reaping goes through `waitpid(-1)`
//! so adopted orphans are reaped too and nothing races for exit statuses.

use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::unistd::{Gid, Uid};

use super::pid_exec::PidExec;
use super::signals::{self, Inherited, SignalBits};
use crate::config::OutputMode;
use crate::exit::{self, ExitStatus};
use crate::plan::Launch;

/// What every spawn needs to know about pidzero's own situation.
#[derive(Clone, Copy)]
pub struct SpawnContext {
    /// The signal state pidzero inherited; every child gets it back.
    pub inherited: Inherited,
    /// pidzero's stdin is a terminal.
    pub stdin_is_tty: bool,
    /// That terminal is pidzero's controlling terminal.
    pub has_controlling_tty: bool,
}

impl SpawnContext {
    pub fn detect(inherited: Inherited) -> Self {
        let stdin = io::stdin();
        let stdin_is_tty = stdin.is_terminal();
        let has_controlling_tty = stdin_is_tty && nix::unistd::tcgetpgrp(stdin.as_fd()).is_ok();
        SpawnContext {
            inherited,
            stdin_is_tty,
            has_controlling_tty,
        }
    }
}

/// A started process: its pid (also its process group id) and the read ends of
/// its captured stdout/stderr.
pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// What a notify daemon's spawn adds to its plan: environment variables
/// (`NOTIFY_SOCKET`, `WATCHDOG_USEC`) and a descriptor to hand over as a
/// given number (the notification fd).
#[derive(Default)]
pub struct Extras {
    pub env: Vec<(OsString, OsString)>,
    /// (descriptor in pidzero, number the child gets it as).
    pub fd: Option<(RawFd, i32)>,
    /// Add `WATCHDOG_PID` (the child's own pid): see `PidExec` (`runtime::pid_exec`).
    pub watchdog_pid: bool,
}

/// Starts one process as `plan` says: [`spawn_with`] without extras.
pub fn spawn(plan: &Launch, ctx: &SpawnContext) -> io::Result<Spawned> {
    spawn_with(plan, ctx, &Extras::default())
}

/// Starts one process as `plan` says, in a process group of its own (or, for
/// the main command on a terminal, as the terminal's foreground group).
///
/// The child starts with exactly: the signal mask pidzero inherited; every
/// disposition at its default except the signals pidzero inherited as ignored
/// (SIGPIPE always at its default); descriptors 0-2 only; the planned working
/// directory, environment and user; pidzero's rlimits.
pub fn spawn_with(plan: &Launch, ctx: &SpawnContext, extras: &Extras) -> io::Result<Spawned> {
    let take_tty = plan.inherit_stdin && ctx.stdin_is_tty;
    let mut cmd = Command::new(&plan.program);
    if let Some((argv0, rest)) = plan.argv.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear().envs(plan.env.iter().map(|(k, v)| (k, v)));
    cmd.envs(extras.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &plan.working_dir {
        cmd.current_dir(dir);
    }
    cmd.stdin(if plan.inherit_stdin {
        Stdio::inherit()
    } else {
        Stdio::null()
    });
    let (out, err) = match plan.output {
        OutputMode::Log => (Stdio::piped(), Stdio::piped()),
        OutputMode::Inherit => (Stdio::inherit(), Stdio::inherit()),
        OutputMode::Discard => (Stdio::null(), Stdio::null()),
    };
    cmd.stdout(out).stderr(err);

    if !take_tty {
        cmd.process_group(0);
    }
    let child_setup = ChildSetup {
        take_tty,
        has_controlling_tty: ctx.has_controlling_tty,
        user: plan.user.as_ref().map(|u| {
            let groups = u.groups.iter().map(|&g| Gid::from_raw(g)).collect();
            (Uid::from_raw(u.uid), Gid::from_raw(u.gid), groups)
        }),
        mask: ctx.inherited.mask,
        dispositions: child_dispositions(signals::settable(), ctx.inherited.ignored),
        notify_fd: extras.fd,
        exec: if extras.watchdog_pid {
            let env: Vec<_> = plan.env.iter().chain(&extras.env).cloned().collect();
            PidExec::new(&plan.program, &plan.argv, &env)?
        } else {
            None
        },
    };
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // syscalls on data built before the fork; it allocates and locks nothing.
    unsafe {
        cmd.pre_exec(move || child_setup.apply());
    }
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    // Dropping `Child` neither waits nor kills; waitpid(-1) reaps it later.
    Ok(Spawned {
        pid,
        stdout: child.stdout.take().map(OwnedFd::from),
        stderr: child.stderr.take().map(OwnedFd::from),
    })
}

/// The disposition each settable signal gets in a child: ignored when pidzero
/// inherited it ignored, else the default (which also undoes pidzero's own
/// SIGPIPE ignore; [`Inherited::ignored`] never holds SIGPIPE).
fn child_dispositions(
    settable: impl Iterator<Item = i32>,
    ignored: SignalBits,
) -> Vec<(i32, libc::sighandler_t)> {
    settable
        .map(|sig| {
            let handler = if ignored.contains(sig) {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            (sig, handler)
        })
        .collect()
}

/// What the child does between fork and exec, after std's own setup
/// (descriptors 0-2, working directory, process group).
struct ChildSetup {
    take_tty: bool,
    has_controlling_tty: bool,
    user: Option<(Uid, Gid, Vec<Gid>)>,
    mask: SigSet,
    dispositions: Vec<(i32, libc::sighandler_t)>,
    /// The notification pipe's write end, to become the given descriptor.
    notify_fd: Option<(RawFd, i32)>,
    /// Exec here, with `WATCHDOG_PID` set, instead of leaving it to std.
    exec: Option<PidExec>,
}

impl ChildSetup {
    fn apply(&self) -> io::Result<()> {
        // Block everything while arranging the terminal: tcsetpgrp from a
        // background group raises SIGTTOU otherwise.
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None)?;
        if self.take_tty {
            self.become_foreground();
        }
        if let Some((uid, gid, groups)) = &self.user {
            nix::unistd::setgroups(groups)?;
            nix::unistd::setgid(*gid)?;
            nix::unistd::setuid(*uid)?;
        }
        for &(sig, handler) in &self.dispositions {
            // SAFETY: sets SIG_DFL or SIG_IGN, no handler code involved; a
            // signal the kernel refuses keeps what exec gives it anyway.
            unsafe { libc::signal(sig, handler) };
        }
        // Anything opened without close-on-exec since startup stays out too.
        mark_cloexec_from_3();
        if let Some((fd, target)) = self.notify_fd {
            hand_over_fd(fd, target)?;
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.mask), None)?;
        if let Some(exec) = &self.exec {
            // Returns only when the exec failed; std reports that error.
            return Err(exec.exec());
        }
        Ok(())
    }

    /// Makes the child's process group the terminal's foreground group; when
    /// pidzero has no controlling terminal, the child starts a session and
    /// takes the terminal as its own. Failures leave job control off, nothing worse.
    fn become_foreground(&self) {
        // SAFETY: plain syscalls on descriptor 0 and the calling process.
        unsafe {
            if self.has_controlling_tty {
                libc::setpgid(0, 0);
                libc::tcsetpgrp(0, libc::getpid());
            } else if libc::setsid() >= 0 {
                libc::ioctl(0, libc::TIOCSCTTY as _, 0);
            } else {
                libc::setpgid(0, 0);
            }
        }
    }
}

/// Makes `fd` the child's descriptor `target`, kept across exec (the one
/// descriptor above 2 a daemon inherits: its notification fd).
fn hand_over_fd(fd: RawFd, target: i32) -> io::Result<()> {
    // SAFETY: plain descriptor syscalls between fork and exec.
    unsafe {
        if fd == target {
            // dup2 onto itself changes nothing: clear close-on-exec by hand.
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::dup2(fd, target) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Sets close-on-exec on every descriptor from 3 up in one syscall; false
/// where the kernel is too old for `close_range(CLOSE_RANGE_CLOEXEC)`.
fn mark_cloexec_from_3() -> bool {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets descriptor flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    rc == 0
}

/// The status a failed spawn counts as: 127 when something was not found, else 126.
pub fn spawn_error_status(err: &io::Error) -> i32 {
    exit::unstartable_status(err.kind() == io::ErrorKind::NotFound)
}

/// `kill(-pgid, sig)`; a group that is already empty is not an error.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 1 {
        // SAFETY: plain syscall; ESRCH just means the group is gone.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// True while any process is in the group.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: signal 0 only checks existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Reaps every child that has ended, daemons and adopted orphans alike.
pub fn reap_all() -> Vec<(i32, ExitStatus)> {
    let mut reaped = Vec::new();
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid > 0 {
            let how = if libc::WIFSIGNALED(status) {
                ExitStatus::Signal(libc::WTERMSIG(status))
            } else {
                ExitStatus::Code(libc::WEXITSTATUS(status))
            };
            reaped.push((pid, how));
            continue;
        }
        if pid < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // 0: children remain but none has ended; ECHILD: no children at all.
        return reaped;
    }
}

/// Marks every inherited descriptor above 2 close-on-exec, so daemons never see them.
pub fn cloexec_inherited_fds() {
    if mark_cloexec_from_3() {
        return;
    }
    // Older kernels: walk /proc/self/fd.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: setting FD_CLOEXEC on a descriptor number; a stale one gives EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// Makes pidzero adopt orphaned descendants when it is not PID 1.
pub fn become_subreaper() {
    if std::process::id() != 1 {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_get_default_dispositions_but_inherited_ignores() {
        let mut ignored = SignalBits::default();
        ignored.insert(libc::SIGUSR2);
        ignored.insert(40);
        let got = child_dispositions([1, 12, 13, 40, 41].into_iter(), ignored);
        assert_eq!(
            got,
            vec![
                (1, libc::SIG_DFL),
                (12, libc::SIG_IGN),
                (13, libc::SIG_DFL),
                (40, libc::SIG_IGN),
                (41, libc::SIG_DFL),
            ]
        );
    }
}

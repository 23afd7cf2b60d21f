//! Process syscalls: start a process, signal its group, reap every child.
//!
//! Every process pidzero starts (daemons, the main command, command health
//! probes) goes through [`spawn_with`]: the pipes or `/dev/null` for its
//! stdio and everything `execve` needs are made here, then
//! `vfork::spawn` starts it on pidzero's memory (no page
//! tables copied) and sets up the signal state pidzero inherited, the
//! terminal when it is the main command, and its user. Never `Child::wait`:
//! all reaping goes through `waitpid(-1)` so adopted orphans are reaped too
//! and nothing races for exit statuses.

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use super::exec_image::ExecImage;
use super::signals::{self, Inherited, SignalBits};
use super::vfork::{self, ChildSetup, Group, User};
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
    /// Add `WATCHDOG_PID` (the child's own pid, see `runtime::exec_image`).
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
/// (SIGPIPE always at its default); descriptors 0-2 only (plus the
/// notification fd when `extras` has one); the planned working directory,
/// environment (sorted by name) and user; pidzero's rlimits. A program
/// without `/` (not found when the plan was made) is searched on the child's
/// `PATH` here, before the child exists.
pub fn spawn_with(plan: &Launch, ctx: &SpawnContext, extras: &Extras) -> io::Result<Spawned> {
    let take_tty = plan.inherit_stdin && ctx.stdin_is_tty;
    let image = ExecImage::new(
        &plan.program,
        &plan.argv,
        &plan.env,
        &extras.env,
        plan.working_dir.as_deref(),
        extras.watchdog_pid,
    )?;
    let working_dir = plan
        .working_dir
        .as_ref()
        .map(|dir| CString::new(dir.as_os_str().as_bytes()))
        .transpose()
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "nul byte found in provided data",
            )
        })?;
    let stdin = if plan.inherit_stdin {
        None
    } else {
        Some(dev_null(false)?)
    };
    // pidzero's read ends, and the child's ends (closed here once it has exec'd).
    let (mut stdout, mut stderr) = (None, None);
    let mut child_ends = Vec::with_capacity(2);
    let (out_fd, err_fd) = match plan.output {
        OutputMode::Log => {
            let (out_read, out_write) = pipe()?;
            let (err_read, err_write) = pipe()?;
            (stdout, stderr) = (Some(out_read), Some(err_read));
            let fds = (out_write.as_raw_fd(), err_write.as_raw_fd());
            child_ends.extend([out_write, err_write]);
            (Some(fds.0), Some(fds.1))
        }
        OutputMode::Inherit => (None, None),
        OutputMode::Discard => {
            let null = dev_null(true)?;
            let fd = null.as_raw_fd();
            child_ends.push(null);
            (Some(fd), Some(fd))
        }
    };
    let setup = ChildSetup {
        image: &image,
        stdio: [stdin.as_ref().map(|fd| fd.as_raw_fd()), out_fd, err_fd],
        group: if take_tty {
            Group::Foreground {
                has_controlling_tty: ctx.has_controlling_tty,
            }
        } else {
            Group::Own
        },
        working_dir,
        user: plan.user.as_ref().map(|u| User {
            uid: u.uid,
            gid: u.gid,
            groups: u.groups.clone(),
        }),
        dispositions: child_dispositions(signals::kernel_settable(), ctx.inherited.ignored),
        mask: SignalBits::of(&ctx.inherited.mask).bits(),
        notify_fd: extras.fd,
    };
    let pid = vfork::spawn(&setup)?;
    drop(child_ends);
    Ok(Spawned {
        pid,
        stdout,
        stderr,
    })
}

/// A pipe, both ends close-on-exec: (pidzero's read end, the child's write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/dev/null`, for reading (stdin) or writing (stdout, stderr), as std's
/// `Stdio::null` opens it (close-on-exec).
fn dev_null(write: bool) -> io::Result<OwnedFd> {
    let file: File = OpenOptions::new()
        .read(!write)
        .write(write)
        .open("/dev/null")?;
    Ok(OwnedFd::from(file))
}

/// The disposition each signal gets in a child: ignored when pidzero
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

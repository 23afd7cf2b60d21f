//! Process syscalls: spawn a daemon, signal its group, reap every child.
//!
//! Spawning uses `posix_spawn` (module `posix_spawn`) when nothing has
//! to run between fork and exec, else `std::process::Command` (fork/exec with
//! error reporting) with a `pre_exec` step; never `Child::wait`: all reaping
//! goes through `waitpid(-1)` so adopted orphans are reaped too and nothing
//! races for exit statuses.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::SigSet;

use crate::config::OutputMode;
use crate::exit::{self, ExitStatus};
use crate::plan::Launch;

/// What every spawn needs to know about pidzero's own situation.
#[derive(Clone, Copy)]
pub struct SpawnContext {
    /// The signal mask pidzero inherited; daemons get it back.
    pub inherited_mask: SigSet,
    /// pidzero's stdin is a terminal.
    pub stdin_is_tty: bool,
    /// That terminal is pidzero's controlling terminal.
    pub has_controlling_tty: bool,
}

impl SpawnContext {
    pub fn detect(inherited_mask: SigSet) -> Self {
        // SAFETY: plain queries on fd 0.
        let stdin_is_tty = unsafe { libc::isatty(0) } == 1;
        let has_controlling_tty = stdin_is_tty && unsafe { libc::tcgetpgrp(0) } >= 0;
        SpawnContext {
            inherited_mask,
            stdin_is_tty,
            has_controlling_tty,
        }
    }
}

/// A started daemon: its pid (also its process group id) and the read ends of
/// its captured stdout/stderr.
pub struct Spawned {
    pub pid: i32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

/// Starts one daemon in its own process group.
pub fn spawn(plan: &Launch, ctx: &SpawnContext) -> io::Result<Spawned> {
    let take_tty = plan.inherit_stdin && ctx.stdin_is_tty;
    // A program not found at planning time stays a bare name, which only
    // std's spawn looks up in the daemon's PATH (it may exist by a restart).
    #[cfg(target_env = "gnu")]
    if !take_tty && plan.user.is_none() && plan.program.as_os_str().as_bytes().contains(&b'/') {
        match super::posix_spawn::spawn(plan, &ctx.inherited_mask) {
            // A script without `#!`: std's execvp runs it with /bin/sh.
            Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {}
            spawned => return spawned,
        }
    }
    let mut cmd = Command::new(&plan.program);
    if let Some((argv0, rest)) = plan.argv.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear().envs(plan.env.iter().map(|(k, v)| (k, v)));
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
        user: plan.user.as_ref().map(|u| (u.uid, u.gid, u.groups.clone())),
        mask: ctx.inherited_mask,
    };
    // SAFETY: the closure only makes async-signal-safe syscalls on data
    // prepared before the fork; it allocates nothing.
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

/// What the child does between fork and exec, after std's own setup.
struct ChildSetup {
    take_tty: bool,
    has_controlling_tty: bool,
    user: Option<(u32, u32, Vec<u32>)>,
    mask: SigSet,
}

impl ChildSetup {
    fn apply(&self) -> io::Result<()> {
        // SAFETY (whole fn): async-signal-safe libc calls on owned, pre-built data.
        unsafe {
            // Block everything while arranging the terminal: tcsetpgrp from a
            // background group raises SIGTTOU otherwise.
            let all = SigSet::all();
            libc::sigprocmask(libc::SIG_SETMASK, all.as_ref(), std::ptr::null_mut());
            if self.take_tty {
                self.become_foreground();
            }
            if let Some((uid, gid, groups)) = &self.user {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setgid(*gid) != 0 || libc::setuid(*uid) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            libc::sigprocmask(libc::SIG_SETMASK, self.mask.as_ref(), std::ptr::null_mut());
        }
        Ok(())
    }

    /// Makes the child's process group the terminal's foreground group; when
    /// pidzero has no controlling terminal, the child starts a session and
    /// takes the terminal as its own. Failures leave job control off, nothing worse.
    unsafe fn become_foreground(&self) {
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
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
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

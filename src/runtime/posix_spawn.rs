//! Starting a daemon with `posix_spawn(3)` when nothing has to run in the
//! child between fork and exec (no terminal to take, no user to become).
//!
//! glibc's `posix_spawn` clones with `CLONE_VM | CLONE_VFORK`: no copy of
//! pidzero's page tables, and the exec error comes back as its return value.
//! std's `Command` only takes that path when given no `pre_exec` closure, and
//! then it leaves the child pidzero's signal mask (every signal blocked, for
//! the signalfd), so the attributes are set here instead: the mask pidzero
//! inherited, SIGPIPE and glibc's signal 33 back to their defaults, a process
//! group of its own. A program that exec refuses with ENOEXEC (a script
//! without `#!`) is left to std, whose `execvp` runs it with `/bin/sh`.
//! Measured from the first `starting` to the 100th `started` record, 100
//! `sleep` daemons, alternating builds: 57-67 ms against 73-85 ms with fork.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::sys::signal::SigSet;

use super::process::Spawned;
use crate::config::OutputMode;
use crate::plan::Launch;

/// Starts `plan`'s daemon with the signal `mask` pidzero inherited.
pub fn spawn(plan: &Launch, mask: &SigSet) -> io::Result<Spawned> {
    let program = c_string(plan.program.as_os_str().as_bytes())?;
    let mut argv = plan
        .argv
        .iter()
        .map(|arg| c_string(arg.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    if argv.is_empty() {
        // As `Command` does: the program is its own argv[0].
        argv.push(program.clone());
    }
    // The planner's environment has one entry per key already
    // (`plan::env::set_var`), in the order it chose.
    let envp = plan
        .env
        .iter()
        .map(|(key, value)| {
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            c_string(&entry)
        })
        .collect::<io::Result<Vec<_>>>()?;
    let dir = plan
        .working_dir
        .as_ref()
        .map(|d| c_string(d.as_os_str().as_bytes()))
        .transpose()?;
    let pipes = match plan.output {
        OutputMode::Log => Some((pipe()?, pipe()?)),
        OutputMode::Inherit | OutputMode::Discard => None,
    };

    let mut actions = FileActions::new()?;
    if !plan.inherit_stdin {
        actions.open(0, c"/dev/null", libc::O_RDONLY)?;
    }
    match (&pipes, plan.output) {
        (Some(((_, out_w), (_, err_w))), _) => {
            actions.dup2(out_w.as_raw_fd(), 1)?;
            actions.dup2(err_w.as_raw_fd(), 2)?;
        }
        (None, OutputMode::Discard) => {
            actions.open(1, c"/dev/null", libc::O_WRONLY)?;
            actions.open(2, c"/dev/null", libc::O_WRONLY)?;
        }
        (None, _) => {}
    }
    if let Some(dir) = &dir {
        actions.chdir(dir)?;
    }
    let attrs = Attributes::new(mask)?;

    let mut argv_ptrs: Vec<*mut libc::c_char> =
        argv.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv_ptrs.push(std::ptr::null_mut());
    let mut envp_ptrs: Vec<*mut libc::c_char> =
        envp.iter().map(|e| e.as_ptr().cast_mut()).collect();
    envp_ptrs.push(std::ptr::null_mut());
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is to a live, NUL-terminated string or a
    // null-terminated array of them, and the actions and attributes were
    // initialised; all outlive the call.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            actions.as_ptr(),
            attrs.as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // The write ends are the child's now; pidzero keeps the read ends.
    let (stdout, stderr) = match pipes {
        Some(((out_r, _), (err_r, _))) => (Some(out_r), Some(err_r)),
        None => (None, None),
    };
    Ok(Spawned {
        pid,
        stdout,
        stderr,
    })
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// A pipe, both ends close-on-exec: `dup2` clears the flag on the copy the
/// child gets, and the child never sees the other ends.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Turns a `posix_spawn*` return value (an errno, or 0) into a `Result`.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// `posix_spawn_file_actions_t`, destroyed on drop.
struct FileActions(Box<MaybeUninit<libc::posix_spawn_file_actions_t>>);

impl FileActions {
    fn new() -> io::Result<Self> {
        let mut actions = Box::new(MaybeUninit::uninit());
        // SAFETY: initialises the object in place.
        check(unsafe { libc::posix_spawn_file_actions_init(actions.as_mut_ptr()) })?;
        Ok(FileActions(actions))
    }

    fn as_ptr(&self) -> *const libc::posix_spawn_file_actions_t {
        self.0.as_ptr()
    }

    fn ptr(&mut self) -> *mut libc::posix_spawn_file_actions_t {
        self.0.as_mut_ptr()
    }

    fn open(
        &mut self,
        fd: libc::c_int,
        path: &std::ffi::CStr,
        flags: libc::c_int,
    ) -> io::Result<()> {
        // SAFETY: initialised actions; glibc copies the path.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(self.ptr(), fd, path.as_ptr(), flags, 0)
        })
    }

    fn dup2(&mut self, from: libc::c_int, to: libc::c_int) -> io::Result<()> {
        // SAFETY: initialised actions.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(self.ptr(), from, to) })
    }

    fn chdir(&mut self, dir: &std::ffi::CStr) -> io::Result<()> {
        // SAFETY: initialised actions; glibc copies the path.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(self.ptr(), dir.as_ptr()) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawn_file_actions_destroy(self.0.as_mut_ptr()) };
    }
}

/// `posix_spawnattr_t`, destroyed on drop: the child's signal mask, SIGPIPE
/// to its default, and a process group of its own.
struct Attributes(Box<MaybeUninit<libc::posix_spawnattr_t>>);

impl Attributes {
    fn new(mask: &SigSet) -> io::Result<Self> {
        let mut attrs = Box::new(MaybeUninit::uninit());
        // SAFETY: initialises the object in place.
        check(unsafe { libc::posix_spawnattr_init(attrs.as_mut_ptr()) })?;
        let mut attrs = Attributes(attrs);
        let mut defaults = SigSet::empty();
        defaults.add(nix::sys::signal::Signal::SIGPIPE);
        let mut defaults: libc::sigset_t = *defaults.as_ref();
        // glibc's spawn sets its internal signals that have a handler in the
        // parent to SIG_IGN in the child, and an ignore survives exec; glibc
        // installs one on signal 33 (SIGSETXID) in every process, so without
        // this a daemon would start with 33 ignored, where fork/exec gives the
        // default. `sigaddset` refuses internal signals: set the bit itself
        // (the first word of a Linux sigset_t holds signals 1 to 64).
        #[cfg(target_pointer_width = "64")]
        {
            let first_word = std::ptr::from_mut(&mut defaults).cast::<u64>();
            // SAFETY: a 64-bit Linux sigset_t starts with a u64 for signals 1-64.
            unsafe { *first_word |= 1 << (33 - 1) };
        }
        let flags = libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF
            | libc::POSIX_SPAWN_SETPGROUP;
        let ptr = attrs.0.as_mut_ptr();
        // SAFETY: initialised attributes; the sets are copied.
        unsafe {
            check(libc::posix_spawnattr_setsigmask(ptr, mask.as_ref()))?;
            check(libc::posix_spawnattr_setsigdefault(ptr, &defaults))?;
            check(libc::posix_spawnattr_setpgroup(ptr, 0))?;
            check(libc::posix_spawnattr_setflags(ptr, flags as libc::c_short))?;
        }
        Ok(attrs)
    }

    fn as_ptr(&self) -> *const libc::posix_spawnattr_t {
        self.0.as_ptr()
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe { libc::posix_spawnattr_destroy(self.0.as_mut_ptr()) };
    }
}

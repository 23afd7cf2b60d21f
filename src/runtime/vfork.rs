//! The raw spawn: `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)` on a small stack
//! of its own, then the child's setup and `execve`.
//!
//! Why not fork: fork copies pidzero's page tables and every later write by
//! pidzero takes a copy-on-write fault, which made starting 100 daemons cost
//! more kernel time in pidzero than in an init whose shell forks them. A
//! CLONE_VM child shares pidzero's memory until it execs, and CLONE_VFORK
//! suspends the calling thread until then, so no page table is copied and
//! the exec error comes back through shared memory (no pipe to read).
//! Why not glibc's `posix_spawn`: its child leaves glibc's internal signals
//! 32/33 ignored across exec, and it cannot switch user, hand over the
//! notification fd or take the terminal.
//!
//! The price is discipline in the child: it runs on the shared address space,
//! so it allocates nothing, takes no lock, and calls no glibc function that
//! touches process-wide state. Everything it needs is built beforehand
//! ([`ChildSetup`], [`ExecImage`]); it makes raw syscalls (glibc's `setuid`
//! family would broadcast SIGSETXID to pidzero's threads through the shared
//! memory), reports the errno of a failed step through [`Shared::outcome`] and
//! `_exit`s. Every signal is blocked from before the clone until the
//! dispositions are reset, so no handler of pidzero's (Rust's SIGSEGV guard,
//! glibc's 32/33) ever runs on the shared memory; a fault in the child is
//! then fatal to the child alone (the kernel resets a blocked fault to its
//! default).

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use super::exec_image::ExecImage;

/// The child's stack. Measured use is under 1 KiB (848 bytes in a debug
/// build, `the_child_uses_little_of_its_stack`): the child's frames hold a
/// few words and an 11-byte buffer, and a signal frame would land here only
/// for a handler, which the child never runs (all blocked until reset). 64 KiB leaves a wide margin for a future step or a compiler that
/// inlines differently, costs nothing until touched (anonymous memory) and
/// is mapped once per pidzero, then reused.
const STACK_SIZE: usize = 64 * 1024;

/// `outcome` until the child reaches its exec: still this after the child is
/// gone means it died before (killed, or a fault).
const NOT_REACHED: i32 = -1;
/// `outcome` once the child is about to exec; the exec's errno replaces it on failure.
const EXECING: i32 = 0;

/// How the child's process group is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// A process group of its own (`setpgid(0, 0)`).
    Own,
    /// The main command on a terminal: the terminal's foreground group.
    /// Without a controlling terminal, the child starts a session and takes
    /// the terminal as its own. Failures leave job control off, nothing worse.
    Foreground { has_controlling_tty: bool },
}

/// The supplementary groups, group and user the child switches to.
pub struct User {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
}

/// Everything the child does between the clone and the exec, built by the parent.
pub struct ChildSetup<'a> {
    pub image: &'a ExecImage,
    /// What becomes descriptors 0, 1, 2 (`None`: pidzero's own, inherited).
    pub stdio: [Option<RawFd>; 3],
    pub group: Group,
    pub working_dir: Option<CString>,
    pub user: Option<User>,
    /// The disposition of every signal but KILL and STOP: SIG_DFL or SIG_IGN.
    pub dispositions: Vec<(i32, libc::sighandler_t)>,
    /// The signal mask to exec with (bit N-1 for signal N).
    pub mask: u64,
    /// (descriptor in pidzero, number the child gets it as): the
    /// notification fd, the one descriptor above 2 a daemon inherits.
    pub notify_fd: Option<(RawFd, i32)>,
}

/// What parent and child share: the setup to read, the outcome to write.
struct Shared<'a> {
    setup: &'a ChildSetup<'a>,
    outcome: AtomicI32,
}

/// The child's stack, mapped on first use and reused by every spawn (the
/// lock is held from the clone until the child has exec'd or exited).
static STACK: Mutex<Option<Stack>> = Mutex::new(None);

/// An anonymous mapping with a guard page at its low end.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping belongs to this value alone; the Mutex above gives one
// spawn at a time access to it.
unsafe impl Send for Stack {}

impl Stack {
    fn map() -> io::Result<Stack> {
        // SAFETY: sysconf only reads a constant.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(4096);
        let len = STACK_SIZE.div_ceil(page) * page + page;
        // SAFETY: a fresh private anonymous mapping, no address given.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // The guard page: an overflow faults instead of writing into
        // whatever mapping lies below.
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The high end, where the stack starts (page-aligned, so 16-byte aligned).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, no longer used.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Starts the child `setup` describes and returns its pid once it has
/// exec'd. When a step before the exec (or the exec) fails, the child exits
/// 127, is reaped here, and its errno comes back as the error.
pub fn spawn(setup: &ChildSetup) -> io::Result<i32> {
    let mut stack = STACK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if stack.is_none() {
        *stack = Some(Stack::map()?);
    }
    let Some(stack) = stack.as_ref() else {
        return Err(io::Error::other("no stack for the child"));
    };
    let shared = Shared {
        setup,
        outcome: AtomicI32::new(NOT_REACHED),
    };
    // The child starts with its parent's mask: block everything (32 and 33
    // included, which glibc's sigprocmask would leave out) so that no
    // handler runs in it before its dispositions are reset.
    let saved = set_mask(!0)?;
    // SAFETY: `child_main` gets a pointer to `shared`, which outlives the
    // child's use of it: CLONE_VFORK suspends this thread until the child
    // has exec'd or exited. The stack is ours alone while the lock is held.
    let pid = unsafe {
        libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::from_ref(&shared).cast_mut().cast(),
        )
    };
    let clone_error = io::Error::last_os_error();
    // Cannot fail: the same valid mask that was read above.
    let _ = set_mask(saved);
    if pid < 0 {
        return Err(clone_error);
    }
    match shared.outcome.load(Ordering::SeqCst) {
        EXECING => Ok(pid),
        outcome => {
            reap(pid);
            Err(if outcome > 0 {
                io::Error::from_raw_os_error(outcome)
            } else {
                io::Error::other("the child died before its exec")
            })
        }
    }
}

/// Waits for one child that is known to have exited.
fn reap(pid: i32) {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc >= 0 || errno() != libc::EINTR {
            return;
        }
    }
}

/// Sets the calling thread's signal mask with the raw syscall (every one of
/// the 64 signals) and returns the previous one.
fn set_mask(mask: u64) -> io::Result<u64> {
    let mut old: u64 = 0;
    // SAFETY: both pointers are valid for the kernel's 8-byte sigset.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            std::ptr::from_ref(&mask),
            std::ptr::from_mut(&mut old),
            8usize,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

fn errno() -> i32 {
    // SAFETY: reads the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The child. Never returns into Rust frames: it execs or `_exit`s.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `Shared` the parent keeps alive, unchanged, while
    // it is suspended (see `spawn`).
    let shared = unsafe { &*arg.cast::<Shared>().cast_const() };
    // SAFETY: this is the child of a CLONE_VM | CLONE_VFORK clone, about to exec.
    let errno = unsafe { shared.setup.run(&shared.outcome) };
    shared.outcome.store(errno, Ordering::SeqCst);
    // SAFETY: ends the child without running anything of pidzero's.
    unsafe { libc::_exit(127) }
}

/// The kernel's `struct sigaction` (asm-generic layout, which x86_64,
/// aarch64 and riscv64 use).
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// A raw syscall's result: the errno of a failure.
fn check(rc: libc::c_long) -> Result<(), i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

impl ChildSetup<'_> {
    /// The child's steps, in order; returns the errno of the one that failed
    /// (the exec's, when it returns at all).
    ///
    /// # Safety
    /// Only in the child of `spawn`'s clone, with every signal blocked.
    unsafe fn run(&self, outcome: &AtomicI32) -> i32 {
        match self.group {
            Group::Own => {
                // SAFETY: plain syscall on the calling process.
                if let Err(e) = check(unsafe { libc::syscall(libc::SYS_setpgid, 0, 0) }) {
                    return e;
                }
            }
            Group::Foreground {
                has_controlling_tty,
            } => become_foreground(has_controlling_tty),
        }
        if let Err(e) = self.install_stdio() {
            return e;
        }
        if let Some(dir) = &self.working_dir {
            // SAFETY: a NUL-terminated path built by the parent.
            if let Err(e) = check(unsafe { libc::syscall(libc::SYS_chdir, dir.as_ptr()) }) {
                return e;
            }
        }
        if let Err(e) = self.switch_user() {
            return e;
        }
        self.reset_dispositions();
        // Anything opened without close-on-exec since startup stays out too;
        // an old kernel without close_range has had them marked at startup.
        // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets descriptor flags.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if let Some((fd, target)) = self.notify_fd {
            if let Err(e) = hand_over_fd(fd, target) {
                return e;
            }
        }
        if let Err(e) = set_mask(self.mask) {
            return e.raw_os_error().unwrap_or(libc::EINVAL);
        }
        outcome.store(EXECING, Ordering::SeqCst);
        // SAFETY: the child about to exec, as `exec` requires.
        unsafe { self.image.exec() }
    }

    /// Makes the planned descriptors 0, 1 and 2, kept across exec.
    fn install_stdio(&self) -> Result<(), i32> {
        let mut sources = self.stdio;
        // A source that is itself one of 0-2 (another than its target) would
        // be overwritten by an earlier dup2: move it above 2 first.
        for (target, source) in sources.iter_mut().enumerate() {
            if let Some(fd) = *source {
                if (0..=2).contains(&fd) && fd as usize != target {
                    // SAFETY: plain descriptor syscall.
                    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
                    check(moved.into())?;
                    *source = Some(moved);
                }
            }
        }
        for (target, source) in sources.iter().enumerate() {
            if let Some(fd) = *source {
                hand_over_fd(fd, target as i32)?;
            }
        }
        Ok(())
    }

    /// setgroups, setgid, setuid with the raw syscalls: glibc's wrappers
    /// would signal every thread of the shared address space (SIGSETXID).
    fn switch_user(&self) -> Result<(), i32> {
        let Some(user) = &self.user else {
            return Ok(());
        };
        // SAFETY: plain syscalls; the group list is a valid array of its length.
        unsafe {
            check(libc::syscall(
                libc::SYS_setgroups,
                user.groups.len(),
                user.groups.as_ptr(),
            ))?;
            check(libc::syscall(libc::SYS_setgid, user.gid))?;
            check(libc::syscall(libc::SYS_setuid, user.uid))
        }
    }

    /// Every disposition to SIG_DFL or SIG_IGN as planned (32 and 33 too,
    /// which glibc's `sigaction` refuses). A signal the kernel refuses keeps
    /// what exec gives it anyway.
    fn reset_dispositions(&self) {
        for &(sig, handler) in &self.dispositions {
            let action = KernelSigaction {
                handler,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: a valid kernel sigaction with no handler code, no old
            // action asked for.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    std::ptr::from_ref(&action),
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
}

/// Makes `fd` the child's descriptor `target`, kept across exec.
fn hand_over_fd(fd: RawFd, target: i32) -> Result<(), i32> {
    // SAFETY: plain descriptor syscalls.
    unsafe {
        if fd == target {
            // dup2 onto itself changes nothing: clear close-on-exec by hand.
            check(libc::fcntl(fd, libc::F_SETFD, 0).into())
        } else {
            check(libc::syscall(libc::SYS_dup2, fd, target))
        }
    }
}

/// The foreground group of the terminal on descriptor 0 (see [`Group::Foreground`]).
fn become_foreground(has_controlling_tty: bool) {
    // SAFETY: plain syscalls on descriptor 0 and the calling process; the
    // pid is a valid pointer for TIOCSPGRP.
    unsafe {
        if has_controlling_tty {
            libc::syscall(libc::SYS_setpgid, 0, 0);
            let pid = libc::syscall(libc::SYS_getpid) as libc::pid_t;
            libc::syscall(
                libc::SYS_ioctl,
                0,
                libc::TIOCSPGRP,
                std::ptr::from_ref(&pid),
            );
        } else if libc::syscall(libc::SYS_setsid) >= 0 {
            libc::syscall(libc::SYS_ioctl, 0, libc::TIOCSCTTY, 0);
        } else {
            libc::syscall(libc::SYS_setpgid, 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    fn setup<'a>(image: &'a ExecImage) -> ChildSetup<'a> {
        ChildSetup {
            image,
            stdio: [None, None, None],
            group: Group::Own,
            working_dir: None,
            user: None,
            dispositions: Vec::new(),
            mask: 0,
            notify_fd: None,
        }
    }

    fn image(argv: &[&str]) -> ExecImage {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        ExecImage::new(Path::new(&argv[0]), &argv, &[], &[], None, false).unwrap()
    }

    /// Exit status of a child, `None` while it runs (or if it is not ours).
    fn wait(pid: i32) -> Option<i32> {
        let mut status = 0;
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        (rc == pid).then(|| libc::WEXITSTATUS(status))
    }

    #[test]
    fn a_failed_step_comes_back_as_its_errno_and_leaves_no_child() {
        let image = image(&["/bin/true"]);
        let mut bad_dir = setup(&image);
        bad_dir.working_dir = Some(CString::new("/nonexistent/dir").unwrap());
        let err = spawn(&bad_dir).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let missing = self::image(&["/nonexistent/program"]);
        let err = spawn(&setup(&missing)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        let dir = self::image(&["/"]);
        let err = spawn(&setup(&dir)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EACCES));
        let mut bad_fd = setup(&image);
        bad_fd.notify_fd = Some((-1, 9));
        assert_eq!(
            spawn(&bad_fd).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }

    #[test]
    fn a_started_child_runs_its_program() {
        let exit3 = image(&["/bin/sh", "-c", "exit 3"]);
        let pid = spawn(&setup(&exit3)).unwrap();
        assert_eq!(wait(pid), Some(3));
    }

    #[test]
    fn one_pipe_end_becomes_both_1_and_2() {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        let (r, w) = unsafe {
            use std::os::fd::FromRawFd;
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            )
        };
        let image = image(&["/bin/sh", "-c", "echo out; echo err >&2"]);
        let mut both = setup(&image);
        both.stdio = [None, Some(w.as_raw_fd()), Some(w.as_raw_fd())];
        let pid = spawn(&both).unwrap();
        drop(w);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut { r }, &mut text).unwrap();
        assert_eq!(wait(pid), Some(0));
        assert_eq!(text, "out\nerr\n");
    }

    /// Run by `pipe_ends_that_are_0_1_2_themselves_land_where_planned` in a
    /// test process of its own (whose 1 and 2 that test chose); a no-op
    /// otherwise.
    #[test]
    fn crossed_stdio_helper() {
        if std::env::var_os("PIDZERO_CROSSED_STDIO").is_none() {
            return;
        }
        let image = image(&["/bin/sh", "-c", "echo one; echo two >&2"]);
        let mut crossed = setup(&image);
        // The child's 1 is this process's 2 and its 2 this process's 1: a
        // dup2 onto 1 first would lose the source of 2.
        crossed.stdio = [None, Some(2), Some(1)];
        let pid = spawn(&crossed).unwrap();
        assert_eq!(wait(pid), Some(0));
    }

    #[test]
    fn pipe_ends_that_are_0_1_2_themselves_land_where_planned() {
        let dir = crate::test_support::Dir::new("crossed-stdio");
        let (out, err) = (dir.p("out"), dir.p("err"));
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "runtime::vfork::tests::crossed_stdio_helper",
                "--test-threads=1",
            ])
            .env("PIDZERO_CROSSED_STDIO", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .unwrap();
        let (out, err) = (
            std::fs::read_to_string(&out).unwrap(),
            std::fs::read_to_string(&err).unwrap(),
        );
        assert!(status.success(), "{out}\n{err}");
        assert_eq!(
            err, "one\n",
            "the child's stdout went to the helper's stderr"
        );
        assert!(out.contains("two\n"), "the child's stderr: {out}");
    }

    #[test]
    fn the_child_uses_little_of_its_stack() {
        const PATTERN: u8 = 0xa5;
        let image = image(&["/bin/true"]);
        let mut full = setup(&image);
        full.dispositions = (1..=64)
            .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
            .map(|s| (s, libc::SIG_DFL))
            .collect();
        // Map the stack, paint it, spawn, and see how deep the paint was
        // overwritten (other tests spawning meanwhile go as deep as this one).
        let pid = spawn(&full).unwrap();
        assert_eq!(wait(pid), Some(0));
        let (low, top) = {
            let guard = STACK.lock().unwrap();
            let stack = guard.as_ref().unwrap();
            let top = stack.top().cast::<u8>();
            let low = unsafe { top.sub(STACK_SIZE) };
            unsafe { std::ptr::write_bytes(low, PATTERN, STACK_SIZE) };
            (low as usize, top as usize)
        };
        let pid = spawn(&full).unwrap();
        assert_eq!(wait(pid), Some(0));
        let guard = STACK.lock().unwrap();
        let used = (low..top)
            .find(|&at| unsafe { *(at as *const u8) } != PATTERN)
            .map_or(0, |deepest| top - deepest);
        drop(guard);
        eprintln!("the child used {used} bytes of its {STACK_SIZE}-byte stack");
        assert!(used > 0, "the paint was overwritten");
        assert!(used < STACK_SIZE / 4, "{used} bytes");
    }
}

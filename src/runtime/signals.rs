//! Signals received synchronously through a signalfd.
//!
//! Every signal is blocked in every thread before any thread starts, and read
//! from a signalfd instead of async handlers: tokio's signal API refuses
//! SIGSEGV, SIGILL and SIGFPE, which must still be forwarded when someone sends
//! them with kill. A real fault in pidzero itself is still fatal: the kernel
//! force-unblocks a synchronous fault it raises.
//!
//! Only signals sent from outside come out of [`Signals::recv`]: one pidzero
//! raised on itself (the kernel's SIGPIPE for a write to a client that left)
//! is dropped, so it is never forwarded to the daemons.

use std::io;

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The signal state pidzero was started with, which every child gets back.
#[derive(Clone, Copy)]
pub struct Inherited {
    /// The signal mask.
    pub mask: SigSet,
    /// The signals whose disposition was "ignore". Never SIGPIPE: the Rust
    /// runtime ignores it before `main`, so whether it was inherited ignored
    /// cannot be known, and children always get it back at its default.
    pub ignored: SignalBits,
}

/// A set of signals 1-64 as plain bits (real-time ones included, which nix's
/// `Signal` cannot name).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct SignalBits(u64);

impl SignalBits {
    pub fn insert(&mut self, sig: i32) {
        if (1..=64).contains(&sig) {
            self.0 |= 1 << (sig - 1);
        }
    }

    pub fn contains(&self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.0 & (1 << (sig - 1)) != 0
    }

    /// The set as the kernel's 8-byte sigset: bit N-1 for signal N.
    pub fn bits(&self) -> u64 {
        self.0
    }

    /// The signals 1-64 in `set` (32 and 33 included, which the C
    /// library's own set functions hide).
    pub fn of(set: &SigSet) -> SignalBits {
        let mut bits = SignalBits::default();
        for sig in 1..=64 {
            // SAFETY: sigismember only reads the set.
            if unsafe { libc::sigismember(set.as_ref(), sig) } == 1 {
                bits.insert(sig);
            }
        }
        bits
    }
}

/// Blocks every signal in the calling thread (call it before any thread starts,
/// so every later thread inherits the mask) and returns the signal state pidzero
/// inherited, which children get back. Call it first thing in `main`: the
/// ignored set is read as it is now.
pub fn block_all() -> io::Result<Inherited> {
    let ignored = ignored_now();
    let mut mask = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut mask),
    )?;
    Ok(Inherited { mask, ignored })
}

/// The signals a process can set a disposition for: 1-31 but KILL and STOP,
/// and the real-time ones from SIGRTMIN (the C library keeps those between
/// for itself, glibc 32 and 33, and refuses them; exec resets their handlers).
pub fn settable() -> impl Iterator<Item = i32> {
    (1..32)
        .filter(|&sig| sig != libc::SIGKILL && sig != libc::SIGSTOP)
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
}

/// Every signal whose disposition the raw `rt_sigaction` syscall can set:
/// 1-64 but KILL and STOP, glibc's internal 32 and 33 included (a child
/// started on pidzero's memory resets those too, see `runtime::vfork`).
pub fn kernel_settable() -> impl Iterator<Item = i32> {
    (1..=64).filter(|&sig| sig != libc::SIGKILL && sig != libc::SIGSTOP)
}

/// The settable signals whose disposition is "ignore", SIGPIPE left out.
fn ignored_now() -> SignalBits {
    let mut ignored = SignalBits::default();
    for sig in settable().filter(|&sig| sig != libc::SIGPIPE) {
        // SAFETY: an all-zero `sigaction` is a valid value (integers and a
        // mask); with a null new action the call only reads the current one.
        let handler = unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            (libc::sigaction(sig, std::ptr::null(), &mut current) == 0)
                .then_some(current.sa_sigaction)
        };
        if handler == Some(libc::SIG_IGN) {
            ignored.insert(sig);
        }
    }
    ignored
}

/// True when a signal came from pidzero itself: the kernel gives a SIGPIPE
/// raised by a failed write (and `raise`, `kill(getpid())`) the sender pid of
/// the process that got it. A signal from outside the PID namespace has sender
/// pid 0, one from another process in it that process's pid. The code does
/// not tell them apart: a write's SIGPIPE arrives as SI_USER, like a `kill`.
pub fn raised_by_self(sender_pid: u32, own_pid: u32) -> bool {
    sender_pid == own_pid
}

/// The signals pidzero receives, as an async stream of signal numbers.
pub struct Signals {
    fd: AsyncFd<SignalFd>,
    /// pidzero's pid as the kernel reports senders to it (1 as PID 1).
    own_pid: u32,
}

impl Signals {
    /// Must run inside the tokio runtime (the fd registers with its reactor).
    pub fn new() -> io::Result<Self> {
        let fd = SignalFd::with_flags(
            &SigSet::all(),
            SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
        )?;
        // SAFETY: the SignalFd owns its descriptor and keeps it open, unchanged,
        // for as long as the AsyncFd that owns it lives.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Signals {
            fd,
            own_pid: std::process::id(),
        })
    }

    /// Waits for at least one signal from outside and returns every one that
    /// is pending; those pidzero raised on itself are dropped.
    ///
    /// One `read` takes up to `BATCH` signals. A read that returns fewer
    /// emptied the queue, so readiness is cleared without the second read
    /// that would only have said EAGAIN (it was on the way of every
    /// forwarded signal). A signal queued after that read wakes the fd again:
    /// each delivery notifies the signalfd's waiters, and the reactor sees
    /// that as a new readiness event.
    pub async fn recv(&mut self) -> io::Result<Vec<i32>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut signals = Vec::new();
            loop {
                let mut batch = [ZERO_INFO; BATCH];
                match read_batch(guard.get_inner().as_fd(), &mut batch) {
                    Ok(infos) => {
                        let drained = infos.len() < BATCH;
                        signals.extend(
                            infos
                                .iter()
                                .filter(|info| !raised_by_self(info.ssi_pid, self.own_pid))
                                .map(|info| info.ssi_signo as i32),
                        );
                        if drained {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            }
            guard.clear_ready();
            if !signals.is_empty() {
                return Ok(signals);
            }
        }
    }
}

/// How many signals one read of the signalfd takes at most.
const BATCH: usize = 16;

// SAFETY (of the zeroed value): `signalfd_siginfo` is plain integers.
const ZERO_INFO: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };

/// One read of the signalfd into `batch`; returns the part it filled (the
/// kernel writes whole `signalfd_siginfo` records only).
fn read_batch<'a>(
    fd: std::os::fd::BorrowedFd<'_>,
    batch: &'a mut [libc::signalfd_siginfo; BATCH],
) -> io::Result<&'a [libc::signalfd_siginfo]> {
    use std::os::fd::AsRawFd;
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is `BATCH` records long and lives across the call;
    // the kernel writes at most that many bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), batch.as_mut_ptr().cast(), size * BATCH) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(&batch[..n as usize / size])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signals_from_outside_count() {
        // pidzero as PID 1: its own SIGPIPE, a sender in the namespace, one outside it.
        assert!(raised_by_self(1, 1));
        assert!(!raised_by_self(7, 1));
        assert!(!raised_by_self(0, 1));
        // Not PID 1 (a child subreaper).
        assert!(raised_by_self(4242, 4242));
        assert!(!raised_by_self(1, 4242));
    }

    /// Two pending signals come out of one read, which says the queue is
    /// drained (fewer than a batch); the next read finds nothing.
    #[test]
    fn one_read_takes_every_pending_signal() {
        let mut set = SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGUSR2);
        set.add(nix::sys::signal::Signal::SIGWINCH);
        let mut old = SigSet::empty();
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .unwrap();
        let fd =
            SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).unwrap();
        // SAFETY: signals directed at this very thread, blocked in it.
        unsafe {
            libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2);
            libc::pthread_kill(libc::pthread_self(), libc::SIGWINCH);
        }
        let mut batch = [ZERO_INFO; BATCH];
        let mut got: Vec<i32> = read_batch(fd.as_fd(), &mut batch)
            .unwrap()
            .iter()
            .map(|info| info.ssi_signo as i32)
            .collect();
        got.sort_unstable();
        assert_eq!(got, [libc::SIGUSR2, libc::SIGWINCH]);
        let again = read_batch(fd.as_fd(), &mut batch).map(<[_]>::len);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();
    }

    #[test]
    fn signal_bits_hold_1_to_64() {
        let mut bits = SignalBits::default();
        for sig in [1, 12, 33, 64, 0, 65, -1] {
            bits.insert(sig);
        }
        assert_eq!(bits, SignalBits(1 | 1 << 11 | 1 << 32 | 1 << 63));
        assert!(bits.contains(64) && bits.contains(33) && !bits.contains(13));
        assert!(!bits.contains(0) && !bits.contains(65));
    }

    #[test]
    fn kernel_settable_signals_are_all_but_kill_and_stop() {
        let all: Vec<i32> = kernel_settable().collect();
        assert_eq!(all.len(), 62);
        assert!(all.contains(&32) && all.contains(&33) && all.contains(&64));
        assert!(!all.contains(&libc::SIGKILL) && !all.contains(&libc::SIGSTOP));
    }

    #[test]
    fn bits_of_a_sigset_keep_every_signal() {
        // Built from raw words: glibc's sigaddset refuses 32 and 33.
        let mut words = [0u64; 16];
        words[0] = 1 | 1 << 31 | 1 << 39 | 1 << 63;
        // SAFETY: glibc's sigset_t is 16 unsigned longs; any bits are valid.
        let set = unsafe {
            SigSet::from_sigset_t_unchecked(std::mem::transmute::<[u64; 16], libc::sigset_t>(words))
        };
        let bits = SignalBits::of(&set);
        assert_eq!(bits.bits(), 1 | 1 << 31 | 1 << 39 | 1 << 63);
    }

    #[test]
    fn settable_signals_leave_out_kill_stop_and_glibc_internals() {
        let all: Vec<i32> = settable().collect();
        for sig in [libc::SIGKILL, libc::SIGSTOP, 32, 33] {
            assert!(!all.contains(&sig), "{sig}");
        }
        for sig in [
            libc::SIGHUP,
            libc::SIGPIPE,
            libc::SIGSYS,
            libc::SIGRTMIN(),
            64,
        ] {
            assert!(all.contains(&sig), "{sig}");
        }
    }
}

//! Signals received synchronously through a signalfd.
//!
//! Every signal is blocked in every thread before any thread starts, and read
//! from a signalfd instead of async handlers: tokio's signal API refuses
//! SIGSEGV, SIGILL and SIGFPE, which must still be forwarded when someone sends
//! them with kill. A real fault in pidzero itself is still fatal: the kernel
//! force-unblocks a synchronous fault it raises.

use std::io;

use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Blocks every signal in the calling thread (call it before any thread starts,
/// so every later thread inherits the mask) and returns the mask pidzero
/// inherited, which daemons get back.
pub fn block_all() -> io::Result<SigSet> {
    let mut inherited = SigSet::empty();
    nix::sys::signal::sigprocmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut inherited),
    )?;
    Ok(inherited)
}

/// The signals pidzero receives, as an async stream of signal numbers.
pub struct Signals {
    fd: AsyncFd<SignalFd>,
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
        Ok(Signals { fd })
    }

    /// Waits for at least one signal and returns every one that is pending.
    pub async fn recv(&mut self) -> io::Result<Vec<i32>> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut signals = Vec::new();
            loop {
                match guard.get_inner().read_signal() {
                    Ok(Some(info)) => signals.push(info.ssi_signo as i32),
                    Ok(None) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            guard.clear_ready();
            if !signals.is_empty() {
                return Ok(signals);
            }
        }
    }
}

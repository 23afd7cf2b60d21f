//! Socket streams whose writes never raise SIGPIPE.
//!
//! pidzero blocks every signal and reads them from a signalfd to forward them to the
//! daemons. A `write(2)` to a socket whose peer has gone raises SIGPIPE on the writing
//! thread, which would then be read like any signal sent from outside. tokio's
//! `TcpStream` and `UnixStream` write with `write(2)`, so every socket pidzero writes
//! to (the API's connections, the HTTP health probe) goes through [`NoSigPipe`], whose
//! writes are `send`/`sendmsg` with `MSG_NOSIGNAL`: a vanished peer is an `EPIPE`
//! error for that connection and nothing else.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// The part of tokio's socket API that a write with flags needs: readiness and
/// `try_io`, which clears readiness when the call would block.
pub trait Socket: AsyncRead + AsyncWrite + AsRawFd + Unpin {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    fn try_write_with(&self, f: &mut dyn FnMut() -> io::Result<usize>) -> io::Result<usize>;
}

impl Socket for TcpStream {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_write_ready(self, cx)
    }

    fn try_write_with(&self, f: &mut dyn FnMut() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, f)
    }
}

impl Socket for UnixStream {
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_write_ready(self, cx)
    }

    fn try_write_with(&self, f: &mut dyn FnMut() -> io::Result<usize>) -> io::Result<usize> {
        self.try_io(Interest::WRITABLE, f)
    }
}

/// A socket stream that reads as usual and writes with `MSG_NOSIGNAL`.
#[derive(Debug)]
pub struct NoSigPipe<S>(S);

impl<S: Socket> NoSigPipe<S> {
    pub fn new(stream: S) -> Self {
        NoSigPipe(stream)
    }

    /// Waits until the socket is writable and runs `send` once it is, again whenever
    /// the kernel says it would block.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        send: &mut dyn FnMut(RawFd) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let fd = self.0.as_raw_fd();
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write_with(&mut || retry_on_eintr(|| send(fd))) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }
}

fn retry_on_eintr(mut call: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// `send(fd, buf, MSG_NOSIGNAL)`.
fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a valid slice for its length; fd is the stream's open socket.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `sendmsg(fd, bufs, MSG_NOSIGNAL)`: hyper writes a response's head and body in one
/// call this way.
fn send_vectored(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // At most IOV_MAX (1024 on Linux) slices per call; a short write is normal.
    let bufs = &bufs[..bufs.len().min(1024)];
    // SAFETY: msghdr is plain data; all zeros is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed to be ABI-compatible with iovec on Unix; sendmsg only
    // reads through the pointer.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast::<libc::iovec>();
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: msg points at bufs, which outlive the call; fd is the stream's socket.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

impl<S: Socket> AsyncRead for NoSigPipe<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: Socket> AsyncWrite for NoSigPipe<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, &mut |fd| send(fd, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, &mut |fd| send_vectored(fd, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// Sockets have no user-space buffer to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// `shutdown(SHUT_WR)`, which never raises SIGPIPE.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::block_on;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn writes_and_reads_through() {
        block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut a = NoSigPipe::new(a);
            let mut b = NoSigPipe::new(b);
            a.write_all(b"ping").await.unwrap();
            let bufs = [IoSlice::new(b"po"), IoSlice::new(b""), IoSlice::new(b"ng")];
            let n = a.write_vectored(&bufs).await.unwrap();
            assert_eq!(n, 4);
            a.shutdown().await.unwrap();
            let mut got = String::new();
            b.read_to_string(&mut got).await.unwrap();
            assert_eq!(got, "pingpong");
        });
    }

    #[test]
    fn a_vanished_peer_is_epipe() {
        block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            let mut a = NoSigPipe::new(a);
            let err = a.write_all(b"x").await.unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
        });
    }
}

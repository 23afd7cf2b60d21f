//! The sockets of the network handlers: connect, send without SIGPIPE and
//! without blocking for good, notice a receiver that closed.
//!
//! Every socket is non-blocking; a send that would block waits in `poll`
//! for at most [`STALL_CHECK`] at a time, so the handler's thread can tell
//! a receiver that stopped reading (and give up at exit) instead of
//! sleeping in the kernel. Stream writes use `MSG_NOSIGNAL`: a receiver
//! that went away is an `EPIPE` for this handler, never a SIGPIPE that the
//! signal loop would take for one sent from outside.

use std::io;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::time::Duration;

use crate::config::NetAddress;

/// Longest a connection attempt takes (per address a name resolves to).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one wait for room in the socket lasts before the handler looks
/// at its queue and its stop flag again: only while a receiver does not read.
pub const STALL_CHECK: Duration = Duration::from_millis(500);

/// A connected socket.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
    /// One message per datagram, rather than a byte stream.
    datagram: bool,
}

/// Why a send ended early.
#[derive(Debug)]
pub enum SendError {
    /// The socket failed (receiver gone, refused...): reconnect.
    Io(io::Error),
    /// The caller said to stop waiting for room.
    GaveUp,
}

impl Conn {
    /// Connects to `address`: TCP, UDP, or a Unix socket (`datagram` picks
    /// its type: `/dev/log` is a datagram socket, Vector's a stream one).
    pub fn connect(address: &NetAddress, datagram: bool) -> io::Result<Conn> {
        let (fd, datagram): (OwnedFd, bool) = match address {
            NetAddress::Tcp { host, port } => (connect_tcp(host, *port)?.into(), false),
            NetAddress::Udp { host, port } => {
                let target = resolve(host, *port)?
                    .next()
                    .ok_or_else(|| io::Error::other(format!("{host} has no address")))?;
                let any = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(any)?;
                socket.connect(target)?;
                (socket.into(), true)
            }
            NetAddress::Unix(path) if datagram => {
                let socket = UnixDatagram::unbound()?;
                socket.connect(path)?;
                (socket.into(), true)
            }
            NetAddress::Unix(path) => (UnixStream::connect(path)?.into(), false),
        };
        set_nonblocking(&fd)?;
        Ok(Conn { fd, datagram })
    }

    pub fn is_datagram(&self) -> bool {
        self.datagram
    }

    /// True when a stream's receiver has closed its end (or reset it):
    /// checked before each write, since a write to a closed connection
    /// often "succeeds" into the kernel and is lost. Anything the receiver
    /// sent is read and ignored.
    pub fn peer_closed(&self) -> bool {
        if self.datagram {
            return false;
        }
        let fd = self.fd.as_raw_fd();
        let mut buffer = [0u8; 4096];
        loop {
            // SAFETY: a live fd and a buffer of the length given.
            let n = unsafe {
                libc::recv(
                    fd,
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            match n {
                0 => return true,
                n if n > 0 => continue,
                _ => {
                    let error = io::Error::last_os_error();
                    return !matches!(
                        error.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    );
                }
            }
        }
    }

    /// Sends `bytes` whole (a stream) or as one datagram. While the socket
    /// has no room, calls `stalled` every [`STALL_CHECK`]: `true` gives up.
    /// Returns the bytes sent when it fails or gives up part way.
    pub fn send(
        &self,
        bytes: &[u8],
        stalled: &mut dyn FnMut() -> bool,
    ) -> Result<(), (usize, SendError)> {
        let fd = self.fd.as_raw_fd();
        let mut sent = 0;
        while sent < bytes.len() || (self.datagram && sent == 0) {
            let rest = &bytes[sent..];
            // SAFETY: a live fd and a slice of the length given.
            let n = unsafe {
                libc::send(
                    fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
                )
            };
            if n >= 0 {
                sent += n as usize;
                if self.datagram {
                    return Ok(());
                }
                continue;
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    if !wait_writable(fd, STALL_CHECK).map_err(|e| (sent, SendError::Io(e)))?
                        && stalled()
                    {
                        return Err((sent, SendError::GaveUp));
                    }
                }
                _ => return Err((sent, SendError::Io(error))),
            }
        }
        Ok(())
    }
}

fn resolve(host: &str, port: u16) -> io::Result<std::vec::IntoIter<std::net::SocketAddr>> {
    (host, port).to_socket_addrs()
}

fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::other(format!("{host} has no address"));
    for address in resolve(host, port)? {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a live fd.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Waits up to `timeout` for room to write; `Ok(false)` on timeout.
fn wait_writable(fd: i32, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pollfd, 1, millis) };
    match n {
        0 => Ok(false),
        n if n > 0 => Ok(true),
        _ => {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A connection to a listener of this test, and the receiver's end.
    fn connected_pair() -> (Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let address = NetAddress::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let conn = Conn::connect(&address, false).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        (conn, accepted)
    }

    #[test]
    fn a_receiver_that_does_not_read_stalls_the_send_until_given_up() {
        let (conn, _accepted) = connected_pair();
        let big = vec![b'x'; 64 << 20];
        let mut stalls = 0;
        let result = conn.send(&big, &mut || {
            stalls += 1;
            true
        });
        match result {
            Err((sent, SendError::GaveUp)) => assert!(sent > 0 && sent < big.len()),
            other => panic!("{other:?}"),
        }
        assert_eq!(stalls, 1);
        assert!(!conn.peer_closed());
    }

    #[test]
    fn a_closed_receiver_is_noticed_and_sends_fail_without_sigpipe() {
        let (conn, mut accepted) = connected_pair();
        conn.send(b"hello\n", &mut || true).unwrap();
        let mut got = [0u8; 6];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello\n");
        drop(accepted);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !conn.peer_closed() {
            assert!(std::time::Instant::now() < deadline, "close not seen");
            std::thread::yield_now();
        }
        // Writing on until the reset arrives must fail with EPIPE, and
        // raise no SIGPIPE: pidzero blocks every signal and reads them
        // from a signalfd, where a SIGPIPE would pass for one sent from
        // outside. Blocked here too, a SIGPIPE would stay pending.
        let pending_sigpipe = || {
            // SAFETY: sigset_t filled by sigpending, read by sigismember.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigpending(&mut set);
                libc::sigismember(&set, libc::SIGPIPE) == 1
            }
        };
        // SAFETY: a sigset built by sigemptyset/sigaddset, for this thread.
        let old = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGPIPE);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            old
        };
        assert!(!pending_sigpipe());
        let mut failed = None;
        for _ in 0..100 {
            if let Err((_, SendError::Io(error))) = conn.send(b"more\n", &mut || true) {
                failed = Some(error);
                break;
            }
        }
        let raised = pending_sigpipe();
        // SAFETY: restores this thread's mask (a pending SIGPIPE would
        // then be delivered, and ignored as the Rust runtime set it).
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        let error = failed.expect("sends to a closed receiver fail");
        assert!(
            matches!(error.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
            "{error}"
        );
        assert!(!raised, "a send raised SIGPIPE");
    }

    #[test]
    fn nobody_listening_is_a_connect_error() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let address = NetAddress::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(Conn::connect(&address, false).is_err());
        let missing = NetAddress::Unix("/nonexistent/pidzero-test.sock".into());
        assert!(Conn::connect(&missing, true).is_err());
    }
}

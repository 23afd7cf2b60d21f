//! How notify daemons reach pidzero: an sd_notify datagram socket, or an s6
//! notification descriptor (a pipe).
//!
//! sd_notify: each instance of a daemon gets its own datagram socket in the
//! abstract namespace (`NOTIFY_SOCKET=@pidzero-RANDOM/NAME/INSTANCE`), so it
//! needs no writable directory (read-only and scratch images work) and a
//! message needs no lookup to know whose it is. Abstract sockets are visible
//! to the whole network namespace (other containers of a Kubernetes pod
//! share it), so each datagram must carry the sender's credentials
//! (`SO_PASSCRED`) and is accepted only from a process of the daemon's
//! process group: its main process and the helpers it runs, such as
//! `systemd-notify`. `MAINPID=` is not followed: pidzero supervises the
//! process it started. Descriptors passed along (`FDSTORE=1`, and
//! `BARRIER=1`, whose sender waits for pidzero to close it) are closed at once.
//!
//! Notification fd: a pipe whose write end the daemon gets as descriptor N;
//! a newline read from it means ready, EOF before one means nothing.
//!
//! Each source is read by a task on the event loop, woken only by the
//! daemon writing (no polling). Tasks hand notices over through one bounded
//! channel: a daemon flooding its socket waits for the loop (its socket
//! buffer fills, its sends block) and the loop still takes one notice per
//! wake-up between its other work.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio::io::{AsyncReadExt, Interest};
use tokio::sync::mpsc;

use crate::plan::rules::ReadyMode;
use crate::supervisor::Notice;

/// The biggest datagram read; the rest of a longer one is cut off (the
/// protocol's messages are a few short lines).
pub const MAX_DATAGRAM: usize = 4096;

/// Notices waiting for the loop, across all daemons.
pub const QUEUE: usize = 64;

/// A notice and whose it is: (daemon, instance, notice).
pub type NotifyReport = (usize, u32, Notice);

/// What one instance's spawn needs, made before it, and what reads it after.
pub struct Prepared {
    /// Added to the daemon's environment.
    pub env: Vec<(OsString, OsString)>,
    /// The pipe's write end and the descriptor number the daemon gets it as.
    pub fd: Option<(OwnedFd, i32)>,
    source: Source,
}

enum Source {
    Socket(UnixDatagram),
    Pipe(OwnedFd),
}

/// The socket or pipe for one instance of a notify daemon; `None` for the others.
///
/// `run_id` tells this pidzero's sockets from another's in the same network namespace.
pub fn prepare(
    ready: ReadyMode,
    watchdog: Option<Duration>,
    run_id: &str,
    name: &str,
    instance: u32,
) -> io::Result<Option<Prepared>> {
    match ready {
        ReadyMode::Systemd => {
            let path = format!("pidzero-{run_id}/{name}/{instance}");
            let addr = SocketAddr::from_abstract_name(path.as_bytes())?;
            let socket = UnixDatagram::bind_addr(&addr)?;
            socket.set_nonblocking(true)?;
            pass_credentials(socket.as_raw_fd())?;
            let mut env = vec![("NOTIFY_SOCKET".into(), format!("@{path}").into())];
            if let Some(period) = watchdog {
                env.push((
                    "WATCHDOG_USEC".into(),
                    period.as_micros().to_string().into(),
                ));
            }
            Ok(Some(Prepared {
                env,
                fd: None,
                source: Source::Socket(socket),
            }))
        }
        ReadyMode::Fd(n) => {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            Ok(Some(Prepared {
                env: Vec::new(),
                fd: Some((write, n)),
                source: Source::Pipe(read),
            }))
        }
        ReadyMode::Started | ReadyMode::Health => Ok(None),
    }
}

impl Prepared {
    /// Starts reading for the instance just spawned (`pgid`: its process
    /// group). The write end of a pipe must be closed here first (the caller
    /// drops `fd` after the spawn), or EOF would never come.
    pub fn listen(
        self,
        daemon: usize,
        instance: u32,
        pgid: i32,
        reports: mpsc::Sender<NotifyReport>,
    ) -> io::Result<tokio::task::JoinHandle<()>> {
        Ok(match self.source {
            Source::Socket(socket) => {
                let socket = tokio::net::UnixDatagram::from_std(socket)?;
                tokio::spawn(read_socket(socket, pgid, (daemon, instance), reports))
            }
            Source::Pipe(read) => {
                let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
                tokio::spawn(read_pipe(pipe, (daemon, instance), reports))
            }
        })
    }
}

fn pass_credentials(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

async fn read_socket(
    socket: tokio::net::UnixDatagram,
    pgid: i32,
    (daemon, instance): (usize, u32),
    reports: mpsc::Sender<NotifyReport>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let fd = socket.as_raw_fd();
    loop {
        let received = socket
            .async_io(Interest::READABLE, || recv_with_sender(fd, &mut buf))
            .await;
        // Any error but "nothing yet" (which async_io waits out) is not
        // transient on a datagram socket: stop reading rather than spin.
        let Ok((len, sender)) = received else { return };
        if !sender.is_some_and(|pid| in_group(pid, pgid)) {
            continue; // Not from this daemon: ignored.
        }
        let notice = Notice::parse(&buf[..len]);
        if notice == Notice::default() {
            continue; // Nothing pidzero reads (BARRIER=1, FDSTORE=1…).
        }
        if reports.send((daemon, instance, notice)).await.is_err() {
            return;
        }
    }
}

async fn read_pipe(
    mut pipe: tokio::net::unix::pipe::Receiver,
    (daemon, instance): (usize, u32),
    reports: mpsc::Sender<NotifyReport>,
) {
    let mut buf = [0u8; 512];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return, // EOF: never ready through this fd.
            Ok(n) if buf[..n].contains(&b'\n') => {
                let _ = reports.send((daemon, instance, Notice::ready())).await;
                return; // s6 reads nothing after the newline either.
            }
            Ok(_) => {}
        }
    }
}

/// The sender is the group leader or a member of its group.
fn in_group(pid: i32, pgid: i32) -> bool {
    if pid <= 0 {
        return false; // Not visible from pidzero's PID namespace.
    }
    // SAFETY: plain syscall.
    pid == pgid || unsafe { libc::getpgid(pid) } == pgid
}

/// One datagram and the pid of its sender (from `SCM_CREDENTIALS`); every
/// descriptor passed with it is closed.
fn recv_with_sender(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<i32>)> {
    // Room for the credentials and a few descriptors, aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: recvmsg into buffers described by `msg`.
    let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut sender = None;
    // SAFETY: walking the control messages the kernel wrote into `control`,
    // with the libc macros that bound each step by msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let header = &*cmsg;
            let data = libc::CMSG_DATA(cmsg);
            let data_len = header.cmsg_len as usize - (data as usize - cmsg as usize);
            if header.cmsg_level == libc::SOL_SOCKET {
                if header.cmsg_type == libc::SCM_CREDENTIALS
                    && data_len >= std::mem::size_of::<libc::ucred>()
                {
                    let cred: libc::ucred = std::ptr::read_unaligned(data.cast());
                    sender = Some(cred.pid);
                } else if header.cmsg_type == libc::SCM_RIGHTS {
                    for k in 0..data_len / std::mem::size_of::<RawFd>() {
                        let passed: RawFd = std::ptr::read_unaligned(data.cast::<RawFd>().add(k));
                        libc::close(passed);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, sender))
}

/// A random id for this run's socket names (from the kernel's generator).
pub fn run_id() -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most `len` bytes into the buffer.
    let got = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if got != bytes.len() as isize {
        // No randomness: the pid and the time still keep two runs apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mixed = (u64::from(std::process::id()) << 32) ^ t.as_nanos() as u64;
        bytes = mixed.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_from_our_group_is_read_with_its_sender() {
        let id = run_id();
        let prepared = prepare(
            ReadyMode::Systemd,
            Some(Duration::from_secs(2)),
            &id,
            "web",
            1,
        )
        .expect("prepare")
        .expect("a socket");
        let notify = prepared
            .env
            .iter()
            .find(|(k, _)| k == "NOTIFY_SOCKET")
            .map(|(_, v)| v.to_string_lossy().into_owned())
            .expect("NOTIFY_SOCKET");
        assert_eq!(notify, format!("@pidzero-{id}/web/1"));
        assert!(prepared
            .env
            .contains(&("WATCHDOG_USEC".into(), "2000000".into())));
        let Source::Socket(socket) = &prepared.source else {
            panic!("not a socket");
        };
        let client = UnixDatagram::unbound().expect("client");
        let addr = SocketAddr::from_abstract_name(&notify.as_bytes()[1..]).expect("addr");
        client
            .send_to_addr(b"READY=1\nSTATUS=hi", &addr)
            .expect("send");
        let mut buf = [0u8; MAX_DATAGRAM];
        let (n, sender) = recv_with_sender(socket.as_raw_fd(), &mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=hi");
        let me = std::process::id() as i32;
        assert_eq!(sender, Some(me));
        // SAFETY: plain syscall.
        let my_group = unsafe { libc::getpgid(0) };
        assert!(in_group(me, my_group));
        assert!(!in_group(me, my_group + 100_000));
        assert!(!in_group(0, my_group));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(run_id(), run_id());
        assert_eq!(run_id().len(), 16);
    }
}

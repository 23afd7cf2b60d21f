//! Clients that ask for a large answer and leave while it is being written: the
//! server's writes fail with EPIPE, and no SIGPIPE is ever raised on pidzero (which
//! would be read from its signalfd and forwarded to the daemons).
//!
//! The server runs on this test's current-thread runtime, on this thread. SIGPIPE is
//! blocked here as pidzero blocks it, so a raised one stays pending (a blocked signal
//! is never discarded, even when ignored) and `sigpending` shows it. Its own test
//! binary, so no other test's signals are mixed in.

mod api_support;
mod common;

use std::time::Duration;

use api_support::*;
use pidzero::api::{self};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

fn block_sigpipe() {
    // SAFETY: plain signal-mask calls on this thread with initialised sets.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

fn sigpipe_pending() -> bool {
    // SAFETY: sigpending fills the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(libc::sigpending(&mut set), 0);
        libc::sigismember(&set, libc::SIGPIPE) == 1
    }
}

/// Sockets this process has open.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// 1,000 records of 1 KiB for `web`: a 1 MiB answer, far more than a socket buffer.
fn big_logs() -> FakeLogs {
    let padding = "x".repeat(1000);
    let web = (0..1000)
        .map(|i| format!(r#"{{"source":"web","line":"{i} {padding}"}}"#))
        .collect();
    FakeLogs {
        records: [("web".to_owned(), web)].into(),
        ..fake_logs()
    }
}

/// Sends the request and closes, after reading a few bytes of the answer or at once.
/// Closing at once is what reliably makes the server write into a closed connection:
/// one that has read part of the answer is mostly noticed by hyper's read first.
async fn leave_early<S>(mut stream: S, read_first: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream
        .write_all(&request("GET", "/daemons/web/logs?lines=1000", &[], ""))
        .await
        .unwrap();
    if read_first {
        let mut first = [0u8; 16];
        let n = stream.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &first[..n]);
    }
}

#[tokio::test]
async fn clients_that_leave_mid_answer_raise_no_sigpipe() {
    block_sigpipe();
    assert!(!sigpipe_pending(), "SIGPIPE pending before the test");
    within(async {
        let dir = Dir::new("sigpipe");
        let socket = dir.p("api.sock");
        let (_fake, ctx) = FakeRuntime::start_with(None, big_logs(), true);
        let server = api::start(Some(socket.clone()), localhost(), ctx)
            .await
            .unwrap();
        let addr = server.tcp_addr().unwrap();
        let idle = open_sockets();

        for i in 0..40 {
            let read_first = i % 2 == 0;
            let unix = tokio::net::UnixStream::connect(&socket).await.unwrap();
            leave_early(unix, read_first).await;
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            leave_early(tcp, read_first).await;
        }

        // Every server side has written into the closed connection and given up.
        let deadline = Instant::now() + Duration::from_secs(20);
        while open_sockets() > idle {
            assert!(
                Instant::now() < deadline,
                "{} connections still open",
                open_sockets() - idle
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!sigpipe_pending(), "a write raised SIGPIPE on the server");
        // And the server is still there.
        assert_eq!(unix(&socket, "GET", "/health", "").await.status, 200);
    })
    .await;
}

//! SPEC §8: an early answer (404, 401, 403) still reaches a client that is sending a
//! body. The server answers before reading the body; it must then close gracefully
//! (FIN, and read what still comes) rather than close with input unread: then the
//! client's next write fails (EPIPE, or a reset on TCP), and most clients report that
//! error instead of the answer, which a reset can even destroy before it is read.

mod api_support;
mod common;

use std::net::SocketAddr;
use std::path::Path;

use api_support::*;
use pidzero::api;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const ROUNDS: usize = 200;
/// Under the 64 KiB limit, far over a socket buffer's first gulp.
const BODY_BYTES: usize = 60 * 1024;
const WRITES: usize = 4;

/// What a client saw: whether all of its body went out, and the answer.
struct Seen {
    sent: std::io::Result<()>,
    answer: Vec<u8>,
}

/// POSTs a 60 KiB body in a few writes: the first with the head, the others once the
/// early answer has begun to arrive (a client whose body comes slower than the
/// server's answer, as under load), then reads what comes until the server closes.
async fn post_big<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    path: &str,
    auth: &str,
) -> Seen {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: pidzero\r\n{auth}Content-Type: application/json\r\nContent-Length: {BODY_BYTES}\r\n\r\n"
    );
    let body = vec![b' '; BODY_BYTES];
    let mut chunks = body.chunks(BODY_BYTES / WRITES);
    let mut first = head.into_bytes();
    first.extend_from_slice(chunks.next().unwrap_or_default());
    let mut sent = stream.write_all(&first).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    if let Ok(n) = stream.read(&mut buf).await {
        answer.extend_from_slice(&buf[..n]);
    }
    for chunk in chunks {
        if sent.is_err() {
            break;
        }
        sent = stream.write_all(chunk).await;
    }
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        answer.extend_from_slice(&buf[..n]);
    }
    Seen { sent, answer }
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Runs `ROUNDS` posts and asserts each sent its whole body and got `status`.
async fn every_time<F: AsyncFnMut() -> Seen>(status: u16, what: &str, mut post: F) {
    let mut missed = Vec::new();
    for round in 0..ROUNDS {
        let seen = post().await;
        if seen.sent.is_err() || status_of(&seen.answer) != Some(status) {
            let start = &seen.answer[..seen.answer.len().min(40)];
            let start = String::from_utf8_lossy(start).into_owned();
            missed.push((round, seen.sent.map_err(|e| e.to_string()), start));
        }
    }
    assert!(
        missed.is_empty(),
        "{what}: {} of {ROUNDS} clients could not send their body or did not get {status}, e.g. {:?}",
        missed.len(),
        &missed[..missed.len().min(3)]
    );
}

async fn over_unix(socket: &Path, path: &str) -> Seen {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    post_big(stream, path, "").await
}

async fn over_tcp(addr: SocketAddr, path: &str, auth: &str) -> Seen {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    post_big(stream, path, auth).await
}

#[tokio::test]
async fn a_404_reaches_a_client_sending_a_body() {
    within(async {
        let dir = Dir::new("early-404");
        let socket = dir.p("api.sock");
        let (_fake, ctx) = FakeRuntime::start(Some("s3cret"));
        let server = api::start(Some(socket.clone()), localhost(), ctx)
            .await
            .unwrap();
        let addr = server.tcp_addr().unwrap();
        let path = "/daemons/nope/signal";
        every_time(404, "unix", async || over_unix(&socket, path).await).await;
        let auth = "Authorization: Bearer s3cret\r\n";
        every_time(404, "tcp", async || over_tcp(addr, path, auth).await).await;
    })
    .await;
}

#[tokio::test]
async fn a_401_or_403_reaches_a_client_sending_a_body() {
    within(async {
        let (_fake, ctx) = FakeRuntime::start(Some("s3cret"));
        let with_token = api::start(None, localhost(), ctx).await.unwrap();
        let addr = with_token.tcp_addr().unwrap();
        let path = "/daemons/web/signal";
        every_time(401, "no token given", async || {
            over_tcp(addr, path, "").await
        })
        .await;

        let (_fake, ctx) = FakeRuntime::start(None);
        let read_only = api::start(None, localhost(), ctx).await.unwrap();
        let addr = read_only.tcp_addr().unwrap();
        every_time(403, "read-only tcp", async || {
            over_tcp(addr, path, "").await
        })
        .await;
    })
    .await;
}

//! The request limits of SPEC §8: 8 KiB head, 64 KiB body, a request within the
//! request timeout (shortened here so the tests run fast), and the control timeout.

mod api_support;
mod common;

use std::time::Duration;

use api_support::*;
use pidzero::api::{self, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

const SHORT: Duration = Duration::from_millis(300);

fn short_limits() -> Limits {
    Limits {
        request_timeout: SHORT,
        control_timeout: SHORT,
        ..Limits::default()
    }
}

async fn server(tag: &str, answer: bool) -> (Dir, api::ApiServer, std::path::PathBuf) {
    let dir = Dir::new(tag);
    let socket = dir.p("api.sock");
    let (_fake, ctx) = FakeRuntime::start_with(None, fake_logs(), answer);
    let server = api::start_with_limits(Some(socket.clone()), None, ctx, short_limits())
        .await
        .unwrap();
    (dir, server, socket)
}

/// Reads until the server closes the connection; what came, and how long it took.
async fn until_closed(stream: &mut UnixStream) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    (bytes, started.elapsed())
}

#[tokio::test]
async fn a_head_over_8_kib_gets_431() {
    within(async {
        let (_dir, _server, socket) = server("head", true).await;
        let filler = "a".repeat(9 * 1024);
        let stream = UnixStream::connect(&socket).await.unwrap();
        let a = exchange(
            stream,
            &request("GET", "/health", &[("X-Filler", &filler)], ""),
        )
        .await;
        assert_eq!(a.status, 431);
        // Just under the limit is fine.
        let filler = "a".repeat(7 * 1024);
        let stream = UnixStream::connect(&socket).await.unwrap();
        let a = exchange(
            stream,
            &request("GET", "/health", &[("X-Filler", &filler)], ""),
        )
        .await;
        assert_eq!(a.status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_body_over_64_kib_gets_413() {
    within(async {
        let (_dir, _server, socket) = server("body", true).await;
        // Announced by Content-Length: refused before reading it.
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        let head = "POST /daemons/web/signal HTTP/1.1\r\nHost: x\r\nContent-Length: 66560\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let (bytes, _) = until_closed(&mut stream).await;
        assert_eq!(parse(&bytes).status, 413);

        // Chunked: refused once 64 KiB have been read.
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        let head =
            "POST /daemons/web/signal HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunk = format!("400\r\n{}\r\n", "a".repeat(1024));
        let (mut reader, mut writer) = stream.split();
        let send = async {
            writer.write_all(head.as_bytes()).await?;
            for _ in 0..65 {
                writer.write_all(chunk.as_bytes()).await?;
            }
            writer.write_all(b"0\r\n\r\n").await
        };
        let mut bytes = Vec::new();
        let (_, _) = tokio::join!(send, reader.read_to_end(&mut bytes));
        assert_eq!(parse(&bytes).status, 413);

        // 64 KiB or less is read (and then judged on its content).
        let body = format!(r#"{{"signal":"HUP","pad":"{}"}}"#, "a".repeat(60 * 1024));
        let a = unix(&socket, "POST", "/daemons/web/signal", &body).await;
        assert_eq!(a.status, 400);
    })
    .await;
}

#[tokio::test]
async fn a_slow_head_is_closed_after_the_request_timeout() {
    within(async {
        let (_dir, _server, socket) = server("slowhead", true).await;
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        let (bytes, took) = until_closed(&mut stream).await;
        assert!(
            took >= SHORT - Duration::from_millis(50),
            "closed after {took:?}"
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("200 OK"));

        // An idle connection too.
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        let (bytes, took) = until_closed(&mut stream).await;
        assert!(
            took >= SHORT - Duration::from_millis(50),
            "closed after {took:?}"
        );
        assert!(bytes.is_empty());

        // And an idle keep-alive connection after its first answer.
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        stream
            .write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (bytes, _) = until_closed(&mut stream).await;
        assert_eq!(parse(&bytes).status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_slow_body_gets_408_and_is_closed() {
    within(async {
        let (_dir, _server, socket) = server("slowbody", true).await;
        let mut stream = UnixStream::connect(&socket).await.unwrap();
        let head = "POST /daemons/web/signal HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(br#"{"signal""#).await.unwrap();
        let (bytes, took) = until_closed(&mut stream).await;
        assert_eq!(parse(&bytes).status, 408);
        assert!(
            took >= SHORT - Duration::from_millis(100),
            "closed after {took:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_runtime_that_does_not_answer_gives_503() {
    within(async {
        let (_dir, _server, socket) = server("noanswer", false).await;
        let started = Instant::now();
        let a = unix(&socket, "POST", "/daemons/web/stop", "").await;
        assert_eq!(a.status, 503);
        assert!(started.elapsed() >= SHORT - Duration::from_millis(50));
        // Reads do not need the runtime.
        assert_eq!(unix(&socket, "GET", "/health", "").await.status, 200);
    })
    .await;
}

#[tokio::test]
async fn a_runtime_that_is_gone_gives_503() {
    within(async {
        let dir = Dir::new("gone");
        let socket = dir.p("api.sock");
        let (_fake, mut ctx) = FakeRuntime::start(None);
        let (closed_tx, _) = tokio::sync::mpsc::channel(1);
        ctx.control = closed_tx;
        let _server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        let a = unix(&socket, "POST", "/shutdown", "").await;
        assert_eq!(a.status, 503);
        assert!(a.json()["error"].is_string());
    })
    .await;
}

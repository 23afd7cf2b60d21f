//! SPEC §8: slow or idle clients never keep a new client's `/health` waiting more than
//! 1 s. 200 connections that send a byte a second (three times the connection limit)
//! on one listener, with the limits of SPEC §8; a newcomer's `GET /health` on that
//! same listener is answered within 1 s, and again a little later.

mod api_support;
mod common;

use std::time::Duration;

use api_support::*;
use pidzero::api;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

const FLOOD: usize = 200;
const PROMPT: Duration = Duration::from_secs(1);

/// A request head that never ends, sent a byte at a time.
const TRICKLE: &[u8] = b"GET /daemons HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Sends each stream one more byte of [`TRICKLE`] a second, ignoring streams the
/// server closed; counts the rounds on `rounds`.
fn trickle<S>(mut streams: Vec<S>, rounds: watch::Sender<usize>)
where
    S: AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for round in 0.. {
            tick.tick().await;
            let byte = [TRICKLE[round % TRICKLE.len()]];
            for s in &mut streams {
                let _ = tokio::time::timeout(Duration::from_millis(10), s.write_all(&byte)).await;
            }
            rounds.send_replace(round + 1);
        }
    });
}

/// Floods with connections from `connect`, lets them trickle for a few seconds, then
/// asks `/health` through `health` twice, each time within [`PROMPT`].
async fn flood_then_health<S, C, H>(connect: C, health: H)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: AsyncFn() -> Option<S>,
    H: AsyncFn() -> Answer,
{
    let mut streams = Vec::new();
    for _ in 0..FLOOD {
        // A connection the kernel's backlog cannot take is simply not in the flood.
        streams.extend(connect().await);
    }
    let (rounds_tx, mut rounds) = watch::channel(0);
    trickle(streams, rounds_tx);
    for wanted in [3, 5] {
        rounds.wait_for(|&n| n >= wanted).await.unwrap();
        let started = Instant::now();
        let answer = tokio::time::timeout(PROMPT, health())
            .await
            .unwrap_or_else(|_| panic!("/health not answered within {PROMPT:?}"));
        assert_eq!(answer.status, 200);
        assert!(started.elapsed() < PROMPT, "took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn slow_clients_on_tcp_do_not_hold_up_health() {
    within(async {
        let (_fake, ctx) = FakeRuntime::start(Some("s3cret"));
        let server = api::start(None, localhost(), ctx).await.unwrap();
        let addr = server.tcp_addr().unwrap();
        flood_then_health(
            async || {
                let connect = tokio::net::TcpStream::connect(addr);
                tokio::time::timeout(PROMPT, connect).await.ok()?.ok()
            },
            async || tcp(addr, "GET", "/health", &[], "").await,
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn slow_clients_on_the_socket_do_not_hold_up_health() {
    within(async {
        let dir = Dir::new("flood");
        let socket = dir.p("api.sock");
        let (_fake, ctx) = FakeRuntime::start(None);
        let _server = api::start(Some(socket.clone()), None, ctx).await.unwrap();
        flood_then_health(
            async || {
                let connect = tokio::net::UnixStream::connect(&socket);
                tokio::time::timeout(PROMPT, connect).await.ok()?.ok()
            },
            async || unix(&socket, "GET", "/health", "").await,
        )
        .await;
    })
    .await;
}

//! A seeded random driver for the API's request path, on the stable toolchain: random
//! and mutated requests (seeds in `tests/corpus/http/`) to an in-process server on
//! the Unix socket and on TCP with a token.
//!
//! For every request: no panic anywhere in the server; the client gets either a
//! well-formed HTTP/1.x answer head whose status is 2xx, 4xx or 5xx, or a clean close
//! (EOF, no bytes); never a reset. Afterwards the server still answers `/health`.
//!
//! A short run is part of the normal tests. For a longer one:
//! `PIDZERO_FUZZ_ITERS=200000 cargo test --release --test api_fuzz -- --nocapture`,
//! and `PIDZERO_FUZZ_SEED=N` to start from another seed. A failure names the seed,
//! the iteration and the request, which reproduce it.

mod api_support;
mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_support::*;
use common::fuzz::Rng;
use pidzero::api::{self, Limits};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

const DEFAULT_ITERS: u64 = 2000;
const DEFAULT_SEED: u64 = 0x5eed_1d0e;
/// An answer that has not come (or the connection not closed) by then is a hang: the
/// client half-closes after its request, so the server sees the end of its input.
const PER_REQUEST: Duration = Duration::from_secs(5);

/// splitmix64: small, fast, and the same sequence on every machine.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/http")
}

/// The seeds: `*.http` with `\n` sent as `\r\n`, `*.raw` as is.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_name()?.to_string_lossy().into_owned();
            let bytes = std::fs::read(&path).ok()?;
            match path.extension()?.to_str()? {
                "raw" => Some((name, bytes)),
                "http" => Some((name, crlf(&bytes))),
                _ => None,
            }
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 20, "corpus too small: {}", seeds.len());
    seeds
}

fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 32);
    for &b in bytes {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Pieces that make parsers take other paths.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b" ",
    b":",
    b"\0",
    b"\xff",
    b"/",
    b"..",
    b"%",
    b"%00",
    b"?lines=",
    b"&",
    b"=",
    b"/daemons/",
    b"/logs",
    b"/signal",
    b"web",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"GET ",
    b"POST ",
    b"Content-Length: 0\r\n",
    b"Content-Length: 99999999\r\n",
    b"Content-Length: 65537\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"Authorization: Bearer s3cret\r\n",
    b"Authorization: Bearer \r\n",
    b"Host: \r\n",
    b"ffffffffffffffff\r\n",
    b"0\r\n\r\n",
    b"18446744073709551616",
    b"-1",
    b"{\"signal\":\"HUP\"}",
    b"{\"signal\":99999999999999999999}",
    b"\"\\u0000\"",
];

/// One to four random edits of `input`.
fn mutate(rng: &mut Rng, input: &[u8], seeds: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            2 => {
                let token = rng.pick(TOKENS);
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(64)).min(out.len());
                let piece = out[start..end].to_vec();
                out.splice(at..at, piece);
            }
            5 => out.truncate(at),
            6 => {
                let (_, other) = rng.pick(seeds);
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
            7 => {
                let n = rng.below(32);
                let noise: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(at..at, noise);
            }
            _ => {
                // A run of one byte, such as a long header value or many slashes.
                let byte = *rng.pick(b"a/ \t:0\r\n");
                let n = 1 + rng.below(9000);
                out.splice(at..at, std::iter::repeat_n(byte, n));
            }
        }
    }
    out
}

/// A request for one iteration: mostly a mutated seed, sometimes a seed as is or
/// random bytes.
fn next_request(rng: &mut Rng, seeds: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let (name, seed) = rng.pick(seeds);
    match rng.below(10) {
        0 => (name.clone(), seed.clone()),
        1 => {
            let n = rng.below(512);
            ("random".into(), (0..n).map(|_| rng.next() as u8).collect())
        }
        _ => (format!("{name} mutated"), mutate(rng, seed, seeds)),
    }
}

/// What a client got back.
#[derive(Debug)]
enum Outcome {
    Answered(u16),
    ClosedCleanly,
}

/// Sends `request` in a few random pieces, half-closes, reads until the server
/// closes; judges what came.
async fn exchange<S>(mut stream: S, request: &[u8], rng: &mut Rng) -> Result<Outcome, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut rest = request;
    while !rest.is_empty() {
        let n = 1 + rng.below(rest.len());
        let (piece, tail) = rest.split_at(n);
        // The server may answer and stop reading early; that is judged by the answer.
        if stream.write_all(piece).await.is_err() {
            break;
        }
        rest = tail;
    }
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    };
    match tokio::time::timeout(PER_REQUEST, read_all).await {
        Err(_) => return Err(format!("no answer and no close within {PER_REQUEST:?}")),
        Ok(Err(e)) => return Err(format!("read failed ({e}) after {} bytes", answer.len())),
        Ok(Ok(())) => {}
    }
    if answer.is_empty() {
        return Ok(Outcome::ClosedCleanly);
    }
    judge(&answer).map(Outcome::Answered)
}

/// The first answer's head: `HTTP/1.x NNN reason\r\n`, header lines, `\r\n\r\n`;
/// NNN is 2xx, 4xx or 5xx. Every later status line must be well-formed too.
fn judge(mut answer: &[u8]) -> Result<u16, String> {
    // An interim `100 Continue` (the request said `Expect: 100-continue`) comes
    // before the answer proper, which must still follow.
    while let Some(rest) = answer.strip_prefix(b"HTTP/1.1 100 Continue\r\n\r\n") {
        if rest.is_empty() {
            return Err("an interim 100 Continue and no answer".into());
        }
        answer = rest;
    }
    let shown = || String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
    let head_end =
        find(answer, b"\r\n\r\n").ok_or_else(|| format!("no end of head: {:?}", shown()))?;
    let head = std::str::from_utf8(&answer[..head_end])
        .map_err(|_| format!("head is not UTF-8: {:?}", shown()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status =
        status_of(status_line).ok_or_else(|| format!("bad status line {status_line:?}"))?;
    for line in lines {
        let ok = line.split_once(':').is_some_and(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
        });
        if !ok {
            return Err(format!("bad header line {line:?} in {:?}", shown()));
        }
    }
    // Later answers (pipelined requests) start with a status line as well.
    let text = String::from_utf8_lossy(answer);
    for later in text.match_indices("\r\n\r\nHTTP/").map(|(i, _)| i + 4) {
        let line = text[later..].split("\r\n").next().unwrap_or_default();
        status_of(line).ok_or_else(|| format!("bad later status line {line:?}"))?;
    }
    Ok(status)
}

fn status_of(line: &str) -> Option<u16> {
    // hyper answers an HTTP/1.0 request in HTTP/1.0.
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))?;
    let code = rest.get(..3)?;
    let after = rest.get(3..)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    let status: u16 = code.parse().ok()?;
    matches!(status / 100, 2 | 4 | 5).then_some(status)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Panics on any thread of this test binary, the server's tasks included (tokio
/// catches a task's panic, so the test would not see it otherwise).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
}

/// The request for a failure message: escaped, its middle left out when long.
fn escaped(bytes: &[u8]) -> String {
    if bytes.len() <= 600 {
        return bytes.escape_ascii().to_string();
    }
    let (head, tail) = (&bytes[..300], &bytes[bytes.len() - 300..]);
    format!(
        "{}[... {} bytes ...]{}",
        head.escape_ascii(),
        bytes.len() - 600,
        tail.escape_ascii()
    )
}

#[tokio::test]
async fn random_and_mutated_requests_get_answers_or_clean_closes() {
    count_panics();
    let iters = common::fuzz::env_u64("PIDZERO_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS);
    let seed = common::fuzz::env_u64("PIDZERO_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let dir = Dir::new("fuzz");
    let socket = dir.p("api.sock");
    let (_fake, ctx) = FakeRuntime::start(Some("s3cret"));
    let limits = Limits {
        request_timeout: Duration::from_secs(2),
        control_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let server = api::start_with_limits(Some(socket.clone()), localhost(), ctx, limits)
        .await
        .unwrap();
    let addr = server.tcp_addr().unwrap();
    let seeds = corpus();
    let mut rng = Rng(seed);
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    let mut closed = 0u64;
    let started = Instant::now();
    for i in 0..iters {
        let (what, request) = next_request(&mut rng, &seeds);
        let over_tcp = rng.chance(50);
        let outcome = if over_tcp {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            exchange(stream, &request, &mut rng).await
        } else {
            let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            exchange(stream, &request, &mut rng).await
        };
        match outcome {
            Ok(Outcome::Answered(status)) => *statuses.entry(status).or_default() += 1,
            Ok(Outcome::ClosedCleanly) => closed += 1,
            Err(finding) => panic!(
                "seed {seed:#x}, iteration {i}, {} ({what}): {finding}\nrequest: \"{}\"",
                if over_tcp { "tcp" } else { "unix" },
                escaped(&request)
            ),
        }
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "iteration {i} ({what}) panicked"
        );
    }
    let health = unix(&socket, "GET", "/health", "").await;
    assert!(matches!(health.status, 200 | 503), "{health:?}");
    assert_eq!(
        tcp(addr, "GET", "/health", &[], "").await.status,
        health.status
    );
    println!(
        "api_fuzz: seed {seed:#x}, {iters} requests in {:.1?}: answers {statuses:?}, {closed} clean closes",
        started.elapsed()
    );
}

//! Network health probes: `http` (an HTTP/1.1 GET with hyper's client) and `tcp` (a
//! connect).
//!
//! Both run as tasks beside the control loop, bounded by the check's timeout,
//! and report a human-readable detail either way. Command probes are processes
//! and live in the runtime, which reaps them like every other child.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::nosigpipe::NoSigPipe;

/// The outcome of one probe: `Ok(detail)` passed, `Err(detail)` failed.
pub type ProbeResult = Result<String, String>;

/// Connects to `addr` (`host:port`) within `timeout`.
pub async fn probe_tcp(addr: &str, timeout: Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(format!("connected to {addr}")),
        Ok(Err(e)) => Err(format!("cannot connect to {addr}: {e}")),
        Err(_) => Err(format!("connecting to {addr} timed out after {timeout:?}")),
    }
}

/// GETs `url` within `timeout`; a 2xx or 3xx status passes.
pub async fn probe_http(url: &str, timeout: Duration) -> ProbeResult {
    let target = HttpTarget::parse(url)?;
    match tokio::time::timeout(timeout, get_status(&target)).await {
        Ok(Ok(status)) if (200..400).contains(&status) => {
            Ok(format!("GET {url} answered {status}"))
        }
        Ok(Ok(status)) => Err(format!("GET {url} answered {status}")),
        Ok(Err(e)) => Err(format!("GET {url} failed: {e}")),
        Err(_) => Err(format!("GET {url} timed out after {timeout:?}")),
    }
}

/// The parts of an `http://host[:port][/path]` URL a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// `host:port`, for connecting.
    pub address: String,
    /// The Host header value (`host` or `host:port` as written).
    pub host_header: String,
    pub path: String,
}

impl HttpTarget {
    /// Parsed with hyper's `Uri`, as the client's `--url` is.
    pub fn parse(url: &str) -> Result<HttpTarget, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{url}: only http:// URLs are supported"));
        }
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| format!("{url}: no host"))?;
        Ok(HttpTarget {
            // `host()` keeps an IPv6 address in brackets, as connect wants it.
            address: format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(80)
            ),
            host_header: authority.as_str().to_string(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        })
    }
}

/// Sends the GET with hyper's client and returns the answer's status code. The body
/// is never read: the status decides.
async fn get_status(target: &HttpTarget) -> Result<u16, String> {
    let stream = TcpStream::connect(&target.address)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.address))?;
    let io = TokioIo::new(NoSigPipe::new(stream));
    let (mut sender, connection) = http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| e.to_string())?;
    let request = Request::get(target.path.as_str())
        .header(HOST, target.host_header.as_str())
        .header(USER_AGENT, "pidzero")
        .header(CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    // The connection is driven here, not on a task of its own, so that the probe's
    // timeout, by dropping this future, also closes the socket.
    let answer = sender.send_request(request);
    tokio::pin!(connection, answer);
    let response = tokio::select! {
        biased;
        answer = &mut answer => answer,
        // It ends (Connection: close) once the answer is handed over, or it failed.
        ended = &mut connection => match ended {
            Ok(()) => answer.await,
            Err(e) => Err(e),
        },
    };
    response
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::block_on;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn parses_urls() {
        let t = HttpTarget::parse("http://127.0.0.1:8080/healthz?x=1").unwrap();
        assert_eq!(t.address, "127.0.0.1:8080");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        assert_eq!(t.path, "/healthz?x=1");
        let t = HttpTarget::parse("http://localhost").unwrap();
        assert_eq!(t.address, "localhost:80");
        assert_eq!(t.path, "/");
        let t = HttpTarget::parse("http://[::1]/x").unwrap();
        assert_eq!(t.address, "[::1]:80");
        let t = HttpTarget::parse("http://[::1]:9/x").unwrap();
        assert_eq!(t.address, "[::1]:9");
        assert!(HttpTarget::parse("https://x/").is_err());
        assert!(HttpTarget::parse("http:///x").is_err());
    }

    #[test]
    fn http_probe_against_a_local_server() {
        block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                for status in ["200 OK", "500 Internal Server Error"] {
                    let (mut s, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(buf[..n].starts_with(b"GET /up HTTP/1.1\r\n"));
                    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    s.write_all(answer.as_bytes()).await.unwrap();
                }
            });
            let url = format!("http://{addr}/up");
            let t = Duration::from_secs(5);
            assert!(probe_http(&url, t).await.is_ok());
            let failed = probe_http(&url, t).await.unwrap_err();
            assert!(failed.contains("500"), "{failed}");
            server.await.unwrap();
        });
    }

    #[test]
    fn http_probe_judges_what_comes_back() {
        block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let answers: [&[u8]; 3] = [
                b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
                b"SSH-2.0-OpenSSH_9.6\r\n",
                b"",
            ];
            let server = tokio::spawn(async move {
                for answer in answers {
                    let (mut s, _) = listener.accept().await.unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await.unwrap();
                    s.write_all(answer).await.unwrap();
                }
            });
            let url = format!("http://{addr}/");
            let t = Duration::from_secs(5);
            let redirect = probe_http(&url, t).await.unwrap();
            assert_eq!(redirect, format!("GET {url} answered 302"));
            for _ in 0..2 {
                let failed = probe_http(&url, t).await.unwrap_err();
                assert!(
                    failed.starts_with(&format!("GET {url} failed: ")),
                    "{failed}"
                );
            }
            server.await.unwrap();
            let refused = probe_http(&url, t).await.unwrap_err();
            assert!(refused.contains("cannot connect"), "{refused}");
        });
    }

    #[test]
    fn http_probe_times_out_on_a_silent_server() {
        block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let _hold = tokio::spawn(async move {
                let conn = listener.accept().await;
                std::future::pending::<()>().await;
                drop(conn);
            });
            let err = probe_http(&format!("http://{addr}/"), Duration::from_millis(100))
                .await
                .unwrap_err();
            assert!(err.contains("timed out"), "{err}");
        });
    }

    #[test]
    fn tcp_probe_passes_and_fails() {
        block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            assert!(probe_tcp(&addr, Duration::from_secs(5)).await.is_ok());
            drop(listener);
            assert!(probe_tcp(&addr, Duration::from_secs(5)).await.is_err());
        });
    }
}

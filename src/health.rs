//! Network health probes: `http` (a plain HTTP/1.1 GET) and `tcp` (a connect).
//!
//! Both run as tasks beside the control loop, bounded by the check's timeout,
//! and report a human-readable detail either way. Command probes are processes
//! and live in the runtime, which reaps them like every other child.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// Sends the GET and returns the status code of the answer's status line.
async fn get_status(target: &HttpTarget) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(&target.address).await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: pidzero\r\nConnection: close\r\n\r\n",
        target.path, target.host_header
    );
    stream.write_all(request.as_bytes()).await?;
    // The status line fits in far less; more is never read.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the answer is not an HTTP/1.x response",
        )
    })
}

/// `HTTP/1.1 204 No Content` → 204.
pub fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut words = line.split_ascii_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::block_on;

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
    fn parses_status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 503\r\n"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status_line(b"HTTP/1.1 2000 x\r\n"), None);
        assert_eq!(
            parse_status_line(b"HTTP/1.1 200 OK"),
            None,
            "incomplete line"
        );
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

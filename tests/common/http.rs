//! The one HTTP/1.1 test client of the control API: it builds a request with
//! `Connection: close`, sends it, reads the answer until the server closes
//! the connection and parses it into an [`Answer`].
//!
//! Two transports over the same request and answer: a blocking one for the
//! end-to-end tests against the real binary ([`http`], [`get`], [`post`] on a
//! [`Target`]), and an async one for the in-process tests, whose server runs
//! on the test's own tokio runtime and must not be blocked ([`exchange`],
//! [`unix`], [`tcp`]). Written by hand rather than with hyper's client so
//! that tests can send malformed or oversized requests byte for byte.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::DEADLINE;

/// A parsed HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case (the last one wins when a name repeats).
    pub headers: HashMap<String, String>,
    /// The body, de-chunked when the answer was chunked.
    pub body: String,
}

impl Answer {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {:?}", self.status, self.body))
    }
}

/// The raw request bytes, with `Connection: close` so that the answer ends with
/// the connection; a body (or a POST) gets a JSON content type and its length.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: pidzero\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// Parses what a server sent before it closed; None when it is not an HTTP answer.
pub fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body)?;
    }
    Some(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// [`parse_answer`] that fails the test when `raw` is not an HTTP answer.
pub fn parse(raw: &[u8]) -> Answer {
    parse_answer(raw)
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(raw)))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------
// Blocking transport (end-to-end tests against the real binary)
// ---------------------------------------------------------------------------

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Target {
    pub fn unix(path: impl AsRef<Path>) -> Target {
        Target::Unix(path.as_ref().to_path_buf())
    }

    pub fn tcp(port: u16) -> Target {
        Target::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// Sends one request and reads the answer to EOF ([`DEADLINE`] at most).
pub fn try_http(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    let request = request(method, path, headers, body);
    let mut raw = Vec::new();
    match target {
        Target::Unix(p) => {
            let mut s = UnixStream::connect(p)?;
            s.set_read_timeout(Some(DEADLINE))?;
            s.write_all(&request)?;
            s.read_to_end(&mut raw)?;
        }
        Target::Tcp(a) => {
            let mut s = TcpStream::connect_timeout(a, DEADLINE)?;
            s.set_read_timeout(Some(DEADLINE))?;
            s.write_all(&request)?;
            s.read_to_end(&mut raw)?;
        }
    }
    parse_answer(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

/// [`try_http`] that fails the test on any I/O error.
pub fn http(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    try_http(target, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {target:?}: {e}"))
}

pub fn get(target: &Target, path: &str) -> Answer {
    http(target, "GET", path, &[], "")
}

pub fn post(target: &Target, path: &str, body: &str) -> Answer {
    http(target, "POST", path, &[], body)
}

// ---------------------------------------------------------------------------
// Async transport (in-process tests: the server runs on the test's runtime)
// ---------------------------------------------------------------------------

/// Writes `request` as is and reads until the server closes the connection. A
/// reset (the server closed with part of the request unread) ends the answer
/// too. No deadline of its own: the in-process tests run under one.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Answer {
    let _ = stream.write_all(request).await;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        bytes.extend_from_slice(&buf[..n]);
    }
    parse(&bytes)
}

/// One request over the control socket at `socket`.
pub async fn unix(socket: &Path, method: &str, path: &str, body: &str) -> Answer {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    exchange(stream, &request(method, path, &[], body)).await
}

/// One request over TCP to `addr`.
pub async fn tcp(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    exchange(stream, &request(method, path, headers, body)).await
}

//! The HTTP handlers' transport: one HTTP/1.1 POST per batch with hyper's
//! client, over a kept-alive TCP connection, made again after a failure.
//!
//! Each handler's thread owns a small current-thread tokio runtime and
//! enters it only for the time of a request (`block_on`): between requests
//! nothing runs, so an idle handler (sleeping on its queue's condition
//! variable) is never woken, connection open or not. PID 1's control loop
//! never sees any of it. Names are resolved and the TCP connection made
//! with the standard library in this thread (blocking, bounded by a
//! timeout), so that tokio starts no resolver thread.
//!
//! A request (connection included) that takes longer than the handler's
//! `timeout` counts as a failure: a receiver that accepts and never answers
//! is as good as away. While a request waits, the caller is asked every
//! [`STALL_CHECK`] whether to give up (at exit, past the grace).

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::conn::{CONNECT_TIMEOUT, STALL_CHECK};
use crate::config::log_net::host_port;
use crate::config::HttpUrl;
use crate::nosigpipe::NoSigPipe;

/// The most of an answer's body read (for the error message of a refusal);
/// a longer one ends the connection instead of being read on.
const MAX_ANSWER: usize = 64 * 1024;
/// How much of an answer's body an error message quotes.
const QUOTED: usize = 200;

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer, with its body (an OTLP receiver may say there that
    /// it rejected some records).
    Accepted(Bytes),
    /// A 3xx or 4xx answer other than 408 and 429: the receiver will never
    /// take this batch as it is.
    Refused(String),
    /// No answer (connection refused or lost, timeout), or 408, 429, 5xx:
    /// worth trying again later.
    Failed(String),
    /// The caller said to stop waiting.
    GaveUp,
}

/// How an attempt failed before an answer came.
enum Failure {
    /// Connecting or exchanging failed (a reused connection may simply have
    /// been closed by the receiver meanwhile).
    Connection(String),
    Timeout,
    GaveUp,
}

pub struct Client {
    runtime: tokio::runtime::Runtime,
    url: HttpUrl,
    /// The `Host` header.
    authority: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    content_type: &'static str,
    timeout: Duration,
    conn: Option<Connection>,
}

struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    /// The task that drives the connection: aborted when it is dropped.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// A client for `url`; connects at the first request. Header names and
    /// values were checked with the configuration.
    pub fn new(
        url: HttpUrl,
        headers: &[(String, String)],
        content_type: &'static str,
        timeout: Duration,
    ) -> io::Result<Client> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let mut parsed = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| io::Error::other(format!("header {name}: {e}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| io::Error::other(format!("the value of header {name} is invalid")))?;
            value.set_sensitive(true);
            parsed.push((name, value));
        }
        Ok(Client {
            runtime,
            authority: host_port(&url.host, url.port),
            url,
            headers: parsed,
            content_type,
            timeout,
            conn: None,
        })
    }

    /// POSTs `body`; `stalled` is asked every [`STALL_CHECK`] while the
    /// request waits, and `true` gives up.
    pub fn post(&mut self, body: &Bytes, stalled: &mut dyn FnMut() -> bool) -> Outcome {
        let reused = self.conn.as_ref().is_some_and(|c| !c.sender.is_closed());
        let mut answer = self.attempt(body, stalled);
        if reused && matches!(answer, Err(Failure::Connection(_))) {
            // A kept-alive connection the receiver closed while idle: not
            // an outage, try once on a new one.
            answer = self.attempt(body, stalled);
        }
        match answer {
            Ok((status, text)) => judge(status, &text),
            Err(Failure::Connection(reason)) => Outcome::Failed(reason),
            Err(Failure::Timeout) => Outcome::Failed(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
            Err(Failure::GaveUp) => Outcome::GaveUp,
        }
    }

    /// One request on the open connection, or a new one.
    fn attempt(
        &mut self,
        body: &Bytes,
        stalled: &mut dyn FnMut() -> bool,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let deadline = Instant::now() + self.timeout;
        if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
            self.conn = None;
            self.conn = Some(self.connect(deadline)?);
        }
        let mut request = Request::post(self.url.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(CONTENT_TYPE, self.content_type)
            .header(USER_AGENT, concat!("pidzero/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body.clone()))
            .map_err(|e| Failure::Connection(format!("cannot build the request: {e}")))?;
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Connection("not connected".into()));
        };
        let sender = &mut conn.sender;
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let text = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|b| b.to_bytes());
            Ok::<_, hyper::Error>((status, text))
        };
        let result = self.runtime.block_on(within(deadline, stalled, exchange));
        match result {
            Ok(Ok((status, Ok(text)))) => Ok((status, text)),
            // An answer too long or cut: judged by its status, but the
            // connection cannot go on.
            Ok(Ok((status, Err(_)))) => {
                self.conn = None;
                Ok((status, Bytes::new()))
            }
            Ok(Err(error)) => {
                self.conn = None;
                Err(Failure::Connection(error_text(&error)))
            }
            Err(failure) => {
                self.conn = None;
                Err(failure)
            }
        }
    }

    /// Resolves and connects (blocking, in this thread), then sets hyper's
    /// client up on the socket.
    fn connect(&mut self, deadline: Instant) -> Result<Connection, Failure> {
        let address = host_port(&self.url.host, self.url.port);
        let stream = connect_tcp(&self.url.host, self.url.port, deadline)
            .map_err(|e| Failure::Connection(format!("cannot connect to {address}: {e}")))?;
        let setup = || -> io::Result<tokio::net::TcpStream> {
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            let _entered = self.runtime.enter();
            tokio::net::TcpStream::from_std(stream)
        };
        let stream = setup().map_err(|e| Failure::Connection(e.to_string()))?;
        let io = TokioIo::new(NoSigPipe::new(stream));
        let (sender, connection) = self
            .runtime
            .block_on(http1::handshake(io))
            .map_err(|e| Failure::Connection(error_text(&e)))?;
        let task = self.runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender, task })
    }
}

/// Runs `exchange` until `deadline`, asking `stalled` every [`STALL_CHECK`].
async fn within<T>(
    deadline: Instant,
    stalled: &mut dyn FnMut() -> bool,
    exchange: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    tokio::pin!(exchange);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::Timeout);
        }
        tokio::select! {
            done = &mut exchange => return Ok(done),
            () = tokio::time::sleep(left.min(STALL_CHECK)) => {
                if stalled() {
                    return Err(Failure::GaveUp);
                }
            }
        }
    }
}

/// Connects to the first address of `host` that takes the connection.
fn connect_tcp(host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
    let mut last = io::Error::other(format!("{host} has no address"));
    for address in (host, port).to_socket_addrs()? {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(CONNECT_TIMEOUT);
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection timed out",
            ));
        }
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// hyper's error with its cause (`connection closed before message
/// completed`, `Connection reset by peer`...).
fn error_text(error: &hyper::Error) -> String {
    use std::error::Error;
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

/// What an answer means for the batch.
pub fn judge(status: StatusCode, body: &[u8]) -> Outcome {
    if status.is_success() {
        return Outcome::Accepted(Bytes::copy_from_slice(body));
    }
    let mut text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTED)
        .collect();
    text = text.trim().to_string();
    let reason = if text.is_empty() {
        format!("the receiver answered {status}")
    } else {
        format!("the receiver answered {status}: {text}")
    };
    let retry = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if retry {
        Outcome::Failed(reason)
    } else {
        Outcome::Refused(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn answers_are_judged_by_status() {
        assert_eq!(
            judge(StatusCode::NO_CONTENT, b""),
            Outcome::Accepted(Bytes::new())
        );
        assert_eq!(
            judge(StatusCode::BAD_REQUEST, b"entry too far\nbehind"),
            Outcome::Refused("the receiver answered 400 Bad Request: entry too far behind".into())
        );
        for status in [429, 408, 500, 503] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(judge(status, b""), Outcome::Failed(_)), "{status}");
        }
        assert!(matches!(
            judge(StatusCode::MOVED_PERMANENTLY, b""),
            Outcome::Refused(_)
        ));
    }

    /// Reads one request (head and a Content-Length body) from `stream`.
    fn read_request(stream: &mut std::net::TcpStream) -> String {
        let mut data = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            assert!(n > 0, "closed early");
            data.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&data).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if data.len() >= end + 4 + length {
                    return text;
                }
            }
        }
    }

    fn url(port: u16) -> HttpUrl {
        HttpUrl {
            host: "127.0.0.1".into(),
            port,
            path: "/push".into(),
        }
    }

    #[test]
    fn posts_on_a_kept_alive_connection_and_survives_its_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (idle_tx, idle) = std::sync::mpsc::channel::<()>();
        let (closed_tx, closed) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            // First connection: two requests, then closed by the receiver
            // while the client is idle (as a receiver's idle timeout does),
            // so the client learns it only when it uses it again.
            let (mut stream, _) = listener.accept().unwrap();
            for _ in 0..2 {
                seen.push(read_request(&mut stream));
                stream
                    .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                    .unwrap();
            }
            idle.recv().unwrap();
            drop(stream);
            closed_tx.send(()).unwrap();
            let (mut stream, _) = listener.accept().unwrap();
            seen.push(read_request(&mut stream));
            stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nnope")
                .unwrap();
            seen
        });
        let headers = [("X-Scope-OrgID".to_string(), "t1".to_string())];
        let mut client = Client::new(
            url(port),
            &headers,
            "application/json",
            Duration::from_secs(5),
        )
        .unwrap();
        let body = Bytes::from_static(b"{\"a\":1}");
        let accepted = Outcome::Accepted(Bytes::new());
        assert_eq!(client.post(&body, &mut || false), accepted);
        assert_eq!(client.post(&body, &mut || false), accepted);
        idle_tx.send(()).unwrap();
        closed.recv().unwrap();
        // The receiver closed the connection: one more try on a new one,
        // not a failure.
        assert_eq!(
            client.post(&body, &mut || false),
            Outcome::Refused("the receiver answered 400 Bad Request: nope".into())
        );
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3);
        let first = &seen[0];
        assert!(first.starts_with("POST /push HTTP/1.1\r\n"), "{first}");
        let lower = first.to_ascii_lowercase();
        assert!(lower.contains("content-type: application/json"), "{first}");
        assert!(
            lower.contains(&format!("host: 127.0.0.1:{port}")),
            "{first}"
        );
        assert!(lower.contains("x-scope-orgid: t1"), "{first}");
        assert!(first.ends_with("{\"a\":1}"), "{first}");
    }

    #[test]
    fn a_silent_receiver_times_out_and_nobody_listening_fails() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client = Client::new(
            url(port),
            &[],
            "application/json",
            Duration::from_millis(300),
        )
        .unwrap();
        let body = Bytes::from_static(b"{}");
        match client.post(&body, &mut || false) {
            Outcome::Failed(reason) => assert!(reason.contains("no answer within"), "{reason}"),
            other => panic!("{other:?}"),
        }
        drop(listener);
        match client.post(&body, &mut || false) {
            Outcome::Failed(reason) => assert!(reason.contains("cannot connect"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}

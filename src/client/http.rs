//! One HTTP/1.1 request over a fresh connection, with hyper's client connection API.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use crate::check::{Entry, Filesystem, System};
use crate::nosigpipe::NoSigPipe;

/// Time to connect, and then for the whole exchange. Commands are answered at once
/// (the server gives the runtime 5 s), so these only catch a hung server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    /// `host` without brackets (an IPv6 address is bare).
    Tcp {
        host: String,
        port: u16,
    },
}

impl Endpoint {
    /// `http://HOST:PORT` (a trailing `/` is fine; the port defaults to 80).
    pub fn from_url(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("--url {url:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "--url {url:?}: https is not supported; pidzero's API speaks plain HTTP"
                ))
            }
            _ => return Err(format!("--url {url:?} must look like http://HOST:PORT")),
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!(
                "--url {url:?} must be just http://HOST:PORT, without a path"
            ));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("--url {url:?} has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Endpoint::Tcp {
            host: host.to_owned(),
            port: uri.port_u16().unwrap_or(80),
        })
    }

    /// The value of the Host header.
    fn authority(&self) -> String {
        match self {
            Endpoint::Unix(_) => "localhost".into(),
            Endpoint::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Endpoint::Tcp { host, port } => format!("{host}:{port}"),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
            Endpoint::Tcp { .. } => write!(f, "http://{}", self.authority()),
        }
    }
}

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Could not connect: nothing listens, no socket file, no permission, timeout.
    Unreachable(String),
    /// Connected, but the exchange failed (closed early, not HTTP, too slow).
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable(m) | ClientError::Protocol(m) => f.write_str(m),
        }
    }
}

/// Sends one request (with `Authorization: Bearer` when a token is given) and reads
/// the whole answer.
pub async fn request(
    endpoint: &Endpoint,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Reply, ClientError> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, endpoint.authority());
    if let Some(token) = token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            ClientError::Protocol("the API token has characters not allowed in a header".into())
        })?;
        value.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, value);
    }
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| ClientError::Protocol(format!("cannot build the request for {path}: {e}")))?;
    let exchange = async {
        match endpoint {
            Endpoint::Unix(path) => {
                let stream = connect(endpoint, UnixStream::connect(path)).await?;
                exchange(NoSigPipe::new(stream), request, endpoint).await
            }
            Endpoint::Tcp { host, port } => {
                let stream = connect(endpoint, TcpStream::connect((host.as_str(), *port))).await?;
                let _ = stream.set_nodelay(true);
                exchange(NoSigPipe::new(stream), request, endpoint).await
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(ClientError::Protocol(format!(
                "pidzero on {endpoint} did not answer within {}s",
                REQUEST_TIMEOUT.as_secs()
            )))
        })
}

async fn connect<S>(
    endpoint: &Endpoint,
    connecting: impl std::future::Future<Output = io::Result<S>>,
) -> Result<S, ClientError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(ClientError::Unreachable(connect_error(endpoint, &e))),
        Err(_) => Err(ClientError::Unreachable(format!(
            "cannot connect to {endpoint}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

fn connect_error(endpoint: &Endpoint, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("no pidzero is listening on {endpoint} (connection refused)")
        }
        io::ErrorKind::NotFound => {
            let why = match endpoint {
                Endpoint::Unix(path) => socket_dir_hint(path, &System.entry(socket_dir(path))),
                Endpoint::Tcp { .. } => None,
            };
            match why {
                Some(why) => {
                    format!("no pidzero is listening on {endpoint} (no such socket; {why})")
                }
                None => format!("no pidzero is listening on {endpoint} (no such socket)"),
            }
        }
        io::ErrorKind::PermissionDenied => format!(
            "cannot connect to {endpoint}: permission denied (the control socket is for its owner only)"
        ),
        _ => format!("cannot connect to {endpoint}: {e}"),
    }
}

/// Why a socket may be missing although pidzero runs: in the silent main
/// command mode (and as a non-root user) pidzero runs without a default
/// socket it cannot create and says so only with `-v`, so the client is
/// where the user learns it. A directory this user cannot write is the same
/// one a pidzero running as this user could not create its socket in.
fn socket_dir_hint(socket: &Path, dir: &Entry) -> Option<String> {
    let shown = socket_dir(socket).display();
    let remedy =
        "give pidzero and this command the same --socket in a writable directory, or use --url";
    match dir {
        Entry::Missing => Some(format!(
            "{shown} does not exist, so pidzero could not create its socket there: {remedy}"
        )),
        Entry::Dir { writable: false } => Some(format!(
            "{shown} is not writable for this user, so a pidzero running as this user could not create its socket there (`pidzero -v` says why at start): {remedy}"
        )),
        _ => None,
    }
}

/// The directory a socket path names (`.` for a bare name).
fn socket_dir(socket: &Path) -> &Path {
    socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    endpoint: &Endpoint,
) -> Result<Reply, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed =
        |e: hyper::Error| ClientError::Protocol(format!("request to {endpoint} failed: {e}"));
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed)?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply { status, body })
    }
    .await
    .map_err(failed);
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            Endpoint::from_url("http://127.0.0.1:9090"),
            Ok(Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 9090
            })
        );
        assert_eq!(
            Endpoint::from_url("http://[::1]:9090/"),
            Ok(Endpoint::Tcp {
                host: "::1".into(),
                port: 9090
            })
        );
        assert_eq!(
            Endpoint::from_url("http://app"),
            Ok(Endpoint::Tcp {
                host: "app".into(),
                port: 80
            })
        );
        for bad in [
            "https://x:1",
            "x:1",
            "127.0.0.1:9090",
            "http://x:1/api",
            "ftp://x",
            "",
        ] {
            assert!(Endpoint::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shows_endpoints() {
        let v6 = Endpoint::from_url("http://[::1]:9090").unwrap();
        assert_eq!(v6.to_string(), "http://[::1]:9090");
        assert_eq!(
            Endpoint::Unix("/run/pidzero.sock".into()).to_string(),
            "/run/pidzero.sock"
        );
    }

    #[test]
    fn missing_socket_says_why_its_directory_could_not_hold_it() {
        let socket = Path::new("/run/pidzero.sock");
        let missing = socket_dir_hint(socket, &Entry::Missing).unwrap();
        assert!(missing.starts_with("/run does not exist"), "{missing}");
        let locked = socket_dir_hint(socket, &Entry::Dir { writable: false }).unwrap();
        assert!(
            locked.starts_with("/run is not writable for this user"),
            "{locked}"
        );
        assert!(
            locked.contains("--socket") && locked.contains("--url"),
            "{locked}"
        );
        assert_eq!(
            socket_dir_hint(socket, &Entry::Dir { writable: true }),
            None
        );
        assert!(socket_dir_hint(Path::new("x.sock"), &Entry::Missing)
            .unwrap()
            .starts_with(". does not exist"));
    }

    #[test]
    fn refused_message() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            connect_error(&Endpoint::Unix("/run/pidzero.sock".into()), &e),
            "no pidzero is listening on /run/pidzero.sock (connection refused)"
        );
    }
}

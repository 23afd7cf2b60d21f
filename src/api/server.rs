//! Listeners and connections: hyper HTTP/1.1 on the control socket and optional TCP,
//! as tasks on the caller's tokio runtime (no threads of its own).
//!
//! Limits (SPEC §8):
//! - request head ≤ 8 KiB (hyper answers 431), body ≤ 64 KiB (413);
//! - a request must arrive within 10 s: hyper's header read timeout closes a
//!   connection whose head is late (idle keep-alive time counts, so idle connections
//!   close after 10 s too), and the body must be complete within the same 10 s,
//!   counted from when the connection was ready for that request (408 and close);
//! - at most 64 connections at once **per listener**. Further clients are not
//!   refused: they wait in the kernel's listen backlog and are accepted as soon as a
//!   connection ends. Since every connection ends within 10 s unless it is actively
//!   exchanging requests, a flood of slow clients delays newcomers by at most that,
//!   and a flood on TCP never locks out the local socket (or the other way round).
//! - a connection lives at most 60 s: then it is asked to close after its current
//!   request, and closed for good 10 s later (this bounds clients that stop reading).

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::auth::Transport;
use super::listen::{self, SocketFile};
use super::routes;
use super::state::{ApiContext, Limits, Shared, MAX_HEAD_BYTES};
use crate::nosigpipe::NoSigPipe;

/// The running API. Dropping it (or [`ApiServer::close`]) stops the listeners,
/// closes open connections and removes the socket file.
pub struct ApiServer {
    socket: Option<SocketFile>,
    tcp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    /// Dropped to tell every task to end.
    _closed: watch::Sender<()>,
}

impl fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiServer")
            .field("socket", &self.socket_path())
            .field("tcp_addr", &self.tcp_addr)
            .finish()
    }
}

impl ApiServer {
    /// The control socket's path, when there is one.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket.as_ref().map(SocketFile::path)
    }

    /// The address the TCP listener is bound to (with the real port when 0 was asked).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    pub fn close(self) {}
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(socket) = &self.socket {
            socket.remove();
        }
    }
}

/// Starts the API with the limits of SPEC §8. Must be called inside a tokio runtime
/// with IO and time enabled; tasks are spawned on it.
pub async fn start(
    socket: Option<PathBuf>,
    tcp: Option<SocketAddr>,
    ctx: ApiContext,
) -> io::Result<ApiServer> {
    start_with_limits(socket, tcp, ctx, Limits::default()).await
}

/// [`start`] with other limits.
pub async fn start_with_limits(
    socket: Option<PathBuf>,
    tcp: Option<SocketAddr>,
    ctx: ApiContext,
    limits: Limits,
) -> io::Result<ApiServer> {
    let (closed_tx, closed_rx) = watch::channel(());
    let shared = Arc::new(Shared { ctx, limits });
    let unix = match &socket {
        Some(path) => Some(listen::bind_unix(path).await?),
        None => None,
    };
    let tcp_listener = match tcp {
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                if let Some((_, file)) = &unix {
                    file.remove();
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot listen on {addr}: {e}"),
                ));
            }
        },
        None => None,
    };
    let mut server = ApiServer {
        socket: None,
        tcp_addr: None,
        tasks: Vec::new(),
        _closed: closed_tx,
    };
    if let Some((listener, file)) = unix {
        server.socket = Some(file);
        server.tasks.push(tokio::spawn(accept_loop(
            Listener::Unix(listener),
            shared.clone(),
            closed_rx.clone(),
        )));
    }
    if let Some(listener) = tcp_listener {
        server.tcp_addr = listener.local_addr().ok();
        server.tasks.push(tokio::spawn(accept_loop(
            Listener::Tcp(listener),
            shared,
            closed_rx,
        )));
    }
    Ok(server)
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

async fn accept_loop(listener: Listener, shared: Arc<Shared>, mut closed: watch::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(shared.limits.max_connections));
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = closed.changed() => return,
        };
        let accepted = tokio::select! {
            accepted = accept(&listener, &shared, permit, closed.clone()) => accepted,
            _ = closed.changed() => return,
        };
        if let Err(e) = accepted {
            if out_of_resources(&e) {
                // Out of descriptors or memory: let connections end before trying again,
                // rather than spinning on accept.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn accept(
    listener: &Listener,
    shared: &Arc<Shared>,
    permit: OwnedSemaphorePermit,
    closed: watch::Receiver<()>,
) -> io::Result<()> {
    match listener {
        Listener::Unix(l) => {
            let (stream, _) = l.accept().await?;
            let shared = shared.clone();
            tokio::spawn(serve(
                NoSigPipe::new(stream),
                Transport::Unix,
                shared,
                permit,
                closed,
            ));
        }
        Listener::Tcp(l) => {
            let (stream, _) = l.accept().await?;
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            tokio::spawn(serve(
                NoSigPipe::new(stream),
                Transport::Tcp,
                shared,
                permit,
                closed,
            ));
        }
    }
    Ok(())
}

fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Serves one connection until the client closes it, a limit ends it, or the server
/// is closed. The permit frees the connection slot when this returns.
async fn serve<S>(
    stream: S,
    transport: Transport,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
    mut closed: watch::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = shared.limits.clone();
    // When this connection became ready for its current request: the start of the
    // 10 s a request has to arrive. Moved forward when a response is handed to hyper.
    let ready_since = Arc::new(Mutex::new(Instant::now()));
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let ready_since = ready_since.clone();
        async move {
            let since = *ready_since.lock().unwrap_or_else(|e| e.into_inner());
            let deadline = since + shared.limits.request_timeout;
            let response = routes::handle(req, transport, &shared, deadline).await;
            *ready_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let too_old = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(too_old);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closed.changed() => return,
        _ = &mut too_old => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = closed.changed() => {}
        _ = tokio::time::sleep(limits.request_timeout) => {}
    }
}

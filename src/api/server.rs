//! Listeners and connections: hyper HTTP/1.1 on the control socket and optional TCP,
//! as tasks on the caller's tokio runtime (no threads of its own).
//!
//! Limits (SPEC §8):
//! - request head ≤ 8 KiB (hyper answers 431), body ≤ 64 KiB (413);
//! - a request must arrive within 10 s, a connection lives at most 60 s, and it is
//!   closed gracefully so that an early answer reaches its client: see
//!   the `connection` module;
//! - at most 64 connections at once **per listener**, so a flood on TCP never touches
//!   the local socket (or the other way round). A newcomer is never kept waiting: at
//!   the limit it takes the slot of the connection that has waited on its client the
//!   longest (see the `slots` module), so slow or idle clients cannot keep a probe's
//!   `GET /health` from being answered.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::auth::Transport;
use super::connection::serve;
use super::listen::{self, SocketFile};
use super::slots::Slots;
use super::state::{ApiContext, Limits, Shared};
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
    let slots = Slots::new(shared.limits.max_connections);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &shared, &slots, closed.clone()) => accepted,
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

/// Accepts one connection, gives it a slot (at the limit, evicting another) and
/// serves it on a task of its own.
async fn accept(
    listener: &Listener,
    shared: &Arc<Shared>,
    slots: &Arc<Slots>,
    closed: watch::Receiver<()>,
) -> io::Result<()> {
    let shared = shared.clone();
    match listener {
        Listener::Unix(l) => {
            let (stream, _) = l.accept().await?;
            let stream = NoSigPipe::new(stream);
            let slot = slots.admit();
            tokio::spawn(serve(stream, Transport::Unix, shared, slot, closed));
        }
        Listener::Tcp(l) => {
            let (stream, _) = l.accept().await?;
            let _ = stream.set_nodelay(true);
            let stream = NoSigPipe::new(stream);
            let slot = slots.admit();
            tokio::spawn(serve(stream, Transport::Tcp, shared, slot, closed));
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

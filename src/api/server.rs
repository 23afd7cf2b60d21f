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
    /// The accept loops of the socket and of TCP, for a reload to replace.
    socket_task: Option<JoinHandle<()>>,
    tcp_task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    closed_rx: watch::Receiver<()>,
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
        for task in self.socket_task.iter().chain(&self.tcp_task) {
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
    let shared = Arc::new(Shared::new(ctx, limits));
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
        socket_task: None,
        tcp_task: None,
        shared,
        closed_rx,
        _closed: closed_tx,
    };
    if let Some(unix) = unix {
        server.serve_socket(Some(unix));
    }
    server.serve_tcp(tcp_listener);
    Ok(server)
}

/// A listener bound by [`ApiServer::bind`], not serving yet: binding comes
/// first, so that a reload whose address is taken changes nothing.
pub struct Bound {
    socket: Option<Option<(UnixListener, SocketFile)>>,
    tcp: Option<Option<TcpListener>>,
}

impl ApiServer {
    /// The token the next request is checked against (a reload's new one).
    pub fn set_token(&self, token: Option<String>) {
        *self.shared.token.write().unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// Binds what a reload asks for: `socket` / `tcp` are `None` when
    /// unchanged, `Some(None)` to close that listener, `Some(Some(..))` to
    /// listen there instead. Nothing changes until [`ApiServer::serve`].
    pub async fn bind(
        socket: Option<Option<PathBuf>>,
        tcp: Option<Option<SocketAddr>>,
    ) -> io::Result<Bound> {
        let unix = match socket {
            Some(Some(path)) => Some(Some(listen::bind_unix(&path).await?)),
            Some(None) => Some(None),
            None => None,
        };
        let tcp = match tcp {
            Some(Some(addr)) => match TcpListener::bind(addr).await {
                Ok(listener) => Some(Some(listener)),
                Err(e) => {
                    if let Some(Some((_, file))) = &unix {
                        file.remove();
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {addr}: {e}"),
                    ));
                }
            },
            Some(None) => Some(None),
            None => None,
        };
        Ok(Bound { socket: unix, tcp })
    }

    /// Serves the listeners of `bound` in place of the old ones (whose
    /// connections finish their requests; a replaced socket file is removed).
    pub fn serve(&mut self, bound: Bound) {
        if let Some(unix) = bound.socket {
            self.serve_socket(unix);
        }
        if let Some(tcp) = bound.tcp {
            self.serve_tcp(tcp);
        }
    }

    fn serve_socket(&mut self, unix: Option<(UnixListener, SocketFile)>) {
        if let Some(task) = self.socket_task.take() {
            task.abort();
        }
        if let Some(old) = self.socket.take() {
            if unix
                .as_ref()
                .is_none_or(|(_, new)| new.path() != old.path())
            {
                old.remove();
            }
        }
        if let Some((listener, file)) = unix {
            self.socket = Some(file);
            self.socket_task = Some(tokio::spawn(accept_loop(
                Listener::Unix(listener),
                self.shared.clone(),
                self.closed_rx.clone(),
            )));
        }
    }

    fn serve_tcp(&mut self, tcp: Option<TcpListener>) {
        if let Some(task) = self.tcp_task.take() {
            task.abort();
        }
        self.tcp_addr = None;
        if let Some(listener) = tcp {
            self.tcp_addr = listener.local_addr().ok();
            self.tcp_task = Some(tokio::spawn(accept_loop(
                Listener::Tcp(listener),
                self.shared.clone(),
                self.closed_rx.clone(),
            )));
        }
    }
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

//! One connection's life: hyper HTTP/1.1 over it within the limits of SPEC §8, then a
//! graceful close.
//!
//! - A request must arrive within the request timeout: hyper's header read timeout
//!   closes a connection whose head is late (idle keep-alive time counts, so idle
//!   connections close after it too), and the body must be complete within the same
//!   time, counted from when the connection was ready for that request (408).
//! - A connection lives at most `max_connection_age`: then it is asked to close after
//!   its current request, and closed for good a request timeout later (this bounds
//!   clients that stop reading).
//! - A newcomer may take its slot while it waits on its client (see [`super::slots`]).
//! - When the exchange is over the connection is not just dropped: closing a socket
//!   with unread input makes the kernel send a reset, and a reset destroys an answer
//!   the client has not read yet. An early answer (404, 401, 413 to a client still
//!   sending its body) would then never arrive. So the server sends FIN after the last
//!   answer and reads and drops what still comes, until the client closes or
//!   [`LINGER`] passes.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::auth::Transport;
use super::routes::{self, Body};
use super::slots::Slot;
use super::state::{Shared, MAX_BODY_BYTES, MAX_HEAD_BYTES};
use crate::nosigpipe::{NoSigPipe, Socket};

/// How long a closing connection reads what its client still sends.
const LINGER: Duration = Duration::from_secs(2);
/// How much it reads at most meanwhile: a request body and then some.
const LINGER_BYTES: usize = 4 * MAX_BODY_BYTES;

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// Serves one connection until the client closes it, a limit ends it, a newcomer takes
/// its slot, or the server is closed. Dropping the slot frees it.
pub async fn serve<S>(
    stream: NoSigPipe<S>,
    transport: Transport,
    shared: Arc<Shared>,
    slot: Slot,
    mut closed: watch::Receiver<()>,
) where
    S: Socket + Send + 'static,
{
    let limits = shared.limits.clone();
    let slot = Arc::new(slot);
    let service = {
        let slot = slot.clone();
        service_fn(move |req: Request<Incoming>| -> Answer {
            let shared = shared.clone();
            let slot = slot.clone();
            Box::pin(async move {
                let deadline = slot.start_work() + shared.limits.request_timeout;
                let response = routes::handle(req, transport, &shared, deadline).await;
                slot.finish_work();
                Ok(response)
            })
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let mut conn = builder.serve_connection(TokioIo::new(stream), service);
    let too_old = tokio::time::sleep(limits.max_connection_age);
    tokio::pin!(too_old);
    let aged = tokio::select! {
        _ = poll_fn(|cx| conn.poll_without_shutdown(cx)) => false,
        _ = closed.changed() => return,
        _ = slot.evicted() => return,
        _ = &mut too_old => true,
    };
    if aged {
        Pin::new(&mut conn).graceful_shutdown();
        tokio::select! {
            _ = poll_fn(|cx| conn.poll_without_shutdown(cx)) => {}
            _ = closed.changed() => return,
            _ = slot.evicted() => return,
            _ = tokio::time::sleep(limits.request_timeout) => return,
        }
    }
    let io = conn.into_parts().io.into_inner();
    tokio::select! {
        _ = linger(io) => {}
        _ = closed.changed() => {}
        _ = slot.evicted() => {}
    }
}

/// Sends FIN, then reads and drops the client's input until it closes, [`LINGER`]
/// passes or [`LINGER_BYTES`] came, so that closing sends no reset.
async fn linger<S: Socket>(mut io: NoSigPipe<S>) {
    if io.shutdown().await.is_err() {
        return;
    }
    let mut buf = [0u8; 8192];
    let mut left = LINGER_BYTES;
    let drain = async {
        while let Ok(n @ 1..) = io.read(&mut buf).await {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

//! What the server, the routes and the metrics share: the context the runtime hands
//! in, the limits of SPEC §8, and the log pipeline's side of the API. Kept apart from
//! [`super::server`] so that the routes and metrics need not import the server that
//! calls them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::model::{ControlRequest, Snapshot};
use crate::log::net::SinkCounts;
use crate::log::Reopened;

/// The largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The largest request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the server reads and where it sends commands.
pub struct ApiContext {
    /// The latest state, published by the runtime.
    pub snapshot: watch::Receiver<Snapshot>,
    /// Commands; the runtime answers each on its oneshot.
    pub control: mpsc::Sender<ControlRequest>,
    /// Recent records and counters, provided by the log writer.
    pub logs: Arc<dyn LogSource>,
    /// The bearer token for TCP (see [`super::pick_token`]).
    pub token: Option<String>,
}

impl fmt::Debug for ApiContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiContext")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The log pipeline's side of the API. Called on the runtime thread: keep it quick
/// (a short lock, no I/O).
pub trait LogSource: Send + Sync {
    /// The last `n` records of `daemon`, oldest first, each one JSON object.
    fn recent(&self, daemon: &str, n: usize) -> Vec<String>;
    fn counters(&self) -> LogCounters;
    /// The network handlers' counters (`forward`, `syslog`); none by default.
    fn net_sinks(&self) -> Vec<SinkCounts> {
        Vec::new()
    }
    /// The same counters for the writer's own sinks (`stdout` or `stderr`,
    /// `file`); none by default.
    fn local_sinks(&self) -> Vec<SinkCounts> {
        Vec::new()
    }
    /// Asks the log writer to close and reopen the log file (for logrotate);
    /// the answer comes on the receiver. `None`: this source has no writer
    /// to ask.
    fn reopen(&self) -> Option<oneshot::Receiver<Reopened>> {
        None
    }
}

/// The log writer keeps the recent records and the counters.
impl LogSource for crate::log::LogHandle {
    fn recent(&self, daemon: &str, n: usize) -> Vec<String> {
        crate::log::LogHandle::recent(self, daemon, n)
    }

    fn counters(&self) -> LogCounters {
        LogCounters {
            per_daemon: self.daemon_counters(),
            sink_errors: self.sink_error_counts(),
        }
    }

    fn net_sinks(&self) -> Vec<SinkCounts> {
        self.net_sink_counts()
    }

    fn local_sinks(&self) -> Vec<SinkCounts> {
        self.local_sink_counts()
    }

    fn reopen(&self) -> Option<oneshot::Receiver<Reopened>> {
        Some(self.request_reopen())
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCounters {
    /// Daemon name, records, bytes.
    pub per_daemon: Vec<(String, u64, u64)>,
    /// Sink name (`stdout`, `file`), errors.
    pub sink_errors: Vec<(String, u64)>,
}

/// Timeouts and limits; [`Limits::default`] is what SPEC §8 says. Shorter values are
/// for tests.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time for a whole request (head and body) to arrive.
    pub request_timeout: Duration,
    /// Time for the runtime to take and answer a command (then 503).
    pub control_timeout: Duration,
    /// Connections served at once per listener; a newcomer at the limit evicts the
    /// one that has waited on its client the longest.
    pub max_connections: usize,
    /// Then a connection is closed after its current request.
    pub max_connection_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(10),
            control_timeout: Duration::from_secs(5),
            max_connections: 64,
            max_connection_age: Duration::from_secs(60),
        }
    }
}

/// What every connection shares.
pub(crate) struct Shared {
    pub ctx: ApiContext,
    pub limits: Limits,
    /// The bearer token in force: `ctx.token` at start, then what a reload
    /// set (see [`super::ApiServer::set_token`]); read by each request.
    pub token: std::sync::RwLock<Option<String>>,
}

impl Shared {
    pub fn new(ctx: ApiContext, limits: Limits) -> Self {
        let token = std::sync::RwLock::new(ctx.token.clone());
        Shared { ctx, limits, token }
    }

    /// The token the next request is checked against.
    pub fn token(&self) -> Option<String> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

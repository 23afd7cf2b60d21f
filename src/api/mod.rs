//! The control API of SPEC §8: HTTP/1.1 (hyper) on the control socket and, when
//! `api.listen` is set, on TCP.
//!
//! It never stands in the way of supervision: every read comes from the latest
//! [`Snapshot`] the runtime published on a `watch` channel, and every command goes to
//! the runtime as a [`ControlRequest`] with a oneshot for the answer (503 when none
//! comes within 5 s). The server runs as tasks on the runtime's own current-thread
//! tokio runtime; see [`server`] for the limits and how connections are bounded.
//!
//! Wiring, for the runtime:
//! 1. create `watch::channel(Snapshot)` and `mpsc::channel::<ControlRequest>(n)`; the
//!    log writer's [`LogHandle`](crate::log::LogHandle) is the [`LogSource`];
//! 2. `api::start(socket, tcp, ApiContext { .. })` inside the runtime, with the token
//!    from [`pick_token`]; keep the [`ApiServer`] until pidzero exits (dropping it
//!    closes the listeners and connections and removes the socket file);
//! 3. after each handled event publish a new snapshot if it changed, and answer every
//!    [`ControlRequest`] promptly with a [`ControlReply`].
//!
//! The socket file is the protection of the Unix listener (mode 0600); on TCP see
//! [`auth`]. No environment value is in any answer: the model has no field for one.

pub mod auth;
mod connection;
mod listen;
pub mod metrics;
pub mod model;
mod routes;
pub mod server;
mod slots;
mod state;

pub use auth::pick_token;
pub use model::{
    ControlCommand, ControlReply, ControlRequest, DaemonInfo, JobInfo, JobRun, LastExit, ReadyInfo,
    ReloadAnswer, Snapshot,
};
pub use routes::{DEFAULT_LOG_LINES, MAX_LOG_LINES};
pub use server::{start, start_with_limits, ApiServer};
pub use state::{ApiContext, Limits, LogCounters, LogSource, MAX_BODY_BYTES, MAX_HEAD_BYTES};

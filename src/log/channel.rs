//! What travels from the senders of records ([`super::handle`]) to the
//! writer thread ([`super::writer`]): the messages on the channel between
//! them and the number of line batches allowed in flight.
//!
//! Both ends depend on these types, so they live apart from either end:
//! the sender needs no part of the writer, and the writer no more of the
//! sender than the handle it gives out.

use std::sync::Arc;

use super::record::{EventRecord, LineBatch};
use crate::config::SinkSet;

/// Line batches allowed in flight (queued or being written) at once: the
/// permits of the back-pressure semaphore.
pub const BATCHES_IN_FLIGHT: usize = 4;

/// One message to the writer thread, taken in the order sent.
pub(super) enum Message {
    Records(Chunk),
    /// A batch of daemon lines holding a permit, sent unformatted for the
    /// writer to format itself (see [`super::LogHandle::send_lines`]).
    Lines {
        batch: LineBatch,
        sinks: SinkSet,
    },
    /// Close the file sink and open its path again (after what came
    /// before is written); the answer says what was reopened.
    Reopen(tokio::sync::oneshot::Sender<Reopened>),
    /// Take new settings (a reload of `config.json`), after what came
    /// before is written: see [`Applied`].
    Apply(Box<Applied>),
    /// Write what came before, close the sinks and stop.
    Finish,
}

/// Formatted records for the sinks: whole lines, each ending in `\n`.
pub(super) struct Chunk {
    pub bytes: Vec<u8>,
    /// The sinks that take these records (the daemon's `sinks`, less the
    /// stream sink for what quiet mode keeps off it).
    pub sinks: SinkSet,
    /// A batch of daemon lines holding a permit (events hold none).
    pub permit: bool,
    /// The batch the records were formatted from, for
    /// [`Recent`](super::recent::Recent): the writer hands every batch to it
    /// as it takes them, so that they are kept in the order sent whoever
    /// formatted them.
    pub batch: Option<LineBatch>,
    /// The event the records were formatted from, when network handlers
    /// need it in their own formats (see [`super::net`]).
    pub event: Option<Arc<EventRecord>>,
}

/// New log settings for the writer (see [`super::LogHandle::apply`]): the
/// format of what it formats itself, and the file and stream sinks. The
/// file is always opened again (a new path, new rotation limits, or the
/// same path after logrotate moved it); the network handlers keep the
/// settings they started with.
pub(super) struct Applied {
    pub settings: crate::config::LogSettings,
    /// pidzero's own events as plain lines (see `Routing::plain_events`).
    pub plain_events: bool,
    /// The stream sink takes records (stdout on, not quiet): in quiet mode
    /// the stream sink (stderr) stays as it is.
    pub stream: Option<bool>,
    pub reply: tokio::sync::oneshot::Sender<Reopened>,
}

/// What a request to reopen the log file did (see [`super::LogHandle::reopen`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reopened {
    /// The file at this path was closed and opened again.
    File(std::path::PathBuf),
    /// There is no file sink (`log.log_to_file` is false).
    NoFile,
    /// The path could not be opened again; the sink retries with the next
    /// records, as after any failed open.
    Failed {
        path: std::path::PathBuf,
        error: String,
    },
}

/// Records one sink never got: those of its failed writes. Here, beside
/// the other types the writer and the senders share, because the network
/// handlers report theirs too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkLoss {
    pub sink: &'static str,
    /// Every record of a failed write (while a FIFO had no reader, the disk
    /// was full, stdout was closed, ...).
    pub dropped: u64,
    /// Of those, the records given up at exit.
    pub given_up: u64,
}

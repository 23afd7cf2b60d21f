//! What travels from the senders of records ([`super::handle`]) to the
//! writer thread ([`super::writer`]): the messages on the channel between
//! them and the number of line batches allowed in flight.
//!
//! Both ends depend on these types, so they live apart from either end:
//! the sender needs no part of the writer, and the writer no more of the
//! sender than the handle it gives out.

use std::sync::Arc;

use super::record::{EventRecord, LineBatch};

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
        to_stream: bool,
    },
    /// Write what came before, close the sinks and stop.
    Finish,
}

/// Formatted records for the sinks: whole lines, each ending in `\n`.
pub(super) struct Chunk {
    pub bytes: Vec<u8>,
    /// Also for the stream sink (every chunk goes to the file).
    pub to_stream: bool,
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

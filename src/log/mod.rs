//! The log pipeline: pipe bytes → framer (lines) → formatted where they were
//! read, or by the writer when it has nothing queued → bounded channel → one
//! writer thread that writes the formatted batches to every enabled sink.
//!
//! - [`reader::pump`]: one task per daemon pipe; one timestamp per read.
//! - [`framer::Framer`]: bytes → lines, cut at `max_line_bytes`.
//! - [`handle`]: [`LogHandle`] formats records and sends them on.
//! - [`writer`]: the thread owning the sinks; one `writev` per sink a round.
//! - [`format`](mod@format): one record → one line of JSON, map, logfmt or text.
//! - [`sink`]: raw stdout/stderr fd, and the rotated file.
//! - [`recent`]: counters and the last records of each source, for the API.
//! - [`pool`]: read and output buffers handed back for reuse.
//!
//! Back-pressure: line batches take a permit from a semaphore before they are
//! formatted and queued, and the writer returns it once it has taken the
//! batch into a round of writes, so a slow sink makes the pipe readers wait
//! (and so the daemons), never grows memory, and never blocks the control
//! loop. Event records from pidzero itself take no permit: they are few, and
//! the control loop must never wait for a sink.
//!
//! Memory bound, with `P` = [`writer::BATCHES_IN_FLIGHT`] (6), `R` =
//! [`reader::READ_BYTES`] (64 KiB), `M` = `max_line_bytes` (16 KiB by
//! default) and `F` = the formatted size of one read, at most `6 × (R + M)`
//! (JSON escapes a control byte as six) and about twice `R + M` for text:
//! - batches queued: `P × (R + M + 1 + F)`: each holds its read buffer (the
//!   writer hands it to the recent-records ring as it takes the batch) and
//!   its formatted records, unless it is left for the writer to format; the
//!   round being written: under [`writer::DRAIN_BYTES`] (256 KiB) `+ F`;
//! - buffers kept for reuse: at most 8 read buffers (`R + M + 1`) and 8
//!   formatted ones of at most 256 KiB ([`pool`]);
//! - each pipe: the buffer being read into, `R + M + 1`, plus a carry of at
//!   most `M + 1`;
//! - events are not bounded by permits, but only the supervisor sends them;
//! - per daemon, for the control API: its last 1,000 lines in the batches
//!   they were read into, at most [`recent::RECENT_BYTES`] (384 KiB) of
//!   buffers and spans (counted by capacity); pidzero's own last 1,000
//!   events, at most 384 KiB of JSON.
//!
//! With the defaults: under 2 MiB in flight for text (about 4 MiB for binary
//! garbage, counting buffer capacities), at most 2.6 MiB of spare buffers,
//! 96 KiB per pipe and 384 KiB per daemon, whatever the daemons write.

pub mod format;
pub mod framer;
pub mod handle;
pub mod pool;
pub mod reader;
pub mod recent;
pub mod record;
pub mod sink;
pub mod writer;

pub use framer::Framer;
pub use handle::LogHandle;
pub use reader::pump;
pub use record::{
    timestamp_now, EventRecord, FieldValue, Level, LineBatch, LineSpan, Stream, Timestamp,
};
pub use writer::{start, LogWriter, WriterOptions};

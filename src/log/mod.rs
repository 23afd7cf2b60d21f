//! The log pipeline: pipe bytes → framer (lines) → bounded channel → one writer
//! thread that formats whole records and writes them to every enabled sink.
//!
//! - [`reader::pump`]: one task per daemon pipe; one timestamp per read.
//! - [`framer::Framer`]: bytes → lines, cut at `max_line_bytes`.
//! - [`writer`]: the thread owning the sinks; [`LogHandle`] sends to it.
//! - [`format`]: one record → one line of JSON, map, logfmt or text.
//! - [`sink`]: raw stdout/stderr fd, and the rotated file.
//!
//! Back-pressure: line batches take a permit from a semaphore before they are
//! queued and the writer returns it once the batch is written, so a slow sink
//! makes the pipe readers wait (and so the daemons), never grows memory, and
//! never blocks the control loop. Event records from pidzero itself take no
//! permit: they are few, and the control loop must never wait for a sink.
//!
//! Memory bound, with `P` = [`writer::BATCHES_IN_FLIGHT`] (16), `R` =
//! [`reader::READ_BYTES`] (64 KiB) and `M` = `max_line_bytes` (16 KiB by
//! default):
//! - batches queued or being written: `P × (R + M)` bytes of line data
//!   (a batch holds one read plus the carried start of its first line);
//! - each pipe: the buffer of the batch being read, `R + M + 1`, plus a
//!   carry of at most `M + 1`;
//! - the writer's output buffers: about [`writer::DRAIN_BYTES`] per sink, plus
//!   the formatted size of the last batch taken (JSON escaping can grow a
//!   line up to six times), so at most `DRAIN_BYTES + 6 × (R + M)` per sink;
//! - events are not bounded by permits, but only the supervisor sends them;
//! - per source (each daemon, and `pidzero`), the counters and the last
//!   1,000 records as JSON for the control API: at most
//!   [`recent::RECENT_BYTES`] (256 KiB) plus 4 KiB of lengths each.
//!
//! With the defaults that is about 1.3 MiB in flight, 80 KiB per pipe and
//! under 1 MiB per sink, whatever the daemons write.

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

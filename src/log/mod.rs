//! The log pipeline: pipe bytes → framer (lines) → formatted where they were
//! read, or by the writer when it has nothing queued → bounded channel → one
//! writer thread that writes the formatted batches to every enabled sink.
//!
//! - [`reader::pump`]: one task per daemon pipe; one timestamp per read.
//! - [`framer::Framer`]: bytes → lines, cut at `max_line_bytes`.
//! - [`handle`]: [`LogHandle`] formats records and sends them on.
//! - [`channel`]: the messages from the senders to the writer thread.
//! - [`writer`]: the thread owning the sinks; one `writev` per sink a round.
//! - [`format`](mod@format): one record → one line of JSON, map, logfmt or text.
//! - [`object`]: `"parse": "json"`: is a line one JSON object, and its level.
//! - [`scan`]: the byte scans (newlines, bytes to escape), scalar and SIMD.
//! - [`sink`]: raw stdout/stderr fd, and the rotated file.
//! - [`compress`]: `log.compress`: gzip of rotated files on a thread that
//!   exists only while there is a file to compress.
//! - [`net`]: the network handlers (`log.forward`, `log.syslog`), each on
//!   its own thread behind a bounded queue that drops its oldest records:
//!   they are the one place where records may be dropped, so that stdout
//!   and the file stay lossless and never wait for a network receiver.
//! - [`recent`]: counters and the last records of each source, for the API.
//! - [`pool`]: read and output buffers handed back for reuse.
//!
//! Routing: each batch carries its daemon's `sinks` and `parse`
//! ([`crate::config::LineRoute`], given to the readers by
//! [`LogHandle::for_daemon`]), and each formatted chunk the set of sinks
//! that take it ([`crate::config::SinkSet`], a bitmask): a sink writes the
//! chunks whose set holds its kind. Events go to every sink.
//!
//! Reopen (for logrotate): [`LogHandle::reopen`] queues a request behind
//! the records sent before it; the writer writes those, then closes and
//! reopens the file, and answers. Nobody but the asker waits.
//!
//! Back-pressure: line batches take a permit from a semaphore before they are
//! formatted and queued, and the writer returns it once it has taken the
//! batch into a round of writes, so a slow sink makes the pipe readers wait
//! (and so the daemons), never grows memory, and never blocks the control
//! loop. Event records from pidzero itself take no permit: they are few, and
//! the control loop must never wait for a sink. Taking no permit, they
//! could overtake lines still in a pipe or waiting for a permit; so the
//! runtime holds a reaped daemon's `exited` record (and the records after
//! it) until that daemon's readers have handed over what their pipes held
//! (see `runtime::outbox` and [`reader::Flusher`]).
//!
//! Memory bound, with `P` = [`channel::BATCHES_IN_FLIGHT`] (4), `R` =
//! [`reader::READ_BYTES`] (64 KiB), `M` = `max_line_bytes` (16 KiB by
//! default), `L` = [`reader::BATCH_LINES`] (1,024: a read with more lines is
//! sent as several batches) and `F` = the formatted size of one batch: its
//! bytes at most six times over (JSON escapes a control byte as six), plus
//! the fields of each of its at most `L` records (about 100 bytes and the
//! daemon's name in JSON), so `F ≤ 6 × (R + M) + L × (100 + name)`, and about
//! twice `R + M` for text lines of 100 bytes:
//! - batches queued: `P × (R + M + 1 + 12 × L + F)`: each holds its read
//!   buffer and spans (the writer hands them to the recent-records ring as it
//!   takes the batch) and its formatted records, unless it is left for the
//!   writer to format; the round being written: under
//!   [`writer::DRAIN_BYTES`] (256 KiB) `+ F`;
//! - buffers kept for reuse: at most 8 read buffers (`R + M + 1`) and 8
//!   formatted ones of at most 256 KiB ([`pool`]);
//! - each pipe: the buffer being read into, `R + M + 1`, plus a carry of at
//!   most `M + 1`; a read of more than `L` lines also holds its spans, 12
//!   bytes a line, and is cut into pieces that wait for their permits: up to
//!   about 1.6 MiB for one read of 64 KiB of empty lines, after which the
//!   pipe's reads are smaller (see [`reader::BATCH_LINES`]);
//! - events are not bounded by permits, but only the supervisor sends them;
//! - per network handler: its queue, at most `buffer_records` records and
//!   `buffer_bytes` (8 MiB by default) of the reads they come from, plus
//!   one round being sent (256 KiB of records taken from the queue, and
//!   those formatted; see [`net`]);
//! - per daemon, for the control API: its last 1,000 lines in the batches
//!   they were read into, at most [`recent::RECENT_BYTES`] (384 KiB) of
//!   buffers and spans (counted by capacity); pidzero's own last 1,000
//!   events, at most 384 KiB of JSON.
//!
//! With the defaults: under 1.5 MiB in flight for lines of 100 bytes, under
//! 4 MiB whatever the daemons write (binary garbage, empty lines), at most
//! 2.6 MiB of spare buffers, 96 KiB per pipe (about 1.6 MiB, once, for a
//! pipe that turns to empty lines) and 384 KiB per daemon.

pub mod channel;
pub mod compress;
pub mod format;
pub mod framer;
pub mod handle;
pub mod net;
pub mod object;
pub mod pool;
pub mod reader;
pub mod recent;
pub mod record;
pub mod scan;
pub mod sink;
pub mod writer;

pub use channel::Reopened;
pub use framer::Framer;
pub use handle::LogHandle;
pub use reader::pump;
pub use record::{
    timestamp_now, EventRecord, FieldValue, Level, LineBatch, LineSpan, Stream, Timestamp,
};
pub use writer::{start, LogWriter, WriterOptions};

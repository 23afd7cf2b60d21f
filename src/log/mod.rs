//! The log pipeline: pipe bytes → framer (lines) → bounded channel → one writer
//! thread that formats whole records and writes them to every enabled sink.
//!
//! Back-pressure: line batches take a permit from a semaphore before they are
//! queued and the writer returns it once the batch is written, so a slow sink
//! makes the pipe readers wait (and so the daemons), never grows memory, and
//! never blocks the control loop. Event records from pidzero itself take no
//! permit: they are few, and the control loop must never wait for a sink.

pub mod record;
pub mod format;
pub mod framer;
pub mod sink;
pub mod writer;
pub mod reader;

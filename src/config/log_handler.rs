//! What every network log handler's settings share (`log.forward`,
//! `log.syslog`, `log.loki`, `log.otlp`): the message format, the queue's
//! bounds and how they are read, and `host:port` text. Its own module so
//! that the handlers' modules depend on it, not on each other.

use super::json::{self, Fields, Report};
use super::LogFormat;

/// Records a network handler queues while its receiver is away or slow.
pub const DEFAULT_BUFFER_RECORDS: usize = 10_000;
/// Bytes of queued records (their text, before formatting) a handler keeps at most.
pub const DEFAULT_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// The most a handler may queue: beyond, the bound on pidzero's memory means little.
pub const MAX_BUFFER_RECORDS: u64 = 10_000_000;
pub const MAX_BUFFER_BYTES: u64 = 1024 * 1024 * 1024;

/// `host:port`, with an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What a handler sends as each record's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFormat {
    /// The line alone (an event's `line`): the syslog header already says
    /// who, when and how severe.
    Line,
    Record(LogFormat),
}

pub(super) const MESSAGE_FORMATS: &[(&str, MessageFormat)] = &[
    ("line", MessageFormat::Line),
    ("json", MessageFormat::Record(LogFormat::Json)),
    ("map", MessageFormat::Record(LogFormat::Map)),
    ("logfmt", MessageFormat::Record(LogFormat::Logfmt)),
    ("text", MessageFormat::Record(LogFormat::Text)),
];

/// `buffer_records` (at least 1) and `buffer_bytes` (at least 64 KiB, so
/// that one long line always fits).
pub(super) fn read_buffer(report: &mut Report, fields: &Fields, prefix: &str) -> (usize, usize) {
    let mut records = DEFAULT_BUFFER_RECORDS;
    let mut bytes = DEFAULT_BUFFER_BYTES;
    if let Some(raw) = fields.get("buffer_records") {
        let field = format!("{prefix}.buffer_records");
        match json::integer(report, raw, &field, MAX_BUFFER_RECORDS) {
            Some(0) => report.at(raw, &field, "must be at least 1"),
            Some(n) => records = usize::try_from(n).unwrap_or(DEFAULT_BUFFER_RECORDS),
            None => {}
        }
    }
    if let Some(raw) = fields.get("buffer_bytes") {
        let field = format!("{prefix}.buffer_bytes");
        match json::integer(report, raw, &field, MAX_BUFFER_BYTES) {
            Some(n) if n < 65_536 => report.at(raw, &field, "must be at least 65536"),
            Some(n) => bytes = usize::try_from(n).unwrap_or(DEFAULT_BUFFER_BYTES),
            None => {}
        }
    }
    (records, bytes)
}

//! What travels from the readers and the supervisor to the writer thread.

use std::sync::Arc;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    Event,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Event => "event",
        }
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-28T14:09:00.123Z` (always 24 bytes).
pub type Timestamp = [u8; 24];

/// The current time as a [`Timestamp`].
pub fn timestamp_now() -> Timestamp {
    let mut out = [b'0'; 24];
    let text = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let bytes = text.as_bytes();
    let n = bytes.len().min(24);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A value of an extra event field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// A record of pidzero's own (`source: "pidzero"`, `stream: "event"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub timestamp: Timestamp,
    pub level: Level,
    /// One of the event names of the spec (`starting`, `exited`, `vital_exit`, …).
    pub event: &'static str,
    /// Extra fields in output order, between `event` and `line` (e.g. `daemon`, `status`).
    pub fields: Vec<(&'static str, FieldValue)>,
    pub line: String,
}

/// One line inside a [`LineBatch`]'s `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSpan {
    pub start: u32,
    pub end: u32,
    /// A piece of a line longer than `max_line_bytes` that is not its last piece.
    pub partial: bool,
}

/// The lines of one read from one daemon stream: one timestamp, one buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineBatch {
    pub source: Arc<str>,
    pub stream: Stream,
    pub timestamp: Timestamp,
    pub data: Vec<u8>,
    pub lines: Vec<LineSpan>,
}

impl LineBatch {
    pub fn line(&self, span: LineSpan) -> &[u8] {
        &self.data[span.start as usize..span.end as usize]
    }
}

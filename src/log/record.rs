//! What travels from the readers and the supervisor to the writer thread.

use std::sync::Arc;

use crate::config::LineRoute;

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
///
/// Allocation-free: it is taken once per pipe read on the hot path.
pub fn timestamp_now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_timestamp(since_epoch.as_secs(), since_epoch.subsec_millis())
}

/// Formats `secs` since the Unix epoch plus `millis` as a [`Timestamp`].
///
/// Civil-date arithmetic after Howard Hinnant's `civil_from_days`, so no
/// allocation and no dependency on the time zone database. Years past 9999
/// wrap to four digits (a record format cannot grow for them).
pub fn format_timestamp(secs: u64, millis: u32) -> Timestamp {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut out[0..4], year);
    put_digits(&mut out[5..7], month);
    put_digits(&mut out[8..10], day);
    put_digits(&mut out[11..13], rem / 3600);
    put_digits(&mut out[14..16], rem % 3600 / 60);
    put_digits(&mut out[17..19], rem % 60);
    put_digits(&mut out[20..23], u64::from(millis.min(999)));
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Writes the low `out.len()` decimal digits of `value`, zero-padded.
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Fatal => "fatal",
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
    /// The daemon's `sinks` and `parse`: which sinks take these lines, and
    /// whether a line that is a JSON object is carried as one.
    pub route: LineRoute,
    /// The first line starts with the rest of a line cut at
    /// `max_line_bytes` in an earlier batch (see [`LineBatch::continued`]).
    pub continues: bool,
}

impl LineBatch {
    /// An empty batch for one read of `source`'s `stream`, stamped `timestamp`.
    pub fn new(source: Arc<str>, stream: Stream, timestamp: Timestamp) -> Self {
        LineBatch {
            source,
            stream,
            timestamp,
            data: Vec::new(),
            lines: Vec::new(),
            route: LineRoute::default(),
            continues: false,
        }
    }

    /// True when `span` is not the start of a line but the rest of one cut
    /// at `max_line_bytes` (its last piece, which is not `partial`): such a
    /// piece is never parsed as a JSON object, it is not one line's text.
    ///
    /// Every line but a continued one starts just after a `\n`, or at the
    /// start of the batch; so one byte tells, with [`LineBatch::continues`]
    /// for the first.
    pub fn continued(&self, span: LineSpan) -> bool {
        match span.start {
            0 => self.continues,
            start => self.data[start as usize - 1] != b'\n',
        }
    }

    pub fn line(&self, span: LineSpan) -> &[u8] {
        &self.data[span.start as usize..span.end as usize]
    }

    /// True when the batch holds no line (nothing to send to the writer).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The batch cut into batches of at most `max` lines (at least 1), in
    /// order. The first keeps this batch's buffer; each other one gets a copy
    /// of its own lines' bytes, so every byte is copied at most once.
    ///
    /// Why: each record adds its fields to the line, so the formatted size of
    /// a batch grows with its lines, not only with its bytes. A read of 64 KiB
    /// of empty lines is 65,536 records, over 5 MiB of JSON; cut into pieces,
    /// each one is formatted and queued under its own permit, and the memory
    /// in flight stays bounded whatever the lines.
    pub fn into_pieces(mut self, max: usize) -> Vec<LineBatch> {
        let max = max.max(1);
        let mut pieces = Vec::new();
        while self.lines.len() > max {
            // The last piece: from the last multiple of `max` on.
            let spans = self.lines.split_off((self.lines.len() - 1) / max * max);
            let (base, end) = (spans[0].start, spans[spans.len() - 1].end);
            let continues = self.continued(spans[0]);
            pieces.push(LineBatch {
                route: self.route,
                continues,
                source: Arc::clone(&self.source),
                stream: self.stream,
                timestamp: self.timestamp,
                data: self.data[base as usize..end as usize].to_vec(),
                lines: spans
                    .into_iter()
                    .map(|span| LineSpan {
                        start: span.start - base,
                        end: span.end - base,
                        partial: span.partial,
                    })
                    .collect(),
            });
        }
        if !pieces.is_empty() {
            // This batch keeps its own lines' bytes, and the list had room
            // for every line of the read.
            let end = self.lines.last().map_or(0, |span| span.end);
            self.data.truncate(end as usize);
            self.lines.shrink_to_fit();
        }
        pieces.push(self);
        pieces.reverse();
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamp_matches_humantime() {
        let samples = [
            0u64,
            86_399,
            951_782_400,   // 2000-02-29
            1_709_251_199, // 2024-02-29T23:59:59
            1_798_000_000,
            4_102_444_800, // 2100-01-01
            253_402_300_799,
        ];
        for secs in samples {
            for millis in [0u32, 7, 123, 999] {
                let t =
                    UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis.into());
                let expected = humantime::format_rfc3339_millis(t).to_string();
                let got = format_timestamp(secs, millis);
                assert_eq!(std::str::from_utf8(&got).unwrap(), expected, "secs={secs}");
            }
        }
    }

    /// Pieces hold every line of the batch, in order, with their partial
    /// marks, at most `max` each; only the first keeps the buffer.
    #[test]
    fn pieces_keep_every_line_in_order() {
        let text = b"a\n\nbc\r\ndefghij\n\r\nk\nlmnopqrstu\n\n\nv";
        for max in 1..6 {
            let mut batch =
                LineBatch::new("s".into(), Stream::Stdout, *b"2026-11-28T14:09:00.123Z");
            let mut framer = crate::log::Framer::new(4);
            framer.push(text, &mut batch);
            framer.finish(&mut batch);
            let expected: Vec<(Vec<u8>, bool)> = batch
                .lines
                .iter()
                .map(|&span| (batch.line(span).to_vec(), span.partial))
                .collect();
            let buffer = batch.data.as_ptr();
            let pieces = batch.into_pieces(max);
            assert_eq!(pieces.len(), expected.len().div_ceil(max), "max {max}");
            assert_eq!(
                pieces[0].data.as_ptr(),
                buffer,
                "the first keeps the buffer"
            );
            assert!(pieces[0].lines.capacity() <= max, "max {max}: spans kept");
            let mut got = Vec::new();
            for piece in &pieces {
                assert!(!piece.is_empty() && piece.lines.len() <= max, "max {max}");
                // Each piece holds its own lines' bytes, no more.
                let (first, last) = (piece.lines[0], piece.lines[piece.lines.len() - 1]);
                assert_eq!(first.start, 0, "max {max}");
                assert_eq!(piece.data.len(), last.end as usize, "max {max}");
                assert_eq!(
                    (&*piece.source, piece.timestamp),
                    ("s", *b"2026-11-28T14:09:00.123Z")
                );
                got.extend(
                    piece
                        .lines
                        .iter()
                        .map(|&span| (piece.line(span).to_vec(), span.partial)),
                );
            }
            assert_eq!(got, expected, "max {max}");
        }
    }

    #[test]
    fn timestamp_now_is_well_formed() {
        let now = timestamp_now();
        let text = std::str::from_utf8(&now).unwrap();
        assert!(humantime::parse_rfc3339(text).is_ok(), "{text}");
    }
}

//! Formatting one record as one line of output, in each of the four formats.
//!
//! Pure functions that append to a caller's buffer, so the writer thread can
//! format a whole batch into one buffer and write it with one syscall.
//!
//! Keys always come in the order of the spec: `timestamp`, `source`, `stream`,
//! then for events `level`, `event` and the extra fields, then `line`, then
//! `partial` (only on the pieces of a cut line that are not the last).
//!
//! Line bytes may be any bytes: invalid UTF-8 becomes U+FFFD (one per maximal
//! invalid sequence, as [`String::from_utf8_lossy`] does) in every format, and
//! no format ever lets a control character break a record over two lines.
//!
//! - `json`: standard JSON string escaping (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
//!   `\f`, other C0 controls as `\u00XX`); numbers and booleans unquoted.
//! - `logfmt`: a value is quoted when it is empty or holds a space, `=`, `"`,
//!   `\` or a C0 control; inside quotes it is escaped exactly as in JSON.
//! - `map` and `text`: meant for people, so text is kept as written except the
//!   characters that would break the line or drive a terminal: C0 controls
//!   other than tab, and DEL, become `\n`, `\r`, `\b`, `\f` or `\u00XX`.
//!   A backslash is left alone, so this escaping is not reversible; use
//!   `json` or `logfmt` when a machine reads the logs.

use super::object::{self, JsonObject};
use super::record::{EventRecord, FieldValue, LineBatch, LineSpan, Stream, Timestamp};
use super::scan;
use crate::config::{LineParse, LogFormat};

/// One daemon line, borrowed from a [`LineBatch`].
#[derive(Debug, Clone, Copy)]
pub struct LineRecord<'a> {
    pub timestamp: &'a Timestamp,
    pub source: &'a str,
    pub stream: Stream,
    pub line: &'a [u8],
    pub partial: bool,
}

/// Appends one daemon line record, ending in `\n`, to `out`.
pub fn format_line(out: &mut Vec<u8>, format: LogFormat, record: &LineRecord<'_>) {
    let keyed = match format {
        LogFormat::Json => Keyed::Json,
        LogFormat::Map => Keyed::Map,
        LogFormat::Logfmt => Keyed::Logfmt,
        LogFormat::Text => return text_line(out, record),
    };
    let mut fields = Fields::begin(out, keyed);
    fields.field("timestamp", Value::Text(record.timestamp));
    fields.field("source", Value::Text(record.source.as_bytes()));
    fields.field("stream", Value::Text(record.stream.as_str().as_bytes()));
    fields.field("line", Value::Text(record.line));
    if record.partial {
        fields.field("partial", Value::Bool(true));
    }
    fields.end();
}

/// Appends one record of pidzero's own (`source: pidzero`, `stream: event`) to `out`.
pub fn format_event(out: &mut Vec<u8>, format: LogFormat, event: &EventRecord) {
    let keyed = match format {
        LogFormat::Json => Keyed::Json,
        LogFormat::Map => Keyed::Map,
        LogFormat::Logfmt => Keyed::Logfmt,
        LogFormat::Text => return text_event(out, event),
    };
    let mut fields = Fields::begin(out, keyed);
    fields.field("timestamp", Value::Text(&event.timestamp));
    fields.field("source", Value::Text(b"pidzero"));
    fields.field("stream", Value::Text(Stream::Event.as_str().as_bytes()));
    fields.field("level", Value::Text(event.level.as_str().as_bytes()));
    fields.field("event", Value::Text(event.event.as_bytes()));
    for (key, value) in &event.fields {
        fields.field(key, Value::from(value));
    }
    fields.field("line", Value::Text(event.line.as_bytes()));
    fields.end();
}

/// Appends every line of `batch` to `out`; returns the number of records.
///
/// The hot path: everything before the line text (timestamp, source,
/// stream) is the same for the whole batch, so it is formatted once and
/// copied before each line; the line itself goes through the escaping fast
/// path. The output is byte for byte what [`format_line`] gives, for lines
/// as the framer makes them: a line never holds `\n` (it is what ends one),
/// so the JSON fast path may scan a batch's lines and the `\n`s between
/// them in one pass.
pub fn format_batch(out: &mut Vec<u8>, format: LogFormat, batch: &LineBatch) -> usize {
    format_spans(out, format, batch, &batch.lines, None)
}

/// [`format_batch`] for some of the batch's `spans`; when `ends` is given, the
/// offset in `out` just past each record (after its `\n`) is pushed to it.
pub fn format_spans(
    out: &mut Vec<u8>,
    format: LogFormat,
    batch: &LineBatch,
    spans: &[LineSpan],
    ends: Option<&mut Vec<usize>>,
) -> usize {
    if batch.route.parse == LineParse::Json {
        return format_parsed_spans(out, format, batch, spans, ends);
    }
    format_text_spans(out, format, batch, spans, ends)
}

/// [`format_spans`] with every line a line record (no `parse`).
fn format_text_spans(
    out: &mut Vec<u8>,
    format: LogFormat,
    batch: &LineBatch,
    spans: &[LineSpan],
    mut ends: Option<&mut Vec<usize>>,
) -> usize {
    let mut head = Vec::with_capacity(128);
    let mut partial_head = Vec::new();
    match keyed(format) {
        Some(keyed) => {
            let mut fields = Fields::begin(&mut head, keyed);
            fields.field("timestamp", Value::Text(&batch.timestamp));
            fields.field("source", Value::Text(batch.source.as_bytes()));
            fields.field("stream", Value::Text(batch.stream.as_str().as_bytes()));
            fields.key("line");
            if keyed == Keyed::Json {
                head.push(b'"');
            }
        }
        None => {
            text_head(
                &mut head,
                &batch.timestamp,
                &batch.source,
                batch.stream,
                false,
            );
            text_head(
                &mut partial_head,
                &batch.timestamp,
                &batch.source,
                batch.stream,
                true,
            );
        }
    }
    // Room for every record unescaped: one allocation per batch at most.
    out.reserve(batch.data.len() + spans.len() * (head.len() + 20));
    if format == LogFormat::Json && json_plain_lines(batch, spans) {
        json_plain_records(out, &head, batch, spans, ends);
        return spans.len();
    }
    for &span in spans {
        let line = batch.line(span);
        match format {
            LogFormat::Json => {
                out.extend_from_slice(&head);
                json_escaped(out, line);
                out.extend_from_slice(if span.partial {
                    b"\",\"partial\":true}\n"
                } else {
                    b"\"}\n"
                });
            }
            LogFormat::Map => {
                out.extend_from_slice(&head);
                human_escaped(out, line);
                out.extend_from_slice(if span.partial {
                    b", partial => true}\n"
                } else {
                    b"}\n"
                });
            }
            LogFormat::Logfmt => {
                out.extend_from_slice(&head);
                logfmt_value(out, Value::Text(line));
                if span.partial {
                    out.extend_from_slice(b" partial=true");
                }
                out.push(b'\n');
            }
            LogFormat::Text => {
                out.extend_from_slice(if span.partial { &partial_head } else { &head });
                human_escaped(out, line);
                out.push(b'\n');
            }
        }
        if let Some(ends) = ends.as_deref_mut() {
            ends.push(out.len());
        }
    }
    spans.len()
}

/// [`format_spans`] for a daemon with `"parse": "json"`: each line that is
/// one JSON object (see [`object::parse_object`]) becomes an object record
/// ([`format_object`]); the runs of other lines between them go through
/// the line path of [`format_text_spans`] as usual, so a daemon that
/// writes text pays only the look at each line's first and last byte. A
/// piece of a cut line (partial, or the rest after the cuts) is never
/// parsed.
fn format_parsed_spans(
    out: &mut Vec<u8>,
    format: LogFormat,
    batch: &LineBatch,
    spans: &[LineSpan],
    mut ends: Option<&mut Vec<usize>>,
) -> usize {
    let mut run = 0;
    for (i, &span) in spans.iter().enumerate() {
        if span.partial || batch.continued(span) {
            continue;
        }
        let Some(parsed) = object::parse_object(batch.line(span)) else {
            continue;
        };
        if run < i {
            format_text_spans(out, format, batch, &spans[run..i], ends.as_deref_mut());
        }
        let record = LineRecord {
            timestamp: &batch.timestamp,
            source: &batch.source,
            stream: batch.stream,
            line: batch.line(span),
            partial: false,
        };
        format_object(out, format, &record, parsed);
        if let Some(ends) = ends.as_deref_mut() {
            ends.push(out.len());
        }
        run = i + 1;
    }
    if run < spans.len() {
        format_text_spans(out, format, batch, &spans[run..], ends);
    }
    spans.len()
}

/// Appends the record of a daemon line that is a JSON object, ending in
/// `\n`: the keys of a line record, with `level` after `stream` when the
/// object gives one, and the object in place of `line`:
/// - json: `"fields":` and the object's bytes as written (valid JSON: it
///   was parsed whole);
/// - map: `fields => ` and the object's JSON text;
/// - logfmt: each top-level member flattened as `key=value` (strings
///   unquoted as logfmt allows, numbers, `true`, `false` and `null` as
///   written, nested objects and arrays as their JSON text, quoted);
/// - text: the line as written (the level is part of it).
pub fn format_object(
    out: &mut Vec<u8>,
    format: LogFormat,
    record: &LineRecord<'_>,
    parsed: JsonObject<'_>,
) {
    let Some(keyed) = keyed(format) else {
        return text_line(out, record);
    };
    let members = match keyed {
        Keyed::Logfmt => match object::members(parsed.text) {
            Some(members) => members,
            None => return format_line(out, format, record),
        },
        Keyed::Json | Keyed::Map => Vec::new(),
    };
    let mut fields = Fields::begin(out, keyed);
    fields.field("timestamp", Value::Text(record.timestamp));
    fields.field("source", Value::Text(record.source.as_bytes()));
    fields.field("stream", Value::Text(record.stream.as_str().as_bytes()));
    if let Some(level) = parsed.level {
        fields.field("level", Value::Text(level.as_str().as_bytes()));
    }
    match keyed {
        Keyed::Json => {
            fields.key("fields");
            fields.out.extend_from_slice(parsed.text.as_bytes());
        }
        Keyed::Map => {
            fields.key("fields");
            human_escaped(fields.out, parsed.text.as_bytes());
        }
        Keyed::Logfmt => {
            for (key, raw) in members {
                fields.logfmt_member(&key, raw.get());
            }
        }
    }
    fields.end();
}

/// The keys of a record's own: an object member named so is written as
/// `fields.KEY` in logfmt (see [`Fields::logfmt_member`]).
const RECORD_KEYS: &[&str] = &[
    "timestamp",
    "source",
    "stream",
    "level",
    "line",
    "partial",
    "fields",
];

fn keyed(format: LogFormat) -> Option<Keyed> {
    match format {
        LogFormat::Json => Some(Keyed::Json),
        LogFormat::Map => Some(Keyed::Map),
        LogFormat::Logfmt => Some(Keyed::Logfmt),
        LogFormat::Text => None,
    }
}

/// A field value before formatting; text is raw bytes (made lossy UTF-8 on output).
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a [u8]),
    Int(i64),
    Bool(bool),
}

impl<'a> From<&'a FieldValue> for Value<'a> {
    fn from(value: &'a FieldValue) -> Self {
        match value {
            FieldValue::Str(s) => Value::Text(s.as_bytes()),
            FieldValue::Int(i) => Value::Int(*i),
            FieldValue::Bool(b) => Value::Bool(*b),
        }
    }
}

/// The formats that are a sequence of `key`/`value` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyed {
    Json,
    Map,
    Logfmt,
}

/// Writes the pairs of one record, handling separators and brackets.
struct Fields<'o> {
    out: &'o mut Vec<u8>,
    format: Keyed,
    first: bool,
}

impl<'o> Fields<'o> {
    fn begin(out: &'o mut Vec<u8>, format: Keyed) -> Self {
        if format != Keyed::Logfmt {
            out.push(b'{');
        }
        Fields {
            out,
            format,
            first: true,
        }
    }

    fn field(&mut self, key: &str, value: Value<'_>) {
        self.key(key);
        let out = &mut *self.out;
        match self.format {
            Keyed::Json => json_value(out, value),
            Keyed::Map => human_value(out, value),
            Keyed::Logfmt => logfmt_value(out, value),
        }
    }

    /// The separator, the key and what goes between a key and its value.
    fn key(&mut self, key: &str) {
        let out = &mut *self.out;
        match self.format {
            Keyed::Json => {
                if !self.first {
                    out.push(b',');
                }
                json_string(out, key.as_bytes());
                out.push(b':');
            }
            Keyed::Map => {
                if !self.first {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b" => ");
            }
            Keyed::Logfmt => {
                if !self.first {
                    out.push(b' ');
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b'=');
            }
        }
        self.first = false;
    }

    /// One member of a JSON object as a logfmt pair: the key with the
    /// bytes logfmt cannot hold in a key (space, `=`, `"`, controls) made
    /// `_`, and `fields.` before a key that a record has itself
    /// ([`RECORD_KEYS`]: `timestamp`, `level`, ...), so that no key is
    /// written twice; the value's JSON text `raw` unquoted when it is a
    /// string.
    fn logfmt_member(&mut self, key: &str, raw: &str) {
        let out = &mut *self.out;
        if !self.first {
            out.push(b' ');
        }
        self.first = false;
        if RECORD_KEYS.contains(&key) {
            out.extend_from_slice(b"fields.");
        }
        if key.is_empty() {
            out.push(b'_');
        }
        for &b in key.as_bytes() {
            let bad = b <= b' ' || b == b'=' || b == b'"' || b == 0x7f;
            out.push(if bad { b'_' } else { b });
        }
        out.push(b'=');
        let string = raw
            .starts_with('"')
            .then(|| serde_json::from_str::<std::borrow::Cow<'_, str>>(raw).ok())
            .flatten();
        match string {
            Some(text) => logfmt_value(out, Value::Text(text.as_bytes())),
            None => logfmt_value(out, Value::Text(raw.as_bytes())),
        }
    }

    fn end(self) {
        if self.format != Keyed::Logfmt {
            self.out.push(b'}');
        }
        self.out.push(b'\n');
    }
}

/// `TIMESTAMP SOURCE STREAM[ partial]: LINE` — the marker sits in the prefix so
/// it cannot be confused with the daemon's own text.
fn text_line(out: &mut Vec<u8>, record: &LineRecord<'_>) {
    text_head(
        out,
        record.timestamp,
        record.source,
        record.stream,
        record.partial,
    );
    human_escaped(out, record.line);
    out.push(b'\n');
}

/// `TIMESTAMP SOURCE STREAM[ partial]: ` of a text record.
fn text_head(
    out: &mut Vec<u8>,
    timestamp: &Timestamp,
    source: &str,
    stream: Stream,
    partial: bool,
) {
    out.extend_from_slice(timestamp);
    out.push(b' ');
    human_escaped(out, source.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    if partial {
        out.extend_from_slice(b" partial");
    }
    out.extend_from_slice(b": ");
}

/// `TIMESTAMP pidzero event: LEVEL EVENT key=value ...: LINE`; the extra
/// fields use logfmt values so that spaces inside them stay unambiguous.
fn text_event(out: &mut Vec<u8>, event: &EventRecord) {
    out.extend_from_slice(&event.timestamp);
    out.extend_from_slice(b" pidzero event: ");
    out.extend_from_slice(event.level.as_str().as_bytes());
    out.push(b' ');
    human_escaped(out, event.event.as_bytes());
    for (key, value) in &event.fields {
        out.push(b' ');
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        logfmt_value(out, Value::from(value));
    }
    out.extend_from_slice(b": ");
    human_escaped(out, event.line.as_bytes());
    out.push(b'\n');
}

fn json_value(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Text(bytes) => json_string(out, bytes),
        Value::Int(i) => push_int(out, i),
        Value::Bool(b) => push_bool(out, b),
    }
}

fn human_value(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Text(bytes) => human_escaped(out, bytes),
        Value::Int(i) => push_int(out, i),
        Value::Bool(b) => push_bool(out, b),
    }
}

fn logfmt_value(out: &mut Vec<u8>, value: Value<'_>) {
    match value {
        Value::Text(bytes) if logfmt_needs_quotes(bytes) => json_string(out, bytes),
        Value::Text(bytes) => push_lossy(out, bytes),
        Value::Int(i) => push_int(out, i),
        Value::Bool(b) => push_bool(out, b),
    }
}

fn push_int(out: &mut Vec<u8>, value: i64) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

fn push_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// logfmt quotes a value that would otherwise be misread: empty, or holding a
/// separator, a quote, a backslash or a control character.
fn logfmt_needs_quotes(bytes: &[u8]) -> bool {
    bytes.is_empty()
        || bytes
            .iter()
            .any(|&b| b <= b' ' || b == b'=' || b == b'"' || b == b'\\')
}

/// UTF-8 encoding of U+FFFD REPLACEMENT CHARACTER.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Copies `bytes` as lossy UTF-8 without escaping.
fn push_lossy(out: &mut Vec<u8>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(REPLACEMENT);
        }
    }
}

/// `"` + JSON-escaped lossy UTF-8 + `"`.
pub fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    json_escaped(out, bytes);
    out.push(b'"');
}

/// JSON-escaped lossy UTF-8, without the quotes.
fn json_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    escape_lossy(out, bytes, &JSON_ESCAPES, scan::json_plain_prefix);
}

/// Lossy UTF-8 with the map/text escaping described in the module docs.
fn human_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    escape_lossy(out, bytes, &HUMAN_ESCAPES, scan::text_plain_prefix);
}

/// For each byte: 0 when it is copied as is, [`NON_ASCII`] for bytes of 0x80
/// and above, else the letter after the backslash of its escape (`u` meaning
/// `\u00XX`).
type EscapeTable = [u8; 256];

/// Marks the bytes that start (or continue) a multi-byte UTF-8 sequence.
const NON_ASCII: u8 = 0xff;

const fn escape_table(escape_tab: bool, escape_quotes: bool, escape_del: bool) -> EscapeTable {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\t' as usize] = if escape_tab { b't' } else { 0 };
    if escape_quotes {
        table[b'"' as usize] = b'"';
        table[b'\\' as usize] = b'\\';
    }
    if escape_del {
        table[0x7f] = b'u';
    }
    let mut b = 0x80;
    while b < 0x100 {
        table[b] = NON_ASCII;
        b += 1;
    }
    table
}

const JSON_ESCAPES: EscapeTable = escape_table(true, true, false);
const HUMAN_ESCAPES: EscapeTable = escape_table(false, false, true);

/// Copies runs of plain ASCII in one go, escapes the ASCII bytes between
/// them, and passes each run of non-ASCII bytes through lossy UTF-8
/// decoding (valid sequences as they are, each maximal invalid one as
/// U+FFFD). `plain_prefix` finds the length of the next plain run; it is the
/// hot loop. Cutting the non-ASCII runs at ASCII bytes gives the same result
/// as decoding the whole text, since an ASCII byte never continues a sequence.
fn escape_lossy(
    out: &mut Vec<u8>,
    mut rest: &[u8],
    table: &EscapeTable,
    plain_prefix: fn(&[u8]) -> usize,
) {
    out.reserve(rest.len());
    loop {
        let run = plain_prefix(rest);
        out.extend_from_slice(&rest[..run]);
        let Some(&byte) = rest.get(run) else { return };
        let letter = table[usize::from(byte)];
        if letter != NON_ASCII {
            push_escape(out, byte, letter);
            rest = &rest[run + 1..];
            continue;
        }
        let tail = &rest[run..];
        let end = tail.iter().position(u8::is_ascii).unwrap_or(tail.len());
        push_lossy(out, &tail[..end]);
        rest = &tail[end..];
    }
}

fn push_escape(out: &mut Vec<u8>, byte: u8, letter: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if letter == b'u' {
        out.extend_from_slice(b"\\u00");
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xf)]);
    } else {
        out.push(b'\\');
        out.push(letter);
    }
}

/// The JSON records of `spans`, none of whose lines needs escaping (the
/// usual case): each line is copied as is between the head and the tail.
///
/// A record's tail and the next record's head are the same bytes each time,
/// so they are copied as one piece: two copies per line instead of three,
/// about 2 of the 17 ns that formatting a line of 100 bytes takes
/// (`bench/micro`).
fn json_plain_records(
    out: &mut Vec<u8>,
    head: &[u8],
    batch: &LineBatch,
    spans: &[LineSpan],
    mut ends: Option<&mut Vec<usize>>,
) {
    const TAIL: &[u8] = b"\"}\n";
    const PARTIAL_TAIL: &[u8] = b"\",\"partial\":true}\n";
    let Some((last, before)) = spans.split_last() else {
        return;
    };
    let joint = [TAIL, head].concat();
    let partial_joint = [PARTIAL_TAIL, head].concat();
    out.extend_from_slice(head);
    for &span in before {
        out.extend_from_slice(batch.line(span));
        out.extend_from_slice(if span.partial { &partial_joint } else { &joint });
        if let Some(ends) = ends.as_deref_mut() {
            ends.push(out.len() - head.len());
        }
    }
    out.extend_from_slice(batch.line(*last));
    out.extend_from_slice(if last.partial { PARTIAL_TAIL } else { TAIL });
    if let Some(ends) = ends {
        ends.push(out.len());
    }
}

/// True when JSON copies every line of `spans` as is. One scan over the
/// batch's bytes from the first span to the last, which holds only those
/// lines and the `\n` (or `\r\n`) between them: a `\n` is allowed, any other
/// byte JSON escapes (or a `\r`) makes it false, and the lines are escaped
/// one by one.
fn json_plain_lines(batch: &LineBatch, spans: &[LineSpan]) -> bool {
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return true;
    };
    scan::is_json_plain_text(&batch.data[first.start as usize..last.end as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::Level;
    use proptest::prelude::*;

    const TS: &Timestamp = b"2026-11-28T14:09:00.123Z";

    fn line(format: LogFormat, text: &[u8], partial: bool) -> String {
        let mut out = Vec::new();
        let record = LineRecord {
            timestamp: TS,
            source: "web",
            stream: Stream::Stdout,
            line: text,
            partial,
        };
        format_line(&mut out, format, &record);
        String::from_utf8(out).unwrap()
    }

    fn vital_exit() -> EventRecord {
        EventRecord {
            timestamp: *b"2026-11-28T14:09:01.002Z",
            level: Level::Error,
            event: "vital_exit",
            fields: vec![
                ("daemon", FieldValue::Str("web".into())),
                ("status", FieldValue::Int(3)),
                ("vital", FieldValue::Bool(true)),
            ],
            line: "vital daemon web exited with status 3; shutting down".into(),
        }
    }

    fn event(format: LogFormat) -> String {
        let mut out = Vec::new();
        format_event(&mut out, format, &vital_exit());
        String::from_utf8(out).unwrap()
    }

    /// The escaping loop copies what the scans call plain and looks up
    /// every other byte in the tables: both must agree on every byte.
    #[test]
    fn escape_tables_agree_with_the_scans() {
        for b in 0..=255u8 {
            let i = usize::from(b);
            assert_eq!(JSON_ESCAPES[i] == 0, scan::is_json_plain(b), "{b:#x}");
            assert_eq!(HUMAN_ESCAPES[i] == 0, scan::is_text_plain(b), "{b:#x}");
            assert_eq!(JSON_ESCAPES[i] == NON_ASCII, b >= 0x80, "{b:#x}");
            assert_eq!(HUMAN_ESCAPES[i] == NON_ASCII, b >= 0x80, "{b:#x}");
        }
    }

    #[test]
    fn line_in_each_format() {
        assert_eq!(
            line(LogFormat::Json, b"GET / 200", false),
            "{\"timestamp\":\"2026-11-28T14:09:00.123Z\",\"source\":\"web\",\"stream\":\"stdout\",\"line\":\"GET / 200\"}\n"
        );
        assert_eq!(
            line(LogFormat::Map, b"GET / 200", false),
            "{timestamp => 2026-11-28T14:09:00.123Z, source => web, stream => stdout, line => GET / 200}\n"
        );
        assert_eq!(
            line(LogFormat::Logfmt, b"GET / 200", false),
            "timestamp=2026-11-28T14:09:00.123Z source=web stream=stdout line=\"GET / 200\"\n"
        );
        assert_eq!(
            line(LogFormat::Text, b"GET / 200", false),
            "2026-11-28T14:09:00.123Z web stdout: GET / 200\n"
        );
    }

    #[test]
    fn partial_line_in_each_format() {
        assert_eq!(
            line(LogFormat::Json, b"abc", true),
            "{\"timestamp\":\"2026-11-28T14:09:00.123Z\",\"source\":\"web\",\"stream\":\"stdout\",\"line\":\"abc\",\"partial\":true}\n"
        );
        assert_eq!(
            line(LogFormat::Map, b"abc", true),
            "{timestamp => 2026-11-28T14:09:00.123Z, source => web, stream => stdout, line => abc, partial => true}\n"
        );
        assert_eq!(
            line(LogFormat::Logfmt, b"abc", true),
            "timestamp=2026-11-28T14:09:00.123Z source=web stream=stdout line=abc partial=true\n"
        );
        assert_eq!(
            line(LogFormat::Text, b"abc", true),
            "2026-11-28T14:09:00.123Z web stdout partial: abc\n"
        );
    }

    /// A batch of `lines` from `web`'s stdout, with `"parse": "json"`.
    fn parsed_batch(lines: &[&str]) -> LineBatch {
        let mut batch = LineBatch::new("web".into(), Stream::Stdout, *TS);
        batch.route.parse = LineParse::Json;
        for line in lines {
            let start = batch.data.len() as u32;
            batch.data.extend_from_slice(line.as_bytes());
            let end = batch.data.len() as u32;
            batch.data.push(b'\n');
            batch.lines.push(LineSpan {
                start,
                end,
                partial: false,
            });
        }
        batch
    }

    fn parsed(format: LogFormat, lines: &[&str]) -> Vec<String> {
        let batch = parsed_batch(lines);
        let mut out = Vec::new();
        assert_eq!(format_batch(&mut out, format, &batch), lines.len());
        let text = String::from_utf8(out).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    const OBJECT: &str = r#"{"level":"WARN","msg":"disk \"low\"","free":0.5,"ok":false,"tags":["a b"],"n":null,"é":"ü"}"#;

    #[test]
    fn object_lines_in_each_format() {
        let head =
            "\"timestamp\":\"2026-11-28T14:09:00.123Z\",\"source\":\"web\",\"stream\":\"stdout\"";
        assert_eq!(
            parsed(LogFormat::Json, &[OBJECT, "plain", " {\"a\":1} "]),
            [
                format!("{{{head},\"level\":\"warn\",\"fields\":{OBJECT}}}"),
                format!("{{{head},\"line\":\"plain\"}}"),
                format!("{{{head},\"fields\":{{\"a\":1}}}}"),
            ]
        );
        assert_eq!(
            parsed(LogFormat::Map, &[OBJECT]),
            [format!("{{timestamp => 2026-11-28T14:09:00.123Z, source => web, stream => stdout, level => warn, fields => {OBJECT}}}")]
        );
        assert_eq!(
            parsed(
                LogFormat::Logfmt,
                &[
                    OBJECT,
                    r#"{"a b=c":"x","":1,"nested":{"k":"v w"},"timestamp":2}"#
                ]
            ),
            [
                r#"timestamp=2026-11-28T14:09:00.123Z source=web stream=stdout level=warn fields.level=WARN msg="disk \"low\"" free=0.5 ok=false tags="[\"a b\"]" n=null é=ü"#,
                r#"timestamp=2026-11-28T14:09:00.123Z source=web stream=stdout a_b_c=x _=1 nested="{\"k\":\"v w\"}" fields.timestamp=2"#,
            ]
        );
        assert_eq!(
            parsed(LogFormat::Text, &[OBJECT]),
            [format!("2026-11-28T14:09:00.123Z web stdout: {OBJECT}")]
        );
    }

    /// Every JSON record of a parsed batch is valid JSON with the keys in
    /// order, whatever the line; objects keep their members as written.
    #[test]
    fn object_records_are_valid_json() {
        let lines = [
            OBJECT,
            "{\"a\":1} trailing",
            "[1]",
            "{\"unterminated\":",
            "{\"esc\":\"\\u0041\\n\"}",
        ];
        for (record, line) in parsed(LogFormat::Json, &lines).iter().zip(lines) {
            let value: serde_json::Value = serde_json::from_str(record).unwrap();
            match object::parse_object(line.as_bytes()) {
                Some(_) => {
                    assert!(
                        record.ends_with(&format!(",\"fields\":{line}}}")),
                        "{record}"
                    );
                    let fields: serde_json::Value = serde_json::from_str(line).unwrap();
                    assert_eq!(value["fields"], fields);
                }
                None => assert_eq!(value["line"], line, "{record}"),
            }
        }
    }

    /// The pieces of a cut line are never parsed: not the partial ones,
    /// not the rest after the cuts, even when that rest is an object, in
    /// this batch or continuing one cut in an earlier batch.
    #[test]
    fn pieces_of_a_cut_line_stay_lines() {
        let text = b"xxxxxxxx{\"a\":1}\n{\"b\":2}\n";
        let mut framer = crate::log::Framer::new(8);
        let mut batch = parsed_batch(&[]);
        framer.push(text, &mut batch);
        let mut out = Vec::new();
        format_batch(&mut out, LogFormat::Json, &batch);
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].ends_with("\"line\":\"xxxxxxxx\",\"partial\":true}"),
            "{out}"
        );
        assert!(lines[1].ends_with("\"line\":\"{\\\"a\\\":1}\"}"), "{out}");
        assert!(lines[2].ends_with("\"fields\":{\"b\":2}}"), "{out}");
        // The rest of the cut line in the next read's batch.
        let mut framer = crate::log::Framer::new(8);
        let mut first = parsed_batch(&[]);
        framer.push(b"xxxxxxxx", &mut first);
        assert_eq!(first.lines.len(), 0, "a full piece waits for its next byte");
        framer.push(b"y", &mut first);
        assert_eq!(first.lines.len(), 1);
        let mut second = parsed_batch(&[]);
        framer.push(b"{\"a\":1}\n{\"c\":3}\n", &mut second);
        assert!(second.continues);
        let mut out = Vec::new();
        format_batch(&mut out, LogFormat::Json, &second);
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].ends_with("\"line\":\"y{\\\"a\\\":1}\"}"), "{out}");
        assert!(lines[1].ends_with("\"fields\":{\"c\":3}}"), "{out}");
    }

    /// Runs of text lines between objects keep their order, and the record
    /// ends (what the recent-records ring cuts by) fall after each record.
    #[test]
    fn mixed_batches_keep_order_and_record_ends() {
        let lines = ["a", "{\"x\":1}", "b", "c", "{}", "{}", "d"];
        let batch = parsed_batch(&lines);
        for format in FORMATS {
            let mut out = Vec::new();
            let mut ends = Vec::new();
            let n = format_spans(&mut out, format, &batch, &batch.lines, Some(&mut ends));
            assert_eq!((n, ends.len()), (lines.len(), lines.len()));
            let mut start = 0;
            for (end, line) in ends.into_iter().zip(lines) {
                let record = std::str::from_utf8(&out[start..end]).unwrap();
                assert_eq!(record.matches('\n').count(), 1, "{record:?}");
                // The same record as that line alone in a batch.
                assert_eq!(record.trim_end(), parsed(format, &[line])[0], "{format:?}");
                start = end;
            }
            assert_eq!(start, out.len());
        }
    }

    /// Without `parse`, an object line is a line like any other.
    #[test]
    fn objects_stay_lines_without_parse() {
        let mut batch = parsed_batch(&["{\"a\":1}"]);
        batch.route.parse = LineParse::Text;
        let mut out = Vec::new();
        format_batch(&mut out, LogFormat::Json, &batch);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\"line\":\"{\\\"a\\\":1}\"}\n"));
    }

    #[test]
    fn event_in_each_format() {
        assert_eq!(
            event(LogFormat::Json),
            "{\"timestamp\":\"2026-11-28T14:09:01.002Z\",\"source\":\"pidzero\",\"stream\":\"event\",\"level\":\"error\",\"event\":\"vital_exit\",\"daemon\":\"web\",\"status\":3,\"vital\":true,\"line\":\"vital daemon web exited with status 3; shutting down\"}\n"
        );
        assert_eq!(
            event(LogFormat::Map),
            "{timestamp => 2026-11-28T14:09:01.002Z, source => pidzero, stream => event, level => error, event => vital_exit, daemon => web, status => 3, vital => true, line => vital daemon web exited with status 3; shutting down}\n"
        );
        assert_eq!(
            event(LogFormat::Logfmt),
            "timestamp=2026-11-28T14:09:01.002Z source=pidzero stream=event level=error event=vital_exit daemon=web status=3 vital=true line=\"vital daemon web exited with status 3; shutting down\"\n"
        );
        assert_eq!(
            event(LogFormat::Text),
            "2026-11-28T14:09:01.002Z pidzero event: error vital_exit daemon=web status=3 vital=true: vital daemon web exited with status 3; shutting down\n"
        );
    }

    #[test]
    fn json_escapes_every_control_quote_and_backslash() {
        let mut text: Vec<u8> = (0u8..0x20).collect();
        text.extend_from_slice(b"\"\\/\x7f");
        let got = line(LogFormat::Json, &text, false);
        let expected_line = concat!(
            "\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007",
            "\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f",
            "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017",
            "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f",
            "\\\"\\\\/\x7f"
        );
        assert!(
            got.contains(&format!("\"line\":\"{expected_line}\"}}")),
            "{got}"
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement_in_every_format() {
        let text = b"a\xffb\xe2\x82c";
        let lossy = String::from_utf8_lossy(text).into_owned();
        assert_eq!(lossy, "a\u{FFFD}b\u{FFFD}c");
        for format in [
            LogFormat::Json,
            LogFormat::Map,
            LogFormat::Logfmt,
            LogFormat::Text,
        ] {
            let got = line(format, text, false);
            assert!(got.contains(&lossy), "{format:?}: {got}");
        }
    }

    /// Every byte value at every offset of a string long enough for the SWAR
    /// path, plus invalid UTF-8: serde_json must read back the lossy text.
    #[test]
    fn json_roundtrips_through_serde_json() {
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for byte in 0u8..=255 {
            for offset in [0usize, 3, 7, 8, 15, 20] {
                let mut text = b"plain text, long enough!".to_vec();
                text[offset] = byte;
                inputs.push(text);
            }
        }
        inputs.push(
            "héllo wörld — ✓ \u{1F600} \"q\" \\ \u{7f}"
                .as_bytes()
                .to_vec(),
        );
        inputs.push(b"\xf0\x9f\x98".to_vec());
        inputs.push(Vec::new());
        for text in inputs {
            let got = line(LogFormat::Json, &text, false);
            assert!(got.ends_with("}\n") && !got[..got.len() - 1].contains('\n'));
            let value: serde_json::Value = serde_json::from_str(&got).unwrap();
            assert_eq!(
                value["line"],
                String::from_utf8_lossy(&text).as_ref(),
                "{got}"
            );
        }
    }

    #[test]
    fn logfmt_quotes_only_when_needed() {
        let value = |text: &[u8]| {
            let got = line(LogFormat::Logfmt, text, false);
            let start = got.find(" line=").unwrap() + 6;
            got[start..got.len() - 1].to_string()
        };
        assert_eq!(value(b"plain"), "plain");
        assert_eq!(value(b""), "\"\"");
        assert_eq!(value(b"a=b"), "\"a=b\"");
        assert_eq!(value(b"say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(value(b"C:\\dir"), "\"C:\\\\dir\"");
        assert_eq!(value(b"a\tb"), "\"a\\tb\"");
        assert_eq!(value(b"a\nb"), "\"a\\nb\"");
        assert_eq!(value(b"caf\xc3\xa9\xff"), "café\u{FFFD}");
    }

    #[test]
    fn map_and_text_keep_one_line() {
        let text = b"a\nb\rc\td\x1b[31me\x7f\\f";
        let escaped = "a\\nb\\rc\td\\u001b[31me\\u007f\\f";
        assert_eq!(
            line(LogFormat::Text, text, false),
            format!("2026-11-28T14:09:00.123Z web stdout: {escaped}\n")
        );
        let map = line(LogFormat::Map, text, false);
        assert!(map.ends_with(&format!("line => {escaped}}}\n")), "{map}");
    }

    #[test]
    fn event_string_fields_are_escaped() {
        let mut record = vital_exit();
        record.fields = vec![("error", FieldValue::Str("no space\nleft".into()))];
        let mut out = Vec::new();
        format_event(&mut out, LogFormat::Logfmt, &record);
        let got = String::from_utf8(out).unwrap();
        assert!(got.contains(" error=\"no space\\nleft\" "), "{got}");
        let mut out = Vec::new();
        format_event(&mut out, LogFormat::Json, &record);
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["error"], "no space\nleft");
    }

    /// The batch fast path gives byte for byte what `format_line` gives.
    #[test]
    fn batch_matches_single_records_in_every_format() {
        let texts: Vec<Vec<u8>> = vec![
            b"GET / 200".to_vec(),
            Vec::new(),
            b"a long plain line of more than sixteen bytes, twice over!".to_vec(),
            b"tab\there \"quoted\" back\\slash \x1b[0m \x7f end".to_vec(),
            "h\u{e9}llo \u{2713} \u{1F600} w\u{f6}rld"
                .as_bytes()
                .to_vec(),
            b"bad \xff\xfe utf8 \xe2\x82 cut \xf0\x9f\x98".to_vec(),
            (0u8..=255).collect(),
        ];
        for format in [
            LogFormat::Json,
            LogFormat::Map,
            LogFormat::Logfmt,
            LogFormat::Text,
        ] {
            let mut batch = LineBatch::new("we b".into(), Stream::Stderr, *TS);
            let mut expected = Vec::new();
            for (i, text) in texts.iter().enumerate() {
                let start = batch.data.len() as u32;
                batch.data.extend_from_slice(text);
                let span = crate::log::record::LineSpan {
                    start,
                    end: batch.data.len() as u32,
                    partial: i % 2 == 1,
                };
                batch.lines.push(span);
                let record = LineRecord {
                    timestamp: TS,
                    source: "we b",
                    stream: Stream::Stderr,
                    line: text,
                    partial: span.partial,
                };
                format_line(&mut expected, format, &record);
            }
            let mut got = Vec::new();
            assert_eq!(format_batch(&mut got, format, &batch), texts.len());
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{format:?}"
            );
        }
    }

    /// The JSON copy path (whole batch plain) and its fallback, with the
    /// batch framed from text so `\n` and `\r\n` lie between the spans: a
    /// byte to escape anywhere must send the batch down the escaping path.
    #[test]
    fn framed_json_batch_matches_single_records() {
        let plain = "0123456789abcdef0123456789abcdef0123\nsecond line\r\n\nlast one here\n";
        for offset in 0..plain.len() {
            for insert in [&b""[..], b"\xff", b"\"", b"\\", b"\x01", b"\r", b"\t"] {
                let mut text = plain.as_bytes().to_vec();
                text.splice(offset..offset, insert.iter().copied());
                let mut batch = LineBatch::new("s".into(), Stream::Stdout, *TS);
                crate::log::framer::Framer::new(1000).push(&text, &mut batch);
                let mut expected = Vec::new();
                for &span in &batch.lines {
                    let record = LineRecord {
                        timestamp: TS,
                        source: "s",
                        stream: Stream::Stdout,
                        line: batch.line(span),
                        partial: false,
                    };
                    format_line(&mut expected, LogFormat::Json, &record);
                }
                let mut got = Vec::new();
                format_batch(&mut got, LogFormat::Json, &batch);
                assert_eq!(got, expected, "offset {offset} insert {insert:?}");
            }
        }
    }

    /// The plain JSON path (tail and next head copied as one piece) with
    /// whole and partial lines, and the record ends it reports.
    #[test]
    fn plain_json_records_and_their_ends() {
        for count in 0..5 {
            let mut batch = LineBatch::new("s".into(), Stream::Stdout, *TS);
            let mut expected = Vec::new();
            let mut expected_ends = Vec::new();
            for i in 0..count {
                let text = format!("line {i} of {count}");
                let start = batch.data.len() as u32;
                batch.data.extend_from_slice(text.as_bytes());
                let span = crate::log::record::LineSpan {
                    start,
                    end: batch.data.len() as u32,
                    partial: i % 2 == 0,
                };
                batch.lines.push(span);
                let record = LineRecord {
                    timestamp: TS,
                    source: "s",
                    stream: Stream::Stdout,
                    line: text.as_bytes(),
                    partial: span.partial,
                };
                format_line(&mut expected, LogFormat::Json, &record);
                expected_ends.push(expected.len());
            }
            // After records already in the buffer, as the ring formats.
            let (mut got, mut ends) = (b"earlier\n".to_vec(), Vec::new());
            let expected = [&b"earlier\n"[..], &expected].concat();
            for end in &mut expected_ends {
                *end += b"earlier\n".len();
            }
            let spans = &batch.lines;
            assert_eq!(
                format_spans(&mut got, LogFormat::Json, &batch, spans, Some(&mut ends)),
                count
            );
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            assert_eq!(ends, expected_ends, "{count} lines");
        }
    }

    #[test]
    fn escaping_matches_lossy_decoding_at_every_offset() {
        let base = "0123456789abcdef0123456789abcdef0123".as_bytes();
        for offset in 0..base.len() {
            for insert in [
                &b"\xff"[..],
                b"\xe2\x82",
                "\u{2713}".as_bytes(),
                b"\"",
                b"\x01",
            ] {
                let mut text = base.to_vec();
                text.splice(offset..offset, insert.iter().copied());
                let got = line(LogFormat::Json, &text, false);
                let value: serde_json::Value = serde_json::from_str(&got).unwrap();
                assert_eq!(value["line"], String::from_utf8_lossy(&text).as_ref());
                let got = line(LogFormat::Text, &text, false);
                let lossy = String::from_utf8_lossy(&text).replace('\x01', "\\u0001");
                assert!(got.ends_with(&format!(": {lossy}\n")), "{got}");
            }
        }
    }

    #[test]
    fn batch_formats_every_span() {
        let mut batch = LineBatch::new("db".into(), Stream::Stderr, *TS);
        batch.data = b"onetwo".to_vec();
        batch.lines = vec![
            crate::log::record::LineSpan {
                start: 0,
                end: 3,
                partial: true,
            },
            crate::log::record::LineSpan {
                start: 3,
                end: 6,
                partial: false,
            },
        ];
        let mut out = Vec::new();
        assert_eq!(format_batch(&mut out, LogFormat::Text, &batch), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-28T14:09:00.123Z db stderr partial: one\n2026-11-28T14:09:00.123Z db stderr: two\n"
        );
    }

    /// Line text of arbitrary bytes, with plenty of what formats must get
    /// right: quotes, backslashes, `=`, spaces, every C0 control, DEL,
    /// U+2028, multi-byte characters, invalid UTF-8 (a lone continuation
    /// byte, a cut sequence, 0xff) and long plain runs (the SIMD blocks).
    /// A line as the framer hands it over: never holding `\n`, which is
    /// what ends a line (the JSON fast path of a batch relies on it).
    fn framed_line_text() -> impl Strategy<Value = Vec<u8>> {
        line_text().prop_map(|mut text| {
            text.retain(|&b| b != b'\n');
            text
        })
    }

    fn line_text() -> impl Strategy<Value = Vec<u8>> {
        const TOKENS: &[&[u8]] = &[
            b"a",
            b"plain run of text past one block of 32 bytes",
            b" ",
            b"\"",
            b"\\",
            b"=",
            b"\t",
            b"\r",
            b"\n",
            b"\x7f",
            "\u{2028}".as_bytes(),
            "\u{e9}".as_bytes(),
            "\u{20ac}".as_bytes(),
            "\u{1f600}".as_bytes(),
            b"\x80",
            b"\xe2\x82",
            b"\xff",
        ];
        let picks = prop::collection::vec((0..TOKENS.len() + 2, any::<u8>()), 0..40);
        picks.prop_map(|picks| {
            let mut text = Vec::new();
            for (pick, byte) in picks {
                match TOKENS.get(pick) {
                    Some(token) => text.extend_from_slice(token),
                    None if pick == TOKENS.len() => text.push(byte % 0x20),
                    None => text.push(byte),
                }
            }
            text
        })
    }

    /// A small logfmt reader: `key=value` pairs separated by one space; a
    /// value is bare (no space, `=`, `"`, `\` or control) or quoted with
    /// JSON escapes (no raw control inside).
    fn parse_logfmt(record: &str) -> Result<Vec<(String, String)>, String> {
        let mut pairs = Vec::new();
        let mut rest = record;
        while !rest.is_empty() {
            let eq = rest.find('=').ok_or(format!("no `=` in {rest:?}"))?;
            let key = &rest[..eq];
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("bad key {key:?}"));
            }
            rest = &rest[eq + 1..];
            let value = if let Some(quoted) = rest.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                loop {
                    match chars.next() {
                        None => return Err(format!("unterminated value in {record:?}")),
                        Some((i, '"')) => {
                            rest = &quoted[i + 1..];
                            break;
                        }
                        Some((_, '\\')) => {
                            let escaped = match chars.next().map(|(_, c)| c) {
                                Some(c @ ('"' | '\\' | '/')) => c,
                                Some('n') => '\n',
                                Some('r') => '\r',
                                Some('t') => '\t',
                                Some('b') => '\u{8}',
                                Some('f') => '\u{c}',
                                Some('u') => {
                                    let hex: String = (0..4)
                                        .filter_map(|_| chars.next())
                                        .map(|(_, c)| c)
                                        .collect();
                                    u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or(format!("bad \\u{hex}"))?
                                }
                                other => return Err(format!("bad escape {other:?}")),
                            };
                            value.push(escaped);
                        }
                        Some((_, c)) if c < ' ' => return Err(format!("raw control {c:?}")),
                        Some((_, c)) => value.push(c),
                    }
                }
                value
            } else {
                let end = rest.find(' ').unwrap_or(rest.len());
                let value = &rest[..end];
                if value.is_empty() || value.chars().any(|c| c <= ' ' || "=\"\\".contains(c)) {
                    return Err(format!("bad bare value {value:?}"));
                }
                rest = &rest[end..];
                value.to_string()
            };
            pairs.push((key.to_string(), value));
            if let Some(next) = rest.strip_prefix(' ') {
                if next.is_empty() {
                    return Err("trailing space".into());
                }
                rest = next;
            } else if !rest.is_empty() {
                return Err(format!("junk after a value: {rest:?}"));
            }
        }
        Ok(pairs)
    }

    /// What map and text show of `text`: its lossy UTF-8 with C0 controls
    /// but tab, and DEL, escaped; everything else as it is.
    fn human(text: &[u8]) -> String {
        String::from_utf8_lossy(text)
            .chars()
            .map(|c| match c {
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\u{8}' => "\\b".to_string(),
                '\u{c}' => "\\f".to_string(),
                '\t' => "\t".to_string(),
                c if c < ' ' || c == '\u{7f}' => format!("\\u{:04x}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    /// Checks one record of a daemon line in `format` against `text`.
    fn check_record(
        format: LogFormat,
        record: &str,
        text: &[u8],
        partial: bool,
    ) -> Result<(), TestCaseError> {
        let lossy = String::from_utf8_lossy(text);
        prop_assert!(!record.contains(['\n', '\r']), "{:?}", record);
        match format {
            LogFormat::Json => {
                prop_assert!(record.starts_with("{\"timestamp\":\""), "{}", record);
                let value: serde_json::Value = serde_json::from_str(record)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {record}")))?;
                prop_assert_eq!(value["line"].as_str(), Some(lossy.as_ref()));
                prop_assert_eq!(value["source"].as_str(), Some("web"));
                prop_assert_eq!(value["stream"].as_str(), Some("stdout"));
                prop_assert_eq!(value.get("partial").is_some(), partial);
            }
            LogFormat::Logfmt => {
                let pairs = parse_logfmt(record).map_err(TestCaseError::fail)?;
                let mut expected = vec![
                    (
                        "timestamp".to_string(),
                        "2026-11-28T14:09:00.123Z".to_string(),
                    ),
                    ("source".into(), "web".into()),
                    ("stream".into(), "stdout".into()),
                    ("line".into(), lossy.into_owned()),
                ];
                if partial {
                    expected.push(("partial".into(), "true".into()));
                }
                prop_assert_eq!(pairs, expected);
            }
            LogFormat::Map => {
                let tail = if partial { ", partial => true}" } else { "}" };
                let expected = format!(
                    "{{timestamp => 2026-11-28T14:09:00.123Z, source => web, stream => stdout, line => {}{tail}",
                    human(text)
                );
                prop_assert_eq!(record, expected.as_str());
            }
            LogFormat::Text => {
                let marker = if partial { " partial" } else { "" };
                let expected = format!(
                    "2026-11-28T14:09:00.123Z web stdout{marker}: {}",
                    human(text)
                );
                prop_assert_eq!(record, expected.as_str());
            }
        }
        Ok(())
    }

    const FORMATS: [LogFormat; 4] = [
        LogFormat::Json,
        LogFormat::Map,
        LogFormat::Logfmt,
        LogFormat::Text,
    ];

    proptest! {
        /// Any line text in every format: one record on one line that reads
        /// back to the text (JSON with serde_json, logfmt with the reader
        /// above; map and text show exactly the escaped lossy text).
        #[test]
        fn every_format_reads_back_any_line(text in line_text(), partial in any::<bool>()) {
            for format in FORMATS {
                let record = line(format, &text, partial);
                let body = record.strip_suffix('\n');
                prop_assert!(body.is_some(), "{:?}", record);
                check_record(format, body.unwrap_or_default(), &text, partial)?;
            }
        }

        /// A batch of framed lines (the bytes between them included, as the
        /// JSON fast path scans them) gives byte for byte the records of
        /// the lines formatted one by one.
        #[test]
        fn batches_match_single_records(
            texts in prop::collection::vec((framed_line_text(), any::<bool>()), 1..5),
            crlf in any::<bool>(),
        ) {
            for format in FORMATS {
                let mut batch = LineBatch::new("web".into(), Stream::Stdout, *TS);
                let mut expected = Vec::new();
                for (text, partial) in &texts {
                    let start = batch.data.len() as u32;
                    batch.data.extend_from_slice(text);
                    batch.lines.push(LineSpan { start, end: batch.data.len() as u32, partial: *partial });
                    batch.data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                    expected.extend_from_slice(line(format, text, *partial).as_bytes());
                }
                let mut got = Vec::new();
                prop_assert_eq!(format_batch(&mut got, format, &batch), texts.len());
                prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
            }
        }

        /// Events with any text in their line and a string field: JSON and
        /// logfmt read back to the same values, every format on one line.
        #[test]
        fn events_read_back_in_every_format(text in line_text()) {
            let lossy = String::from_utf8_lossy(&text).into_owned();
            let mut record = vital_exit();
            record.fields = vec![("error", FieldValue::Str(lossy.clone())), ("status", FieldValue::Int(-3))];
            record.line = lossy.clone();
            for format in FORMATS {
                let mut out = Vec::new();
                format_event(&mut out, format, &record);
                let got = String::from_utf8(out).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let body = got.strip_suffix('\n').unwrap_or_default();
                prop_assert!(!body.is_empty() && !body.contains(['\n', '\r']), "{:?}", got);
                match format {
                    LogFormat::Json => {
                        let value: serde_json::Value = serde_json::from_str(body)
                            .map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
                        prop_assert_eq!(value["line"].as_str(), Some(lossy.as_str()));
                        prop_assert_eq!(value["error"].as_str(), Some(lossy.as_str()));
                        prop_assert_eq!(value["status"].as_i64(), Some(-3));
                    }
                    LogFormat::Logfmt => {
                        let pairs = parse_logfmt(body).map_err(TestCaseError::fail)?;
                        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
                        prop_assert_eq!(
                            keys,
                            ["timestamp", "source", "stream", "level", "event", "error", "status", "line"]
                        );
                        prop_assert_eq!(&pairs[5].1, &lossy);
                        prop_assert_eq!(&pairs[6].1, "-3");
                        prop_assert_eq!(&pairs[7].1, &lossy);
                    }
                    LogFormat::Map => {
                        let tail = format!(", line => {}}}", human(&text));
                        prop_assert!(body.ends_with(&tail), "{}", body);
                    }
                    LogFormat::Text => {
                        let tail = format!(": {}", human(&text));
                        prop_assert!(body.ends_with(&tail), "{}", body);
                    }
                }
            }
        }
    }
}

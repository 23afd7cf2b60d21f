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

use super::record::{EventRecord, FieldValue, LineBatch, Stream, Timestamp};
use crate::config::LogFormat;

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
pub fn format_batch(out: &mut Vec<u8>, format: LogFormat, batch: &LineBatch) -> usize {
    for &span in &batch.lines {
        let record = LineRecord {
            timestamp: &batch.timestamp,
            source: &batch.source,
            stream: batch.stream,
            line: batch.line(span),
            partial: span.partial,
        };
        format_line(out, format, &record);
    }
    batch.lines.len()
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
        let out = &mut *self.out;
        match self.format {
            Keyed::Json => {
                if !self.first {
                    out.push(b',');
                }
                json_string(out, key.as_bytes());
                out.push(b':');
                json_value(out, value);
            }
            Keyed::Map => {
                if !self.first {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b" => ");
                human_value(out, value);
            }
            Keyed::Logfmt => {
                if !self.first {
                    out.push(b' ');
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b'=');
                logfmt_value(out, value);
            }
        }
        self.first = false;
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
    out.extend_from_slice(record.timestamp);
    out.push(b' ');
    human_escaped(out, record.source.as_bytes());
    out.push(b' ');
    out.extend_from_slice(record.stream.as_str().as_bytes());
    if record.partial {
        out.extend_from_slice(b" partial");
    }
    out.extend_from_slice(b": ");
    human_escaped(out, record.line);
    out.push(b'\n');
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
fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        escape(
            out,
            chunk.valid().as_bytes(),
            &JSON_ESCAPES,
            json_plain_prefix,
        );
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(REPLACEMENT);
        }
    }
    out.push(b'"');
}

/// Lossy UTF-8 with the map/text escaping described in the module docs.
fn human_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len());
    for chunk in bytes.utf8_chunks() {
        escape(
            out,
            chunk.valid().as_bytes(),
            &HUMAN_ESCAPES,
            human_plain_prefix,
        );
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(REPLACEMENT);
        }
    }
}

/// For each byte: 0 when it is copied as is, else the letter after the
/// backslash of its escape (`u` meaning `\u00XX`).
type EscapeTable = [u8; 256];

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
    table
}

const JSON_ESCAPES: EscapeTable = escape_table(true, true, false);
const HUMAN_ESCAPES: EscapeTable = escape_table(false, false, true);

/// Copies runs of plain bytes in one go and escapes the bytes between them.
/// `plain_prefix` finds the length of the next run; it is the hot loop.
fn escape(
    out: &mut Vec<u8>,
    mut rest: &[u8],
    table: &EscapeTable,
    plain_prefix: fn(&[u8]) -> usize,
) {
    loop {
        let run = plain_prefix(rest);
        out.extend_from_slice(&rest[..run]);
        let Some(&byte) = rest.get(run) else { return };
        push_escape(out, byte, table[usize::from(byte)]);
        rest = &rest[run + 1..];
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

/// Length of the leading run of bytes JSON copies as is. Checks eight bytes
/// per step with SWAR bit tricks (is any byte < 0x20, `"` or `\`?) and falls
/// back to the table only in the word that holds the byte to escape.
fn json_plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let mut start = 0;
    for chunk in bytes.chunks_exact(8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0;
        if control
            || has_zero(w ^ (ONES * u64::from(b'"')))
            || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            break;
        }
        start += 8;
    }
    start + table_plain_prefix(&bytes[start..], &JSON_ESCAPES)
}

fn human_plain_prefix(bytes: &[u8]) -> usize {
    table_plain_prefix(bytes, &HUMAN_ESCAPES)
}

fn table_plain_prefix(bytes: &[u8], table: &EscapeTable) -> usize {
    bytes
        .iter()
        .position(|&b| table[usize::from(b)] != 0)
        .unwrap_or(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::Level;

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
}

//! OpenTelemetry logs over OTLP/HTTP with the JSON encoding
//! (`POST /v1/logs`, `Content-Type: application/json`): one
//! `ExportLogsServiceRequest` per batch, written by hand after the
//! protobuf JSON mapping the OTLP specification prescribes: lowerCamelCase
//! field names, 64-bit integers (`timeUnixNano`, `intValue`) as decimal
//! strings, enums (`severityNumber`) as numbers.
//!
//! ```json
//! {"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"pidzero"}}]},
//!   "scopeLogs":[{"scope":{"name":"pidzero","version":"0.1.0"},"logRecords":[
//!     {"timeUnixNano":"1772719740123000000","observedTimeUnixNano":"1772719740123000000",
//!      "severityNumber":9,"severityText":"INFO","body":{"stringValue":"GET / 200"},
//!      "attributes":[{"key":"source","value":{"stringValue":"web"}},{"key":"stream","value":{"stringValue":"stdout"}}]}]}]}]}
//! ```
//!
//! - Both times are the record's timestamp: when pidzero read the line,
//!   which is also when it observed it.
//! - Severity: an event's level; a line's from what it says (`ERROR: ...`,
//!   `level=warn`, a `parse: json` object's `level`), else from its stream
//!   (stderr: WARN, stdout: INFO), as the syslog handler decides it, mapped
//!   per the OpenTelemetry log data model's syslog table.
//! - Body: the line as a string (or the record in the handler's `format`);
//!   a line that is a JSON object of a daemon with `"parse": "json"`, with
//!   the default format, becomes a `kvlistValue` of its members.
//! - Attributes: `source` and `stream` (as in pidzero's records); events
//!   add `event` and their own fields (`daemon`, `status`...); a piece of a
//!   cut line has `partial: true`.

use super::batch::{for_each_record, record_text, unix_nanos, Taken};
use super::encode::Rec;
use super::syslog;
use crate::config::{LineParse, MessageFormat};
use crate::log::format::json_string;
use crate::log::object;
use crate::log::record::{FieldValue, Level, Stream};

#[derive(Debug)]
pub struct OtlpEncoder {
    /// Everything before the first log record.
    head: Vec<u8>,
    format: MessageFormat,
    scratch: Vec<u8>,
}

/// The end of the request after the last log record.
const TAIL: &[u8] = b"]}]}]}";

impl OtlpEncoder {
    pub fn new(service_name: &str, resource: &[(String, String)], format: MessageFormat) -> Self {
        let mut head = b"{\"resourceLogs\":[{\"resource\":{\"attributes\":[".to_vec();
        string_attribute(&mut head, "service.name", service_name.as_bytes());
        for (key, value) in resource {
            head.push(b',');
            string_attribute(&mut head, key, value.as_bytes());
        }
        head.extend_from_slice(b"]},\"scopeLogs\":[{\"scope\":{\"name\":\"pidzero\",\"version\":");
        json_string(&mut head, env!("CARGO_PKG_VERSION").as_bytes());
        head.extend_from_slice(b"},\"logRecords\":[");
        OtlpEncoder {
            head,
            format,
            scratch: Vec::new(),
        }
    }

    /// Appends the export request for `items` to `out`; returns the records.
    pub fn encode(&mut self, items: &Taken, out: &mut Vec<u8>) -> u64 {
        out.extend_from_slice(&self.head);
        let mut records = 0;
        let mut scratch = std::mem::take(&mut self.scratch);
        let format = self.format;
        for_each_record(items, |rec| {
            if records > 0 {
                out.push(b',');
            }
            log_record(out, rec, format, &mut scratch);
            records += 1;
        });
        self.scratch = scratch;
        out.extend_from_slice(TAIL);
        records
    }
}

fn log_record(out: &mut Vec<u8>, rec: Rec<'_>, format: MessageFormat, scratch: &mut Vec<u8>) {
    let (timestamp, (number, text)) = match rec {
        Rec::Line { batch, .. } => (&batch.timestamp, line_severity(rec)),
        Rec::Event(event) => (&event.timestamp, level_severity(event.level)),
    };
    let nanos = unix_nanos(timestamp);
    out.extend_from_slice(
        format!(
            "{{\"timeUnixNano\":\"{nanos}\",\"observedTimeUnixNano\":\"{nanos}\",\"severityNumber\":{number},\"severityText\":\"{text}\",\"body\":"
        )
        .as_bytes(),
    );
    match parsed_object(rec, format) {
        Some(value) => any_value(out, &value),
        None => {
            out.extend_from_slice(b"{\"stringValue\":");
            json_string(out, record_text(rec, format, scratch));
            out.push(b'}');
        }
    }
    out.extend_from_slice(b",\"attributes\":[");
    match rec {
        Rec::Line { batch, span } => {
            string_attribute(out, "source", batch.source.as_bytes());
            out.push(b',');
            string_attribute(out, "stream", batch.stream.as_str().as_bytes());
            if span.partial {
                out.extend_from_slice(b",{\"key\":\"partial\",\"value\":{\"boolValue\":true}}");
            }
        }
        Rec::Event(event) => {
            string_attribute(out, "source", b"pidzero");
            out.push(b',');
            string_attribute(out, "stream", Stream::Event.as_str().as_bytes());
            out.push(b',');
            string_attribute(out, "event", event.event.as_bytes());
            for (key, value) in &event.fields {
                out.extend_from_slice(b",{\"key\":");
                json_string(out, key.as_bytes());
                out.extend_from_slice(b",\"value\":");
                match value {
                    FieldValue::Str(text) => {
                        out.extend_from_slice(b"{\"stringValue\":");
                        json_string(out, text.as_bytes());
                        out.push(b'}');
                    }
                    FieldValue::Int(n) => {
                        out.extend_from_slice(format!("{{\"intValue\":\"{n}\"}}").as_bytes())
                    }
                    FieldValue::Bool(b) => {
                        out.extend_from_slice(format!("{{\"boolValue\":{b}}}").as_bytes())
                    }
                }
                out.push(b'}');
            }
        }
    }
    out.extend_from_slice(b"]}");
}

/// The rejected records of an `ExportLogsServiceResponse` with a
/// `partialSuccess` (`rejectedLogRecords`, an int64: a string in JSON,
/// a number accepted too) and its `errorMessage`; `None` when none was
/// rejected or the answer is not such a response (an empty body is the
/// usual full success).
pub fn partial_success(answer: &[u8]) -> Option<(u64, String)> {
    if answer.is_empty() {
        return None;
    }
    let response: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let partial = response.get("partialSuccess")?;
    let rejected = match partial.get("rejectedLogRecords")? {
        serde_json::Value::String(text) => text.parse::<u64>().ok()?,
        value => value.as_u64()?,
    };
    let message = partial
        .get("errorMessage")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    (rejected > 0).then_some((rejected, message))
}

/// `{"key":KEY,"value":{"stringValue":VALUE}}`.
fn string_attribute(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(b"{\"key\":");
    json_string(out, key.as_bytes());
    out.extend_from_slice(b",\"value\":{\"stringValue\":");
    json_string(out, value);
    out.extend_from_slice(b"}}");
}

/// The line as a JSON value when it is a `parse: json` object and the
/// body is the line alone.
fn parsed_object(rec: Rec<'_>, format: MessageFormat) -> Option<serde_json::Value> {
    let Rec::Line { batch, span } = rec else {
        return None;
    };
    if format != MessageFormat::Line
        || batch.route.parse != LineParse::Json
        || span.partial
        || batch.continued(span)
    {
        return None;
    }
    let parsed = object::parse_object(batch.line(span))?;
    serde_json::from_str(parsed.text).ok()
}

/// A JSON value as an OTLP `AnyValue`.
fn any_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"{}"),
        Value::Bool(b) => out.extend_from_slice(format!("{{\"boolValue\":{b}}}").as_bytes()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => out.extend_from_slice(format!("{{\"intValue\":\"{i}\"}}").as_bytes()),
            None => out.extend_from_slice(
                format!("{{\"doubleValue\":{}}}", n.as_f64().unwrap_or(0.0)).as_bytes(),
            ),
        },
        Value::String(text) => {
            out.extend_from_slice(b"{\"stringValue\":");
            json_string(out, text.as_bytes());
            out.push(b'}');
        }
        Value::Array(items) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                any_value(out, item);
            }
            out.extend_from_slice(b"]}}");
        }
        Value::Object(members) => {
            out.extend_from_slice(b"{\"kvlistValue\":{\"values\":[");
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"key\":");
                json_string(out, key.as_bytes());
                out.extend_from_slice(b",\"value\":");
                any_value(out, item);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}}");
        }
    }
}

/// A line's severity: a `parse: json` object's level, else the syslog
/// handler's reading of the line and its stream.
fn line_severity(rec: Rec<'_>) -> (u8, &'static str) {
    let Rec::Line { batch, span } = rec else {
        return level_severity(Level::Info);
    };
    if batch.route.parse == LineParse::Json && !span.partial && !batch.continued(span) {
        if let Some(level) = object::parse_object(batch.line(span)).and_then(|o| o.level) {
            return level_severity(level);
        }
    }
    syslog_severity(syslog::line_severity(batch.stream, batch.line(span)))
}

/// `SeverityNumber` and its short name for pidzero's levels.
pub fn level_severity(level: Level) -> (u8, &'static str) {
    match level {
        Level::Trace => (1, "TRACE"),
        Level::Debug => (5, "DEBUG"),
        Level::Info => (9, "INFO"),
        Level::Warn => (13, "WARN"),
        Level::Error => (17, "ERROR"),
        Level::Fatal => (21, "FATAL"),
    }
}

/// `SeverityNumber` and its short name for a syslog severity, as the log
/// data model's mapping table gives them.
pub fn syslog_severity(severity: u8) -> (u8, &'static str) {
    match severity {
        syslog::EMERGENCY => (21, "FATAL"),
        syslog::ALERT => (19, "ERROR3"),
        syslog::CRITICAL => (18, "ERROR2"),
        syslog::ERROR => (17, "ERROR"),
        syslog::WARNING => (13, "WARN"),
        syslog::NOTICE => (10, "INFO2"),
        syslog::INFO => (9, "INFO"),
        _ => (5, "DEBUG"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LineRoute, LogFormat};
    use crate::log::net::encode::Item;
    use crate::log::record::{EventRecord, LineBatch};
    use crate::log::Framer;
    use std::sync::Arc;

    fn lines(stream: Stream, parse: LineParse, text: &str) -> Item {
        let mut batch = LineBatch::new("web".into(), stream, *b"2026-03-05T14:09:00.123Z");
        batch.route = LineRoute {
            parse,
            ..LineRoute::default()
        };
        Framer::new(1024).push(text.as_bytes(), &mut batch);
        Item::lines(Arc::new(batch))
    }

    fn encode(encoder: &mut OtlpEncoder, items: Vec<(Item, usize)>) -> String {
        let mut out = Vec::new();
        encoder.encode(&items, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_export_request_of_lines_and_events() {
        let resource = [("deployment.environment".to_string(), "prod".to_string())];
        let mut encoder = OtlpEncoder::new("shop", &resource, MessageFormat::Line);
        let event = Item::event(Arc::new(EventRecord {
            timestamp: *b"2026-03-05T14:09:01.000Z",
            level: Level::Error,
            event: "exited",
            fields: vec![
                ("daemon", FieldValue::Str("web".into())),
                ("status", FieldValue::Int(3)),
            ],
            line: "web exited with status 3".into(),
        }));
        let body = encode(
            &mut encoder,
            vec![
                (lines(Stream::Stdout, LineParse::Text, "GET / 200\n"), 1),
                (lines(Stream::Stderr, LineParse::Text, "slow\n"), 1),
                (event, 1),
            ],
        );
        let version = env!("CARGO_PKG_VERSION");
        let want = format!(
            concat!(
                r#"{{"resourceLogs":[{{"resource":{{"attributes":["#,
                r#"{{"key":"service.name","value":{{"stringValue":"shop"}}}},"#,
                r#"{{"key":"deployment.environment","value":{{"stringValue":"prod"}}}}]}},"#,
                r#""scopeLogs":[{{"scope":{{"name":"pidzero","version":"{version}"}},"logRecords":["#,
                r#"{{"timeUnixNano":"1772719740123000000","observedTimeUnixNano":"1772719740123000000","severityNumber":9,"severityText":"INFO","body":{{"stringValue":"GET / 200"}},"attributes":[{{"key":"source","value":{{"stringValue":"web"}}}},{{"key":"stream","value":{{"stringValue":"stdout"}}}}]}},"#,
                r#"{{"timeUnixNano":"1772719740123000000","observedTimeUnixNano":"1772719740123000000","severityNumber":13,"severityText":"WARN","body":{{"stringValue":"slow"}},"attributes":[{{"key":"source","value":{{"stringValue":"web"}}}},{{"key":"stream","value":{{"stringValue":"stderr"}}}}]}},"#,
                r#"{{"timeUnixNano":"1772719741000000000","observedTimeUnixNano":"1772719741000000000","severityNumber":17,"severityText":"ERROR","body":{{"stringValue":"web exited with status 3"}},"attributes":[{{"key":"source","value":{{"stringValue":"pidzero"}}}},{{"key":"stream","value":{{"stringValue":"event"}}}},{{"key":"event","value":{{"stringValue":"exited"}}}},{{"key":"daemon","value":{{"stringValue":"web"}}}},{{"key":"status","value":{{"intValue":"3"}}}}]}}"#,
                "]}}]}}]}}"
            ),
            version = version
        );
        assert_eq!(body, want);
    }

    #[test]
    fn parsed_objects_become_kvlists_with_their_level() {
        let mut encoder = OtlpEncoder::new("pidzero", &[], MessageFormat::Line);
        let body = encode(
            &mut encoder,
            vec![(
                lines(
                    Stream::Stdout,
                    LineParse::Json,
                    "{\"level\":\"error\",\"n\":7,\"ok\":true,\"x\":1.5,\"a\":[null,\"s\"]}\n",
                ),
                1,
            )],
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let record = &parsed["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
        assert_eq!(record["severityNumber"], 17);
        let values = record["body"]["kvlistValue"]["values"].as_array().unwrap();
        let get = |k: &str| &values.iter().find(|v| v["key"] == k).unwrap()["value"];
        assert_eq!(get("n"), &serde_json::json!({"intValue": "7"}));
        assert_eq!(get("ok"), &serde_json::json!({"boolValue": true}));
        assert_eq!(get("x"), &serde_json::json!({"doubleValue": 1.5}));
        assert_eq!(
            get("a"),
            &serde_json::json!({"arrayValue": {"values": [{}, {"stringValue": "s"}]}})
        );
        // In a record format, the body is that record's text.
        let mut encoder =
            OtlpEncoder::new("pidzero", &[], MessageFormat::Record(LogFormat::Logfmt));
        let body = encode(
            &mut encoder,
            vec![(lines(Stream::Stdout, LineParse::Text, "hi\n"), 1)],
        );
        assert!(
            body.contains(r#""body":{"stringValue":"timestamp=2026-03-05T14:09:00.123Z source=web stream=stdout line=hi"}"#),
            "{body}"
        );
    }

    #[test]
    fn partial_success_counts_rejected_records() {
        let answer = br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}"#;
        assert_eq!(partial_success(answer), Some((2, "too old".into())));
        assert_eq!(
            partial_success(br#"{"partialSuccess":{"rejectedLogRecords":3}}"#),
            Some((3, String::new()))
        );
        assert_eq!(partial_success(br#"{"partialSuccess":{}}"#), None);
        assert_eq!(partial_success(b"{}"), None);
        assert_eq!(partial_success(b""), None);
        assert_eq!(partial_success(b"ok"), None);
    }

    #[test]
    fn severities_follow_the_data_model() {
        assert_eq!(syslog_severity(syslog::INFO), (9, "INFO"));
        assert_eq!(syslog_severity(syslog::WARNING), (13, "WARN"));
        assert_eq!(syslog_severity(syslog::ERROR), (17, "ERROR"));
        assert_eq!(syslog_severity(syslog::EMERGENCY), (21, "FATAL"));
        assert_eq!(syslog_severity(syslog::DEBUG), (5, "DEBUG"));
        assert_eq!(level_severity(Level::Warn), (13, "WARN"));
    }
}

//! Loki's push API payload (`POST /loki/api/v1/push`, JSON):
//!
//! ```json
//! {"streams":[{"stream":{"app":"shop","source":"web","stream":"stdout"},
//!              "values":[["1772719740123000000","{\"timestamp\":...}"]]}]}
//! ```
//!
//! One stream per label set in the batch, in the order first seen; the
//! labels are the static `labels` of the settings, then `source` (the
//! daemon's name; `pidzero` for pidzero's own events) and `stream`
//! (`stdout`, `stderr`, `event`): a few series per daemon, never a pid or
//! anything that grows. `source` rather than `daemon`: an event's record
//! has a `daemon` field of its own (the daemon it is about), which `| json`
//! extracts as usual.
//!
//! Each entry is `[time in ns as a string, line]`. Records of one read
//! share a millisecond; Loki drops an entry with the same time and text as
//! another of its stream, so entries of one stream get strictly increasing
//! nanoseconds (the record's millisecond, plus one per entry that shares
//! it), kept across batches: repeated lines survive, in order.

use std::collections::HashMap;
use std::sync::Arc;

use super::batch::{for_each_record, record_text, unix_nanos, Taken};
use super::encode::Rec;
use crate::config::MessageFormat;
use crate::log::format::json_string;
use crate::log::record::Stream;

#[derive(Debug)]
pub struct LokiEncoder {
    /// The static labels, rendered once: `"k":"v",` each.
    labels: Vec<u8>,
    format: MessageFormat,
    /// The last time given to an entry of each stream.
    last: HashMap<(Arc<str>, &'static str), u64>,
    pidzero: Arc<str>,
    scratch: Vec<u8>,
}

/// One stream of the payload being built.
struct Values {
    source: Arc<str>,
    stream: Stream,
    /// `["ns","line"]` entries, comma-separated.
    values: Vec<u8>,
}

impl LokiEncoder {
    pub fn new(labels: &[(String, String)], format: MessageFormat) -> Self {
        let mut rendered = Vec::new();
        for (name, value) in labels {
            json_string(&mut rendered, name.as_bytes());
            rendered.push(b':');
            json_string(&mut rendered, value.as_bytes());
            rendered.push(b',');
        }
        LokiEncoder {
            labels: rendered,
            format,
            last: HashMap::new(),
            pidzero: Arc::from("pidzero"),
            scratch: Vec::new(),
        }
    }

    /// Appends the push request for `items` to `out`; returns the records.
    pub fn encode(&mut self, items: &Taken, out: &mut Vec<u8>) -> u64 {
        let mut streams: Vec<Values> = Vec::new();
        let mut records = 0;
        let mut scratch = std::mem::take(&mut self.scratch);
        for_each_record(items, |rec| {
            let (source, stream, timestamp) = match rec {
                Rec::Line { batch, .. } => (&batch.source, batch.stream, &batch.timestamp),
                Rec::Event(event) => (&self.pidzero, Stream::Event, &event.timestamp),
            };
            let at = match streams
                .iter()
                .position(|s| s.stream == stream && s.source == *source)
            {
                Some(at) => at,
                None => {
                    streams.push(Values {
                        source: Arc::clone(source),
                        stream,
                        values: Vec::new(),
                    });
                    streams.len() - 1
                }
            };
            let last = self
                .last
                .entry((Arc::clone(source), stream.as_str()))
                .or_insert(0);
            let nanos = unix_nanos(timestamp).max(last.saturating_add(1));
            *last = nanos;
            let values = &mut streams[at].values;
            if !values.is_empty() {
                values.push(b',');
            }
            values.extend_from_slice(format!("[\"{nanos}\",").as_bytes());
            json_string(values, record_text(rec, self.format, &mut scratch));
            values.push(b']');
            records += 1;
        });
        self.scratch = scratch;
        out.extend_from_slice(b"{\"streams\":[");
        for (i, values) in streams.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"stream\":{");
            out.extend_from_slice(&self.labels);
            out.extend_from_slice(b"\"source\":");
            json_string(out, values.source.as_bytes());
            out.extend_from_slice(b",\"stream\":\"");
            out.extend_from_slice(values.stream.as_str().as_bytes());
            out.extend_from_slice(b"\"},\"values\":[");
            out.extend_from_slice(&values.values);
            out.extend_from_slice(b"]}");
        }
        out.extend_from_slice(b"]}");
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogFormat;
    use crate::log::net::encode::Item;
    use crate::log::record::{EventRecord, FieldValue, Level, LineBatch};
    use crate::log::Framer;

    fn lines(source: &str, stream: Stream, ts: &[u8; 24], text: &str) -> Item {
        let mut batch = LineBatch::new(source.into(), stream, *ts);
        Framer::new(1024).push(text.as_bytes(), &mut batch);
        Item::lines(Arc::new(batch))
    }

    fn event() -> Item {
        Item::event(Arc::new(EventRecord {
            timestamp: *b"2026-03-05T14:09:01.000Z",
            level: Level::Info,
            event: "started",
            fields: vec![("daemon", FieldValue::Str("web".into()))],
            line: "started web".into(),
        }))
    }

    fn encode(encoder: &mut LokiEncoder, items: Vec<(Item, usize)>) -> (String, u64) {
        let mut out = Vec::new();
        let n = encoder.encode(&items, &mut out);
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn one_stream_per_label_set_with_increasing_nanoseconds() {
        let labels = [("app".to_string(), "shop".to_string())];
        let mut encoder = LokiEncoder::new(&labels, MessageFormat::Line);
        let ts = b"2026-03-05T14:09:00.123Z";
        let items = vec![
            (lines("web", Stream::Stdout, ts, "a\na\n\"q\"\n"), 2),
            (lines("web", Stream::Stderr, ts, "oops\n"), 1),
            (event(), 1),
        ];
        let (body, n) = encode(&mut encoder, items);
        assert_eq!(n, 4);
        assert_eq!(
            body,
            concat!(
                r#"{"streams":["#,
                r#"{"stream":{"app":"shop","source":"web","stream":"stdout"},"values":[["1772719740123000000","a"],["1772719740123000001","a"]]},"#,
                r#"{"stream":{"app":"shop","source":"web","stream":"stderr"},"values":[["1772719740123000000","oops"]]},"#,
                r#"{"stream":{"app":"shop","source":"pidzero","stream":"event"},"values":[["1772719741000000000","started web"]]}"#,
                "]}"
            )
        );
        // The next batch goes on from the last time of each stream.
        let (body, _) = encode(
            &mut encoder,
            vec![(lines("web", Stream::Stdout, ts, "b\n"), 1)],
        );
        assert!(body.contains(r#"[["1772719740123000002","b"]]"#), "{body}");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["streams"][0]["stream"]["source"], "web");
    }

    #[test]
    fn the_line_is_the_record_in_the_chosen_format() {
        let mut encoder = LokiEncoder::new(&[], MessageFormat::Record(LogFormat::Json));
        let ts = b"2026-03-05T14:09:00.123Z";
        let (body, _) = encode(
            &mut encoder,
            vec![
                (lines("web", Stream::Stdout, ts, "GET / 200\n"), 1),
                (event(), 1),
            ],
        );
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let line = parsed["streams"][0]["values"][0][1].as_str().unwrap();
        assert_eq!(
            line,
            r#"{"timestamp":"2026-03-05T14:09:00.123Z","source":"web","stream":"stdout","line":"GET / 200"}"#
        );
        let event: serde_json::Value =
            serde_json::from_str(parsed["streams"][1]["values"][0][1].as_str().unwrap()).unwrap();
        assert_eq!(
            (event["event"].as_str(), event["daemon"].as_str()),
            (Some("started"), Some("web"))
        );
    }
}

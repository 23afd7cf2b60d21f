//! What a network handler queues ([`Item`]) and how it turns items into
//! bytes for its receiver ([`Encoder`]): newline-delimited records for
//! `forward`, syslog messages for `syslog`. Pure: no I/O.
//!
//! Items hold the batch of lines as it was read (shared by the handlers)
//! rather than formatted bytes: the writer thread, the one serial stage of
//! the pipeline, then only copies a read's bytes once per round, and each
//! handler's thread formats on its own time.

use std::sync::Arc;

use super::queue::Entry;
use super::syslog::{self, Header, Origin};
use crate::config::{LogFormat, MessageFormat, SyslogProtocol};
use crate::log::format::{format_event, format_spans};
use crate::log::record::{EventRecord, LineBatch};

/// Records waiting in a handler's queue.
#[derive(Debug, Clone)]
pub struct Item {
    record: Record,
    /// Records before this one were sent or dropped.
    next: usize,
}

#[derive(Debug, Clone)]
enum Record {
    Lines(Arc<LineBatch>),
    Event(Arc<EventRecord>),
}

impl Item {
    pub fn lines(batch: Arc<LineBatch>) -> Self {
        Item {
            record: Record::Lines(batch),
            next: 0,
        }
    }

    pub fn event(event: Arc<EventRecord>) -> Self {
        Item {
            record: Record::Event(event),
            next: 0,
        }
    }
}

/// One record of an [`Item`], for the encoders that build a structure of
/// their own around records (the HTTP handlers' payloads).
#[derive(Debug, Clone, Copy)]
pub enum Rec<'a> {
    Line {
        batch: &'a LineBatch,
        span: crate::log::record::LineSpan,
    },
    Event(&'a EventRecord),
}

impl Item {
    /// Calls `f` on each record not yet skipped, the first `max` at most.
    pub fn for_each_record<'a>(&'a self, max: usize, mut f: impl FnMut(Rec<'a>)) {
        match &self.record {
            Record::Lines(batch) => {
                let spans = batch.lines.get(self.next..).unwrap_or_default();
                for &span in spans.iter().take(max) {
                    f(Rec::Line { batch, span });
                }
            }
            Record::Event(event) => {
                if self.next == 0 && max > 0 {
                    f(Rec::Event(event));
                }
            }
        }
    }
}

impl Entry for Item {
    fn records(&self) -> usize {
        match &self.record {
            Record::Lines(batch) => batch.lines.len().saturating_sub(self.next),
            Record::Event(_) => 1usize.saturating_sub(self.next),
        }
    }

    fn bytes(&self) -> usize {
        match &self.record {
            Record::Lines(batch) => batch.data.len() + 12 * batch.lines.len() + 64,
            Record::Event(event) => event.line.len() + 64 * event.fields.len() + 128,
        }
    }

    fn skip(&mut self, n: usize) {
        self.next += n;
    }
}

/// How records become bytes for one handler.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// One record per line, in `format`.
    Forward(LogFormat),
    Syslog(SyslogEncoder),
}

#[derive(Debug, Clone)]
pub struct SyslogEncoder {
    pub protocol: SyslogProtocol,
    pub origin: Origin,
    /// `None`: each record's source.
    pub app_name: Option<String>,
    pub format: MessageFormat,
    /// Over TCP: octet counting; else one message per datagram.
    pub octet_counting: bool,
}

impl Encoder {
    /// Appends the item's records to `out`, and the offset just past each
    /// one to `ends` (for datagrams: each is one datagram; for streams: to
    /// count the records a failed write lost).
    pub fn encode(&self, out: &mut Vec<u8>, item: &Item, ends: &mut Vec<usize>) {
        match (self, &item.record) {
            (Encoder::Forward(format), Record::Lines(batch)) => {
                let spans = batch.lines.get(item.next..).unwrap_or_default();
                format_spans(out, *format, batch, spans, Some(ends));
            }
            (Encoder::Forward(format), Record::Event(event)) => {
                if item.next == 0 {
                    format_event(out, *format, event);
                    ends.push(out.len());
                }
            }
            (Encoder::Syslog(encoder), Record::Lines(batch)) => {
                let spans = batch.lines.get(item.next..).unwrap_or_default();
                let mut text = Vec::new();
                for span in spans {
                    let line = &batch.data[span.start as usize..span.end as usize];
                    text.clear();
                    let msg: &[u8] = match encoder.format {
                        MessageFormat::Line => line,
                        MessageFormat::Record(format) => {
                            format_spans(
                                &mut text,
                                format,
                                batch,
                                std::slice::from_ref(span),
                                None,
                            );
                            strip_newline(&text)
                        }
                    };
                    let header = Header {
                        severity: syslog::line_severity(batch.stream, line),
                        timestamp: &batch.timestamp,
                        app_name: encoder.app_name.as_deref().unwrap_or(&batch.source),
                        msgid: &batch.source,
                    };
                    encoder.message(out, &header, &String::from_utf8_lossy(msg));
                    ends.push(out.len());
                }
            }
            (Encoder::Syslog(encoder), Record::Event(event)) => {
                if item.next > 0 {
                    return;
                }
                let mut text = Vec::new();
                let msg: &[u8] = match encoder.format {
                    MessageFormat::Line => event.line.as_bytes(),
                    MessageFormat::Record(format) => {
                        format_event(&mut text, format, event);
                        strip_newline(&text)
                    }
                };
                let header = Header {
                    severity: syslog::event_severity(event.level),
                    timestamp: &event.timestamp,
                    app_name: encoder.app_name.as_deref().unwrap_or("pidzero"),
                    msgid: "pidzero",
                };
                encoder.message(out, &header, &String::from_utf8_lossy(msg));
                ends.push(out.len());
            }
        }
    }
}

impl SyslogEncoder {
    /// One message, framed for its transport.
    fn message(&self, out: &mut Vec<u8>, header: &Header<'_>, msg: &str) {
        let start = out.len();
        match self.protocol {
            SyslogProtocol::Rfc5424 => syslog::rfc5424(out, &self.origin, header, msg.as_bytes()),
            SyslogProtocol::Rfc3164 => syslog::rfc3164(out, &self.origin, header, msg.as_bytes()),
        }
        if self.octet_counting {
            syslog::octet_count(out, start);
        } else {
            syslog::cut_datagram(out, start, syslog::MAX_DATAGRAM);
        }
    }
}

fn strip_newline(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\n").unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::{Level, Stream};
    use crate::log::Framer;

    fn batch(source: &str, stream: Stream, text: &str) -> Arc<LineBatch> {
        let mut batch = LineBatch::new(source.into(), stream, *b"2026-03-05T14:09:00.123Z");
        Framer::new(1024).push(text.as_bytes(), &mut batch);
        Arc::new(batch)
    }

    fn event() -> Arc<EventRecord> {
        Arc::new(EventRecord {
            timestamp: *b"2026-03-05T14:09:01.000Z",
            level: Level::Error,
            event: "vital_exit",
            fields: vec![("daemon", crate::log::FieldValue::Str("web".into()))],
            line: "vital daemon web exited".into(),
        })
    }

    fn syslog(octet_counting: bool, format: MessageFormat, app: Option<&str>) -> Encoder {
        Encoder::Syslog(SyslogEncoder {
            protocol: SyslogProtocol::Rfc5424,
            origin: Origin {
                hostname: "box".into(),
                local: false,
                pid: 7,
                facility: 3,
            },
            app_name: app.map(str::to_string),
            format,
            octet_counting,
        })
    }

    fn encode(encoder: &Encoder, item: &Item) -> (String, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        encoder.encode(&mut out, item, &mut ends);
        (String::from_utf8(out).unwrap(), ends)
    }

    #[test]
    fn forward_sends_one_record_per_line_from_the_first_not_skipped() {
        let mut item = Item::lines(batch("web", Stream::Stdout, "a\nb\nc\n"));
        item.skip(1);
        assert_eq!(item.records(), 2);
        let (text, ends) = encode(&Encoder::Forward(LogFormat::Json), &item);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["line"], "b");
        assert_eq!(first["source"], "web");
        assert_eq!(ends, [lines[0].len() + 1, text.len()]);
        let (text, ends) = encode(&Encoder::Forward(LogFormat::Logfmt), &Item::event(event()));
        assert!(
            text.starts_with("timestamp=2026-03-05T14:09:01.000Z source=pidzero"),
            "{text}"
        );
        assert!(
            text.ends_with("line=\"vital daemon web exited\"\n"),
            "{text}"
        );
        assert_eq!(ends, [text.len()]);
    }

    #[test]
    fn syslog_lines_over_tcp_are_octet_counted_with_their_severity() {
        let item = Item::lines(batch("web", Stream::Stderr, "oops\nERROR bad\n"));
        let (text, ends) = encode(&syslog(true, MessageFormat::Line, None), &item);
        let first = "<28>1 2026-03-05T14:09:00.123Z box web 7 web - oops";
        let second = "<27>1 2026-03-05T14:09:00.123Z box web 7 web - ERROR bad";
        assert_eq!(
            text,
            format!("{} {first}{} {second}", first.len(), second.len())
        );
        assert_eq!(ends.len(), 2);
    }

    #[test]
    fn syslog_events_and_record_formats() {
        let (text, _) = encode(
            &syslog(false, MessageFormat::Line, Some("app")),
            &Item::event(event()),
        );
        assert_eq!(
            text,
            "<27>1 2026-03-05T14:09:01.000Z box app 7 pidzero - vital daemon web exited"
        );
        let item = Item::lines(batch("web", Stream::Stdout, "hi \"x\"\n"));
        let (text, _) = encode(
            &syslog(false, MessageFormat::Record(LogFormat::Json), None),
            &item,
        );
        let (_, msg) = text.split_once(" web - ").unwrap();
        let record: serde_json::Value = serde_json::from_str(msg).unwrap();
        assert_eq!(record["line"], "hi \"x\"");
    }

    #[test]
    fn a_long_line_is_cut_to_one_datagram() {
        let long = format!("{}\n", "é".repeat(10_000));
        let mut batch = LineBatch::new("web".into(), Stream::Stdout, *b"2026-03-05T14:09:00.123Z");
        Framer::new(100_000).push(long.as_bytes(), &mut batch);
        let item = Item::lines(Arc::new(batch));
        let (text, ends) = encode(&syslog(false, MessageFormat::Line, None), &item);
        assert!(text.len() <= syslog::MAX_DATAGRAM && text.len() > syslog::MAX_DATAGRAM - 4);
        assert_eq!(ends, [text.len()]);
    }
}

//! Syslog messages: RFC 5424 and RFC 3164 headers, severities, and the
//! framing of each transport. Pure: bytes in, bytes out.
//!
//! - RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`,
//!   the timestamp RFC 3339 UTC with milliseconds (the record's own).
//! - RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`, the time in UTC
//!   (the format has no zone; containers run in UTC as a rule); to the
//!   local `/dev/log` without `HOSTNAME`, as syslog(3) writes it.
//! - PRI = facility × 8 + severity.
//! - Over TCP, octet counting (RFC 6587 §3.4.1): `LEN SP MESSAGE`, so a
//!   message may hold anything; over UDP and Unix datagrams, one message
//!   per datagram, cut at [`MAX_DATAGRAM`] bytes.

use crate::log::record::{Level, Stream, Timestamp};

/// The largest datagram sent (UDP or `/dev/log`); a longer message is cut
/// at a UTF-8 character boundary. rsyslog's default `maxMessageSize` is
/// 8 KiB, and a UDP datagram of this size still crosses loopback and most
/// container networks unfragmented by the sender's stack.
pub const MAX_DATAGRAM: usize = 8192;

pub const EMERGENCY: u8 = 0;
pub const ALERT: u8 = 1;
pub const CRITICAL: u8 = 2;
pub const ERROR: u8 = 3;
pub const WARNING: u8 = 4;
pub const NOTICE: u8 = 5;
pub const INFO: u8 = 6;
pub const DEBUG: u8 = 7;

/// Severity of an event of pidzero's own.
pub fn event_severity(level: Level) -> u8 {
    match level {
        Level::Trace | Level::Debug => DEBUG,
        Level::Info => INFO,
        Level::Warn => WARNING,
        Level::Error => ERROR,
        Level::Fatal => CRITICAL,
    }
}

/// Severity of a daemon line: what the line says at its start (`ERROR: x`,
/// `[warn] x`, `level=debug x`, `{"level":"error",...}`, `E: x`... see
/// [`stated_severity`]), else from its stream: stderr → warning, stdout → info.
pub fn line_severity(stream: Stream, line: &[u8]) -> u8 {
    stated_severity(line).unwrap_or(match stream {
        Stream::Stderr => WARNING,
        _ => INFO,
    })
}

/// Level words, longest first where one is a prefix of another.
const WORDS: &[(&str, u8)] = &[
    ("emergency", EMERGENCY),
    ("emerg", EMERGENCY),
    ("panic", EMERGENCY),
    ("alert", ALERT),
    ("critical", CRITICAL),
    ("crit", CRITICAL),
    ("fatal", CRITICAL),
    ("error", ERROR),
    ("err", ERROR),
    ("warning", WARNING),
    ("warn", WARNING),
    ("notice", NOTICE),
    ("info", INFO),
    ("debug", DEBUG),
    ("trace", DEBUG),
];

/// The level a line states near its start, if any: a level word (any case)
/// as the line's first word, possibly in brackets or followed by `:`; or
/// `level=WORD` / `"level":"WORD"` (logfmt, JSON) in the first 256 bytes.
/// A line that merely mentions "error" in its text keeps its stream's severity.
pub fn stated_severity(line: &[u8]) -> Option<u8> {
    let head = &line[..line.len().min(256)];
    let start = head.iter().position(|b| !b.is_ascii_whitespace())?;
    let first = &head[start..];
    let first = first.strip_prefix(b"[").unwrap_or(first);
    if let Some(severity) = word_at(first) {
        return Some(severity);
    }
    for key in [
        &b"level="[..],
        b"\"level\":\"",
        b"\"level\": \"",
        b"severity=",
    ] {
        if let Some(at) = find(head, key) {
            if let Some(severity) = word_at(&head[at + key.len()..]) {
                return Some(severity);
            }
        }
    }
    None
}

/// A level word at the start of `text`, ending where a word ends.
fn word_at(text: &[u8]) -> Option<u8> {
    WORDS.iter().find_map(|&(word, severity)| {
        let word = word.as_bytes();
        let matches = text.len() >= word.len()
            && text[..word.len()].eq_ignore_ascii_case(word)
            && text
                .get(word.len())
                .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_');
        matches.then_some(severity)
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The fields of a header that do not change between records.
#[derive(Debug, Clone)]
pub struct Origin {
    /// This host's name (printable ASCII, no space; `-` if unknown).
    pub hostname: String,
    /// Sent to the local `/dev/log`: RFC 3164 messages then leave out the
    /// host name, as syslog(3) does (journald and rsyslog's imuxsock would
    /// take it for the tag).
    pub local: bool,
    /// pidzero's pid: PROCID, and the PID of the RFC 3164 TAG.
    pub pid: u32,
    pub facility: u8,
}

/// A header's fields for one record.
pub struct Header<'a> {
    pub severity: u8,
    pub timestamp: &'a Timestamp,
    /// APP-NAME / TAG.
    pub app_name: &'a str,
    /// MSGID (RFC 5424 only): the record's source.
    pub msgid: &'a str,
}

/// Appends an RFC 5424 message.
pub fn rfc5424(out: &mut Vec<u8>, origin: &Origin, header: &Header<'_>, msg: &[u8]) {
    push_pri(out, origin.facility, header.severity);
    out.extend_from_slice(b"1 ");
    out.extend_from_slice(header.timestamp);
    out.push(b' ');
    out.extend_from_slice(origin.hostname.as_bytes());
    out.push(b' ');
    push_token(out, header.app_name, 48);
    out.extend_from_slice(format!(" {} ", origin.pid).as_bytes());
    push_token(out, header.msgid, 32);
    out.extend_from_slice(b" - ");
    out.extend_from_slice(msg);
}

/// Appends an RFC 3164 (BSD) message.
pub fn rfc3164(out: &mut Vec<u8>, origin: &Origin, header: &Header<'_>, msg: &[u8]) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    push_pri(out, origin.facility, header.severity);
    let ts = header.timestamp;
    let month = usize::from(ts[5] - b'0') * 10 + usize::from(ts[6] - b'0');
    out.extend_from_slice(MONTHS[month.clamp(1, 12) - 1].as_bytes());
    out.push(b' ');
    // The day is padded with a space, not a zero.
    out.push(if ts[8] == b'0' { b' ' } else { ts[8] });
    out.push(ts[9]);
    out.push(b' ');
    out.extend_from_slice(&ts[11..19]);
    out.push(b' ');
    if !origin.local {
        out.extend_from_slice(origin.hostname.as_bytes());
        out.push(b' ');
    }
    push_token(out, header.app_name, 32);
    out.extend_from_slice(format!("[{}]: ", origin.pid).as_bytes());
    out.extend_from_slice(msg);
}

fn push_pri(out: &mut Vec<u8>, facility: u8, severity: u8) {
    let pri = u16::from(facility) * 8 + u16::from(severity.min(DEBUG));
    out.extend_from_slice(format!("<{pri}>").as_bytes());
}

/// A header token: printable ASCII without space, at most `max` bytes,
/// `-` when nothing is left (daemon names are already such tokens).
fn push_token(out: &mut Vec<u8>, text: &str, max: usize) {
    let start = out.len();
    out.extend(text.bytes().filter(|b| (33..=126).contains(b)).take(max));
    if out.len() == start {
        out.push(b'-');
    }
}

/// Prefixes the message that starts at `start` in `out` with its length
/// (RFC 6587 octet counting): `LEN SP MESSAGE`.
pub fn octet_count(out: &mut Vec<u8>, start: usize) {
    let len = format!("{} ", out.len() - start);
    out.splice(start..start, len.bytes());
}

/// Cuts the message that starts at `start` in `out` to `max` bytes, at a
/// UTF-8 character boundary.
pub fn cut_datagram(out: &mut Vec<u8>, start: usize, max: usize) {
    if out.len() - start <= max {
        return;
    }
    let mut end = start + max;
    while end > start && (out[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    out.truncate(end);
}

/// This host's name (the UTS namespace's, as `hostname` prints it) as a
/// header token (`-` when it has none).
pub fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut token = Vec::new();
    push_token(&mut token, &name, 255);
    String::from_utf8(token).unwrap_or_else(|_| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &Timestamp = b"2026-03-05T14:09:00.123Z";

    fn origin(facility: u8) -> Origin {
        Origin {
            hostname: "box".into(),
            local: false,
            pid: 1,
            facility,
        }
    }

    fn header<'a>(severity: u8, app: &'a str, msgid: &'a str) -> Header<'a> {
        Header {
            severity,
            timestamp: TS,
            app_name: app,
            msgid,
        }
    }

    #[test]
    fn rfc5424_header_and_pri() {
        let mut out = Vec::new();
        rfc5424(
            &mut out,
            &origin(3),
            &header(WARNING, "web", "web"),
            b"disk low",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<28>1 2026-03-05T14:09:00.123Z box web 1 web - disk low"
        );
        let mut out = Vec::new();
        rfc5424(&mut out, &origin(23), &header(DEBUG, "", "a b"), b"");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<191>1 2026-03-05T14:09:00.123Z box - 1 ab - "
        );
    }

    #[test]
    fn rfc5424_tokens_are_cut_to_their_maximum() {
        let mut out = Vec::new();
        let long = "d".repeat(64);
        rfc5424(&mut out, &origin(3), &header(INFO, &long, &long), b"m");
        let text = String::from_utf8(out).unwrap();
        let fields: Vec<&str> = text.split(' ').collect();
        assert_eq!(fields[3].len(), 48);
        assert_eq!(fields[5].len(), 32);
    }

    #[test]
    fn rfc3164_header() {
        let mut out = Vec::new();
        rfc3164(&mut out, &origin(1), &header(ERROR, "web", "web"), b"boom");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<11>Mar  5 14:09:00 box web[1]: boom"
        );
        let mut out = Vec::new();
        let ts = b"2026-12-25T01:02:03.000Z";
        let h = Header {
            timestamp: ts,
            ..header(INFO, "x", "x")
        };
        rfc3164(&mut out, &origin(3), &h, b"m");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<30>Dec 25 01:02:03 box x[1]: m"
        );
        let local = Origin {
            local: true,
            ..origin(3)
        };
        let mut out = Vec::new();
        rfc3164(&mut out, &local, &h, b"m");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<30>Dec 25 01:02:03 x[1]: m",
            "no host name to /dev/log"
        );
    }

    #[test]
    fn octet_counting_frames_the_message_after_start() {
        let mut out = b"prev".to_vec();
        out.extend_from_slice("<14>1 héllo".as_bytes());
        octet_count(&mut out, 4);
        assert_eq!(out, "prev12 <14>1 héllo".as_bytes());
    }

    #[test]
    fn datagrams_are_cut_on_a_character_boundary() {
        let mut out = b"xx".to_vec();
        out.extend_from_slice("aé".as_bytes());
        cut_datagram(&mut out, 2, 2);
        assert_eq!(out, b"xxa");
        let mut out = b"abc".to_vec();
        cut_datagram(&mut out, 0, 3);
        assert_eq!(out, b"abc");
    }

    #[test]
    fn severity_from_the_stream_unless_the_line_says() {
        assert_eq!(line_severity(Stream::Stdout, b"GET / 200"), INFO);
        assert_eq!(line_severity(Stream::Stderr, b"something odd"), WARNING);
        assert_eq!(line_severity(Stream::Stderr, b"an error occurred"), WARNING);
        assert_eq!(line_severity(Stream::Stderr, b"ERROR: disk"), ERROR);
        assert_eq!(line_severity(Stream::Stderr, b"[info] ready"), INFO);
        assert_eq!(line_severity(Stream::Stdout, b"  Fatal boom"), CRITICAL);
        assert_eq!(line_severity(Stream::Stdout, b"warning: x"), WARNING);
        assert_eq!(
            line_severity(Stream::Stdout, b"t=1 level=debug msg=x"),
            DEBUG
        );
        assert_eq!(
            line_severity(Stream::Stdout, br#"{"time":1,"level":"error","msg":"x"}"#),
            ERROR
        );
        assert_eq!(line_severity(Stream::Stderr, b"errors: 0"), WARNING);
        assert_eq!(line_severity(Stream::Stderr, b"information"), WARNING);
        assert_eq!(line_severity(Stream::Stderr, b""), WARNING);
        assert_eq!(event_severity(Level::Error), ERROR);
        assert_eq!(event_severity(Level::Info), INFO);
    }
}

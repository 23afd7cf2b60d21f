//! `log.syslog` and `log.forward`: the network log handlers' settings.
//!
//! Both are optional objects (absent or `null`: off); every key inside has a
//! default, so `"syslog": {}` sends to `/dev/log`. Addresses are URLs with
//! the transport as scheme, checked here (scheme, host, port) so that a typo
//! is a configuration error with its line and column, not a sink that never
//! connects. Host names are resolved at each connection attempt, so a
//! receiver that is not up (or not in DNS) yet when pidzero starts is fine.

use std::fmt;
use std::path::PathBuf;

use serde_json::value::RawValue;

use super::json::{self, Kind, Report};
pub use super::log_handler::{
    host_port, MessageFormat, DEFAULT_BUFFER_BYTES, DEFAULT_BUFFER_RECORDS, MAX_BUFFER_BYTES,
    MAX_BUFFER_RECORDS,
};
use super::log_handler::{read_buffer, MESSAGE_FORMATS};
use super::log_http::{LokiSettings, OtlpSettings};
use super::{LogFormat, SinkKind, SinkSet};

pub(super) const SYSLOG_FIELDS: &[&str] = &[
    "address",
    "protocol",
    "facility",
    "app_name",
    "format",
    "buffer_records",
    "buffer_bytes",
];
pub(super) const FORWARD_FIELDS: &[&str] = &["address", "format", "buffer_records", "buffer_bytes"];

/// Where `log.syslog` sends without an `address`.
pub const DEFAULT_SYSLOG_ADDRESS: &str = "unix:///dev/log";

/// The longest Unix socket path (`sun_path` holds 108 bytes with the NUL):
/// a longer one could never connect, so it is a configuration error.
pub const MAX_UNIX_SOCKET_PATH: usize = 107;

/// The network handlers; each `None` when off.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetSettings {
    pub syslog: Option<SyslogSettings>,
    pub forward: Option<ForwardSettings>,
    pub loki: Option<LokiSettings>,
    pub otlp: Option<OtlpSettings>,
}

impl NetSettings {
    pub fn any(&self) -> bool {
        !self.kinds().is_empty()
    }

    /// The handlers that are on.
    pub fn kinds(&self) -> SinkSet {
        let mut set = SinkSet::NONE;
        for (on, kind) in [
            (self.syslog.is_some(), SinkKind::Syslog),
            (self.forward.is_some(), SinkKind::Forward),
            (self.loki.is_some(), SinkKind::Loki),
            (self.otlp.is_some(), SinkKind::Otlp),
        ] {
            if on {
                set = set.with(kind);
            }
        }
        set
    }
}

/// A receiver's address, as a transport and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetAddress {
    Tcp {
        host: String,
        port: u16,
    },
    Udp {
        host: String,
        port: u16,
    },
    /// A Unix socket: stream for `forward`, datagram for `syslog`.
    Unix(PathBuf),
}

impl fmt::Display for NetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetAddress::Tcp { host, port } => write!(f, "tcp://{}", host_port(host, *port)),
            NetAddress::Udp { host, port } => write!(f, "udp://{}", host_port(host, *port)),
            NetAddress::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogProtocol {
    Rfc5424,
    Rfc3164,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSettings {
    pub address: NetAddress,
    pub protocol: SyslogProtocol,
    /// The facility's number (`daemon` = 3).
    pub facility: u8,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164); `None`: the record's source
    /// (the daemon's name, `pidzero` for events).
    pub app_name: Option<String>,
    pub format: MessageFormat,
    pub buffer_records: usize,
    pub buffer_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSettings {
    /// TCP or a Unix stream socket.
    pub address: NetAddress,
    pub format: LogFormat,
    pub buffer_records: usize,
    pub buffer_bytes: usize,
}

const PROTOCOLS: &[(&str, SyslogProtocol)] = &[
    ("rfc5424", SyslogProtocol::Rfc5424),
    ("rfc3164", SyslogProtocol::Rfc3164),
];

const FORMATS: &[(&str, LogFormat)] = &[
    ("json", LogFormat::Json),
    ("map", LogFormat::Map),
    ("logfmt", LogFormat::Logfmt),
    ("text", LogFormat::Text),
];

/// RFC 5424 §6.2.1 facility names and numbers.
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// `log.syslog`: `None` when absent, `null` or wrong (then reported).
pub(super) fn read_syslog(report: &mut Report, raw: &RawValue) -> Option<SyslogSettings> {
    if Kind::of(raw) == Kind::Null {
        return None;
    }
    let fields = json::object(report, raw, "log.syslog", SYSLOG_FIELDS, "log.syslog.")?;
    let before = report.count();
    let address = match fields.get("address") {
        Some(raw) => read_address(report, raw, "log.syslog.address", &["unix", "udp", "tcp"]),
        None => Some(NetAddress::Unix(PathBuf::from("/dev/log"))),
    };
    // `/dev/log` readers (journald, rsyslog's imuxsock) expect what
    // syslog(3) writes there: the BSD format without a host name.
    let local = matches!(address, Some(NetAddress::Unix(_)));
    let default_protocol = if local {
        SyslogProtocol::Rfc3164
    } else {
        SyslogProtocol::Rfc5424
    };
    let protocol = fields
        .get("protocol")
        .map_or(Some(default_protocol), |raw| {
            json::choice(report, raw, "log.syslog.protocol", PROTOCOLS)
        });
    let facility = fields.get("facility").map_or(Some(3), |raw| {
        json::choice(report, raw, "log.syslog.facility", FACILITIES)
    });
    let app_name = match fields.get("app_name") {
        Some(raw) => json::nullable_string(report, raw, "log.syslog.app_name")
            .and_then(|name| check_app_name(report, raw, name)),
        None => Some(None),
    };
    let format = fields
        .get("format")
        .map_or(Some(MessageFormat::Line), |raw| {
            json::choice(report, raw, "log.syslog.format", MESSAGE_FORMATS)
        });
    let (buffer_records, buffer_bytes) = read_buffer(report, &fields, "log.syslog");
    if report.count() > before {
        return None;
    }
    Some(SyslogSettings {
        address: address?,
        protocol: protocol?,
        facility: facility?,
        app_name: app_name?,
        format: format?,
        buffer_records,
        buffer_bytes,
    })
}

/// `log.forward`: `None` when absent, `null` or wrong (then reported).
pub(super) fn read_forward(report: &mut Report, raw: &RawValue) -> Option<ForwardSettings> {
    if Kind::of(raw) == Kind::Null {
        return None;
    }
    let fields = json::object(report, raw, "log.forward", FORWARD_FIELDS, "log.forward.")?;
    let before = report.count();
    let address = match fields.get("address") {
        Some(raw) => read_address(report, raw, "log.forward.address", &["tcp", "unix"]),
        None => {
            report.at(
                raw,
                "log.forward",
                "needs an `address`, such as \"tcp://127.0.0.1:9000\" or \"unix:///run/vector.sock\"",
            );
            None
        }
    };
    let format = fields.get("format").map_or(Some(LogFormat::Json), |raw| {
        json::choice(report, raw, "log.forward.format", FORMATS)
    });
    let (buffer_records, buffer_bytes) = read_buffer(report, &fields, "log.forward");
    if report.count() > before {
        return None;
    }
    Some(ForwardSettings {
        address: address?,
        format: format?,
        buffer_records,
        buffer_bytes,
    })
}

/// RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no space.
fn check_app_name(
    report: &mut Report,
    raw: &RawValue,
    name: Option<String>,
) -> Option<Option<String>> {
    match name {
        Some(name)
            if name.is_empty()
                || name.len() > 48
                || !name.bytes().all(|b| (33..=126).contains(&b)) =>
        {
            report.at(
                raw,
                "log.syslog.app_name",
                format!(
                    "must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME), found \"{name}\"; use null for each record's source"
                ),
            );
            None
        }
        name => Some(name),
    }
}

fn read_address(
    report: &mut Report,
    raw: &RawValue,
    field: &str,
    schemes: &[&str],
) -> Option<NetAddress> {
    let text = json::string(report, raw, field)?;
    match parse_address(&text, schemes) {
        Ok(address) => Some(address),
        Err(message) => {
            report.at(raw, field, message);
            None
        }
    }
}

/// Parses `scheme://...` for one of `schemes`; the error says what was expected.
pub fn parse_address(text: &str, schemes: &[&str]) -> Result<NetAddress, String> {
    let expected = || {
        let examples: Vec<String> = schemes
            .iter()
            .map(|s| match *s {
                "unix" => "\"unix:///path/to/socket\"".to_string(),
                s => format!("\"{s}://host:port\""),
            })
            .collect();
        examples.join(", ")
    };
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!(
            "expected an address such as {}, found \"{text}\"",
            expected()
        ));
    };
    if !schemes.contains(&scheme) {
        return Err(format!(
            "unsupported scheme \"{scheme}\" in \"{text}\"; expected one of {}",
            expected()
        ));
    }
    if scheme == "unix" {
        if !rest.starts_with('/') {
            return Err(format!(
                "a Unix socket address needs an absolute path, as in \"unix:///dev/log\", found \"{text}\""
            ));
        }
        if rest.len() > MAX_UNIX_SOCKET_PATH {
            return Err(format!(
                "a Unix socket path holds at most {MAX_UNIX_SOCKET_PATH} bytes, found {} in \"{text}\"",
                rest.len()
            ));
        }
        return Ok(NetAddress::Unix(PathBuf::from(rest)));
    }
    let (host, port) = split_host_port(rest)
        .ok_or_else(|| format!("expected host:port after {scheme}://, found \"{text}\""))?;
    let port = match port.parse::<u16>() {
        Ok(0) | Err(_) => {
            return Err(format!(
                "invalid port \"{port}\" in \"{text}\"; expected 1 to 65535"
            ))
        }
        Ok(port) => port,
    };
    let host = host.to_string();
    Ok(match scheme {
        "udp" => NetAddress::Udp { host, port },
        _ => NetAddress::Tcp { host, port },
    })
}

/// `host:port` or `[v6]:port`, with a non-empty host and no path.
fn split_host_port(text: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        text.rsplit_once(':')?
    };
    let bad = |c: char| c.is_whitespace() || "/[]@?#".contains(c);
    if host.is_empty() || host.contains(bad) || (!text.starts_with('[') && host.contains(':')) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_by_scheme() {
        let all = &["unix", "udp", "tcp"];
        assert_eq!(
            parse_address("tcp://127.0.0.1:601", all),
            Ok(NetAddress::Tcp {
                host: "127.0.0.1".into(),
                port: 601
            })
        );
        assert_eq!(
            parse_address("udp://[::1]:514", all),
            Ok(NetAddress::Udp {
                host: "::1".into(),
                port: 514
            })
        );
        assert_eq!(
            parse_address("unix:///dev/log", all),
            Ok(NetAddress::Unix("/dev/log".into()))
        );
        assert_eq!(
            parse_address("tcp://vector:9000", all).map(|a| a.to_string()),
            Ok("tcp://vector:9000".into())
        );
        assert_eq!(
            parse_address("udp://[::1]:514", all).map(|a| a.to_string()),
            Ok("udp://[::1]:514".into())
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let cases = [
            (
                "http://x:1",
                &["tcp", "unix"][..],
                "unsupported scheme \"http\"",
            ),
            (
                "udp://x:1",
                &["tcp", "unix"][..],
                "unsupported scheme \"udp\"",
            ),
            (
                "127.0.0.1:9000",
                &["tcp"][..],
                "expected an address such as",
            ),
            ("tcp://x:0", &["tcp"][..], "invalid port \"0\""),
            ("tcp://x:70000", &["tcp"][..], "invalid port \"70000\""),
            ("tcp://x", &["tcp"][..], "expected host:port"),
            ("tcp://:9000", &["tcp"][..], "expected host:port"),
            ("tcp://::1:9000", &["tcp"][..], "expected host:port"),
            ("unix://dev/log", &["unix"][..], "absolute path"),
            (
                &*format!("unix:///{}", "a".repeat(107)),
                &["unix"][..],
                "at most 107 bytes, found 108",
            ),
        ];
        for (text, schemes, want) in cases {
            match parse_address(text, schemes) {
                Err(message) => assert!(message.contains(want), "{text}: {message}"),
                Ok(address) => panic!("{text} parsed as {address:?}"),
            }
        }
    }
}

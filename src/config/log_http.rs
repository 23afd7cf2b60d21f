//! `log.loki` and `log.otlp`: the settings of the HTTP log handlers.
//!
//! Both are optional objects (absent or `null`: off) whose every key has a
//! default, so `"otlp": {}` sends to a collector on `127.0.0.1:4318`. What
//! can be checked without the network is checked here, with its line and
//! column: the URL (plain `http://` only: TLS belongs to a local agent or
//! collector, which also does retries, auth refresh and fan-out better than
//! PID 1 should), header names and values, Loki label names (Loki's own
//! rule), and batch bounds that could never be met (`batch_records` above
//! `buffer_records`: a batch would only ever go out on its timer).

use std::time::Duration;

use serde_json::value::RawValue;

use super::json::{self, Fields, Kind, Report};
use super::log_handler::{host_port, read_buffer, MessageFormat, MESSAGE_FORMATS};

pub(super) const LOKI_FIELDS: &[&str] = &[
    "url",
    "headers",
    "batch_records",
    "batch_wait",
    "timeout",
    "buffer_records",
    "buffer_bytes",
    "labels",
    "format",
];
pub(super) const OTLP_FIELDS: &[&str] = &[
    "url",
    "headers",
    "batch_records",
    "batch_wait",
    "timeout",
    "buffer_records",
    "buffer_bytes",
    "service_name",
    "resource",
    "format",
];

/// Where `log.loki` pushes without a `url`: Loki's push API on this host.
pub const DEFAULT_LOKI_URL: &str = "http://127.0.0.1:3100/loki/api/v1/push";
/// Where `log.otlp` sends without a `url`: a collector's OTLP/HTTP port on
/// this host (`/v1/logs` is appended).
pub const DEFAULT_OTLP_URL: &str = "http://127.0.0.1:4318";
/// Records per request at most (the count bound of a batch).
pub const DEFAULT_BATCH_RECORDS: usize = 1000;
/// How long the first record of a batch waits for others to join it.
pub const DEFAULT_BATCH_WAIT: Duration = Duration::from_secs(1);
pub const MAX_BATCH_WAIT: Duration = Duration::from_secs(3600);
/// How long one request may take, connection included, before the
/// receiver counts as away (one that accepts and never answers).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// `service.name` of the OTLP resource without `service_name`.
pub const DEFAULT_SERVICE_NAME: &str = "pidzero";

/// Labels pidzero sets on every Loki stream itself.
pub const LOKI_OWN_LABELS: &[&str] = &["source", "stream"];

/// Headers pidzero writes itself (or that would break the exchange).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "upgrade",
    "expect",
];

/// A plain-HTTP URL, split for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// The request target: path and query, at least `/`.
    pub path: String,
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = host_port(&self.host, self.port);
        write!(f, "http://{host}{}", self.path)
    }
}

/// What every HTTP handler has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub url: HttpUrl,
    /// Extra request headers, in the order given (`X-Scope-OrgID`,
    /// `Authorization`...).
    pub headers: Vec<(String, String)>,
    pub batch_records: usize,
    pub batch_wait: Duration,
    pub timeout: Duration,
    pub buffer_records: usize,
    pub buffer_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LokiSettings {
    pub http: HttpSettings,
    /// Static labels of every stream, in the order given.
    pub labels: Vec<(String, String)>,
    /// Each entry's line: the record in a format, or the line alone.
    pub format: MessageFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    pub http: HttpSettings,
    pub service_name: String,
    /// More resource attributes (strings), in the order given.
    pub resource: Vec<(String, String)>,
    /// Each log record's body: the line alone, or the record in a format.
    pub format: MessageFormat,
}

/// `log.loki`: `None` when absent, `null` or wrong (then reported).
pub(super) fn read_loki(report: &mut Report, raw: &RawValue) -> Option<LokiSettings> {
    if Kind::of(raw) == Kind::Null {
        return None;
    }
    let fields = json::object(report, raw, "log.loki", LOKI_FIELDS, "log.loki.")?;
    let before = report.count();
    let http = read_http(report, &fields, "log.loki", DEFAULT_LOKI_URL, false);
    let labels = match fields.get("labels") {
        Some(raw) => string_map(report, raw, "log.loki.labels", check_label),
        None => Some(Vec::new()),
    };
    let format = fields
        .get("format")
        .map_or(Some(MessageFormat::Record(super::LogFormat::Json)), |raw| {
            json::choice(report, raw, "log.loki.format", MESSAGE_FORMATS)
        });
    if report.count() > before {
        return None;
    }
    Some(LokiSettings {
        http: http?,
        labels: labels?,
        format: format?,
    })
}

/// `log.otlp`: `None` when absent, `null` or wrong (then reported).
pub(super) fn read_otlp(report: &mut Report, raw: &RawValue) -> Option<OtlpSettings> {
    if Kind::of(raw) == Kind::Null {
        return None;
    }
    let fields = json::object(report, raw, "log.otlp", OTLP_FIELDS, "log.otlp.")?;
    let before = report.count();
    let http = read_http(report, &fields, "log.otlp", DEFAULT_OTLP_URL, true);
    let service_name = match fields.get("service_name") {
        Some(raw) => json::non_empty_string(report, raw, "log.otlp.service_name"),
        None => Some(DEFAULT_SERVICE_NAME.to_string()),
    };
    let resource = match fields.get("resource") {
        Some(raw) => string_map(report, raw, "log.otlp.resource", check_attribute),
        None => Some(Vec::new()),
    };
    let format = fields
        .get("format")
        .map_or(Some(MessageFormat::Line), |raw| {
            json::choice(report, raw, "log.otlp.format", MESSAGE_FORMATS)
        });
    if report.count() > before {
        return None;
    }
    Some(OtlpSettings {
        http: http?,
        service_name: service_name?,
        resource: resource?,
        format: format?,
    })
}

/// The keys both handlers take; `otlp_path` appends `/v1/logs` to the URL's
/// path as OTLP exporters do with a base endpoint.
fn read_http(
    report: &mut Report,
    fields: &Fields,
    prefix: &str,
    default_url: &str,
    otlp_path: bool,
) -> Option<HttpSettings> {
    let url_field = format!("{prefix}.url");
    let url = match fields.get("url") {
        Some(raw) => json::string(report, raw, &url_field).and_then(|text| {
            parse_http_url(&text)
                .map_err(|message| report.at(raw, &url_field, message))
                .ok()
        }),
        None => parse_http_url(default_url).ok(),
    };
    let url = url.map(|mut url| {
        if otlp_path {
            url.path = otlp_logs_path(&url.path);
        }
        url
    });
    let headers = match fields.get("headers") {
        Some(raw) => string_map(report, raw, &format!("{prefix}.headers"), check_header),
        None => Some(Vec::new()),
    };
    let (buffer_records, buffer_bytes) = read_buffer(report, fields, prefix);
    let mut batch_records = DEFAULT_BATCH_RECORDS.min(buffer_records);
    if let Some(raw) = fields.get("batch_records") {
        let field = format!("{prefix}.batch_records");
        match json::integer(report, raw, &field, u64::MAX) {
            Some(0) => report.at(raw, &field, "must be at least 1"),
            Some(n) if n > buffer_records as u64 => report.at(
                raw,
                &field,
                format!(
                    "must be at most `buffer_records` ({buffer_records}), found {n}: a batch is taken from the queue"
                ),
            ),
            Some(n) => batch_records = n as usize,
            None => {}
        }
    }
    let batch_wait = match fields.get("batch_wait") {
        Some(raw) => duration(
            report,
            raw,
            &format!("{prefix}.batch_wait"),
            Duration::ZERO,
            MAX_BATCH_WAIT,
        ),
        None => Some(DEFAULT_BATCH_WAIT),
    };
    let timeout = match fields.get("timeout") {
        Some(raw) => duration(
            report,
            raw,
            &format!("{prefix}.timeout"),
            MIN_TIMEOUT,
            MAX_TIMEOUT,
        ),
        None => Some(DEFAULT_TIMEOUT),
    };
    Some(HttpSettings {
        url: url?,
        headers: headers?,
        batch_records,
        batch_wait: batch_wait?,
        timeout: timeout?,
        buffer_records,
        buffer_bytes,
    })
}

/// `POST {url}/v1/logs`, unless the URL already ends so (a full logs
/// endpoint, as `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` gives one).
pub fn otlp_logs_path(path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut out = path.trim_end_matches('/').to_string();
    if !out.ends_with("/v1/logs") {
        out.push_str("/v1/logs");
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A duration: a number of seconds (`1.5`) or a humantime string
/// (`"500ms"`, `"2s"`, `"1m"`), between `min` and `max`.
fn duration(
    report: &mut Report,
    raw: &RawValue,
    field: &str,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    let value = match Kind::of(raw) {
        Kind::Number => json::seconds(report, raw, field)?,
        Kind::String => {
            let text = json::string(report, raw, field)?;
            match humantime::parse_duration(text.trim()) {
                Ok(value) => value,
                Err(e) => {
                    report.at(
                        raw,
                        field,
                        format!("\"{text}\" is not a duration ({e}); write e.g. \"500ms\", \"2s\" or a number of seconds"),
                    );
                    return None;
                }
            }
        }
        kind => {
            report.at(
                raw,
                field,
                format!(
                    "expected a duration (\"500ms\", \"2s\") or a number of seconds, found {kind}"
                ),
            );
            return None;
        }
    };
    if value < min || value > max {
        report.at(
            raw,
            field,
            format!(
                "must be from {} to {}, found {}",
                humantime::format_duration(min),
                humantime::format_duration(max),
                humantime::format_duration(value)
            ),
        );
        return None;
    }
    Some(value)
}

/// An object of strings, each key and value checked by `check` (which
/// returns the problem); order kept, repeated keys refused.
fn string_map(
    report: &mut Report,
    raw: &RawValue,
    field: &str,
    check: fn(&str, &str) -> Result<(), String>,
) -> Option<Vec<(String, String)>> {
    if !json::expect_kind(report, raw, field, Kind::Object) {
        return None;
    }
    let before = report.count();
    let mut out: Vec<(String, String)> = Vec::new();
    for member in json::members(report, raw, Some(field)) {
        let member_field = format!("{field}.{}", member.key);
        let Some(value) = json::string(report, member.value, &member_field) else {
            continue;
        };
        if out
            .iter()
            .any(|(key, _)| key.eq_ignore_ascii_case(&member.key))
        {
            report.at(member.key_raw, &member_field, "is given twice");
            continue;
        }
        if let Err(message) = check(&member.key, &value) {
            report.at(member.key_raw, &member_field, message);
            continue;
        }
        out.push((member.key, value));
    }
    (report.count() == before).then_some(out)
}

/// Loki's rule for label names (Prometheus's): `[a-zA-Z_][a-zA-Z0-9_]*`,
/// `__` reserved; the labels pidzero sets itself are refused too.
fn check_label(name: &str, value: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "\"{name}\" is not a Loki label name: it must match [a-zA-Z_][a-zA-Z0-9_]*"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "\"{name}\": label names starting with `__` are reserved for Loki's own use"
        ));
    }
    if LOKI_OWN_LABELS.contains(&name) {
        return Err(format!(
            "\"{name}\" is set by pidzero on every stream (the record's {name}); choose another name"
        ));
    }
    if value.is_empty() {
        return Err(format!(
            "label \"{name}\" has an empty value, which Loki takes as no label; remove it or give a value"
        ));
    }
    Ok(())
}

fn check_attribute(name: &str, _value: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an attribute name must not be empty".into());
    }
    if name == "service.name" {
        return Err("set `service.name` with `log.otlp.service_name`".into());
    }
    Ok(())
}

/// A header name and value HTTP allows, and not one pidzero writes itself.
fn check_header(name: &str, value: &str) -> Result<(), String> {
    if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("\"{name}\" is not a valid HTTP header name"));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "header \"{name}\" is set by pidzero itself and cannot be given"
        ));
    }
    if hyper::header::HeaderValue::from_str(value).is_err() {
        // The value is not quoted: it may be a secret.
        return Err(format!(
            "the value of header \"{name}\" holds characters HTTP does not allow (control characters, line breaks or non-ASCII)"
        ));
    }
    Ok(())
}

/// Parses an `http://host[:port][/path][?query]` URL; the error says what
/// is wrong, and for `https://` what to do instead.
pub fn parse_http_url(text: &str) -> Result<HttpUrl, String> {
    let Some((scheme, _)) = text.split_once("://") else {
        return Err(format!(
            "expected a URL such as \"http://127.0.0.1:3100/loki/api/v1/push\", found \"{text}\""
        ));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "\"{text}\": https is not supported; send to a local agent or collector over http (OpenTelemetry Collector, Grafana Alloy, Vector) and let it forward over TLS"
        ));
    }
    if scheme != "http" {
        return Err(format!(
            "unsupported scheme \"{scheme}\" in \"{text}\"; expected \"http://host:port/path\""
        ));
    }
    let uri: hyper::Uri = text
        .parse()
        .map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("\"{text}\" has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "\"{text}\": credentials in the URL are not supported; use `headers` (e.g. \"Authorization\")"
        ));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("\"{text}\" has no host"));
    }
    let port = match authority.port() {
        Some(port) => match port.as_str().parse::<u16>() {
            Ok(0) | Err(_) => {
                return Err(format!(
                    "invalid port \"{}\" in \"{text}\"; expected 1 to 65535",
                    port.as_str()
                ))
            }
            Ok(port) => port,
        },
        None => 80,
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let path = if path.is_empty() { "/".into() } else { path };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_https_points_to_a_local_agent() {
        let url = parse_http_url("http://loki:3100/loki/api/v1/push").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("loki", 3100, "/loki/api/v1/push")
        );
        assert_eq!(url.to_string(), "http://loki:3100/loki/api/v1/push");
        let url = parse_http_url("http://[::1]").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("::1", 80, "/")
        );
        assert_eq!(url.to_string(), "http://[::1]:80/");
        for (text, want) in [
            ("https://loki:3100/x", "https is not supported"),
            ("tcp://loki:3100", "unsupported scheme \"tcp\""),
            ("loki:3100", "expected a URL"),
            ("http://u:p@loki:3100/x", "credentials"),
            ("http://loki:0/x", "invalid port"),
            ("http:///x", "not a URL"),
        ] {
            let err = parse_http_url(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn the_otlp_path_is_appended_once() {
        assert_eq!(otlp_logs_path("/"), "/v1/logs");
        assert_eq!(otlp_logs_path("/otlp/"), "/otlp/v1/logs");
        assert_eq!(otlp_logs_path("/v1/logs"), "/v1/logs");
        assert_eq!(otlp_logs_path("/a?x=1"), "/a/v1/logs?x=1");
    }

    #[test]
    fn label_and_header_rules() {
        assert!(check_label("app", "x").is_ok());
        assert!(check_label("_a1", "x").is_ok());
        for bad in ["1a", "a-b", "", "é", "__x", "source", "stream"] {
            assert!(check_label(bad, "x").is_err(), "{bad}");
        }
        assert!(check_label("app", "").is_err());
        assert!(check_header("X-Scope-OrgID", "tenant").is_ok());
        assert!(check_header("Authorization", "Bearer abc").is_ok());
        assert!(check_header("Bad Name", "x").is_err());
        assert!(check_header("Content-Type", "x").is_err());
        let err = check_header("X-Key", "secret\nvalue").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
    }
}

//! `config.json`: log, API and shutdown settings, every key optional.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::value::RawValue;

use super::json::{self, Fields, Kind, Report};
use super::log_http;
use super::log_net::{self, NetSettings};
use super::{ApiSettings, ConfigError, LogFormat, LogSettings, Settings, SocketSetting};

pub(super) const TOP_FIELDS: &[&str] = &["log", "api", "shutdown_timeout"];
pub(super) const LOG_FIELDS: &[&str] = &[
    "json",
    "format",
    "file_path",
    "log_to_file",
    "log_to_stdout",
    "max_file_size",
    "max_files",
    "compress",
    "max_line_bytes",
    "syslog",
    "forward",
    "loki",
    "otlp",
];
pub(super) const API_FIELDS: &[&str] = &["listen", "token", "socket"];

const FORMAT_CHOICES: &[(&str, LogFormat)] = &[
    ("json", LogFormat::Json),
    ("map", LogFormat::Map),
    ("logfmt", LogFormat::Logfmt),
    ("text", LogFormat::Text),
];

/// The environment variable that overrides `log.format`; also used as the `file` of
/// an error about its value, which names the variable in the message.
pub const FORMAT_VARIABLE: &str = "PIDZERO_LOG_FORMAT";

/// Below this a record could not even hold its own timestamp and source.
pub(crate) const MIN_LINE_BYTES: u64 = 64;
/// Above this one line could hold much of the memory pidzero allows itself.
pub(crate) const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;
/// Most rotated files kept (`log.max_files`). A rotation shifts every
/// rotated file that exists, with the writer (and so every daemon's output)
/// waiting: 1,000 renames take a few milliseconds, and 1,000 files of the
/// default 10 MiB are already 10 GiB. Keeping more history than that is a
/// job for a log shipper, not for rotation in PID 1.
pub const MAX_FILES: u64 = 1000;

impl Default for Settings {
    /// The defaults of the specification; `log.file_path` is still relative.
    fn default() -> Self {
        Settings {
            log: LogSettings {
                format: LogFormat::Json,
                format_chosen: false,
                file_path: PathBuf::from("pidzero.log"),
                log_to_file: false,
                log_to_stdout: true,
                max_file_size: 10 * 1024 * 1024,
                max_files: 5,
                compress: false,
                max_line_bytes: 16 * 1024,
                net: NetSettings::default(),
            },
            api: ApiSettings::default(),
            shutdown_timeout: Duration::from_secs(10),
            positions: Vec::new(),
        }
    }
}

impl Settings {
    /// The defaults, with `log.file_path` resolved against `config_dir`: what a missing
    /// `config.json` means.
    pub fn defaults_in(config_dir: &Path) -> Settings {
        let mut settings = Settings::default();
        settings.log.file_path = config_dir.join(&settings.log.file_path);
        settings
    }
}

/// Parses `config.json`; see [`super::parse_settings`].
pub(crate) fn parse(
    file: &Path,
    text: &str,
    config_dir: &Path,
    format_override: Option<&str>,
) -> Result<Settings, Vec<ConfigError>> {
    let mut report = Report::new(file, text);
    let mut settings = Settings::defaults_in(config_dir);
    if let Some(doc) = report.document() {
        read_settings(&mut report, doc, config_dir, &mut settings);
    }
    let mut errors = report.errors;
    super::sort_by_position(&mut errors);
    match override_format(format_override) {
        Ok(Some(format)) => {
            settings.log.format = format;
            settings.log.format_chosen = true;
        }
        Ok(None) => {}
        Err(err) => errors.push(err),
    }
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// The format named by `PIDZERO_LOG_FORMAT`, which wins over the file. An empty value
/// counts as unset, as is usual for environment variables.
pub(crate) fn override_format(value: Option<&str>) -> Result<Option<LogFormat>, ConfigError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match FORMAT_CHOICES.iter().find(|(word, _)| *word == value) {
        Some(&(_, format)) => Ok(Some(format)),
        None => {
            let choices: Vec<&str> = FORMAT_CHOICES.iter().map(|(word, _)| *word).collect();
            Err(super::file_error(
                Path::new(FORMAT_VARIABLE),
                &format!(
                    "invalid log format \"{value}\" in the environment variable {FORMAT_VARIABLE}; expected one of {}",
                    choices.join(", ")
                ),
            ))
        }
    }
}

/// Reads the top-level object into `settings`, leaving defaults where keys are absent.
fn read_settings(report: &mut Report, doc: &RawValue, config_dir: &Path, settings: &mut Settings) {
    if Kind::of(doc) != Kind::Object {
        let message = format!(
            "expected an object with `log`, `api` and `shutdown_timeout`, found {}",
            Kind::of(doc)
        );
        report.error(report.src.position(doc), None, message);
        return;
    }
    let members = json::members(report, doc, None);
    let fields = json::fields(report, members, TOP_FIELDS, &[], "");
    if let Some(raw) = fields.get("log") {
        read_log(report, raw, config_dir, &mut settings.log);
        let keys = [
            ("file_path", "log.file_path"),
            ("log_to_file", "log.log_to_file"),
        ];
        note_positions(report, raw, &keys, settings);
    }
    if let Some(raw) = fields.get("api") {
        read_api(report, raw, &mut settings.api);
        let keys = [("socket", "api.socket"), ("listen", "api.listen")];
        note_positions(report, raw, &keys, settings);
    }
    if let Some(timeout) = fields
        .get("shutdown_timeout")
        .and_then(|raw| json::seconds(report, raw, "shutdown_timeout"))
    {
        settings.shutdown_timeout = timeout;
    }
}

/// Records where the `keys` (`(key, full name)`) of the object `raw` are,
/// for problems found later on the filesystem (see [`Settings::positions`]).
/// Problems of the object itself were reported when it was read.
fn note_positions(
    report: &mut Report,
    raw: &RawValue,
    keys: &[(&str, &'static str)],
    settings: &mut Settings,
) {
    if Kind::of(raw) != Kind::Object {
        return;
    }
    let reported = report.errors.len();
    let members = json::members(report, raw, None);
    report.errors.truncate(reported);
    for member in members {
        if let Some(&(_, full)) = keys.iter().find(|(key, _)| *key == member.key) {
            let position = report.src.position(member.value);
            settings.positions.push((full, position));
        }
    }
}

/// `log`: `format` wins over the older `json` switch when both are given.
fn read_log(report: &mut Report, raw: &RawValue, config_dir: &Path, log: &mut LogSettings) {
    let Some(fields) = json::object(report, raw, "log", LOG_FIELDS, "log.") else {
        return;
    };
    let json_switch = fields
        .get("json")
        .and_then(|raw| json::boolean(report, raw, "log.json"));
    let format = fields
        .get("format")
        .and_then(|raw| json::choice(report, raw, "log.format", FORMAT_CHOICES));
    log.format_chosen |= format.is_some() || json_switch.is_some();
    match (format, json_switch) {
        (Some(format), _) => log.format = format,
        (None, Some(true)) => log.format = LogFormat::Json,
        (None, Some(false)) => log.format = LogFormat::Map,
        (None, None) => {}
    }
    if let Some(path) = fields
        .get("file_path")
        .and_then(|raw| json::non_empty_string(report, raw, "log.file_path"))
    {
        log.file_path = config_dir.join(path);
    }
    set(
        &mut log.log_to_file,
        read_bool(report, &fields, "log_to_file"),
    );
    set(
        &mut log.log_to_stdout,
        read_bool(report, &fields, "log_to_stdout"),
    );
    read_log_limits(report, &fields, log);
    set(&mut log.compress, read_bool(report, &fields, "compress"));
    if let Some(raw) = fields.get("syslog") {
        log.net.syslog = log_net::read_syslog(report, raw);
    }
    if let Some(raw) = fields.get("forward") {
        log.net.forward = log_net::read_forward(report, raw);
    }
    if let Some(raw) = fields.get("loki") {
        log.net.loki = log_http::read_loki(report, raw);
    }
    if let Some(raw) = fields.get("otlp") {
        log.net.otlp = log_http::read_otlp(report, raw);
    }
}

/// Rotation and line-length limits, which only make sense together.
fn read_log_limits(report: &mut Report, fields: &Fields, log: &mut LogSettings) {
    let integer = |report: &mut Report, field: &str, max: u64| {
        fields
            .get(field)
            .and_then(|raw| json::integer(report, raw, &format!("log.{field}"), max))
    };
    set(
        &mut log.max_file_size,
        integer(report, "max_file_size", u64::MAX),
    );
    let max_files = integer(report, "max_files", MAX_FILES).and_then(|n| u32::try_from(n).ok());
    set(&mut log.max_files, max_files);
    let line_bytes =
        integer(report, "max_line_bytes", MAX_LINE_BYTES).and_then(|n| usize::try_from(n).ok());
    set(&mut log.max_line_bytes, line_bytes);
    if let Some(raw) = fields
        .get("max_files")
        .filter(|_| max_files == Some(0) && log.max_file_size > 0)
    {
        report.at(
            raw,
            "log.max_files",
            "must be at least 1 when `max_file_size` is above 0 (0 never rotates)",
        );
    }
    if let Some(raw) = fields
        .get("max_line_bytes")
        .filter(|_| (log.max_line_bytes as u64) < MIN_LINE_BYTES)
    {
        report.at(
            raw,
            "log.max_line_bytes",
            format!("must be at least {MIN_LINE_BYTES}"),
        );
    }
}

/// `api`: `null` means "not set" for `listen` and `token`, and "off" for `socket`.
fn read_api(report: &mut Report, raw: &RawValue, api: &mut ApiSettings) {
    let Some(fields) = json::object(report, raw, "api", API_FIELDS, "api.") else {
        return;
    };
    if let Some(raw) = fields.get("listen") {
        api.listen = json::nullable_string(report, raw, "api.listen")
            .and_then(|listen| check_listen(report, raw, listen))
            .unwrap_or(None);
    }
    if let Some(raw) = fields.get("token") {
        api.token = json::nullable_string(report, raw, "api.token")
            .and_then(|token| check_token(report, raw, token))
            .unwrap_or(None);
    }
    if let Some(raw) = fields.get("socket") {
        if let Some(socket) = json::nullable_string(report, raw, "api.socket") {
            api.socket = socket_setting(report, raw, socket);
        }
    }
}

/// `api.listen` is an IP address and port (`0.0.0.0:9090`, `[::]:9090`): a host name
/// could resolve to several addresses, or to none at start.
fn check_listen(
    report: &mut Report,
    raw: &RawValue,
    listen: Option<String>,
) -> Option<Option<String>> {
    match listen {
        Some(text) if text.parse::<SocketAddr>().is_err() => {
            report.at(
                raw,
                "api.listen",
                format!("expected an address and port such as \"0.0.0.0:9090\", found \"{text}\""),
            );
            None
        }
        listen => Some(listen),
    }
}

/// An empty token would let anyone in while looking like protection.
fn check_token(
    report: &mut Report,
    raw: &RawValue,
    token: Option<String>,
) -> Option<Option<String>> {
    if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        report.at(raw, "api.token", "must not be empty; use null for no token");
        return None;
    }
    Some(token)
}

fn socket_setting(report: &mut Report, raw: &RawValue, socket: Option<String>) -> SocketSetting {
    match socket {
        None => SocketSetting::Off,
        Some(path) if path.trim().is_empty() => {
            report.at(
                raw,
                "api.socket",
                "must not be empty; use null to turn the control socket off",
            );
            SocketSetting::Default
        }
        Some(path) => SocketSetting::Path(PathBuf::from(path)),
    }
}

fn read_bool(report: &mut Report, fields: &Fields, field: &str) -> Option<bool> {
    fields
        .get(field)
        .and_then(|raw| json::boolean(report, raw, &format!("log.{field}")))
}

/// Overwrites a default only with a value that was read without problems.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MessageFormat, NetAddress, SyslogProtocol};

    const DIR: &str = "/etc/pidzero";

    fn parse_ok(text: &str, format_override: Option<&str>) -> Settings {
        match parse(
            Path::new("config.json"),
            text,
            Path::new(DIR),
            format_override,
        ) {
            Ok(settings) => settings,
            Err(errors) => panic!("unexpected errors: {errors:#?}"),
        }
    }

    fn parse_err(text: &str) -> Vec<ConfigError> {
        match parse(Path::new("config.json"), text, Path::new(DIR), None) {
            Ok(settings) => panic!("expected errors, parsed {settings:#?}"),
            Err(errors) => errors,
        }
    }

    #[test]
    fn network_handlers_are_off_by_default_and_have_defaults_when_on() {
        assert_eq!(parse_ok("{}", None).log.net, NetSettings::default());
        let off = r#"{"log": {"syslog": null, "forward": null}}"#;
        assert!(!parse_ok(off, None).log.net.any());
        let text = r#"{"log": {"syslog": {}, "forward": {"address": "tcp://vector:9000"}}}"#;
        let net = parse_ok(text, None).log.net;
        let syslog = net.syslog.unwrap();
        assert_eq!(syslog.address, NetAddress::Unix("/dev/log".into()));
        assert_eq!(syslog.address.to_string(), log_net::DEFAULT_SYSLOG_ADDRESS);
        assert_eq!(syslog.protocol, SyslogProtocol::Rfc3164, "local default");
        assert_eq!(syslog.facility, 3);
        assert_eq!(syslog.app_name, None);
        assert_eq!(syslog.format, MessageFormat::Line);
        assert_eq!(syslog.buffer_records, 10_000);
        assert_eq!(syslog.buffer_bytes, 8 << 20);
        let forward = net.forward.unwrap();
        assert_eq!(forward.address.to_string(), "tcp://vector:9000");
        assert_eq!(forward.format, LogFormat::Json);
        let tcp = r#"{"log": {"syslog": {"address": "tcp://h:601"}}}"#;
        let syslog = parse_ok(tcp, None).log.net.syslog.unwrap();
        assert_eq!(syslog.protocol, SyslogProtocol::Rfc5424, "network default");
        let text = r#"{"log": {"syslog": {"address": "udp://10.0.0.1:514", "protocol": "rfc3164",
            "facility": "local7", "app_name": "shop", "format": "logfmt", "buffer_records": 5,
            "buffer_bytes": 65536}}}"#;
        let syslog = parse_ok(text, None).log.net.syslog.unwrap();
        assert_eq!(syslog.protocol, SyslogProtocol::Rfc3164);
        assert_eq!(syslog.facility, 23);
        assert_eq!(syslog.app_name.as_deref(), Some("shop"));
        assert_eq!(syslog.format, MessageFormat::Record(LogFormat::Logfmt));
        assert_eq!((syslog.buffer_records, syslog.buffer_bytes), (5, 65536));
    }

    #[test]
    fn http_handlers_have_defaults_and_take_their_keys() {
        let net = parse_ok(r#"{"log": {"loki": {}, "otlp": {}}}"#, None)
            .log
            .net;
        let loki = net.loki.unwrap();
        assert_eq!(loki.http.url.to_string(), log_http::DEFAULT_LOKI_URL);
        assert_eq!(loki.format, MessageFormat::Record(LogFormat::Json));
        assert!(loki.labels.is_empty() && loki.http.headers.is_empty());
        assert_eq!(loki.http.batch_records, 1000);
        assert_eq!(loki.http.batch_wait, Duration::from_secs(1));
        assert_eq!(loki.http.timeout, Duration::from_secs(10));
        assert_eq!(
            (loki.http.buffer_records, loki.http.buffer_bytes),
            (10_000, 8 << 20)
        );
        let otlp = net.otlp.unwrap();
        assert_eq!(otlp.http.url.to_string(), "http://127.0.0.1:4318/v1/logs");
        assert_eq!(otlp.service_name, "pidzero");
        assert_eq!(otlp.format, MessageFormat::Line);
        let text = r#"{"log": {"loki": {"url": "http://loki:3100/loki/api/v1/push",
            "labels": {"app": "shop", "env": "prod"}, "headers": {"X-Scope-OrgID": "t1"},
            "batch_records": 5, "batch_wait": "250ms", "timeout": 2.5, "buffer_records": 5,
            "format": "line"},
            "otlp": {"url": "http://collector:4318/otlp/", "service_name": "shop",
            "resource": {"deployment.environment": "prod"}, "format": "logfmt"}}}"#;
        let net = parse_ok(text, None).log.net;
        let loki = net.loki.unwrap();
        assert_eq!(
            loki.labels,
            [("app".into(), "shop".into()), ("env".into(), "prod".into())]
        );
        assert_eq!(loki.http.headers, [("X-Scope-OrgID".into(), "t1".into())]);
        assert_eq!(loki.http.batch_records, 5);
        assert_eq!(loki.http.batch_wait, Duration::from_millis(250));
        assert_eq!(loki.http.timeout, Duration::from_millis(2500));
        assert_eq!(loki.format, MessageFormat::Line);
        let otlp = net.otlp.unwrap();
        assert_eq!(otlp.http.url.path, "/otlp/v1/logs");
        assert_eq!(otlp.service_name, "shop");
        assert_eq!(otlp.format, MessageFormat::Record(LogFormat::Logfmt));
        // A small buffer makes the default batch as small.
        let small = r#"{"log": {"otlp": {"buffer_records": 10}}}"#;
        assert_eq!(
            parse_ok(small, None)
                .log
                .net
                .otlp
                .unwrap()
                .http
                .batch_records,
            10
        );
    }

    #[test]
    fn network_handler_errors_name_the_key_and_its_place() {
        let text = "{\"log\": {\"forward\": {\"format\": \"xml\"},\n \"syslog\": {\"address\": \"tcp://h:0\", \"app_name\": \"a b\",\n  \"buffer_records\": 0, \"colour\": 1}}}";
        let errors = parse_err(text);
        let found: Vec<(usize, usize, Option<&str>)> = errors
            .iter()
            .map(|e| (e.line, e.column, e.field.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (1, 21, Some("log.forward")),
                (1, 32, Some("log.forward.format")),
                (2, 24, Some("log.syslog.address")),
                (2, 49, Some("log.syslog.app_name")),
                (3, 21, Some("log.syslog.buffer_records")),
                (3, 24, Some("log.syslog.colour")),
            ],
            "{errors:#?}"
        );
        assert!(errors[0].message.contains("needs an `address`"));
        assert!(errors[2].message.contains("invalid port \"0\""));
    }

    #[test]
    fn positions_of_keys_that_check_probes_are_kept() {
        let settings = parse_ok(
            "{\"log\": {\"log_to_file\": true,\n  \"file_path\": \"x.log\"},\n \"api\": {\"socket\": null}}",
            None,
        );
        let at = |key| settings.position_of(key).map(|p| (p.line, p.column));
        assert_eq!(at("log.log_to_file"), Some((1, 25)));
        assert_eq!(at("log.file_path"), Some((2, 16)));
        assert_eq!(at("api.socket"), Some((3, 20)));
        assert_eq!(at("api.listen"), None);
        assert!(parse_ok("{}", None).positions.is_empty());
    }

    #[test]
    fn an_empty_file_is_called_empty_and_a_byte_order_mark_is_skipped() {
        for text in ["", " \n", "\u{feff}"] {
            let errors = parse_err(text);
            assert_eq!(errors.len(), 1, "{text:?}: {errors:#?}");
            let err = &errors[0];
            assert_eq!((err.line, err.column), (1, 1));
            assert_eq!(err.message, "the file is empty");
        }
        let settings = parse_ok("\u{feff}{\"shutdown_timeout\": 3}", None);
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(3));
        let text = "\u{feff}{\n  \"logg\": {}}";
        let errors = parse_err(text);
        assert_eq!((errors[0].line, errors[0].column), (2, 3), "{errors:#?}");
    }

    /// 1-based line and column of `needle`, found independently of the code under test.
    fn locate(text: &str, needle: &str) -> (usize, usize) {
        let offset = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in text"));
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        (line, offset - before.rfind('\n').map_or(0, |i| i + 1) + 1)
    }

    #[test]
    fn defaults() {
        let settings = Settings::default();
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(settings.log.file_path, PathBuf::from("pidzero.log"));
        assert!(!settings.log.log_to_file);
        assert!(settings.log.log_to_stdout);
        assert_eq!(settings.log.max_file_size, 10_485_760);
        assert_eq!(settings.log.max_files, 5);
        assert_eq!(settings.log.max_line_bytes, 16_384);
        assert_eq!(settings.api, ApiSettings::default());
        assert_eq!(settings.api.socket, SocketSetting::Default);
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(10));
        let empty = parse_ok("{}", None);
        assert_eq!(
            empty.log.file_path,
            PathBuf::from("/etc/pidzero/pidzero.log")
        );
        assert_eq!(empty, Settings::defaults_in(Path::new(DIR)));
    }

    #[test]
    fn seed_example_parses() {
        let text = r#"{
  "log": { "json": true, "file_path": "pidzero.log", "log_to_file": false, "log_to_stdout": true },
  "api": { "listen": null, "token": null },
  "shutdown_timeout": 10
}"#;
        let mut expected = Settings::defaults_in(Path::new(DIR));
        // `"json": true` is the default format, chosen all the same.
        expected.log.format_chosen = true;
        assert_eq!(parse_ok(text, None), expected);
    }

    #[test]
    fn a_format_counts_as_chosen_only_when_written_or_set() {
        assert!(
            !parse_ok(r#"{"log": {"log_to_stdout": true}}"#, None)
                .log
                .format_chosen
        );
        assert!(
            parse_ok(r#"{"log": {"format": "json"}}"#, None)
                .log
                .format_chosen
        );
        assert!(
            parse_ok(r#"{"log": {"json": false}}"#, None)
                .log
                .format_chosen
        );
        assert!(parse_ok("{}", Some("text")).log.format_chosen);
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"{
  "log": {"format": "logfmt", "file_path": "/var/log/p.log", "log_to_file": true, "log_to_stdout": false,
          "max_file_size": 0, "max_files": 0, "max_line_bytes": 64},
  "api": {"listen": "[::]:9090", "token": "s3cret", "socket": "/tmp/p.sock"},
  "shutdown_timeout": 2.5
}"#;
        let settings = parse_ok(text, None);
        assert_eq!(settings.log.format, LogFormat::Logfmt);
        assert_eq!(settings.log.file_path, PathBuf::from("/var/log/p.log"));
        assert!(settings.log.log_to_file);
        assert!(!settings.log.log_to_stdout);
        assert_eq!(settings.log.max_file_size, 0);
        assert_eq!(settings.log.max_files, 0);
        assert_eq!(settings.log.max_line_bytes, 64);
        assert_eq!(settings.api.listen.as_deref(), Some("[::]:9090"));
        assert_eq!(settings.api.token.as_deref(), Some("s3cret"));
        assert_eq!(
            settings.api.socket,
            SocketSetting::Path("/tmp/p.sock".into())
        );
        assert_eq!(settings.shutdown_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn relative_file_path_is_resolved_against_the_config_dir() {
        let settings = parse_ok(r#"{"log": {"file_path": "logs/out.log"}}"#, None);
        assert_eq!(
            settings.log.file_path,
            PathBuf::from("/etc/pidzero/logs/out.log")
        );
    }

    #[test]
    fn format_precedence() {
        assert_eq!(
            parse_ok(r#"{"log": {"json": false}}"#, None).log.format,
            LogFormat::Map
        );
        let both = r#"{"log": {"json": false, "format": "text"}}"#;
        assert_eq!(parse_ok(both, None).log.format, LogFormat::Text);
        assert_eq!(parse_ok(both, Some("json")).log.format, LogFormat::Json);
        assert_eq!(parse_ok(both, Some("")).log.format, LogFormat::Text);
    }

    #[test]
    fn bad_override_names_the_variable() {
        let result = parse(Path::new("config.json"), "{}", Path::new(DIR), Some("xml"));
        let errors = result.expect_err("bad override");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, PathBuf::from("PIDZERO_LOG_FORMAT"));
        assert_eq!(
            errors[0].to_string(),
            "PIDZERO_LOG_FORMAT: invalid log format \"xml\" in the environment variable PIDZERO_LOG_FORMAT; expected one of json, map, logfmt, text"
        );
    }

    #[test]
    fn socket_null_turns_it_off() {
        let settings = parse_ok(r#"{"api": {"socket": null}}"#, None);
        assert_eq!(settings.api.socket, SocketSetting::Off);
    }

    #[test]
    fn top_level_must_be_an_object() {
        let errors = parse_err("[]");
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].line, errors[0].column), (1, 1));
        assert_eq!(
            errors[0].message,
            "expected an object with `log`, `api` and `shutdown_timeout`, found an array"
        );
        let errors = parse_err("{\n  \"log\": {\n}");
        assert_eq!((errors[0].line, errors[0].column), (3, 1));
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = r#"{
  "log": {"jsn": true, "format": "xml", "file_path": "", "max_files": 0, "max_line_bytes": 10,
          "log_to_file": "yes"},
  "api": {"listen": "localhost", "token": "", "socket": "", "tokn": 1},
  "shutdown_timout": 5,
  "shutdown_timeout": -1
}"#;
        let errors = parse_err(text);
        let expect = [
            (
                "\"jsn\"",
                "log.jsn",
                "unknown field `jsn`; did you mean `json`?",
            ),
            (
                "\"xml\"",
                "log.format",
                "invalid value \"xml\"; expected one of \"json\", \"map\", \"logfmt\", \"text\"",
            ),
            ("\"\", \"max", "log.file_path", "must not be empty"),
            (
                "\"yes\"",
                "log.log_to_file",
                "expected a boolean, found a string",
            ),
            (
                "0, \"max_line",
                "log.max_files",
                "must be at least 1 when `max_file_size` is above 0 (0 never rotates)",
            ),
            ("10,", "log.max_line_bytes", "must be at least 64"),
            (
                "\"tokn\"",
                "api.tokn",
                "unknown field `tokn`; did you mean `token`?",
            ),
            (
                "\"localhost\"",
                "api.listen",
                "expected an address and port such as \"0.0.0.0:9090\", found \"localhost\"",
            ),
            (
                "\"\", \"socket",
                "api.token",
                "must not be empty; use null for no token",
            ),
            (
                "\"\", \"tokn",
                "api.socket",
                "must not be empty; use null to turn the control socket off",
            ),
            (
                "\"shutdown_timout\"",
                "shutdown_timout",
                "unknown field `shutdown_timout`; did you mean `shutdown_timeout`?",
            ),
            ("-1", "shutdown_timeout", "must not be negative, found -1"),
        ];
        assert_eq!(errors.len(), expect.len(), "{errors:#?}");
        let mut expect = expect;
        expect.sort_by_key(|&(needle, ..)| locate(text, needle));
        for (err, (needle, field, message)) in errors.iter().zip(expect) {
            assert_eq!((err.line, err.column), locate(text, needle), "{err}");
            assert_eq!(err.field.as_deref(), Some(field), "{err}");
            assert_eq!(err.daemon, None);
            assert_eq!(err.message, message);
        }
    }

    #[test]
    fn limits_have_upper_bounds() {
        let errors =
            parse_err(r#"{"log": {"max_line_bytes": 100000000, "max_files": 4294967296}}"#);
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "must be at most 16777216, found 100000000",
                "must be at most 1000, found 4294967296"
            ]
        );
    }

    /// A `max_files` past the bound is reported at its value, with its field.
    #[test]
    fn max_files_is_bounded_with_its_place() {
        let text = "{\n  \"log\": {\n    \"max_files\": 100000000\n  }\n}";
        let errors = parse_err(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!((errors[0].line, errors[0].column), (3, 18));
        assert_eq!(errors[0].field.as_deref(), Some("log.max_files"));
        assert_eq!(errors[0].message, "must be at most 1000, found 100000000");
        assert_eq!(
            errors[0].to_string(),
            "config.json:3:18: field log.max_files: must be at most 1000, found 100000000"
        );
        assert_eq!(
            parse_ok(r#"{"log": {"max_files": 1000}}"#, None)
                .log
                .max_files,
            1000
        );
    }

    /// `log.compress` is off unless set, and takes only a boolean.
    #[test]
    fn compress_is_a_boolean_off_by_default() {
        assert!(!parse_ok("{}", None).log.compress);
        assert!(
            parse_ok(r#"{"log": {"compress": true}}"#, None)
                .log
                .compress
        );
        let errors = parse_err(r#"{"log": {"compress": "gzip"}}"#);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].field.as_deref(), Some("log.compress"));
    }
}

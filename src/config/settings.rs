//! `config.json`: log, API and shutdown settings, every key optional.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::value::RawValue;

use super::json::{self, Fields, Kind, Report};
use super::{ApiSettings, ConfigError, LogFormat, LogSettings, Settings, SocketSetting};

const TOP_FIELDS: &[&str] = &["log", "api", "shutdown_timeout"];
const LOG_FIELDS: &[&str] = &[
    "json",
    "format",
    "file_path",
    "log_to_file",
    "log_to_stdout",
    "max_file_size",
    "max_files",
    "max_line_bytes",
];
const API_FIELDS: &[&str] = &["listen", "token", "socket"];

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

impl Default for Settings {
    /// The defaults of the specification; `log.file_path` is still relative.
    fn default() -> Self {
        Settings {
            log: LogSettings {
                format: LogFormat::Json,
                file_path: PathBuf::from("pidzero.log"),
                log_to_file: false,
                log_to_stdout: true,
                max_file_size: 10 * 1024 * 1024,
                max_files: 5,
                max_line_bytes: 16 * 1024,
            },
            api: ApiSettings::default(),
            shutdown_timeout: Duration::from_secs(10),
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
    match override_format(format_override) {
        Ok(Some(format)) => settings.log.format = format,
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
        None => Err(ConfigError {
            file: PathBuf::from(FORMAT_VARIABLE),
            line: 0,
            column: 0,
            daemon: None,
            field: None,
            message: format!(
                "invalid log format \"{value}\" in the environment variable {FORMAT_VARIABLE}; expected one of json, map, logfmt, text"
            ),
        }),
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
    }
    if let Some(raw) = fields.get("api") {
        read_api(report, raw, &mut settings.api);
    }
    if let Some(timeout) = fields
        .get("shutdown_timeout")
        .and_then(|raw| json::seconds(report, raw, "shutdown_timeout"))
    {
        settings.shutdown_timeout = timeout;
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
    let max_files =
        integer(report, "max_files", u32::MAX.into()).and_then(|n| u32::try_from(n).ok());
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

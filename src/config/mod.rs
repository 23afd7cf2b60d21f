//! Reading and validating `daemons.json` and `config.json` into plain typed values.
//!
//! Every error names the file, line:column, daemon and field, and every problem
//! is reported (not just the first), so `pidzero check` can list them all.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod daemons;
mod json;
mod log_handler;
pub mod log_http;
pub mod log_net;
pub mod ready;
mod route;
pub mod schedule;
mod settings;
pub mod signal;

pub use log_http::{HttpSettings, HttpUrl, LokiSettings, OtlpSettings};
pub use log_net::{
    ForwardSettings, MessageFormat, NetAddress, NetSettings, SyslogProtocol, SyslogSettings,
};
pub use route::{LineParse, LineRoute, SinkKind, SinkSet};
pub use settings::FORMAT_VARIABLE;

/// Every key either file knows, at any depth (duplicates included), for the
/// fuzz driver: a new field is fuzzed as soon as it is parsed, with no list
/// in the tests to keep up to date.
pub fn known_keys() -> Vec<&'static str> {
    [
        daemons::FIELDS,
        daemons::HEALTH_FIELDS,
        ready::READY_FIELDS,
        settings::TOP_FIELDS,
        settings::LOG_FIELDS,
        settings::API_FIELDS,
        log_net::SYSLOG_FIELDS,
        log_net::FORWARD_FIELDS,
        log_http::LOKI_FIELDS,
        log_http::OTLP_FIELDS,
    ]
    .concat()
}

/// One problem found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is about the file as a whole (e.g. unreadable).
    pub line: usize,
    /// 1-based; 0 when unknown.
    pub column: usize,
    /// The daemon's name, or `#N` (1-based index) when it has no valid name.
    pub daemon: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(":")?;
        if let Some(d) = &self.daemon {
            write!(f, " daemon {}:", OneLine(d))?;
        }
        if let Some(field) = &self.field {
            write!(f, " field {}:", OneLine(field))?;
        }
        write!(f, " {}", OneLine(&self.message))
    }
}

/// Text from a config file shown in an error, with control characters
/// escaped (`\n`, `\u{7}`): a key or value may hold a newline (`"a\nb"` in
/// JSON), and each problem must stay one line for people and for tools.
pub(crate) struct OneLine<'a>(pub(crate) &'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Where a value sits in its file, for errors found after parsing (e.g. by `plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// `command` as written: an argv array, or one string (split or run by `/bin/sh -c` in `plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    Argv(Vec<String>),
    Line(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    #[default]
    Log,
    Inherit,
    Discard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Never,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe {
    Command(String),
    Http(String),
    Tcp(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub probe: HealthProbe,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// One entry of `daemons.json`, validated but not yet resolved (no PATH lookup, no user ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    pub name: String,
    pub command: CommandSpec,
    pub vital: bool,
    /// In file order; later duplicates of a key win when the environment is built.
    pub environment: Vec<(String, String)>,
    pub restart: RestartPolicy,
    pub restart_delay: Duration,
    pub max_restarts: Option<u32>,
    pub working_dir: Option<PathBuf>,
    /// As written: `name`, `uid`, `name:group` or `uid:gid`; resolved by `plan`.
    pub user: Option<String>,
    /// Signal number.
    pub stop_signal: i32,
    /// `None` means `config.shutdown_timeout`.
    pub stop_timeout: Option<Duration>,
    pub output: OutputMode,
    pub depends_on: Vec<String>,
    pub health: Option<HealthSpec>,
    /// `schedule` (with `timezone` and `overlap`): the daemon is a job.
    pub job: Option<schedule::JobSpec>,
    /// `ready` as written; `None` when absent (see [`ready::ReadyMode::default_for`]).
    pub ready: Option<ready::ReadyMode>,
    /// `ready_timeout`: how long after its start it may take to become ready.
    pub ready_timeout: Option<Duration>,
    /// `watchdog`: the longest silence between two `WATCHDOG=1` keep-alives.
    pub watchdog: Option<Duration>,
    /// `parse`: how its lines are read.
    pub parse: LineParse,
    /// `sinks`: the handlers its lines go to; `None` (absent) means all.
    pub sinks: Option<SinkSet>,
    /// Position of the daemon object itself, and of each field present, for later errors.
    pub position: Position,
    pub field_positions: Vec<(&'static str, Position)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Json,
    Map,
    Logfmt,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// The user chose the format (`log.format`, `log.json` or
    /// `PIDZERO_LOG_FORMAT`): even the silent main-command mode then writes
    /// its own warnings and errors as records of that format.
    pub format_chosen: bool,
    /// Already resolved against the config dir when relative.
    pub file_path: PathBuf,
    pub log_to_file: bool,
    pub log_to_stdout: bool,
    pub max_file_size: u64,
    pub max_files: u32,
    /// `log.compress`: gzip rotated files (`pidzero.log.1.gz` …) on a
    /// thread of their own.
    pub compress: bool,
    pub max_line_bytes: usize,
    /// `log.syslog` and `log.forward`.
    pub net: NetSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SocketSetting {
    /// Use `--socket` / `PIDZERO_SOCKET` / `/run/pidzero.sock`.
    #[default]
    Default,
    Off,
    Path(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiSettings {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub socket: SocketSetting,
}

/// `config.json`.
#[derive(Debug, Clone, Eq)]
pub struct Settings {
    pub log: LogSettings,
    pub api: ApiSettings,
    pub shutdown_timeout: Duration,
    /// Where some keys sit in `config.json` (`log.file_path`, `log.log_to_file`,
    /// `api.socket`, `api.listen`), so that `pidzero check` can point at the key
    /// behind a problem it finds on the filesystem. Empty for defaults.
    pub positions: Vec<(&'static str, Position)>,
}

/// Two settings are equal when they mean the same, wherever their keys were written.
impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        self.log == other.log
            && self.api == other.api
            && self.shutdown_timeout == other.shutdown_timeout
    }
}

impl Settings {
    /// Where `key` (such as `log.file_path`) is in `config.json`, if it is there.
    pub fn position_of(&self, key: &str) -> Option<Position> {
        self.positions
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, position)| *position)
    }
}

/// Everything read from the two files, with the paths they came from (for later
/// errors, e.g. by `plan`, that point into them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub daemons: Vec<DaemonSpec>,
    pub settings: Settings,
    pub daemons_file: PathBuf,
    pub config_file: PathBuf,
}

/// Parses the text of `daemons.json` (named `file` in errors). An empty array is an
/// error here; [`load`] accepts it when a main command is given.
pub fn parse_daemons(file: &Path, text: &str) -> Result<Vec<DaemonSpec>, Vec<ConfigError>> {
    daemons::parse(file, text, false)
}

/// Parses the text of `config.json` (named `file` in errors).
///
/// `config_dir` resolves a relative `log.file_path`. `format_override` is
/// `PIDZERO_LOG_FORMAT`'s value if set: it wins over `log.format` and `log.json`, and
/// a bad value is reported with the variable's name as the error's `file`.
pub fn parse_settings(
    file: &Path,
    text: &str,
    config_dir: &Path,
    format_override: Option<&str>,
) -> Result<Settings, Vec<ConfigError>> {
    settings::parse(file, text, config_dir, format_override)
}

/// Reads and checks both files, reporting the problems of both at once.
///
/// A missing `config.json` means all defaults (with `log.file_path` resolved against
/// `config_dir`). A missing `daemons.json`, or an empty array in it, is an error unless
/// `has_main_command`, which then runs without sidecars.
pub fn load(
    daemons_file: &Path,
    config_file: &Path,
    config_dir: &Path,
    has_main_command: bool,
    format_override: Option<&str>,
) -> Result<Config, Vec<ConfigError>> {
    Files::read(daemons_file, config_file, config_dir, format_override).load(has_main_command)
}

/// What `pidzero check` needs from one reading of the two files.
pub struct Checked {
    /// As [`load`] would return it (without a main command).
    pub config: Result<Config, Vec<ConfigError>>,
    /// When `config` has problems: the daemons of `daemons.json` that have none
    /// of their own (with `depends_on` kept to those), and the settings of
    /// `config.json` (its defaults when it has problems), so that the checks of
    /// the next stage (programs, users, working directories, dependency cycles)
    /// can run on them and be reported in the same run. `None` when no daemon
    /// is valid, or when `config` is valid.
    pub valid_parts: Option<(Vec<DaemonSpec>, Settings)>,
    /// The settings of `config.json` when it has no problems of its own (its
    /// defaults when it is absent), whatever `daemons.json` holds: what the
    /// checks of the log file and the control socket go by.
    pub settings: Option<Settings>,
    /// Whether `config.json` exists: a missing one is worth a note, not an "OK".
    pub config_found: bool,
}

/// Reads each file once and checks it as [`load`] does, keeping what is valid too.
pub fn check(
    daemons_file: &Path,
    config_file: &Path,
    config_dir: &Path,
    format_override: Option<&str>,
) -> Checked {
    let files = Files::read(daemons_file, config_file, config_dir, format_override);
    let config = files.load(false);
    let valid_parts = config.as_ref().err().and_then(|_| files.valid_parts());
    let settings = match &files.config {
        Ok(None) => defaults_with_override(config_dir, format_override).ok(),
        _ => files.settings().ok(),
    };
    Checked {
        config,
        valid_parts,
        settings,
        config_found: !matches!(files.config, Ok(None)),
    }
}

/// The two files as read (each once), with what parsing them needs.
struct Files<'a> {
    daemons_file: &'a Path,
    config_file: &'a Path,
    config_dir: &'a Path,
    format_override: Option<&'a str>,
    daemons: Result<Option<String>, ConfigError>,
    config: Result<Option<String>, ConfigError>,
}

impl<'a> Files<'a> {
    fn read(
        daemons_file: &'a Path,
        config_file: &'a Path,
        config_dir: &'a Path,
        format_override: Option<&'a str>,
    ) -> Self {
        Files {
            daemons_file,
            config_file,
            config_dir,
            format_override,
            daemons: read_file(daemons_file),
            config: read_file(config_file),
        }
    }

    fn load(&self, has_main_command: bool) -> Result<Config, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let daemons = match &self.daemons {
            Ok(Some(text)) => daemons::parse(self.daemons_file, text, has_main_command),
            Ok(None) if has_main_command => Ok(Vec::new()),
            Ok(None) => Err(vec![file_error(
                self.daemons_file,
                "file not found; it lists the daemons to run (or give a command after `--`)",
            )]),
            Err(err) => Err(vec![err.clone()]),
        };
        let settings = match &self.config {
            Ok(None) => defaults_with_override(self.config_dir, self.format_override),
            _ => self.settings(),
        };
        let daemons = daemons.map_err(|e| errors.extend(e)).ok();
        let settings = settings.map_err(|e| errors.extend(e)).ok();
        match (daemons, settings) {
            (Some(daemons), Some(settings)) if errors.is_empty() => Ok(Config {
                daemons,
                settings,
                daemons_file: self.daemons_file.to_path_buf(),
                config_file: self.config_file.to_path_buf(),
            }),
            _ => Err(errors),
        }
    }

    /// `config.json` parsed; a missing file is an empty list of problems here.
    fn settings(&self) -> Result<Settings, Vec<ConfigError>> {
        match &self.config {
            Ok(Some(text)) => settings::parse(
                self.config_file,
                text,
                self.config_dir,
                self.format_override,
            ),
            Ok(None) => Err(Vec::new()),
            Err(err) => Err(vec![err.clone()]),
        }
    }

    fn valid_parts(&self) -> Option<(Vec<DaemonSpec>, Settings)> {
        let Ok(Some(text)) = &self.daemons else {
            return None;
        };
        let (mut specs, _) = daemons::parse_all(self.daemons_file, text, true);
        if specs.is_empty() {
            return None;
        }
        let names: Vec<String> = specs.iter().map(|spec| spec.name.clone()).collect();
        for spec in &mut specs {
            spec.depends_on.retain(|name| names.contains(name));
        }
        let settings = self
            .settings()
            .unwrap_or_else(|_| Settings::defaults_in(self.config_dir));
        Some((specs, settings))
    }
}

/// Orders problems as they appear in the file, so a long list reads top to bottom
/// (checks across daemons, such as `depends_on`, run after all daemons are read).
fn sort_by_position(errors: &mut [ConfigError]) {
    errors.sort_by_key(|err| (err.line, err.column));
}

/// What a missing `config.json` means; `PIDZERO_LOG_FORMAT` still applies.
fn defaults_with_override(
    config_dir: &Path,
    format_override: Option<&str>,
) -> Result<Settings, Vec<ConfigError>> {
    let mut settings = Settings::defaults_in(config_dir);
    match settings::override_format(format_override) {
        Ok(Some(format)) => {
            settings.log.format = format;
            settings.log.format_chosen = true;
        }
        Ok(None) => {}
        Err(err) => return Err(vec![err]),
    }
    Ok(settings)
}

/// The file's text, `None` when it does not exist, or an error naming it.
fn read_file(path: &Path) -> Result<Option<String>, ConfigError> {
    match read_regular_file(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|err| {
            let at = err.utf8_error().valid_up_to();
            let (line, column) = line_column(&err.as_bytes()[..at]);
            ConfigError {
                line,
                column,
                ..file_error(path, &format!("not valid UTF-8 (at byte {at})"))
            }
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(file_error(path, &format!("cannot read: {err}"))),
    }
}

/// The bytes of `path` if it is a regular file (through a symbolic link too).
///
/// It is opened without blocking and refused unless regular: opening a FIFO
/// for reading waits for a writer, and a pidzero that waits there starts
/// nothing and, with every signal blocked, does not even hear SIGTERM.
fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {what}, not a regular file"),
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The 1-based line and column (in characters) just after `before`, which
/// is valid UTF-8: where an editor puts the cursor on the first bad byte.
fn line_column(before: &[u8]) -> (usize, usize) {
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A problem with a file as a whole, which has no line:column.
fn file_error(path: &Path, message: &str) -> ConfigError {
    ConfigError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        daemon: None,
        field: None,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod job_fields_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod ready_fields_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Dir;

    const ONE_DAEMON: &str = r#"[{"name": "a", "command": "true"}]"#;

    #[test]
    fn loads_both_files() {
        let dir = Dir::new("both");
        let daemons = dir.write("daemons.json", ONE_DAEMON);
        let config = dir.write(
            "config.json",
            r#"{"log": {"format": "text"}, "shutdown_timeout": 3}"#,
        );
        let loaded = load(&daemons, &config, &dir.path, false, None).expect("valid");
        assert_eq!(loaded.daemons.len(), 1);
        assert_eq!(loaded.settings.log.format, LogFormat::Text);
        assert_eq!(loaded.settings.shutdown_timeout, Duration::from_secs(3));
        assert_eq!(loaded.settings.log.file_path, dir.p("pidzero.log"));
        assert_eq!((loaded.daemons_file, loaded.config_file), (daemons, config));
    }

    #[test]
    fn missing_config_means_defaults_with_override() {
        let dir = Dir::new("noconfig");
        let daemons = dir.write("daemons.json", ONE_DAEMON);
        let config = dir.p("config.json");
        let loaded = load(&daemons, &config, &dir.path, false, Some("logfmt")).expect("valid");
        let mut expected = Settings::defaults_in(&dir.path);
        expected.log.format = LogFormat::Logfmt;
        expected.log.format_chosen = true;
        assert_eq!(loaded.settings, expected);
        let errors =
            load(&daemons, &config, &dir.path, false, Some("yaml")).expect_err("bad override");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, PathBuf::from(FORMAT_VARIABLE));
    }

    #[test]
    fn missing_daemons_file_needs_a_main_command() {
        let dir = Dir::new("nodaemons");
        let daemons = dir.p("daemons.json");
        let config = dir.p("config.json");
        let errors = load(&daemons, &config, &dir.path, false, None).expect_err("missing");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].file, daemons);
        assert_eq!((errors[0].line, errors[0].column), (0, 0));
        assert!(
            errors[0].message.starts_with("file not found"),
            "{}",
            errors[0]
        );
        let loaded = load(&daemons, &config, &dir.path, true, None).expect("main command");
        assert!(loaded.daemons.is_empty());
    }

    #[test]
    fn empty_array_needs_a_main_command() {
        let dir = Dir::new("empty");
        let daemons = dir.write("daemons.json", "[]");
        let config = dir.p("config.json");
        let errors = load(&daemons, &config, &dir.path, false, None).expect_err("empty");
        assert_eq!((errors[0].line, errors[0].column), (1, 1));
        assert!(load(&daemons, &config, &dir.path, true, None).is_ok());
    }

    #[test]
    fn errors_of_both_files_are_collected() {
        let dir = Dir::new("botherrors");
        let daemons = dir.write(
            "daemons.json",
            r#"[{"name": "a", "command": "x", "vitall": true}]"#,
        );
        let config = dir.write("config.json", r#"{"logg": {}}"#);
        let errors = load(&daemons, &config, &dir.path, false, None).expect_err("two errors");
        let places: Vec<_> = errors
            .iter()
            .map(|e| (e.file.clone(), e.line, e.column))
            .collect();
        assert_eq!(places, [(daemons, 1, 32), (config, 1, 2)]);
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = Dir::new("unreadable");
        // A directory cannot be read as a file, even by root.
        let daemons = dir.p("sub");
        std::fs::create_dir(&daemons).expect("mkdir");
        let config = dir.p("config.json");
        std::fs::write(&config, b"{\"log\": \xff}").expect("write bytes");
        let errors = load(&daemons, &config, &dir.path, false, None).expect_err("unreadable");
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(errors[0].file, daemons);
        assert!(
            errors[0].message.starts_with("cannot read: "),
            "{}",
            errors[0]
        );
        assert_eq!(errors[1].file, config);
        assert_eq!(errors[1].message, "not valid UTF-8 (at byte 8)");
        assert_eq!((errors[1].line, errors[1].column), (1, 9));
    }

    #[test]
    fn a_fifo_is_refused_at_once_not_waited_on() {
        let dir = Dir::new("fifo-config");
        let path = dir.p("daemons.json");
        let c_path = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = read_file(&path).expect_err("a FIFO is no config file");
        assert_eq!(err.message, "cannot read: it is a FIFO, not a regular file");
        let err = read_file(&dir.path).expect_err("nor is a directory");
        assert!(err.message.starts_with("cannot read: "), "{}", err.message);
    }

    #[test]
    fn a_problem_is_one_line_whatever_the_file_holds() {
        let errors = parse_daemons(
            Path::new("/cfg/daemons.json"),
            "[{\"name\": \"a\", \"command\": \"x\", \"com\\nmand\": 1}]",
        )
        .expect_err("unknown field");
        let shown = errors[0].to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.contains("com\\nmand"), "{shown}");
    }

    #[test]
    fn invalid_utf8_is_placed_by_line_and_column() {
        assert_eq!(line_column(b""), (1, 1));
        assert_eq!(line_column(b"{\n  \"a\": \"\xe2\x82\xac"), (2, 10));
        assert_eq!(line_column(b"[\n\n"), (3, 1));
    }

    #[test]
    fn display_names_file_position_daemon_and_field() {
        let errors = parse_daemons(
            Path::new("/cfg/daemons.json"),
            r#"[{"name": "a", "command": 1}]"#,
        )
        .expect_err("bad command");
        assert_eq!(
            errors[0].to_string(),
            "/cfg/daemons.json:1:27: daemon a: field command: expected a string or an array of strings, found a number"
        );
    }
}

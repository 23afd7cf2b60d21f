//! Reading and validating `daemons.json` and `config.json` into plain typed values.
//!
//! Every error names the file, line:column, daemon and field, and every problem
//! is reported (not just the first), so `pidzero check` can list them all.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
            write!(f, " daemon {d}:")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field {field}:")?;
        }
        write!(f, " {}", self.message)
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
    /// Already resolved against the config dir when relative.
    pub file_path: PathBuf,
    pub log_to_file: bool,
    pub log_to_stdout: bool,
    pub max_file_size: u64,
    pub max_files: u32,
    pub max_line_bytes: usize,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub log: LogSettings,
    pub api: ApiSettings,
    pub shutdown_timeout: Duration,
}

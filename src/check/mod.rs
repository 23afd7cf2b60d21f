//! `pidzero check`: everything a run would refuse before starting a daemon,
//! found at once and reported together.
//!
//! The run refuses to start (exit 2, or 127/126 for a vital command that
//! cannot run) on: problems in either file or in `PIDZERO_LOG_FORMAT`;
//! commands that cannot be split, working directories, users and groups that
//! do not resolve, unknown `depends_on` names and dependency cycles (all from
//! `plan`); a vital executable that does not resolve; a log file it cannot
//! open; a chosen control socket or a TCP address it cannot listen on. Each
//! of those is an error here, and so is a non-vital executable that does not
//! resolve (the run would only log `spawn_failed` for it, but it is surely a
//! mistake). What the run only warns about (the default socket) is a warning.

mod output;
mod paths;
mod probe;
mod problem;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{self, Settings, SocketSetting};
use crate::plan;
use crate::supervisor;

pub use output::{human, json, Rendered};
pub use paths::{Entry, Filesystem};
pub use probe::System;
pub use problem::{Problem, Severity};

/// What `check` looks at: the two files, the options and environment a run
/// would have, and where the accounts are.
pub struct Inputs<'a> {
    pub daemons_file: &'a Path,
    pub config_file: &'a Path,
    pub config_dir: &'a Path,
    /// `PIDZERO_LOG_FORMAT`.
    pub format_override: Option<&'a str>,
    /// `--socket` / `PIDZERO_SOCKET`, which win over `api.socket`.
    pub socket_option: Option<&'a Path>,
    /// The socket a run uses when nothing chooses one.
    pub default_socket: &'a Path,
    /// pidzero's own environment (daemons inherit it; its `PATH` finds programs).
    pub base_env: &'a [(OsString, OsString)],
    /// Normally `/etc`, for `passwd` and `group`.
    pub etc_dir: &'a Path,
}

/// Everything found, and what the summary line of a clean run says.
#[derive(Debug)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub daemons_file: PathBuf,
    pub config_file: PathBuf,
    /// Daemons planned without problems of their own.
    pub daemons_ok: usize,
    pub config_found: bool,
}

impl Report {
    /// The problems that make `check` fail (exit 2).
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }
}

/// Runs every check; `fs` answers the questions about the filesystem.
pub fn run(inputs: &Inputs, fs: &dyn Filesystem) -> Report {
    let checked = config::check(
        inputs.daemons_file,
        inputs.config_file,
        inputs.config_dir,
        inputs.format_override,
    );
    let mut errors = Vec::new();
    // Planning also runs on the daemons that have no problems of their own
    // when the files have some, so their problems are listed in this run.
    let specs = match checked.config {
        Ok(config) => Some((config.daemons, config.settings)),
        Err(config_errors) => {
            errors = config_errors;
            checked.valid_parts
        }
    };
    let mut daemons_ok = 0;
    let mut notes = Vec::new();
    if let Some((specs, settings)) = specs {
        let planned = plan::check(
            &specs,
            &settings,
            inputs.daemons_file,
            inputs.base_env,
            inputs.etc_dir,
        );
        for problem in planned.problems {
            if !errors.contains(&problem) {
                errors.push(problem);
            }
        }
        daemons_ok = planned.daemons.len();
        notes = restart_notes(&specs, &planned.daemons, inputs.daemons_file);
    }
    // Each file's problems top to bottom, daemons.json first.
    errors.sort_by_key(|e| (e.file != inputs.daemons_file, e.line, e.column));
    let mut problems: Vec<Problem> = errors.into_iter().map(Problem::from).collect();
    if let Some(settings) = &checked.settings {
        problems.extend(log_file_problem(settings, inputs.config_file, fs));
        problems.extend(socket_problem(settings, inputs, fs));
        problems.extend(listen_problem(settings, inputs.config_file, fs));
    }
    if !checked.config_found {
        problems.push(
            Problem::in_file(inputs.config_file, None, None)
                .with(Severity::Note, "not found: defaults used"),
        );
    }
    problems.extend(notes);
    Report {
        problems,
        daemons_file: inputs.daemons_file.to_path_buf(),
        config_file: inputs.config_file.to_path_buf(),
        daemons_ok,
        config_found: checked.config_found,
    }
}

/// A note for each daemon whose `restart_delay` the supervisor raises.
fn restart_notes(
    specs: &[config::DaemonSpec],
    planned: &[plan::DaemonPlan],
    daemons_file: &Path,
) -> Vec<Problem> {
    planned
        .iter()
        .filter_map(|daemon| {
            let note = supervisor::restart_delay_note(&daemon.rules)?;
            let name = &daemon.rules.name;
            let spec = specs.iter().find(|spec| &spec.name == name)?;
            let position = spec
                .field_positions
                .iter()
                .find(|(field, _)| *field == "restart_delay")
                .map_or(spec.position, |(_, position)| *position);
            // The note names the daemon itself; the problem has its own key for that.
            let prefix = format!("daemon {name}: ");
            let message = note.strip_prefix(&prefix).unwrap_or(&note).to_owned();
            let mut problem = Problem::in_file(daemons_file, Some(position), Some("restart_delay"));
            problem.daemon = Some(name.clone());
            Some(problem.with(Severity::Note, message))
        })
        .collect()
}

/// The log file, when the run writes one.
fn log_file_problem(settings: &Settings, config_file: &Path, fs: &dyn Filesystem) -> Vec<Problem> {
    let log = &settings.log;
    if !log.log_to_file {
        return Vec::new();
    }
    let Some((severity, message)) = paths::log_file(&log.file_path, log.max_file_size > 0, fs)
    else {
        return Vec::new();
    };
    // Point at the path when config.json names one, else at the switch that
    // turned the file on with the default path.
    let (field, position) = match settings.position_of("log.file_path") {
        Some(position) => ("log.file_path", Some(position)),
        None => ("log.log_to_file", settings.position_of("log.log_to_file")),
    };
    vec![Problem::in_file(config_file, position, Some(field)).with(severity, message)]
}

/// The control socket as the run would choose it: none when `api.socket` is
/// null; else `--socket`, `api.socket`, the default, in that order. Only the
/// default one is a warning: the run then starts without it.
fn socket_problem(settings: &Settings, inputs: &Inputs, fs: &dyn Filesystem) -> Vec<Problem> {
    let (path, chosen) = match (&settings.api.socket, inputs.socket_option) {
        (SocketSetting::Off, _) => return Vec::new(),
        (_, Some(option)) => (
            option,
            Some(Problem {
                file: Some("--socket".to_owned()),
                ..Problem::detached(None)
            }),
        ),
        (SocketSetting::Path(path), None) => (
            path.as_path(),
            Some(Problem::in_file(
                inputs.config_file,
                settings.position_of("api.socket"),
                Some("api.socket"),
            )),
        ),
        (SocketSetting::Default, None) => (inputs.default_socket, None),
    };
    let Some(why) = paths::socket(path, fs) else {
        return Vec::new();
    };
    let problem = match chosen {
        Some(origin) => origin.with(Severity::Error, format!("{why}; a run refuses to start")),
        None => Problem::detached(None).with(
            Severity::Warning,
            format!(
                "the default control socket: {why}; a run starts without it \
                 (set --socket or api.socket, or api.socket: null to turn it off)"
            ),
        ),
    };
    vec![problem]
}

/// `api.listen`, tried now.
fn listen_problem(settings: &Settings, config_file: &Path, fs: &dyn Filesystem) -> Vec<Problem> {
    // Validated by the config layer as an IP address and port.
    let Some(addr) = settings.api.listen.as_deref().and_then(|a| a.parse().ok()) else {
        return Vec::new();
    };
    paths::listen(addr, fs)
        .map(|(severity, message)| {
            Problem::in_file(
                config_file,
                settings.position_of("api.listen"),
                Some("api.listen"),
            )
            .with(severity, message)
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests;

//! What the supervisor decides by: one daemon's lifecycle rules, and nothing it
//! would have to execute (no argv, no environment, no user ids).
//!
//! The supervisor imports these types from here, so a new policy field is read
//! in `config`, copied once in `DaemonRules::of`, and used where it matters.

use std::time::Duration;

use crate::config::{DaemonSpec, HealthSpec, Settings};

pub use crate::config::schedule::{Cadence, JobSpec, Overlap};

pub use crate::config::ready::ReadyMode;
pub use crate::config::RestartPolicy;

/// One daemon's rules, as the supervisor's state machine reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonRules {
    pub name: String,
    pub vital: bool,
    /// The main command of `pidzero -- CMD`: its status is passed through as is.
    pub is_main: bool,
    pub stop_signal: i32,
    /// The daemon's own, or `settings.shutdown_timeout`.
    pub stop_timeout: Duration,
    pub restart: RestartPolicy,
    pub restart_delay: Duration,
    pub max_restarts: Option<u32>,
    /// Indices into [`super::Plan::daemons`].
    pub depends_on: Vec<usize>,
    /// Set when preflight found the executable missing or not executable:
    /// the status it counts as (127/126) and why.
    pub preflight_failure: Option<(i32, String)>,
    pub health: Option<HealthRules>,
    /// Its schedule, when the daemon is a job.
    pub job: Option<JobSpec>,
    /// When it counts as ready (already defaulted: see [`ReadyMode::default_for`]).
    pub ready: ReadyMode,
    /// From its spawn; missing it is a failed start.
    pub ready_timeout: Option<Duration>,
    /// The keep-alive period (`WATCHDOG_USEC`); only with `ReadyMode::Systemd`.
    pub watchdog: Option<Duration>,
}

/// How probe results become a health verdict, and how often to probe.
/// (What a probe runs, and its timeout, is the runtime's: see [`super::Probe`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    pub interval: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

impl HealthRules {
    pub fn of(spec: &HealthSpec) -> Self {
        HealthRules {
            interval: spec.interval,
            retries: spec.retries,
            start_period: spec.start_period,
        }
    }
}

impl DaemonRules {
    /// The rules of a daemon of `daemons.json`.
    pub(super) fn of(
        spec: &DaemonSpec,
        settings: &Settings,
        depends_on: Vec<usize>,
        preflight_failure: Option<(i32, String)>,
    ) -> Self {
        DaemonRules {
            name: spec.name.clone(),
            vital: spec.vital,
            is_main: false,
            stop_signal: spec.stop_signal,
            stop_timeout: spec.stop_timeout.unwrap_or(settings.shutdown_timeout),
            restart: spec.restart,
            restart_delay: spec.restart_delay,
            max_restarts: spec.max_restarts,
            depends_on,
            preflight_failure,
            health: spec.health.as_ref().map(HealthRules::of),
            job: spec.job.clone(),
            ready: spec
                .ready
                .unwrap_or(ReadyMode::default_for(spec.health.is_some())),
            ready_timeout: spec.ready_timeout,
            watchdog: spec.watchdog,
        }
    }

    /// The rules of the main command (`pidzero -- CMD ARGS`): named `main`,
    /// always vital, never restarted, stopped with SIGTERM.
    pub(super) fn main_command(
        settings: &Settings,
        preflight_failure: Option<(i32, String)>,
    ) -> Self {
        DaemonRules {
            name: "main".to_owned(),
            vital: true,
            is_main: true,
            stop_signal: libc::SIGTERM,
            stop_timeout: settings.shutdown_timeout,
            restart: RestartPolicy::Never,
            restart_delay: Duration::from_secs(1),
            max_restarts: None,
            depends_on: Vec::new(),
            preflight_failure,
            health: None,
            job: None,
            ready: ReadyMode::Started,
            ready_timeout: None,
            watchdog: None,
        }
    }

    /// A rules value with every default, for tests of the supervisor.
    #[cfg(test)]
    pub fn named(name: &str) -> Self {
        DaemonRules {
            name: name.to_string(),
            vital: false,
            is_main: false,
            stop_signal: libc::SIGTERM,
            stop_timeout: Duration::from_secs(10),
            restart: RestartPolicy::Never,
            restart_delay: Duration::from_secs(1),
            max_restarts: None,
            depends_on: vec![],
            preflight_failure: None,
            health: None,
            job: None,
            ready: ReadyMode::Started,
            ready_timeout: None,
            watchdog: None,
        }
    }
}

/// What the supervisor needs to know about a preflight failure: the status the
/// daemon counts as (§5/§9) and a line saying why.
pub(super) fn preflight_failure(
    result: Result<(), super::PreflightError>,
    program: &std::path::Path,
) -> Option<(i32, String)> {
    let error = result.err()?;
    let what = match error {
        super::PreflightError::NotFound => "command not found",
        super::PreflightError::NotExecutable => "command not executable",
    };
    Some((error.exit_code(), format!("{what}: {}", program.display())))
}

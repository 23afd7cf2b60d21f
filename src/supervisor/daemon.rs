//! One daemon as the supervisor sees it: its rules and its current state.

use std::time::Duration;

use super::backoff::Backoff;
use super::health::HealthTracker;
use super::job::JobState;
use super::ready::Readiness;
use crate::exit::ExitStatus;
use crate::plan::DaemonRules;

/// The lifecycle states of SPEC §5; events and the API show these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Starting,
    Running,
    Backoff,
    Stopping,
    Exited,
    Failed,
    /// A job between runs: waiting for its next due time.
    Scheduled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff => "backoff",
            State::Stopping => "stopping",
            State::Exited => "exited",
            State::Failed => "failed",
            State::Scheduled => "scheduled",
        }
    }
}

/// One daemon's live bookkeeping.
#[derive(Debug, Clone)]
pub struct Daemon {
    pub rules: DaemonRules,
    pub state: State,
    /// The main process while it runs.
    pub pid: Option<i32>,
    /// The process group while it may still hold processes (outlives `pid`).
    pub group: Option<i32>,
    pub started_at: Option<Duration>,
    /// Restarts over pidzero's lifetime, automatic or asked for with `restart`
    /// (a `start` of a stopped or failed daemon is not one). Never decreases:
    /// the API and `pidzero_daemon_restarts_total` show it, and a Prometheus
    /// counter must not go backwards.
    pub restarts: u32,
    /// Restarts since the daemon was last started by hand: what `max_restarts`
    /// bounds, and the `attempt` of a `restarting` event.
    pub attempts: u32,
    pub last_exit: Option<ExitStatus>,
    /// When `last_exit` happened (monotonic, like every supervisor time).
    pub last_exit_at: Option<Duration>,
    /// Counts instances, so a timer armed for an old instance is recognised as stale.
    pub instance: u32,
    /// When a restart is due (state `Backoff`); it waits for the old group to be gone too.
    pub restart_at: Option<Duration>,
    pub backoff: Backoff,
    /// The current instance's health, when the daemon has a check and a
    /// process; `None` otherwise (no process, no verdict).
    pub health: Option<HealthTracker>,
    /// The running instance is being stopped to be started again (unhealthy, or asked to).
    pub restart_requested: bool,
    /// Stopped on request: no restart policy applies to this exit.
    pub stop_requested: bool,
    /// The pending restart was asked for through the API: no backoff delay.
    pub manual_restart: bool,
    /// A job's schedule bookkeeping; `None` for a daemon without `schedule`.
    pub job: Option<JobState>,
    /// Removed by a reload: being stopped, never started again, and no
    /// longer shown once nothing of it is left (see `supervisor::reload`).
    pub retired: bool,
    /// The current instance's readiness (see `supervisor::ready`).
    pub readiness: Readiness,
    /// When the running stop timeout ends (moved by `EXTEND_TIMEOUT_USEC`).
    pub stop_deadline: Option<Duration>,
}

impl Daemon {
    pub fn new(rules: DaemonRules) -> Self {
        let backoff = Backoff::new(rules.restart_delay);
        let job = rules.job.as_ref().map(|_| JobState::default());
        Daemon {
            rules,
            state: State::Pending,
            pid: None,
            group: None,
            started_at: None,
            restarts: 0,
            attempts: 0,
            last_exit: None,
            last_exit_at: None,
            instance: 0,
            restart_at: None,
            backoff,
            health: None,
            restart_requested: false,
            stop_requested: false,
            manual_restart: false,
            job,
            retired: false,
            readiness: Readiness::default(),
            stop_deadline: None,
        }
    }

    /// Something of this daemon may still be running: its main process or its group.
    pub fn is_live(&self) -> bool {
        self.pid.is_some() || self.group.is_some()
    }
}

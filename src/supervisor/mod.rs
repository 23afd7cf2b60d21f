//! The supervisor: every lifecycle rule of pidzero, as a pure state machine.
//!
//! It does no I/O and reads no clock: the runtime feeds it [`Event`]s with the
//! current monotonic time and carries out the [`Action`]s it returns. That keeps
//! vital fail-fast, restarts, stop timeouts, shutdown order and the exit status
//! testable in microseconds with a fake clock and no processes.

pub mod backoff;
pub mod daemon;
pub mod health;
pub mod job;
mod jobs;
pub mod notify;
mod ready;
pub mod reload;

use std::time::Duration;

use jiff::Timestamp;

use crate::config::signal::signal_name;
use crate::exit::{self, ExitStatus};
use crate::log::record::{FieldValue, Level};
use crate::plan::rules::{DaemonRules, RestartPolicy};
pub use daemon::{Daemon, State};
pub use health::{Health, HealthTracker};
pub use notify::Notice;
pub use ready::Readiness;
pub use reload::{ReloadSet, ReloadSummary, Reloaded};

/// A daemon that exits 0 sooner than this after its start gets the daemonizing hint.
pub const QUICK_EXIT: Duration = Duration::from_secs(1);

/// Probe interval while a daemon has not passed its check yet, so dependents
/// start soon after it is ready (Docker's `start_interval` idea).
pub const STARTING_PROBE_INTERVAL: Duration = Duration::from_secs(1);

const SIGKILL: i32 = libc::SIGKILL;

/// Something that happened, as the runtime observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The runtime is ready: start what can start.
    Boot,
    Spawned {
        daemon: usize,
        pid: i32,
    },
    /// fork/exec failed (bad working dir, exec error, user switch refused…).
    SpawnFailed {
        daemon: usize,
        status: i32,
        error: String,
    },
    /// A reaped child that is a daemon's main process (the runtime drops other pids).
    Exited {
        pid: i32,
        status: ExitStatus,
    },
    /// A process group the supervisor asked the runtime to watch holds no process any more.
    GroupGone {
        daemon: usize,
    },
    /// A signal pidzero received (never SIGCHLD: the runtime reaps on it).
    Signal(i32),
    /// A health probe of a daemon instance finished.
    ProbeResult {
        daemon: usize,
        instance: u32,
        passed: bool,
        detail: String,
    },
    Timer(Timer),
    /// A notify daemon instance said something (sd_notify datagram, or the
    /// newline of its notification descriptor).
    Notify {
        daemon: usize,
        instance: u32,
        notice: Notice,
    },
}

/// Timers the supervisor arms; each names the daemon instance it was armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The stop timeout of an instance ran out: SIGKILL its group.
    StopDeadline { daemon: usize, instance: u32 },
    /// The restart delay of a daemon in backoff ran out.
    RestartDue { daemon: usize, instance: u32 },
    /// Time for the next health probe of an instance.
    ProbeDue { daemon: usize, instance: u32 },
    /// A job's due time (`seq` tells a re-armed timer from a stale one).
    JobDue { daemon: usize, seq: u32 },
    /// The `ready_timeout` of an instance ran out.
    ReadyDeadline { daemon: usize, instance: u32 },
    /// An instance's next watchdog keep-alive is overdue.
    WatchdogDue { daemon: usize, instance: u32 },
}

/// A record of pidzero's own, without its timestamp (the runtime adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub level: Level,
    pub event: &'static str,
    pub fields: Vec<(&'static str, FieldValue)>,
    pub line: String,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the daemon; answer with `Spawned` or `SpawnFailed`.
    Spawn(usize),
    /// `kill(-pgid, signal)`; a group that is already gone is not an error.
    SignalGroup {
        daemon: usize,
        pgid: i32,
        signal: i32,
    },
    /// What is left of a reaped daemon's process group: `kill(-pgid,
    /// signal)`, then report `GroupGone` once `pgid` holds no process
    /// (checked after each reap and timer). One action, not a liveness check
    /// and a signal: the kill's own ESRCH says the group is empty already,
    /// which is the common case (the leader was its only member), so a stop
    /// of N daemons costs N such kills, not 2N.
    StopLeftovers {
        daemon: usize,
        pgid: i32,
        signal: i32,
    },
    /// Run the daemon's health probe; answer with `ProbeResult` for this instance.
    StartProbe {
        daemon: usize,
        instance: u32,
    },
    /// Forget a timer armed earlier (if it has not fired yet).
    CancelTimer(Timer),
    /// Deliver `Timer(timer)` at monotonic time `at`.
    SetTimer {
        timer: Timer,
        at: Duration,
    },
    Log(LogEvent),
    /// Flush the logs and exit with this status.
    Exit(i32),
}

/// A request about one daemon, from the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
    Restart,
    Signal(i32),
}

/// The answer to a [`Control`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlOutcome {
    /// Done or under way; the daemon's state right after.
    Accepted(State),
    NotFound,
    /// The request does not apply in the daemon's current state.
    Conflict(String),
}

/// Why a shutdown began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    Signal(i32),
    /// Asked for through the control API.
    Requested,
    /// A vital daemon (or the main command) ended or turned unhealthy.
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// `requested`: asked for (signal, API), not caused by a failure; then a
    /// main command's own status becomes the exit status.
    ShuttingDown {
        status: i32,
        forced: bool,
        requested: bool,
    },
    Done,
}

/// The whole supervisor: the daemons, their start order and the phase.
#[derive(Debug, Clone)]
pub struct Supervisor {
    daemons: Vec<Daemon>,
    order: Vec<usize>,
    phase: Phase,
    /// The wall clock as of the event being handled (see [`Self::set_wall_clock`]).
    wall: Timestamp,
}

impl Supervisor {
    /// `order` is the start order (a topological order of `depends_on`).
    pub fn new(rules: Vec<DaemonRules>, order: Vec<usize>) -> Self {
        Supervisor {
            daemons: rules.into_iter().map(Daemon::new).collect(),
            order,
            phase: Phase::Running,
            wall: Timestamp::UNIX_EPOCH,
        }
    }

    /// The wall-clock time of the event about to be handled. Only jobs read
    /// it (cron expressions are about the wall clock); every timer stays on
    /// the monotonic `now`. The runtime sets it before each event, tests set
    /// it by hand, so the supervisor still reads no clock itself.
    pub fn set_wall_clock(&mut self, wall: Timestamp) {
        self.wall = wall;
    }

    pub fn daemons(&self) -> &[Daemon] {
        &self.daemons
    }

    /// A shutdown is under way (or over): nothing new starts.
    pub fn is_shutting_down(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Handles a control request about the daemon `name`.
    pub fn control(
        &mut self,
        name: &str,
        request: Control,
        now: Duration,
    ) -> (ControlOutcome, Vec<Action>) {
        let mut out = Vec::new();
        let Some(i) = self
            .daemons
            .iter()
            .position(|d| d.rules.name == name && !d.retired)
        else {
            return (ControlOutcome::NotFound, out);
        };
        if self.phase != Phase::Running {
            return (
                ControlOutcome::Conflict("pidzero is shutting down".into()),
                out,
            );
        }
        let outcome = match request {
            Control::Start => self.control_start(i, now, &mut out),
            Control::Stop => self.control_stop(i, now, &mut out),
            Control::Restart => self.control_restart(i, now, &mut out),
            Control::Signal(sig) => {
                if self.daemons[i].pid.is_some() {
                    self.forward_to(i, sig, &mut out);
                    ControlOutcome::Accepted(self.daemons[i].state)
                } else {
                    conflict(&self.daemons[i], "is not running")
                }
            }
        };
        self.check_done(&mut out);
        (outcome, out)
    }

    /// A graceful shutdown asked for through the control API.
    pub fn request_shutdown(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Running {
            self.begin_shutdown(0, Shutdown::Requested, now, &mut out);
            self.check_done(&mut out);
        }
        out
    }

    fn control_start(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) -> ControlOutcome {
        if self.daemons[i].job.is_some() {
            return self.job_start_now(i, now, out);
        }
        let d = &mut self.daemons[i];
        match d.state {
            State::Exited | State::Failed => {
                d.state = State::Pending;
                // A fresh budget for `max_restarts`; `restarts` keeps counting.
                d.attempts = 0;
                d.backoff = backoff::Backoff::new(d.rules.restart_delay);
            }
            State::Backoff => d.restart_at = Some(now),
            _ => return conflict(d, "is already running or starting"),
        }
        self.start_due(now, out);
        ControlOutcome::Accepted(self.daemons[i].state)
    }

    fn control_stop(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) -> ControlOutcome {
        let d = &mut self.daemons[i];
        if d.rules.vital {
            return conflict(d, "is vital: stopping it would stop pidzero; use shutdown");
        }
        match d.state {
            State::Running | State::Starting => {
                d.stop_requested = true;
                self.stop(i, now, out);
            }
            State::Backoff | State::Pending => {
                d.state = State::Exited;
                out.extend(cancel_restart(d, i));
            }
            State::Scheduled => {
                // Between runs: the schedule is paused until `start`.
                d.state = State::Exited;
                self.disarm_job(i, out);
            }
            _ => return conflict(d, "is not running"),
        }
        ControlOutcome::Accepted(self.daemons[i].state)
    }

    fn control_restart(
        &mut self,
        i: usize,
        now: Duration,
        out: &mut Vec<Action>,
    ) -> ControlOutcome {
        let d = &mut self.daemons[i];
        match d.state {
            State::Running => {
                d.restart_requested = true;
                d.manual_restart = true;
                self.stop(i, now, out);
                ControlOutcome::Accepted(self.daemons[i].state)
            }
            State::Stopping | State::Starting => conflict(d, "is already stopping or starting"),
            _ => self.control_start(i, now, out),
        }
    }

    /// The daemon whose main process has this pid.
    pub fn daemon_by_pid(&self, pid: i32) -> Option<usize> {
        self.daemons.iter().position(|d| d.pid == Some(pid))
    }

    /// Feed one event; returns what the runtime must do, in order.
    pub fn handle(&mut self, event: Event, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        match event {
            Event::Boot => self.boot(now, &mut out),
            Event::Spawned { daemon, pid } => self.on_spawned(daemon, pid, now, &mut out),
            Event::SpawnFailed {
                daemon,
                status,
                error,
            } => {
                out.push(spawn_failed_log(
                    &self.daemons[daemon].rules.name,
                    status,
                    &error,
                ));
                self.on_ended(daemon, ExitStatus::Code(status), now, &mut out);
            }
            Event::Exited { pid, status } => {
                if let Some(daemon) = self.daemon_by_pid(pid) {
                    self.on_exited(daemon, status, now, &mut out);
                }
            }
            Event::GroupGone { daemon } => {
                let d = &mut self.daemons[daemon];
                d.group = None;
                if d.pid.is_none() {
                    // Nothing of this instance is left to kill: its stop
                    // deadline would only wake the loop for nothing.
                    out.push(Action::CancelTimer(Timer::StopDeadline {
                        daemon,
                        instance: d.instance,
                    }));
                }
                self.start_due(now, &mut out);
            }
            Event::Signal(sig) => self.on_signal(sig, now, &mut out),
            Event::ProbeResult {
                daemon,
                instance,
                passed,
                detail,
            } => self.on_probe_result(daemon, instance, passed, &detail, now, &mut out),
            Event::Timer(timer) => self.on_timer(timer, now, &mut out),
            Event::Notify {
                daemon,
                instance,
                notice,
            } => self.on_notice(daemon, instance, notice, now, &mut out),
        }
        self.check_done(&mut out);
        out
    }

    /// Preflight: a vital daemon whose executable is missing stops everything
    /// before anything starts; otherwise start what has no unmet dependency.
    fn boot(&mut self, now: Duration, out: &mut Vec<Action>) {
        let vital_failure = self.order.iter().copied().find_map(|i| {
            let rules = &self.daemons[i].rules;
            match &rules.preflight_failure {
                Some((status, msg)) if rules.vital => Some((i, *status, msg.clone())),
                _ => None,
            }
        });
        if let Some((i, status, msg)) = vital_failure {
            out.push(spawn_failed_log(&self.daemons[i].rules.name, status, &msg));
            self.daemons[i].state = State::Failed;
            self.daemons[i].last_exit = Some(ExitStatus::Code(status));
            self.phase = Phase::Done;
            out.push(Action::Exit(status));
            return;
        }
        for d in &self.daemons {
            if let Some(line) = restart_delay_note(&d.rules) {
                out.push(config_warning(&d.rules, "restart_delay", line));
            }
        }
        self.start_due(now, out);
    }

    /// Starts every pending daemon whose dependencies run, and every daemon in
    /// backoff whose delay is over and whose previous group is gone.
    fn start_due(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.phase != Phase::Running {
            return;
        }
        for idx in 0..self.order.len() {
            let i = self.order[idx];
            let d = &self.daemons[i];
            let ready = match d.state {
                // Started by hand right after it exited: what is left of the
                // old instance's group goes first, as before a restart.
                State::Pending => {
                    d.group.is_none() && self.dependencies_up(i) && !self.namesake_retiring(i)
                }
                State::Backoff => d.group.is_none() && d.restart_at.is_some_and(|t| t <= now),
                _ => false,
            };
            // A job's queued run starts once its last run's group is gone.
            let queued_run = d.state == State::Scheduled
                && d.job.as_ref().is_some_and(|job| job.queued)
                && !d.is_live();
            if ready && d.job.is_some() {
                self.schedule_job(i, now, out);
            } else if ready || queued_run {
                self.start(i, now, out);
            }
        }
    }

    /// Every dependency is ready (as its `ready` says; by default running,
    /// and healthy when it has a health check).
    fn dependencies_up(&self, i: usize) -> bool {
        self.daemons[i]
            .rules
            .depends_on
            .iter()
            .all(|&dep| self.daemons[dep].is_ready())
    }

    fn start(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        self.job_run_starts(i, now);
        let d = &mut self.daemons[i];
        // Started before its restart timer fired (asked for): that timer goes.
        out.extend(cancel_restart(d, i));
        // Preflight speaks for the first start only; a restart tries the real
        // exec again (the executable may have appeared since).
        let first_start = d.last_exit.is_none();
        if let (true, Some((status, msg))) = (first_start, d.rules.preflight_failure.clone()) {
            out.push(spawn_failed_log(&d.rules.name, status, &msg));
            self.on_ended(i, ExitStatus::Code(status), now, out);
            return;
        }
        d.state = State::Starting;
        d.instance += 1;
        let line = format!("starting {}", d.rules.name);
        out.push(daemon_event(
            Level::Info,
            "starting",
            &d.rules.name,
            vec![],
            line,
        ));
        out.push(Action::Spawn(i));
    }

    fn on_spawned(&mut self, i: usize, pid: i32, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        d.pid = Some(pid);
        d.group = Some(pid);
        d.started_at = Some(now);
        d.state = State::Running;
        d.restart_requested = false;
        d.stop_requested = false;
        d.manual_restart = false;
        if d.rules.health.is_some() {
            d.health = Some(HealthTracker::default());
            out.push(Action::StartProbe {
                daemon: i,
                instance: d.instance,
            });
        }
        let line = format!("started {} (pid {pid})", d.rules.name);
        let fields = vec![("pid", FieldValue::Int(pid.into()))];
        out.push(daemon_event(
            Level::Info,
            "started",
            &d.rules.name,
            fields,
            line,
        ));
        self.readiness_on_spawn(i, now, out);
        if self.is_shutting_down() {
            // A start raced with a shutdown request: stop it right away.
            self.stop(i, now, out);
        } else {
            self.start_due(now, out);
        }
    }

    /// The main process of daemon `i` was reaped.
    fn on_exited(&mut self, i: usize, status: ExitStatus, now: Duration, out: &mut Vec<Action>) {
        let shutting_down = self.is_shutting_down();
        let d = &mut self.daemons[i];
        let pid = d.pid.take().unwrap_or_default();
        // A verdict is about a process: without one there is none, whatever
        // the last probe said (so `status`, the API and `/health` never show
        // a stopped or crashed daemon as healthy).
        d.health = None;
        if d.rules.health.is_some() {
            out.push(Action::CancelTimer(Timer::ProbeDue {
                daemon: i,
                instance: d.instance,
            }));
        }
        self.readiness_on_exit(i, out);
        let d = &mut self.daemons[i];
        let ran_for = now.saturating_sub(d.started_at.unwrap_or(now));
        let mut fields = vec![
            ("pid", FieldValue::Int(pid.into())),
            ("status", FieldValue::Int(status.as_status().into())),
        ];
        let mut line = match status {
            ExitStatus::Code(c) => format!("{} exited with status {c}", d.rules.name),
            ExitStatus::Signal(n) => {
                fields.push(("signal", FieldValue::Str(signal_name(n))));
                format!("{} was killed by {}", d.rules.name, signal_name(n))
            }
        };
        let quick_clean_exit = status.success() && ran_for < QUICK_EXIT && !shutting_down;
        if quick_clean_exit && !d.rules.is_main && d.job.is_none() {
            let hint =
                "it exited 0 within 1 s: it may be daemonizing itself; run it in the foreground";
            fields.push(("hint", FieldValue::Str(hint.to_string())));
            line.push_str(&format!(" ({hint})"));
        }
        let level = if status.success() || shutting_down || d.rules.is_main {
            Level::Info
        } else {
            Level::Warn
        };
        out.push(daemon_event(level, "exited", &d.rules.name, fields, line));
        // Whatever is left of its process group goes too (stop signal, then SIGKILL).
        if let Some(pgid) = d.group {
            let instance = d.instance;
            let (signal, timeout) = (d.rules.stop_signal, d.rules.stop_timeout);
            out.push(Action::StopLeftovers {
                daemon: i,
                pgid,
                signal,
            });
            out.push(Action::SetTimer {
                timer: Timer::StopDeadline {
                    daemon: i,
                    instance,
                },
                at: now + timeout,
            });
        }
        self.on_ended(i, status, now, out);
    }

    /// A daemon instance ended (exited, or could not be spawned): vital
    /// fail-fast, restart policy, or a final state.
    fn on_ended(&mut self, i: usize, status: ExitStatus, now: Duration, out: &mut Vec<Action>) {
        if self.daemons[i].job.is_some() {
            self.job_ended(i, status, now, out);
            return;
        }
        let d = &mut self.daemons[i];
        d.last_exit = Some(status);
        d.last_exit_at = Some(now);
        let ran_for = now.saturating_sub(d.started_at.unwrap_or(now));
        if let Phase::ShuttingDown {
            requested: true,
            forced,
            ..
        } = self.phase
        {
            if d.rules.is_main {
                let status = status.as_status();
                self.phase = Phase::ShuttingDown {
                    status,
                    forced,
                    requested: true,
                };
            }
        }
        let d = &mut self.daemons[i];
        if self.phase != Phase::Running || d.stop_requested {
            d.state = State::Exited;
            return;
        }
        if d.rules.vital && !d.restart_requested {
            d.state = if status.success() {
                State::Exited
            } else {
                State::Failed
            };
            let code = exit::vital_status(d.rules.is_main, status);
            if d.rules.is_main {
                // The main command ending is the normal end of a tini-style run, not a failure.
                self.begin_shutdown(code, Shutdown::Failure, now, out);
                return;
            }
            let line = if status.success() {
                // Its own status is 0, pidzero's is not: say both, and why.
                format!(
                    "vital daemon {} exited with status 0; a vital daemon must not stop: \
                     pidzero exits {code}; shutting down",
                    d.rules.name
                )
            } else {
                format!(
                    "vital daemon {} exited with status {code}; shutting down",
                    d.rules.name
                )
            };
            self.vital_failure(i, code, vec![], line, now, out);
            return;
        }
        // A start that missed its ready timeout failed, whatever its status.
        let succeeded = status.success() && !d.readiness.failed_start;
        let wants_restart = d.restart_requested
            || match d.rules.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => !succeeded,
                RestartPolicy::Always => true,
            };
        if !wants_restart {
            d.state = if succeeded {
                State::Exited
            } else {
                State::Failed
            };
            return;
        }
        if !d.manual_restart && d.rules.max_restarts.is_some_and(|max| d.attempts >= max) {
            d.state = State::Failed;
            let line = format!(
                "{} gave up after {} restarts; it stays failed",
                d.rules.name, d.attempts
            );
            out.push(daemon_event(
                Level::Error,
                "exited",
                &d.rules.name,
                vec![],
                line,
            ));
            return;
        }
        d.attempts += 1;
        d.restarts += 1;
        let delay = if d.manual_restart {
            Duration::ZERO
        } else {
            d.backoff.next_delay(ran_for)
        };
        d.state = State::Backoff;
        d.restart_at = Some(now + delay);
        let line = format!(
            "restarting {} in {:.1} s (attempt {})",
            d.rules.name,
            delay.as_secs_f64(),
            d.attempts
        );
        let fields = vec![
            ("attempt", FieldValue::Int(d.attempts.into())),
            ("delay_ms", FieldValue::Int(delay.as_millis() as i64)),
        ];
        out.push(daemon_event(
            Level::Info,
            "restarting",
            &d.rules.name,
            fields,
            line,
        ));
        out.push(Action::SetTimer {
            timer: Timer::RestartDue {
                daemon: i,
                instance: d.instance,
            },
            at: now + delay,
        });
    }

    fn on_signal(&mut self, sig: i32, now: Duration, out: &mut Vec<Action>) {
        let is_stop_request = matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT);
        if !is_stop_request {
            self.forward(sig, out);
            return;
        }
        if let Phase::ShuttingDown {
            forced: false,
            status,
            requested,
        } = self.phase
        {
            self.phase = Phase::ShuttingDown {
                status,
                forced: true,
                requested,
            };
            out.push(Action::Log(LogEvent {
                level: Level::Warn,
                event: "shutdown",
                fields: vec![
                    ("reason", FieldValue::Str("forced".to_string())),
                    ("signal", FieldValue::Str(signal_name(sig))),
                ],
                line: format!(
                    "received {} again: killing everything now",
                    signal_name(sig)
                ),
            }));
            for i in 0..self.daemons.len() {
                self.kill(i, out);
            }
            return;
        }
        if self.is_shutting_down() {
            return;
        }
        if let Some(main) = self.live_main() {
            // tini's contract: the main command decides how to stop.
            self.forward_to(main, sig, out);
            return;
        }
        self.begin_shutdown(0, Shutdown::Signal(sig), now, out);
    }

    fn live_main(&self) -> Option<usize> {
        self.daemons
            .iter()
            .position(|d| d.rules.is_main && d.pid.is_some())
    }

    /// Forwards a signal to every running daemon's process group.
    fn forward(&mut self, sig: i32, out: &mut Vec<Action>) {
        let targets: Vec<usize> = (0..self.daemons.len())
            .filter(|&i| self.daemons[i].pid.is_some())
            .collect();
        for &i in &targets {
            self.forward_to(i, sig, out);
        }
    }

    /// The signal goes out before its `signal_forwarded` record: formatting
    /// and queueing the record (and waking the log writer) took about a third
    /// of the signal's way from pidzero's signalfd to the daemon.
    fn forward_to(&self, i: usize, sig: i32, out: &mut Vec<Action>) {
        let d = &self.daemons[i];
        let Some(pgid) = d.group else { return };
        out.push(Action::SignalGroup {
            daemon: i,
            pgid,
            signal: sig,
        });
        let name = signal_name(sig);
        let line = format!("forwarded {name} to {}", d.rules.name);
        let fields = vec![("signal", FieldValue::Str(name))];
        out.push(daemon_event(
            Level::Info,
            "signal_forwarded",
            &d.rules.name,
            fields,
            line,
        ));
    }

    /// Stops every daemon in reverse start order, all at once; each gets its own
    /// stop signal and, after its own stop timeout, SIGKILL.
    fn begin_shutdown(&mut self, status: i32, why: Shutdown, now: Duration, out: &mut Vec<Action>) {
        self.phase = Phase::ShuttingDown {
            status,
            forced: false,
            requested: why != Shutdown::Failure,
        };
        out.push(shutdown_log(why));
        for idx in (0..self.order.len()).rev() {
            let i = self.order[idx];
            match self.daemons[i].state {
                State::Pending | State::Backoff => {
                    let d = &mut self.daemons[i];
                    d.state = State::Exited;
                    out.extend(cancel_restart(d, i));
                }
                State::Scheduled => self.daemons[i].state = State::Exited,
                _ => {}
            }
            // No job runs again, even one whose run is still being stopped.
            self.disarm_job(i, out);
            if self.daemons[i].pid.is_some() {
                self.stop(i, now, out);
            }
        }
    }

    /// Sends the stop signal to a running daemon and arms its stop deadline.
    fn stop(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        let Some(pgid) = d.group else { return };
        d.state = State::Stopping;
        d.stop_deadline = Some(now + d.rules.stop_timeout);
        out.push(Action::SignalGroup {
            daemon: i,
            pgid,
            signal: d.rules.stop_signal,
        });
        out.push(Action::SetTimer {
            timer: Timer::StopDeadline {
                daemon: i,
                instance: d.instance,
            },
            at: now + d.rules.stop_timeout,
        });
    }

    /// SIGKILL to whatever is left of a daemon's group.
    fn kill(&mut self, i: usize, out: &mut Vec<Action>) {
        let d = &self.daemons[i];
        let Some(pgid) = d.group else { return };
        let line = format!("killing what is left of {} with SIGKILL", d.rules.name);
        let fields = vec![("signal", FieldValue::Str("SIGKILL".to_string()))];
        out.push(daemon_event(
            Level::Warn,
            "killed",
            &d.rules.name,
            fields,
            line,
        ));
        out.push(Action::SignalGroup {
            daemon: i,
            pgid,
            signal: SIGKILL,
        });
    }

    fn on_timer(&mut self, timer: Timer, now: Duration, out: &mut Vec<Action>) {
        match timer {
            Timer::StopDeadline { daemon, instance } => {
                if self.daemons[daemon].instance == instance && self.daemons[daemon].is_live() {
                    self.kill(daemon, out);
                }
            }
            Timer::RestartDue { .. } => self.start_due(now, out),
            Timer::JobDue { daemon, seq } => self.on_job_due(daemon, seq, now, out),
            Timer::ReadyDeadline { daemon, instance } => {
                self.on_ready_deadline(daemon, instance, now, out)
            }
            Timer::WatchdogDue { daemon, instance } => {
                self.on_watchdog_due(daemon, instance, now, out)
            }
            Timer::ProbeDue { daemon, instance } => {
                let d = &self.daemons[daemon];
                if d.instance == instance && d.state == State::Running {
                    out.push(Action::StartProbe { daemon, instance });
                }
            }
        }
    }

    /// Turns a probe result into a health verdict and its consequences, and
    /// schedules the next probe (every second while starting, then every `interval`).
    fn on_probe_result(
        &mut self,
        i: usize,
        instance: u32,
        passed: bool,
        detail: &str,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let d = &mut self.daemons[i];
        let (Some(spec), Some(tracker)) = (&d.rules.health, &mut d.health) else {
            return;
        };
        if d.instance != instance || d.state != State::Running {
            return;
        }
        let since_start = now.saturating_sub(d.started_at.unwrap_or(now));
        let changed = tracker.record(passed, since_start, spec);
        let next = if tracker.health == Health::Starting {
            spec.interval.min(STARTING_PROBE_INTERVAL)
        } else {
            spec.interval
        };
        out.push(Action::SetTimer {
            timer: Timer::ProbeDue {
                daemon: i,
                instance,
            },
            at: now + next,
        });
        let Some(health) = changed else { return };
        let level = if health == Health::Unhealthy {
            Level::Warn
        } else {
            Level::Info
        };
        let line = format!("{} is {}: {detail}", d.rules.name, health.as_str());
        let fields = vec![
            ("health", FieldValue::Str(health.as_str().to_string())),
            ("detail", FieldValue::Str(detail.to_string())),
        ];
        out.push(daemon_event(
            level,
            "health_changed",
            &d.rules.name,
            fields,
            line,
        ));
        match health {
            Health::Healthy => self.readiness_on_healthy(i, now, out),
            Health::Unhealthy => self.on_unhealthy(i, detail, now, out),
            Health::Starting => {}
        }
    }

    /// Fail fast: the `vital_exit` event (status, then `extra` fields), then
    /// a shutdown that ends with `status`.
    fn vital_failure(
        &mut self,
        i: usize,
        status: i32,
        extra: Vec<(&'static str, FieldValue)>,
        line: String,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let mut fields = vec![("status", FieldValue::Int(status.into()))];
        fields.extend(extra);
        let name = &self.daemons[i].rules.name;
        out.push(daemon_event(Level::Error, "vital_exit", name, fields, line));
        self.begin_shutdown(status, Shutdown::Failure, now, out);
    }

    /// Vital → fail fast (status 1); restart policy → restart; else stay marked unhealthy.
    fn on_unhealthy(&mut self, i: usize, detail: &str, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        if d.rules.vital {
            let line = format!(
                "vital daemon {} is unhealthy ({detail}); shutting down",
                d.rules.name
            );
            let reason = vec![("reason", FieldValue::Str("unhealthy".to_string()))];
            self.vital_failure(i, 1, reason, line, now, out);
        } else if d.rules.restart != RestartPolicy::Never {
            d.restart_requested = true;
            self.stop(i, now, out);
        }
    }

    /// Exits once nothing runs and nothing is waiting to run.
    fn check_done(&mut self, out: &mut Vec<Action>) {
        if self.phase == Phase::Done {
            return;
        }
        let busy = self.daemons.iter().any(|d| {
            d.is_live() || matches!(d.state, State::Starting | State::Backoff | State::Scheduled)
        });
        if busy {
            return;
        }
        let status = match self.phase {
            Phase::ShuttingDown { status, .. } => status,
            _ => {
                // Removed by a reload: stopped on request, not a failure.
                let all_ok = self
                    .daemons
                    .iter()
                    .filter(|d| !d.retired)
                    .all(|d| d.last_exit.is_some_and(ExitStatus::success));
                exit::all_ended_status(all_ok)
            }
        };
        self.phase = Phase::Done;
        out.push(Action::Exit(status));
    }
}

/// Forgets a daemon's pending restart, and the timer armed for it, so that no
/// timer outlives what it was armed for (it would only wake the loop).
fn cancel_restart(d: &mut Daemon, i: usize) -> Option<Action> {
    d.restart_at.take()?;
    Some(Action::CancelTimer(Timer::RestartDue {
        daemon: i,
        instance: d.instance,
    }))
}

fn conflict(d: &Daemon, why: &str) -> ControlOutcome {
    ControlOutcome::Conflict(format!(
        "{} {why} (state {})",
        d.rules.name,
        d.state.as_str()
    ))
}

/// An event about one daemon: `daemon` first, then `fields` (SPEC §7 order).
fn daemon_event(
    level: Level,
    event: &'static str,
    daemon: &str,
    fields: Vec<(&'static str, FieldValue)>,
    line: String,
) -> Action {
    let mut all = Vec::with_capacity(fields.len() + 1);
    all.push(("daemon", FieldValue::Str(daemon.to_string())));
    all.extend(fields);
    Action::Log(LogEvent {
        level,
        event,
        fields: all,
        line,
    })
}

/// Why a restarting daemon's `restart_delay` is not used as written: it is
/// below the floor that keeps a crash loop cheap (see [`backoff`]).
/// `pidzero check` prints it as a note, a run logs it as `config_warning`.
pub fn restart_delay_note(rules: &DaemonRules) -> Option<String> {
    if rules.restart == RestartPolicy::Never {
        return None;
    }
    let used = backoff::raised(rules.restart_delay)?;
    Some(format!(
        "daemon {}: restart_delay {} s is raised to {} s (then doubled on each quick exit) so that a crash loop stays cheap",
        rules.name,
        rules.restart_delay.as_secs_f64(),
        used.as_secs_f64()
    ))
}

fn config_warning(rules: &DaemonRules, field: &str, line: String) -> Action {
    let fields = vec![("field", FieldValue::Str(field.to_string()))];
    daemon_event(Level::Warn, "config_warning", &rules.name, fields, line)
}

fn spawn_failed_log(name: &str, status: i32, error: &str) -> Action {
    let fields = vec![
        ("status", FieldValue::Int(status.into())),
        ("error", FieldValue::Str(error.to_string())),
    ];
    let line = format!("cannot start {name}: {error}");
    daemon_event(Level::Error, "spawn_failed", name, fields, line)
}

fn shutdown_log(why: Shutdown) -> Action {
    let (reason, line) = match why {
        Shutdown::Signal(sig) => (
            "signal",
            format!("received {}: stopping all daemons", signal_name(sig)),
        ),
        Shutdown::Requested => ("request", "shutdown requested: stopping all daemons".into()),
        Shutdown::Failure => ("exit", "stopping all daemons".into()),
    };
    let mut fields = vec![("reason", FieldValue::Str(reason.to_string()))];
    if let Shutdown::Signal(sig) = why {
        fields.push(("signal", FieldValue::Str(signal_name(sig))));
    }
    Action::Log(LogEvent {
        level: Level::Info,
        event: "shutdown",
        fields,
        line,
    })
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

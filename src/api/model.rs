//! What the API shows and what it asks for: plain values, no I/O.
//!
//! The runtime publishes a [`Snapshot`] through a `tokio::sync::watch` channel
//! after every change; the server only ever reads the latest one. Commands go the
//! other way as [`ControlRequest`]s, each with a oneshot for the runtime's answer.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// One daemon as `GET /daemons` shows it (SPEC §8). It has no environment field on
/// purpose: environment values never leave pidzero through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub name: String,
    pub vital: bool,
    /// `pending`, `starting`, `running`, `backoff`, `stopping`, `exited`,
    /// `failed`, or for a job between runs `scheduled`.
    pub state: String,
    pub pid: Option<i32>,
    /// RFC 3339, UTC.
    pub started_at: Option<String>,
    pub uptime_seconds: Option<f64>,
    pub restarts: u32,
    /// `healthy`, `unhealthy` or `starting`; `None` without a health check.
    pub health: Option<String>,
    /// Readiness: `ready`, how it is decided, the daemon's own status text.
    #[serde(flatten)]
    pub readiness: ReadyInfo,
    pub last_exit: Option<LastExit>,
    /// The argv (for a shell command: `/bin/sh`, `-c`, the string).
    pub command: Vec<String>,
    /// Only for a job (a daemon with `schedule`): its schedule, runs and counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobInfo>,
}

/// What the API shows of a daemon's readiness (flattened into the daemon object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadyInfo {
    /// Ready now, as its `ready` defines it; never when not running.
    #[serde(default)]
    pub ready: bool,
    /// `started`, `health`, `notify:systemd` or `notify:fd`.
    #[serde(default)]
    pub ready_mode: String,
    /// `ready`, `waiting`, `reloading`, `stopping` or `watchdog_missed`;
    /// `None` when not running.
    #[serde(default)]
    pub ready_state: Option<String>,
    /// How long after its start the running instance became ready.
    #[serde(default)]
    pub ready_after_ms: Option<u64>,
    /// The daemon's own `STATUS=` text (sd_notify), kept after it exits.
    #[serde(default)]
    pub status_text: Option<String>,
}

impl ReadyInfo {
    /// Its readiness is announced by the daemon (sd_notify or notification fd).
    pub fn is_announced(&self) -> bool {
        self.ready_mode.starts_with("notify")
    }
}

/// What the API shows of a job beside the daemon fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInfo {
    /// As written in `daemons.json`.
    pub schedule: String,
    /// `UTC` unless `timezone` is set.
    pub timezone: String,
    /// `skip`, `queue` or `replace`.
    pub overlap: String,
    /// RFC 3339, UTC; `None` while the job is stopped (or pidzero is ending).
    pub next_run: Option<String>,
    pub last_run: Option<JobRun>,
    /// Runs started, runs that failed, due runs skipped (as in `/metrics`).
    pub runs: u64,
    pub failures: u64,
    pub skipped: u64,
}

/// How a job's last run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// How the last run of a daemon ended: an exit code or a signal name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastExit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal's name, such as `SIGTERM` (as in the `exited` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// RFC 3339, UTC.
    pub at: String,
}

/// Everything the read-only routes need, published by the runtime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub daemons: Vec<DaemonInfo>,
    pub shutting_down: bool,
    /// Children reaped that were not daemons (adopted orphans).
    pub reaped_total: u64,
}

impl Snapshot {
    /// The verdict of `GET /health`: healthy when no shutdown is under way and every
    /// vital daemon is running and, if it has a health check, passing it. The list
    /// names the vital daemons that are not (it may be empty during a shutdown).
    pub fn health(&self) -> (bool, Vec<String>) {
        let failing: Vec<String> = self
            .daemons
            .iter()
            .filter(|d| d.vital && !d.is_up_and_healthy())
            .map(|d| d.name.clone())
            .collect();
        (!self.shutting_down && failing.is_empty(), failing)
    }

    pub fn daemon(&self, name: &str) -> Option<&DaemonInfo> {
        self.daemons.iter().find(|d| d.name == name)
    }
}

impl DaemonInfo {
    /// This daemon with `uptime_seconds` brought up to `now` from `started_at`.
    ///
    /// Snapshots are published only when something happens (pidzero does not wake up
    /// while idle), so the uptime stored in one ages; the server refreshes it for each
    /// answer. Only a daemon that has an uptime gets a new one.
    pub fn with_uptime_at(&self, now: SystemTime) -> DaemonInfo {
        let mut info = self.clone();
        if info.uptime_seconds.is_some() {
            let started = info
                .started_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339(t).ok());
            if let Some(started) = started {
                let up = now.duration_since(started).unwrap_or_default();
                info.uptime_seconds = Some((up.as_millis() as f64) / 1000.0);
            }
        }
        info
    }

    /// Running, and healthy if it has a health check (`starting` does not count yet).
    /// A job is up while it keeps its schedule: between runs (`scheduled`) as
    /// much as during one; a job that is down is `exited` or `failed`.
    pub fn is_up_and_healthy(&self) -> bool {
        if self.job.is_some() {
            return matches!(
                self.state.as_str(),
                "scheduled" | "starting" | "running" | "stopping"
            );
        }
        // A notify daemon is up once it said it is ready (the other modes
        // are ready exactly when running, and healthy with a check).
        let announced_ready = self.readiness.ready || !self.readiness.is_announced();
        self.state == "running"
            && matches!(self.health.as_deref(), None | Some("healthy"))
            && announced_ready
    }
}

/// What an API client asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlCommand {
    Start(String),
    Stop(String),
    Restart(String),
    /// Daemon name and signal number (already validated by the server).
    Signal(String, i32),
    Shutdown,
    /// Read both configuration files again and apply the difference.
    Reload,
}

/// What a reload did (`POST /reload` → 200): the daemons by what happened to
/// them, and what did not go as asked without making the reload fail.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadAnswer {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub kept: Vec<String>,
    pub updated: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The runtime's answer to a [`ControlCommand`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReply {
    /// Done or under way → 202 `{"state": state}` (the daemon's state after the command,
    /// or `stopping` for a shutdown).
    Accepted { state: String },
    /// No daemon of that name → 404.
    NotFound,
    /// The command does not apply now (stopping a daemon that is not running, ...) →
    /// 409 with this message.
    Conflict(String),
    /// A reload was applied → 200 with this body.
    Reloaded(ReloadAnswer),
    /// A reload found errors (each `file:line:col: ...`) and changed nothing → 422.
    Invalid(Vec<String>),
}

/// A command with the channel for its answer. The runtime must answer (or drop the
/// sender) promptly; the server gives up after a few seconds with 503.
#[derive(Debug)]
pub struct ControlRequest {
    pub command: ControlCommand,
    pub reply: oneshot::Sender<ControlReply>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(name: &str, vital: bool, state: &str, health: Option<&str>) -> DaemonInfo {
        DaemonInfo {
            name: name.into(),
            vital,
            state: state.into(),
            pid: None,
            started_at: None,
            uptime_seconds: None,
            restarts: 0,
            health: health.map(Into::into),
            last_exit: None,
            command: vec!["x".into()],
            job: None,
            readiness: ReadyInfo::default(),
        }
    }

    fn snapshot(daemons: Vec<DaemonInfo>) -> Snapshot {
        Snapshot {
            daemons,
            ..Snapshot::default()
        }
    }

    #[test]
    fn a_vital_notify_daemon_is_unhealthy_until_ready() {
        let mut db = daemon("db", true, "running", None);
        db.readiness.ready_mode = "notify:systemd".into();
        let s = snapshot(vec![db.clone()]);
        assert_eq!(s.health(), (false, vec!["db".to_string()]));
        db.readiness.ready = true;
        assert_eq!(snapshot(vec![db]).health(), (true, vec![]));
    }

    #[test]
    fn readiness_is_flattened_into_the_daemon_object() {
        let mut db = daemon("db", true, "running", None);
        db.readiness = ReadyInfo {
            ready: true,
            ready_mode: "notify:systemd".into(),
            ready_state: Some("ready".into()),
            ready_after_ms: Some(250),
            status_text: Some("serving".into()),
        };
        let json = serde_json::to_value(&db).unwrap_or_default();
        assert_eq!(json["ready"], true);
        assert_eq!(json["ready_after_ms"], 250);
        assert_eq!(json["status_text"], "serving");
        let back: DaemonInfo = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, db);
    }

    #[test]
    fn healthy_when_every_vital_daemon_runs_and_passes() {
        let s = snapshot(vec![
            daemon("web", true, "running", Some("healthy")),
            daemon("db", true, "running", None),
            daemon("cron", false, "failed", None),
            daemon("side", false, "running", Some("unhealthy")),
        ]);
        assert_eq!(s.health(), (true, vec![]));
    }

    #[test]
    fn unhealthy_lists_the_failing_vital_daemons() {
        let s = snapshot(vec![
            daemon("web", true, "running", Some("unhealthy")),
            daemon("db", true, "backoff", None),
            daemon("warm", true, "running", Some("starting")),
            daemon("ok", true, "running", None),
        ]);
        assert_eq!(
            s.health(),
            (false, vec!["web".into(), "db".into(), "warm".into()])
        );
    }

    #[test]
    fn a_shutdown_is_unhealthy() {
        let mut s = snapshot(vec![daemon("web", true, "running", None)]);
        s.shutting_down = true;
        assert_eq!(s.health(), (false, vec![]));
    }

    #[test]
    fn no_daemons_is_healthy() {
        assert_eq!(Snapshot::default().health(), (true, vec![]));
    }

    #[test]
    fn uptime_is_brought_up_to_date() {
        let mut d = daemon("web", true, "running", None);
        d.started_at = Some("2026-11-28T14:09:00.500Z".into());
        d.uptime_seconds = Some(1.0);
        let now = humantime::parse_rfc3339("2026-11-28T14:10:02.750Z").unwrap();
        assert_eq!(d.with_uptime_at(now).uptime_seconds, Some(62.25));
        // A clock behind the start gives 0, not a negative uptime.
        let before = humantime::parse_rfc3339("2026-11-28T14:00:00Z").unwrap();
        assert_eq!(d.with_uptime_at(before).uptime_seconds, Some(0.0));
        // No uptime published (not running): none made up.
        d.uptime_seconds = None;
        assert_eq!(d.with_uptime_at(now).uptime_seconds, None);
    }

    #[test]
    fn last_exit_shows_code_or_signal() {
        let code = LastExit {
            code: Some(3),
            signal: None,
            at: "t".into(),
        };
        let signal = LastExit {
            code: None,
            signal: Some("KILL".into()),
            at: "t".into(),
        };
        assert_eq!(
            serde_json::to_string(&code).unwrap(),
            r#"{"code":3,"at":"t"}"#
        );
        assert_eq!(
            serde_json::to_string(&signal).unwrap(),
            r#"{"signal":"KILL","at":"t"}"#
        );
    }

    #[test]
    fn daemon_object_has_exactly_the_spec_fields() {
        let value = serde_json::to_value(daemon("web", true, "running", None)).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "command",
                "health",
                "last_exit",
                "name",
                "pid",
                "ready",
                "ready_after_ms",
                "ready_mode",
                "ready_state",
                "restarts",
                "started_at",
                "state",
                "status_text",
                "uptime_seconds",
                "vital"
            ]
        );
    }
}

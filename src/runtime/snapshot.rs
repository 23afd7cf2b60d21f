//! What the control API shows: the supervisor's state turned into plain values.

use std::time::{Duration, SystemTime};

use crate::api::{DaemonInfo, JobInfo, JobRun, LastExit, ReadyInfo, Snapshot};
use crate::config::signal::signal_name;
use crate::exit::ExitStatus;
use crate::plan::Launch;
use crate::supervisor::job::stamp;
use crate::supervisor::{Daemon, Supervisor};

/// Builds the snapshot the API serves. `wall_base` is the wall-clock time of
/// the supervisor's monotonic zero, to turn its times into RFC 3339 stamps.
pub fn build(
    supervisor: &Supervisor,
    launches: &[Launch],
    wall_base: SystemTime,
    reaped_total: u64,
) -> Snapshot {
    let daemons = supervisor
        .daemons()
        .iter()
        .zip(launches)
        // Removed by a reload and stopped: gone from the API.
        .filter(|(d, _)| !d.retired || d.is_live())
        .map(|(d, launch)| {
            let alive = d.pid.is_some();
            let started_at = d
                .started_at
                .filter(|_| alive)
                .map(|t| rfc3339(wall_base, t));
            DaemonInfo {
                name: d.rules.name.clone(),
                vital: d.rules.vital,
                state: d.state.as_str().to_string(),
                pid: d.pid,
                uptime_seconds: started_at.as_ref().map(|_| 0.0),
                started_at,
                restarts: d.restarts,
                health: d.health.as_ref().map(|h| h.health.as_str().to_string()),
                readiness: ready_info(d),
                last_exit: d.last_exit.map(|status| LastExit {
                    code: match status {
                        ExitStatus::Code(c) => Some(c),
                        ExitStatus::Signal(_) => None,
                    },
                    signal: match status {
                        ExitStatus::Signal(n) => Some(signal_name(n)),
                        ExitStatus::Code(_) => None,
                    },
                    at: rfc3339(wall_base, d.last_exit_at.unwrap_or_default()),
                }),
                command: launch.argv.clone(),
                job: job_info(d),
            }
        })
        .collect();
    Snapshot {
        daemons,
        shutting_down: supervisor.is_shutting_down(),
        reaped_total,
    }
}

/// Whether it is ready, how that is decided, and what the daemon says.
fn ready_info(d: &Daemon) -> ReadyInfo {
    ReadyInfo {
        ready: d.is_ready(),
        ready_mode: d.rules.ready.as_str().to_string(),
        ready_state: d.ready_state().map(str::to_string),
        ready_after_ms: d
            .readiness
            .ready_after
            .filter(|_| d.pid.is_some())
            .map(|t| t.as_millis() as u64),
        status_text: d.readiness.status_text.clone(),
    }
}

/// A job's schedule, next run, last run and counters.
fn job_info(d: &Daemon) -> Option<JobInfo> {
    let (spec, job) = (d.rules.job.as_ref()?, d.job.as_ref()?);
    Some(JobInfo {
        schedule: spec.schedule.clone(),
        timezone: spec.timezone.clone(),
        overlap: spec.overlap.as_str().to_string(),
        next_run: job.due.map(|due| stamp(due.wall)),
        last_run: job.last_run.map(|run| JobRun {
            started_at: stamp(run.started),
            duration_seconds: (run.duration.as_millis() as f64) / 1000.0,
            code: match run.status {
                ExitStatus::Code(c) => Some(c),
                ExitStatus::Signal(_) => None,
            },
            signal: match run.status {
                ExitStatus::Signal(n) => Some(signal_name(n)),
                ExitStatus::Code(_) => None,
            },
        }),
        runs: job.runs,
        failures: job.failures,
        skipped: job.skipped,
    })
}

fn rfc3339(base: SystemTime, offset: Duration) -> String {
    humantime::format_rfc3339_millis(base + offset).to_string()
}

//! The supervisor's rules for jobs (daemons with a `schedule`): arming the
//! one due timer, the overlap policy, what a run's end means, and `start`
//! and `stop` of a job. The pure computations are in [`super::job`].

use std::time::Duration;

use jiff::Timestamp;

use super::job::{fired, next_due, on_due, stamp, Due, LastRun, OnDue};
use super::{conflict, daemon_event, Action, ControlOutcome, Phase, State, Supervisor, Timer};
use crate::exit::{self, ExitStatus};
use crate::log::record::{FieldValue, Level};

impl Supervisor {
    /// A pending job whose dependencies are up begins its schedule.
    pub(super) fn schedule_job(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        self.daemons[i].state = State::Scheduled;
        if let Some(due) = self.arm_next(i, None, now, out) {
            let d = &self.daemons[i];
            let line = format!(
                "{} is scheduled: next run at {}",
                d.rules.name,
                stamp(due.wall)
            );
            let fields = job_fields(d.rules.job.as_ref(), Some(due.wall));
            out.push(daemon_event(
                Level::Info,
                "job_scheduled",
                &d.rules.name,
                fields,
                line,
            ));
        }
    }

    /// Arms the timer for the due time after `prev`; returns it.
    fn arm_next(
        &mut self,
        i: usize,
        prev: Option<Due>,
        now: Duration,
        out: &mut Vec<Action>,
    ) -> Option<Due> {
        let wall = self.wall;
        let d = &mut self.daemons[i];
        let (Some(spec), Some(job)) = (&d.rules.job, &mut d.job) else {
            return None;
        };
        let due = next_due(spec, prev, now, wall)?;
        arm(i, job, due, out);
        Some(due)
    }

    /// Forgets the armed due time: the job is paused or pidzero is ending.
    pub(super) fn disarm_job(&mut self, i: usize, out: &mut Vec<Action>) {
        if let Some(job) = &mut self.daemons[i].job {
            job.queued = false;
            if job.due.take().is_some() {
                out.push(Action::CancelTimer(Timer::JobDue {
                    daemon: i,
                    seq: job.seq,
                }));
            }
        }
    }

    /// The job's timer fired: run it, or apply the overlap policy; then arm
    /// the next due time (one timer per job, nothing between due times).
    pub(super) fn on_job_due(&mut self, i: usize, seq: u32, now: Duration, out: &mut Vec<Action>) {
        if self.phase != Phase::Running {
            return;
        }
        let wall = self.wall;
        let d = &mut self.daemons[i];
        let busy = d.is_live() || matches!(d.state, State::Starting | State::Stopping);
        let (Some(spec), Some(job)) = (&d.rules.job, &mut d.job) else {
            return;
        };
        let Some(due) = job.due.filter(|_| job.seq == seq) else {
            return; // Re-armed or cancelled since.
        };
        if let Err(rest) = fired(spec, due, wall) {
            // The wall clock was set back: the run is not due yet.
            arm(
                i,
                job,
                Due {
                    at: now + rest,
                    ..due
                },
                out,
            );
            return;
        }
        job.due = None;
        let decision = on_due(spec.overlap, busy, job.queued);
        let overlap = spec.overlap.as_str();
        let next = self.arm_next(i, Some(due), now, out).map(|due| due.wall);
        let d = &mut self.daemons[i];
        let name = d.rules.name.clone();
        let Some(job) = &mut d.job else { return };
        let mut fields = vec![("overlap", FieldValue::Str(overlap.to_string()))];
        if let Some(next) = next {
            fields.push(("next_run", FieldValue::Str(stamp(next))));
        }
        match decision {
            OnDue::Run => self.start(i, now, out),
            OnDue::Skip => {
                job.skipped += 1;
                let line = format!(
                    "{name}: the run due at {} is skipped: the previous one is still running \
                     (overlap {overlap})",
                    stamp(due.wall)
                );
                out.push(daemon_event(
                    Level::Warn,
                    "job_skipped",
                    &name,
                    fields,
                    line,
                ));
            }
            OnDue::Queue => {
                job.queued = true;
                let line = format!(
                    "{name}: the run due at {} waits for the running one to end",
                    stamp(due.wall)
                );
                out.push(daemon_event(Level::Info, "job_queued", &name, fields, line));
            }
            OnDue::Replace => {
                job.queued = true;
                job.replacing = true;
                let line = format!(
                    "{name}: the run due at {} replaces the running one, which is being stopped",
                    stamp(due.wall)
                );
                out.push(daemon_event(
                    Level::Info,
                    "job_replaced",
                    &name,
                    fields,
                    line,
                ));
                self.stop(i, now, out);
            }
        }
    }

    /// A job's run ended: record it, count a failure, fail fast when the job
    /// is vital and failed; else it waits for its next due time (or runs the
    /// queued one as soon as its process group is gone).
    pub(super) fn job_ended(
        &mut self,
        i: usize,
        status: ExitStatus,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let wall = self.wall;
        let running = self.phase == Phase::Running;
        let d = &mut self.daemons[i];
        d.last_exit = Some(status);
        d.last_exit_at = Some(now);
        let restart = std::mem::take(&mut d.restart_requested);
        let stopped = d.stop_requested;
        let Some(job) = &mut d.job else { return };
        let (started_at, started) = job.run_started.take().unwrap_or((now, wall));
        let duration = now.saturating_sub(started_at);
        job.last_run = Some(LastRun {
            started,
            duration,
            status,
        });
        let replaced = std::mem::take(&mut job.replacing);
        job.queued |= restart;
        let failed = !status.success() && running && !replaced && !stopped && !restart;
        job.failures += u64::from(failed);
        let next = job.due.map(|due| due.wall);
        let name = d.rules.name.clone();
        let mut fields = vec![
            ("status", FieldValue::Int(status.as_status().into())),
            (
                "duration_ms",
                FieldValue::Int(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
            ),
        ];
        let mut line = format!(
            "job {name} {} with status {} after {:.3} s",
            if failed { "failed" } else { "finished" },
            status.as_status(),
            duration.as_secs_f64()
        );
        if let (Some(next), true) = (next, running && !stopped) {
            fields.push(("next_run", FieldValue::Str(stamp(next))));
            line.push_str(&format!("; next run at {}", stamp(next)));
        }
        let level = if failed { Level::Warn } else { Level::Info };
        out.push(daemon_event(level, "job_finished", &name, fields, line));
        if !running || stopped {
            self.daemons[i].state = State::Exited;
            self.disarm_job(i, out);
            return;
        }
        if failed && self.daemons[i].rules.vital {
            self.daemons[i].state = State::Failed;
            self.disarm_job(i, out);
            let code = exit::vital_status(false, status);
            let line = format!("vital job {name} failed with status {code}; shutting down");
            self.vital_failure(i, code, vec![], line, now, out);
            return;
        }
        self.daemons[i].state = State::Scheduled;
        self.start_due(now, out);
    }

    /// `start` of a job: run it now (and resume its schedule if it was stopped).
    pub(super) fn job_start_now(
        &mut self,
        i: usize,
        now: Duration,
        out: &mut Vec<Action>,
    ) -> ControlOutcome {
        let d = &self.daemons[i];
        match d.state {
            State::Scheduled | State::Exited | State::Failed if !d.is_live() => {}
            State::Scheduled | State::Exited | State::Failed => {
                return conflict(d, "is still stopping its last run")
            }
            State::Pending => return conflict(d, "waits for its dependencies"),
            _ => return conflict(d, "is already running"),
        }
        if d.state != State::Scheduled {
            // Stopped by hand: `start` resumes the schedule too.
            self.schedule_job(i, now, out);
        }
        self.start(i, now, out);
        ControlOutcome::Accepted(self.daemons[i].state)
    }

    /// Bookkeeping of a run that starts now.
    pub(super) fn job_run_starts(&mut self, i: usize, now: Duration) {
        let wall = self.wall;
        if let Some(job) = &mut self.daemons[i].job {
            job.runs += 1;
            job.queued = false;
            job.run_started = Some((now, wall));
        }
    }
}

fn arm(i: usize, job: &mut super::job::JobState, due: Due, out: &mut Vec<Action>) {
    if job.due.is_some() {
        out.push(Action::CancelTimer(Timer::JobDue {
            daemon: i,
            seq: job.seq,
        }));
    }
    job.seq = job.seq.wrapping_add(1);
    job.due = Some(due);
    out.push(Action::SetTimer {
        timer: Timer::JobDue {
            daemon: i,
            seq: job.seq,
        },
        at: due.at,
    });
}

fn job_fields(
    spec: Option<&crate::plan::rules::JobSpec>,
    next: Option<Timestamp>,
) -> Vec<(&'static str, FieldValue)> {
    let mut fields = Vec::new();
    if let Some(spec) = spec {
        fields.push(("schedule", FieldValue::Str(spec.schedule.clone())));
        fields.push(("timezone", FieldValue::Str(spec.timezone.clone())));
    }
    if let Some(next) = next {
        fields.push(("next_run", FieldValue::Str(stamp(next))));
    }
    fields
}

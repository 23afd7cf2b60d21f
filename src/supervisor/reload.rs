//! The supervisor's side of a reload: the running set takes a new plan.
//!
//! Indices stay stable, because timers, pids and the runtime's per-daemon
//! tables refer to them: added daemons are appended, removed ones are
//! retired (a tombstone, stopped with their own stop signal and timeout,
//! hidden from the API once their process group is gone), changed ones get
//! their new rules and are restarted, updated ones get their new rules in
//! place, kept ones are not touched (their restart counters neither).
//! What is "changed" is decided by [`crate::plan::diff`].

use std::time::Duration;

use super::backoff::Backoff;
use super::{cancel_restart, Action, Daemon, LogEvent, Phase, State, Supervisor};
use crate::log::record::{FieldValue, Level};
use crate::plan::diff::{Change, Diff};
use crate::plan::rules::DaemonRules;

/// A new plan for the supervisor: its daemons' rules, its start order
/// (`depends_on` and `start_order` index into `rules`), and the diff's
/// verdict for each of them.
#[derive(Debug, Clone)]
pub struct ReloadSet {
    pub rules: Vec<DaemonRules>,
    pub start_order: Vec<usize>,
    pub diff: Diff,
}

/// What a reload did, by daemon name; the answer of `POST /reload` and the
/// fields of the `reload` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Added, in start order.
    pub started: Vec<String>,
    /// Removed: being stopped.
    pub stopped: Vec<String>,
    /// Changed: stopped and started again with the new launch spec.
    pub restarted: Vec<String>,
    /// Untouched.
    pub kept: Vec<String>,
    /// New in-place rules (vital, restart policy, stop signal or timeout,
    /// depends_on), process left alone.
    pub updated: Vec<String>,
}

/// The outcome of [`Supervisor::reload`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub summary: ReloadSummary,
    /// Where each daemon of the new plan lives now (the supervisor's index);
    /// the runtime puts launch specs there, appending where it is new.
    pub indices: Vec<usize>,
}

impl Supervisor {
    /// Takes a new plan (see the module docs). Refused during a shutdown:
    /// nothing changes then.
    pub fn reload(
        &mut self,
        set: ReloadSet,
        now: Duration,
    ) -> Result<(Reloaded, Vec<Action>), String> {
        if self.phase != Phase::Running {
            return Err("pidzero is shutting down".into());
        }
        let mut out = Vec::new();
        let mut summary = ReloadSummary::default();
        // A changed daemon that turns into a job (or back) is a new daemon:
        // the old one is retired, the new one appended.
        let changes: Vec<Change> = set
            .diff
            .daemons
            .iter()
            .zip(&set.rules)
            .map(|(&change, rules)| match change {
                Change::Changed(i)
                    if self.daemons[i].rules.job.is_some() != rules.job.is_some() =>
                {
                    self.retire(i, now, &mut out);
                    Change::Added
                }
                other => other,
            })
            .collect();
        let mut next = self.daemons.len();
        let indices: Vec<usize> = changes
            .iter()
            .map(|change| match change {
                Change::Added => {
                    next += 1;
                    next - 1
                }
                Change::Kept(i) | Change::Updated(i) | Change::Changed(i) => *i,
            })
            .collect();
        for &i in &set.diff.removed {
            summary.stopped.push(self.daemons[i].rules.name.clone());
            self.retire(i, now, &mut out);
        }
        for (j, mut rules) in set.rules.into_iter().enumerate() {
            rules.depends_on = rules.depends_on.iter().map(|&d| indices[d]).collect();
            let name = rules.name.clone();
            match changes[j] {
                Change::Added => self.daemons.push(Daemon::new(rules)),
                Change::Kept(i) => {
                    self.daemons[i].rules = rules;
                    summary.kept.push(name);
                }
                Change::Updated(i) => {
                    let d = &mut self.daemons[i];
                    if d.rules.restart_delay != rules.restart_delay {
                        d.backoff = Backoff::new(rules.restart_delay);
                    }
                    d.rules = rules;
                    summary.updated.push(name);
                }
                Change::Changed(i) => {
                    self.daemons[i].rules = rules;
                    self.restart_changed(i, now, &mut out);
                    summary.restarted.push(name);
                }
            }
        }
        summary.started = set
            .start_order
            .iter()
            .filter(|&&j| changes[j] == Change::Added)
            .map(|&j| self.daemons[indices[j]].rules.name.clone())
            .collect();
        // Kind flips were counted as added: they are restarts to the user.
        let flipped: Vec<String> = set
            .diff
            .daemons
            .iter()
            .zip(&changes)
            .enumerate()
            .filter(|(_, (before, after))| before != after)
            .map(|(j, _)| self.daemons[indices[j]].rules.name.clone())
            .collect();
        summary.started.retain(|name| !flipped.contains(name));
        summary.restarted.extend(flipped);
        self.order = set.start_order.iter().map(|&j| indices[j]).collect();
        out.push(reload_log(&summary));
        // The notes a start gives, for the rules this reload brought in.
        for (j, change) in changes.iter().enumerate() {
            let rules = &self.daemons[indices[j]].rules;
            if let (false, Some(line)) = (
                matches!(change, Change::Kept(_)),
                super::restart_delay_note(rules),
            ) {
                out.push(super::config_warning(rules, "restart_delay", line));
            }
        }
        self.start_due(now, &mut out);
        self.check_done(&mut out);
        Ok((Reloaded { summary, indices }, out))
    }

    /// A removed daemon: stopped with its stop signal and timeout, not a
    /// vital failure (it was asked to go), never restarted, and forgotten
    /// by the API once nothing of it is left.
    fn retire(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        self.disarm_job(i, out);
        let d = &mut self.daemons[i];
        d.retired = true;
        d.stop_requested = true;
        d.restart_requested = false;
        // By liveness rather than state by state, so that a state added
        // later is covered: a process is stopped, anything waiting ends.
        match d.state {
            State::Stopping | State::Exited | State::Failed => {}
            _ if d.pid.is_some() => self.stop(i, now, out),
            _ => {
                d.state = State::Exited;
                out.extend(cancel_restart(d, i));
            }
        }
    }

    /// A changed daemon, its new rules in place: a live instance is stopped
    /// and started again at once (no backoff; not a vital failure); one in
    /// backoff starts now; one that had ended starts again, like a new
    /// daemon. A job's run in progress is left to finish; its schedule is
    /// planned again from the new rules.
    fn restart_changed(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        if self.daemons[i].job.is_some() {
            self.replan_job(i, now, out);
            return;
        }
        let d = &mut self.daemons[i];
        d.backoff = Backoff::new(d.rules.restart_delay);
        match d.state {
            State::Backoff => d.restart_at = Some(now),
            State::Exited | State::Failed => {
                d.state = State::Pending;
                d.attempts = 0;
            }
            // Any state with a process (running, stopping, and states added
            // later): stopped, then started again.
            _ if d.pid.is_some() => {
                d.restart_requested = true;
                d.manual_restart = true;
                d.stop_requested = false;
                if d.state != State::Stopping {
                    self.stop(i, now, out);
                }
            }
            // Pending starts with the new rules anyway; Starting without a
            // pid is never seen between two events of the runtime (its
            // spawn is answered before the next request is taken).
            _ => {}
        }
    }

    /// A changed job: its next due time comes from the new schedule.
    fn replan_job(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        self.disarm_job(i, out);
        let state = self.daemons[i].state;
        match state {
            State::Scheduled | State::Running | State::Stopping => {
                self.schedule_job(i, now, out);
                // A run in progress stays what it was until it ends.
                self.daemons[i].state = state;
            }
            State::Exited | State::Failed => self.daemons[i].state = State::Pending,
            _ => {}
        }
    }

    /// A retired daemon of the same name still has processes: a daemon
    /// added back waits for them (it may need the same port or files).
    pub(super) fn namesake_retiring(&self, i: usize) -> bool {
        let name = &self.daemons[i].rules.name;
        self.daemons
            .iter()
            .any(|d| d.retired && d.is_live() && &d.rules.name == name)
    }
}

fn reload_log(summary: &ReloadSummary) -> Action {
    let lists = [
        ("started", &summary.started),
        ("stopped", &summary.stopped),
        ("restarted", &summary.restarted),
        ("kept", &summary.kept),
        ("updated", &summary.updated),
    ];
    let line = lists
        .iter()
        .map(|(what, names)| format!("{} {what}", names.len()))
        .collect::<Vec<_>>()
        .join(", ");
    Action::Log(LogEvent {
        level: Level::Info,
        event: "reload",
        // Names hold no comma (SPEC §2), so a list is one comma-separated string.
        fields: lists
            .iter()
            .map(|(what, names)| (*what, FieldValue::Str(names.join(","))))
            .collect(),
        line: format!("configuration reloaded: {line}"),
    })
}

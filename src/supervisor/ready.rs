//! Readiness: when a daemon counts as ready (for `depends_on`, `/health` and
//! `status`), its `ready_timeout`, and the sd_notify watchdog.
//!
//! `ready: "started"` is ready once spawned, `"health"` while its check
//! passes, a notify daemon once it says so (`READY=1`, or a newline on its
//! notification descriptor) and until it says `RELOADING=1` or `STOPPING=1`
//! or misses a keep-alive. Two timers at most per instance, each armed for its
//! due time only: the ready deadline (until ready) and the watchdog deadline
//! (moved on by each `WATCHDOG=1`), so a quiet daemon costs no wake-up.

use std::time::Duration;

use super::notify::{Keepalive, Notice};
use super::{daemon_event, Action, Daemon, Health, Level, State, Supervisor, Timer};
use crate::log::record::FieldValue;
use crate::plan::rules::{ReadyMode, RestartPolicy};

/// One instance's readiness bookkeeping (reset at each spawn).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A notify daemon said it is ready and has not taken it back since.
    pub announced: bool,
    /// `RELOADING=1` came after the last `READY=1`.
    pub reloading: bool,
    /// `STOPPING=1` came.
    pub stopping: bool,
    /// The last keep-alive came too late (cleared by the next one).
    pub watchdog_missed: bool,
    /// How long after its spawn this instance first became ready.
    pub ready_after: Option<Duration>,
    /// The daemon's own `STATUS=` text (kept after it exits: its last words).
    pub status_text: Option<String>,
    /// When the ready timeout runs out (moved by `EXTEND_TIMEOUT_USEC`).
    pub ready_deadline: Option<Duration>,
    /// The keep-alive period (from `watchdog`, or the daemon's `WATCHDOG_USEC=`).
    pub watchdog_period: Option<Duration>,
    /// The ready timeout ran out: its exit counts as a failure whatever its status.
    pub failed_start: bool,
}

impl Daemon {
    /// Ready now, as its `ready` mode defines it (never when not running).
    pub fn is_ready(&self) -> bool {
        if self.state != State::Running {
            return false;
        }
        match self.rules.ready {
            ReadyMode::Started => true,
            ReadyMode::Health => self
                .health
                .as_ref()
                .is_some_and(|h| h.health == Health::Healthy),
            ReadyMode::Systemd | ReadyMode::Fd(_) => {
                let r = &self.readiness;
                r.announced && !r.watchdog_missed
            }
        }
    }

    /// One word for `status` and the API: `ready`, `waiting` (not yet),
    /// `reloading`, `stopping` or `watchdog_missed`; `None` when not running.
    pub fn ready_state(&self) -> Option<&'static str> {
        if self.state != State::Running {
            return None;
        }
        let r = &self.readiness;
        Some(if r.stopping {
            "stopping"
        } else if r.watchdog_missed {
            "watchdog_missed"
        } else if r.reloading {
            "reloading"
        } else if self.is_ready() {
            "ready"
        } else {
            "waiting"
        })
    }
}

fn usec(n: u64) -> Duration {
    Duration::from_micros(n)
}

impl Supervisor {
    /// A new instance runs: fresh readiness, its ready deadline and its first
    /// keep-alive deadline armed.
    pub(super) fn readiness_on_spawn(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        let instance = d.instance;
        d.readiness = Readiness {
            watchdog_period: d.rules.watchdog,
            ..Readiness::default()
        };
        if d.rules.ready == ReadyMode::Started {
            d.readiness.ready_after = Some(Duration::ZERO);
            return;
        }
        if let Some(timeout) = d.rules.ready_timeout {
            d.readiness.ready_deadline = Some(now + timeout);
            out.push(Action::SetTimer {
                timer: Timer::ReadyDeadline {
                    daemon: i,
                    instance,
                },
                at: now + timeout,
            });
        }
        if let Some(period) = d.rules.watchdog {
            out.push(Action::SetTimer {
                timer: Timer::WatchdogDue {
                    daemon: i,
                    instance,
                },
                at: now + period,
            });
        }
    }

    /// The instance's main process is gone: its readiness timers go too.
    pub(super) fn readiness_on_exit(&mut self, i: usize, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        let instance = d.instance;
        if d.readiness.ready_deadline.take().is_some() {
            out.push(Action::CancelTimer(Timer::ReadyDeadline {
                daemon: i,
                instance,
            }));
        }
        if d.readiness.watchdog_period.take().is_some() {
            out.push(Action::CancelTimer(Timer::WatchdogDue {
                daemon: i,
                instance,
            }));
        }
    }

    /// The health check passed for the first time (`ready: "health"`).
    pub(super) fn readiness_on_healthy(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        if self.daemons[i].rules.ready == ReadyMode::Health {
            self.became_ready(i, now, out);
        } else {
            self.start_due(now, out);
        }
    }

    /// What a notify daemon said (a datagram, or its notification-fd newline).
    pub(super) fn on_notice(
        &mut self,
        i: usize,
        instance: u32,
        notice: Notice,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let d = &mut self.daemons[i];
        if d.instance != instance || d.pid.is_none() {
            return; // From an instance that is gone.
        }
        if let Some(text) = notice.status {
            d.readiness.status_text = Some(text);
        }
        if let Some(n) = notice.extend_timeout_usec {
            self.extend_timeout(i, usec(n), now, out);
        }
        let d = &mut self.daemons[i];
        if notice.stopping {
            d.readiness.stopping = true;
            d.readiness.announced = false;
        }
        if notice.reloading {
            d.readiness.reloading = true;
            d.readiness.announced = false;
        }
        if let Some(n) = notice.watchdog_usec {
            let period = (n > 0).then(|| usec(n));
            self.rearm_watchdog(i, period, now, out);
        }
        match notice.watchdog {
            Some(Keepalive::Ping) => {
                let d = &mut self.daemons[i];
                d.readiness.watchdog_missed = false;
                let period = d.readiness.watchdog_period;
                self.rearm_watchdog(i, period, now, out);
            }
            Some(Keepalive::Trigger) => {
                self.watchdog_missed(i, "the daemon asked for it (WATCHDOG=trigger)", now, out);
            }
            None => {}
        }
        let d = &mut self.daemons[i];
        if notice.ready && !notice.reloading && !d.readiness.stopping {
            d.readiness.reloading = false;
            d.readiness.announced = true;
            if d.state == State::Running {
                self.became_ready(i, now, out);
            }
        }
    }

    /// Records the first readiness of an instance (with a `daemon_ready`
    /// event for an announced one), disarms the ready deadline, and starts
    /// dependents.
    fn became_ready(&mut self, i: usize, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        if d.readiness.ready_after.is_none() {
            let after = now.saturating_sub(d.started_at.unwrap_or(now));
            d.readiness.ready_after = Some(after);
            if d.readiness.ready_deadline.take().is_some() {
                out.push(Action::CancelTimer(Timer::ReadyDeadline {
                    daemon: i,
                    instance: d.instance,
                }));
            }
            // `started` and `health` have their event already (`started`,
            // `health_changed`): only an announcement gets its own.
            let announced = matches!(d.rules.ready, ReadyMode::Systemd | ReadyMode::Fd(_));
            if !announced {
                self.start_due(now, out);
                return;
            }
            let line = format!(
                "{} is ready after {:.3} s",
                d.rules.name,
                after.as_secs_f64()
            );
            let fields = vec![("ready_after_ms", FieldValue::Int(after.as_millis() as i64))];
            out.push(daemon_event(
                Level::Info,
                "daemon_ready",
                &d.rules.name,
                fields,
                line,
            ));
        }
        self.start_due(now, out);
    }

    /// `EXTEND_TIMEOUT_USEC`: the ready timeout (or, while stopping, the stop
    /// timeout) ends no sooner than `extra` from now, as with systemd.
    fn extend_timeout(&mut self, i: usize, extra: Duration, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        let instance = d.instance;
        let (deadline, timer) = match d.state {
            State::Running => (
                &mut d.readiness.ready_deadline,
                Timer::ReadyDeadline {
                    daemon: i,
                    instance,
                },
            ),
            State::Stopping => (
                &mut d.stop_deadline,
                Timer::StopDeadline {
                    daemon: i,
                    instance,
                },
            ),
            _ => return,
        };
        let Some(at) = deadline else { return };
        if now + extra <= *at {
            return;
        }
        *at = now + extra;
        out.push(Action::CancelTimer(timer));
        out.push(Action::SetTimer {
            timer,
            at: now + extra,
        });
    }

    /// The next keep-alive is due `period` from now (`None`: no watchdog).
    fn rearm_watchdog(
        &mut self,
        i: usize,
        period: Option<Duration>,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let d = &mut self.daemons[i];
        let timer = Timer::WatchdogDue {
            daemon: i,
            instance: d.instance,
        };
        if d.readiness.watchdog_period.is_some() {
            out.push(Action::CancelTimer(timer));
        }
        d.readiness.watchdog_period = period;
        if let Some(period) = period {
            out.push(Action::SetTimer {
                timer,
                at: now + period,
            });
        }
    }

    /// The ready timeout of an instance ran out.
    pub(super) fn on_ready_deadline(
        &mut self,
        i: usize,
        instance: u32,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let d = &mut self.daemons[i];
        if d.instance != instance || d.state != State::Running {
            return;
        }
        d.readiness.ready_deadline = None;
        if d.readiness.ready_after.is_some() {
            return;
        }
        let timeout = d.rules.ready_timeout.unwrap_or_default();
        let line = format!(
            "{} did not become ready within {} s",
            d.rules.name,
            timeout.as_secs_f64()
        );
        let fields = vec![("timeout_ms", FieldValue::Int(timeout.as_millis() as i64))];
        out.push(daemon_event(
            Level::Error,
            "ready_timeout",
            &d.rules.name,
            fields,
            line.clone(),
        ));
        if d.rules.vital {
            let reason = vec![("reason", FieldValue::Str("ready_timeout".into()))];
            let line = format!("vital daemon {line}; shutting down");
            self.vital_failure(i, 1, reason, line, now, out);
        } else {
            // A failed start: stopped, then its restart policy decides.
            d.readiness.failed_start = true;
            self.stop(i, now, out);
        }
    }

    /// The keep-alive deadline of an instance ran out.
    pub(super) fn on_watchdog_due(
        &mut self,
        i: usize,
        instance: u32,
        now: Duration,
        out: &mut Vec<Action>,
    ) {
        let d = &self.daemons[i];
        if d.instance != instance || d.state != State::Running {
            return;
        }
        let period = d.readiness.watchdog_period.unwrap_or_default();
        let why = format!("no keep-alive for {} s", period.as_secs_f64());
        self.watchdog_missed(i, &why, now, out);
    }

    /// A missed keep-alive counts as a failed health check: vital → fail
    /// fast (status 1); a restart policy → restarted; else marked not ready
    /// until the next keep-alive.
    fn watchdog_missed(&mut self, i: usize, why: &str, now: Duration, out: &mut Vec<Action>) {
        let d = &mut self.daemons[i];
        if d.state != State::Running {
            return;
        }
        d.readiness.watchdog_missed = true;
        // The timer fired (or is moot after a trigger): nothing stays armed.
        if d.readiness.watchdog_period.is_some() {
            out.push(Action::CancelTimer(Timer::WatchdogDue {
                daemon: i,
                instance: d.instance,
            }));
        }
        let line = format!("{} missed its watchdog: {why}", d.rules.name);
        let fields = vec![("detail", FieldValue::Str(why.to_string()))];
        out.push(daemon_event(
            Level::Warn,
            "watchdog_missed",
            &d.rules.name,
            fields,
            line,
        ));
        if d.rules.vital {
            let line = format!(
                "vital daemon {} missed its watchdog ({why}); shutting down",
                d.rules.name
            );
            let reason = vec![("reason", FieldValue::Str("watchdog".into()))];
            self.vital_failure(i, 1, reason, line, now, out);
        } else if d.rules.restart != RestartPolicy::Never {
            d.restart_requested = true;
            self.stop(i, now, out);
        }
    }
}

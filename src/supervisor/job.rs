//! The pure part of scheduled jobs: when the next run is due, and what a due
//! time does while a run is still going (the `overlap` policy).
//!
//! Due times are kept twice: on the monotonic clock, which the one timer of
//! a job sleeps on (so a wall-clock jump never makes it fire in a burst or
//! never), and on the wall clock, which cron expressions are about and which
//! the API shows. When the timer fires, the wall clock is checked again: if
//! it was set back, the run is not due yet and the timer is re-armed for the
//! rest (see [`fired`]).

use std::time::Duration;

use jiff::Timestamp;

use crate::exit::ExitStatus;
use crate::plan::rules::{Cadence, JobSpec, Overlap};

/// One armed due time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Monotonic time the timer is armed for.
    pub at: Duration,
    /// The wall-clock time it stands for.
    pub wall: Timestamp,
}

/// How one run ended, for `status` and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    pub started: Timestamp,
    pub duration: Duration,
    pub status: ExitStatus,
}

/// A job's bookkeeping beside its daemon state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobState {
    /// The next due time, while the job is scheduled.
    pub due: Option<Due>,
    /// Numbers the armed timers, so one re-armed or cancelled is known stale.
    pub seq: u32,
    /// A run waits for the current one to end (`queue`, `replace`, `restart`).
    pub queued: bool,
    /// The current run is being stopped to make way for a due one (`replace`):
    /// how it ends is no failure.
    pub replacing: bool,
    /// Runs started, runs that failed, due runs skipped: the `/metrics` counters.
    pub runs: u64,
    pub failures: u64,
    pub skipped: u64,
    /// The run in progress: when it started, monotonic and wall.
    pub run_started: Option<(Duration, Timestamp)>,
    pub last_run: Option<LastRun>,
}

/// The next due time after `prev` (or from now when the job is newly scheduled).
///
/// `@every` keeps a fixed rate on the monotonic clock: `prev + interval`,
/// skipping whole intervals that are already past (a run is never made up
/// for twice). A cron expression is evaluated on the wall clock, strictly
/// after both now and the previous due time, so a run that fired a little
/// early by the wall clock does not find its own slot again.
pub fn next_due(spec: &JobSpec, prev: Option<Due>, now: Duration, wall: Timestamp) -> Option<Due> {
    match &spec.cadence {
        Cadence::Every(interval) => {
            let at = match prev {
                None => now + *interval,
                Some(prev) => {
                    let mut at = prev.at + *interval;
                    if at <= now {
                        let behind = (now - prev.at).as_nanos();
                        let steps = behind / interval.as_nanos().max(1) + 1;
                        at = prev.at + interval.saturating_mul(u32::try_from(steps).ok()?);
                    }
                    at
                }
            };
            Some(Due {
                at,
                wall: add(wall, at.saturating_sub(now)),
            })
        }
        Cadence::Cron(_) => {
            let from = match prev {
                Some(prev) if prev.wall > wall => prev.wall,
                _ => wall,
            };
            let next = spec.next_cron_after(from)?;
            let ahead = Duration::try_from(next.duration_since(wall)).unwrap_or_default();
            Some(Due {
                at: now + ahead,
                wall: next,
            })
        }
    }
}

/// What a fired timer means: the run is due, or (the wall clock was set
/// back since it was armed) the rest of the wait.
pub fn fired(spec: &JobSpec, due: Due, wall: Timestamp) -> Result<(), Duration> {
    if matches!(spec.cadence, Cadence::Every(_)) || wall >= due.wall {
        return Ok(());
    }
    Err(Duration::try_from(due.wall.duration_since(wall)).unwrap_or_default())
}

/// What to do with a due run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDue {
    /// Nothing runs: start it.
    Run,
    /// Not started; logged and counted.
    Skip,
    /// Started when the current run ends.
    Queue,
    /// The current run is stopped; this one starts when it is gone.
    Replace,
}

/// The `overlap` policy. At most one run waits: a due time that finds one
/// already waiting is skipped, so a job slower than its schedule never
/// builds an unbounded backlog.
pub fn on_due(overlap: Overlap, busy: bool, queued: bool) -> OnDue {
    match (busy, overlap, queued) {
        (false, _, false) => OnDue::Run,
        (_, Overlap::Skip, _) | (_, _, true) => OnDue::Skip,
        (true, Overlap::Queue, false) => OnDue::Queue,
        (true, Overlap::Replace, false) => OnDue::Replace,
    }
}

/// RFC 3339 in UTC with milliseconds, as every other time pidzero shows
/// (with the formatter the rest of pidzero uses, not a second one).
pub fn stamp(t: Timestamp) -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::from(t)).to_string()
}

fn add(wall: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| wall.checked_add(d).ok())
        .unwrap_or(wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(schedule: &str, zone: &str) -> JobSpec {
        JobSpec::for_test(schedule, zone)
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().expect("timestamp")
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn every_is_a_fixed_rate_on_the_monotonic_clock() {
        let s = spec("@every 10s", "UTC");
        let wall = ts("2026-12-03T12:00:00Z");
        let first = next_due(&s, None, secs(5), wall).expect("due");
        assert_eq!(first.at, secs(15), "one interval after it is scheduled");
        assert_eq!(first.wall, ts("2026-12-03T12:00:10Z"));
        // Fired a little late: the rate does not drift.
        let second =
            next_due(&s, Some(first), secs(15) + Duration::from_millis(40), wall).expect("due");
        assert_eq!(second.at, secs(25));
        // Woke up 35 s late (a stopped container): the missed slots are not made up.
        let third = next_due(&s, Some(second), secs(60), wall).expect("due");
        assert_eq!(third.at, secs(65));
    }

    #[test]
    fn cron_due_times_come_from_the_wall_clock() {
        let s = spec("*/15 * * * *", "UTC");
        let due = next_due(&s, None, secs(100), ts("2026-12-03T12:07:30Z")).expect("due");
        assert_eq!(due.wall, ts("2026-12-03T12:15:00Z"));
        assert_eq!(due.at, secs(100 + 450));
        // Fired when the wall clock (slower than the monotonic one) still
        // read 12:14:59.9: the next is 12:30, not 12:15 again.
        let early = ts("2026-12-03T12:14:59.900Z");
        let next = next_due(&s, Some(due), secs(550), early).expect("due");
        assert_eq!(next.wall, ts("2026-12-03T12:30:00Z"));
    }

    #[test]
    fn dst_change_in_a_zone() {
        // Europe/Paris springs forward on 2026-03-29 at 02:00 local (01:00 UTC).
        let s = spec("0 * * * *", "Europe/Paris");
        let before = ts("2026-03-29T00:30:00Z"); // 01:30 CET
        let due = next_due(&s, None, secs(0), before).expect("due");
        assert_eq!(
            due.wall,
            ts("2026-03-29T01:00:00Z"),
            "03:00 CEST, the hour after 01:00 CET"
        );
        assert_eq!(
            due.at,
            secs(30 * 60),
            "half an hour of real time, not 1.5 h"
        );
    }

    #[test]
    fn a_wall_clock_set_back_delays_the_run() {
        let s = spec("0 3 * * *", "UTC");
        let due = Due {
            at: secs(3600),
            wall: ts("2026-12-03T03:00:00Z"),
        };
        assert_eq!(fired(&s, due, ts("2026-12-03T03:00:00Z")), Ok(()));
        assert_eq!(
            fired(&s, due, ts("2026-12-03T03:00:01Z")),
            Ok(()),
            "set forward: late, once"
        );
        assert_eq!(
            fired(&s, due, ts("2026-12-03T02:00:00Z")),
            Err(secs(3600)),
            "set back an hour: wait that hour again"
        );
        let every = spec("@every 1h", "UTC");
        assert_eq!(
            fired(&every, due, ts("2026-12-03T02:00:00Z")),
            Ok(()),
            "intervals ignore it"
        );
    }

    #[test]
    fn each_overlap_policy() {
        use OnDue::*;
        for overlap in [Overlap::Skip, Overlap::Queue, Overlap::Replace] {
            assert_eq!(
                on_due(overlap, false, false),
                Run,
                "{overlap:?}: nothing runs"
            );
        }
        assert_eq!(on_due(Overlap::Skip, true, false), Skip);
        assert_eq!(on_due(Overlap::Queue, true, false), Queue);
        assert_eq!(
            on_due(Overlap::Queue, true, true),
            Skip,
            "one waits, not more"
        );
        assert_eq!(on_due(Overlap::Replace, true, false), Replace);
        assert_eq!(
            on_due(Overlap::Replace, true, true),
            Skip,
            "already being replaced"
        );
        // A run waits while the last one's leftovers are being stopped.
        assert_eq!(on_due(Overlap::Queue, false, true), Skip);
    }
}

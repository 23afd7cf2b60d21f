//! Jobs with a fake clock: due timers, each overlap policy, vital jobs, and
//! `start`/`stop`/shutdown of a job.

use super::*;
use crate::config::schedule::{find_zone, parse_schedule};
use crate::plan::rules::{JobSpec, Overlap};

fn job(name: &str, schedule: &str, overlap: Overlap) -> DaemonRules {
    DaemonRules {
        job: Some(JobSpec {
            schedule: schedule.into(),
            cadence: parse_schedule(schedule).expect("schedule"),
            timezone: "UTC".into(),
            zone: find_zone("UTC").expect("zone"),
            overlap,
        }),
        ..rules(name)
    }
}

fn every_10s(name: &str) -> DaemonRules {
    job(name, "@every 10s", Overlap::Skip)
}

/// The job timer armed last for daemon `i`, if it is still armed.
fn armed(h: &Harness, i: usize) -> Option<(Timer, Duration)> {
    let mut last = None;
    for a in &h.actions {
        match a {
            Action::SetTimer {
                timer: timer @ Timer::JobDue { daemon, .. },
                at,
            } if *daemon == i => last = Some((*timer, *at)),
            Action::CancelTimer(timer) if Some(*timer) == last.map(|(t, _)| t) => last = None,
            _ => {}
        }
    }
    last
}

/// Moves the clock to the job's due time and fires its timer.
fn fire(h: &mut Harness, i: usize) -> Vec<Action> {
    let (timer, at) = armed(h, i).expect("a job timer is armed");
    h.now = h.now.max(at);
    h.send(Event::Timer(timer))
}

fn spawned(actions: &[Action]) -> Vec<usize> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn(i) => Some(*i),
            _ => None,
        })
        .collect()
}

fn job_state(h: &Harness, i: usize) -> &crate::supervisor::job::JobState {
    h.sup.daemons()[i].job.as_ref().expect("a job")
}

#[test]
fn a_job_waits_for_its_due_time_runs_then_waits_again() {
    let mut h = Harness::new(vec![every_10s("tick")]);
    let out = h.send(Event::Boot);
    assert!(spawned(&out).is_empty(), "not run at boot");
    assert_eq!(h.state(0), State::Scheduled);
    assert_eq!(events(&out), vec!["job_scheduled"]);
    assert_eq!(armed(&h, 0).map(|(_, at)| at), Some(secs(10)));
    assert_eq!(exit_status(&out), None, "a scheduled job keeps pidzero up");

    let out = fire(&mut h, 0);
    assert_eq!(spawned(&out), vec![0]);
    assert_eq!(h.state(0), State::Running);
    assert_eq!(
        armed(&h, 0).map(|(_, at)| at),
        Some(secs(20)),
        "next one armed at once"
    );

    h.now = secs(12);
    let out = h.exit(0, ExitStatus::Code(0));
    assert_eq!(h.state(0), State::Scheduled);
    assert!(events(&out).contains(&"job_finished"));
    assert!(!events(&out).contains(&"vital_exit"));
    let exited_hint = field(&out, "exited", "hint");
    assert_eq!(
        exited_hint, None,
        "a job that exits quickly is not daemonizing"
    );
    assert_eq!(exit_status(&out), None);
    let j = job_state(&h, 0);
    assert_eq!((j.runs, j.failures, j.skipped), (1, 0, 0));
    let last = j.last_run.expect("last run");
    assert_eq!(last.duration, secs(2));
    assert_eq!(last.status, ExitStatus::Code(0));
    assert_eq!(
        field(&out, "job_finished", "duration_ms"),
        Some(&FieldValue::Int(2000))
    );
}

#[test]
fn overlap_skip_counts_the_skipped_run() {
    let mut h = Harness::new(vec![every_10s("slow")]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = fire(&mut h, 0);
    assert!(spawned(&out).is_empty());
    assert_eq!(events(&out), vec!["job_skipped"]);
    assert_eq!(job_state(&h, 0).skipped, 1);
    assert_eq!(
        armed(&h, 0).map(|(_, at)| at),
        Some(secs(30)),
        "the schedule goes on"
    );
    let out = h.exit(0, ExitStatus::Code(0));
    assert!(spawned(&out).is_empty(), "a skipped run is not made up for");
}

#[test]
fn overlap_queue_keeps_one_run_waiting() {
    let mut h = Harness::new(vec![job("slow", "@every 10s", Overlap::Queue)]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = fire(&mut h, 0);
    assert_eq!(events(&out), vec!["job_queued"]);
    let out = fire(&mut h, 0);
    assert_eq!(events(&out), vec!["job_skipped"], "one waits, not two");
    let pid = h.pid(0);
    let out = h.send(Event::Exited {
        pid,
        status: ExitStatus::Code(0),
    });
    assert!(
        spawned(&out).is_empty(),
        "waits for the old group to be gone"
    );
    let out = h.send(Event::GroupGone { daemon: 0 });
    assert_eq!(spawned(&out), vec![0]);
    let j = job_state(&h, 0);
    assert_eq!((j.runs, j.skipped, j.queued), (2, 1, false));
}

#[test]
fn overlap_replace_stops_the_running_one_then_starts_the_new_one() {
    let mut r = job("sync", "@every 10s", Overlap::Replace);
    r.stop_signal = libc::SIGINT;
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = fire(&mut h, 0);
    assert_eq!(events(&out), vec!["job_replaced"]);
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGINT)]);
    assert!(spawned(&out).is_empty(), "not before the old run is gone");
    let out = h.exit(0, ExitStatus::Signal(libc::SIGINT));
    assert_eq!(spawned(&out), vec![0]);
    let j = job_state(&h, 0);
    assert_eq!((j.runs, j.failures), (2, 0), "a replaced run is no failure");
}

#[test]
fn a_vital_job_that_fails_fails_the_container_with_its_status() {
    let mut r = every_10s("migrate");
    r.vital = true;
    let mut h = Harness::new(vec![r, rules("web")]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = h.exit(0, ExitStatus::Code(0));
    assert!(
        !events(&out).contains(&"vital_exit"),
        "exit 0 is a good run"
    );
    assert_eq!(h.state(0), State::Scheduled);
    fire(&mut h, 0);
    let out = h.exit(0, ExitStatus::Code(3));
    assert!(events(&out).contains(&"vital_exit"));
    assert_eq!(
        field(&out, "vital_exit", "status"),
        Some(&FieldValue::Int(3))
    );
    assert!(
        signals_sent(&out).contains(&(1, libc::SIGTERM)),
        "everything else stops"
    );
    assert_eq!(h.state(0), State::Failed);
    let out = h.exit(1, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(3));
}

#[test]
fn a_vital_job_killed_by_a_signal_exits_128_plus_n() {
    let mut r = every_10s("migrate");
    r.vital = true;
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGKILL));
    assert_eq!(exit_status(&out), Some(128 + libc::SIGKILL));
}

#[test]
fn a_failing_job_that_is_not_vital_is_counted_and_scheduled_again() {
    let mut h = Harness::new(vec![every_10s("report")]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = h.exit(0, ExitStatus::Code(2));
    assert_eq!(exit_status(&out), None);
    assert_eq!(h.state(0), State::Scheduled);
    assert_eq!(job_state(&h, 0).failures, 1);
    assert!(armed(&h, 0).is_some());
}

#[test]
fn start_runs_a_job_now_and_stop_pauses_it_until_start() {
    let mut h = Harness::new(vec![every_10s("backup"), rules("web")]);
    h.send(Event::Boot);
    h.now = secs(3);
    let (outcome, out) = h.sup.control("backup", Control::Start, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Starting));
    assert_eq!(spawned(&out), vec![0]);
    h.actions.extend(out);
    let pid = h.pid_for(0);
    h.send(Event::Spawned { daemon: 0, pid });
    let (outcome, _) = h.sup.control("backup", Control::Start, h.now);
    assert!(
        matches!(outcome, ControlOutcome::Conflict(_)),
        "already running"
    );
    assert_eq!(
        armed(&h, 0).map(|(_, at)| at),
        Some(secs(10)),
        "the schedule is kept"
    );

    // Stop of a running job: its run stops, and so does the schedule.
    let (outcome, out) = h.sup.control("backup", Control::Stop, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Stopping));
    h.actions.extend(out);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(h.state(0), State::Exited);
    assert_eq!(armed(&h, 0), None, "no timer left for a stopped job");
    assert_eq!(job_state(&h, 0).failures, 0, "stopped, not failed");
    assert_eq!(exit_status(&out), None, "web still runs");

    // Start resumes it: a run now, and the next due time.
    h.now = secs(20);
    let (outcome, out) = h.sup.control("backup", Control::Start, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Starting));
    h.actions.extend(out);
    assert_eq!(armed(&h, 0).map(|(_, at)| at), Some(secs(30)));

    // Stop between runs: just the schedule.
    let pid = h.pid_for(0);
    h.send(Event::Spawned { daemon: 0, pid });
    h.exit(0, ExitStatus::Code(0));
    let (outcome, out) = h.sup.control("backup", Control::Stop, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Exited));
    h.actions.extend(out);
    assert_eq!(armed(&h, 0), None);
}

#[test]
fn shutdown_stops_a_running_job_and_forgets_a_waiting_one() {
    let mut h = Harness::new(vec![
        every_10s("running"),
        job("idle", "@hourly", Overlap::Skip),
    ]);
    h.send(Event::Boot);
    fire(&mut h, 0);
    let out = h.send(Event::Signal(libc::SIGTERM));
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    assert_eq!(h.state(1), State::Exited);
    assert_eq!(armed(&h, 0), None);
    assert_eq!(armed(&h, 1), None);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(0));
    assert_eq!(
        job_state(&h, 0).failures,
        0,
        "stopped by the shutdown, not failed"
    );
}

#[test]
fn a_cron_job_rechecks_the_wall_clock_when_its_timer_fires() {
    let mut h = Harness::new(vec![job("nightly", "0 3 * * *", Overlap::Skip)]);
    let at = |t: &str| t.parse::<Timestamp>().expect("timestamp");
    h.sup.set_wall_clock(at("2026-12-03T02:00:00Z"));
    h.send(Event::Boot);
    assert_eq!(armed(&h, 0).map(|(_, t)| t), Some(secs(3600)));
    // An hour later by the monotonic clock, the wall clock was set back 10 minutes.
    h.sup.set_wall_clock(at("2026-12-03T02:50:00Z"));
    let out = fire(&mut h, 0);
    assert!(spawned(&out).is_empty(), "not 03:00 yet");
    assert_eq!(armed(&h, 0).map(|(_, t)| t), Some(secs(3600 + 600)));
    h.sup.set_wall_clock(at("2026-12-03T03:00:00Z"));
    let out = fire(&mut h, 0);
    assert_eq!(spawned(&out), vec![0]);
    let next = h.sup.daemons()[0].job.as_ref().and_then(|j| j.due);
    assert_eq!(next.map(|d| d.wall), Some(at("2026-12-04T03:00:00Z")));
    assert_eq!(next.map(|d| d.at), Some(secs(3600 + 600 + 86_400)));
}

#[test]
fn a_job_waits_for_its_dependencies_before_its_schedule_begins() {
    let mut j = every_10s("report");
    j.depends_on = vec![0];
    let mut h = Harness::new(vec![rules("db"), j]);
    h.send(Event::Boot);
    assert_eq!(h.state(1), State::Scheduled, "db runs: the schedule begins");
    assert!(armed(&h, 1).is_some());
}

//! Reloads: the running set takes a new plan (see `supervisor::reload`),
//! and the races of a reload with a vital exit, a shutdown and another reload.

use super::*;
use crate::plan::diff::{Change, Diff};

/// Reloads and answers the spawns it asks for, as the runtime does.
fn reload(
    h: &mut Harness,
    rules: Vec<DaemonRules>,
    daemons: Vec<Change>,
    removed: Vec<usize>,
) -> Result<(Reloaded, Vec<Action>), String> {
    let start_order = (0..rules.len()).collect();
    reload_ordered(h, rules, start_order, daemons, removed)
}

fn reload_ordered(
    h: &mut Harness,
    rules: Vec<DaemonRules>,
    start_order: Vec<usize>,
    daemons: Vec<Change>,
    removed: Vec<usize>,
) -> Result<(Reloaded, Vec<Action>), String> {
    let set = ReloadSet {
        rules,
        start_order,
        diff: Diff { daemons, removed },
    };
    let (reloaded, mut out) = h.sup.reload(set, h.now)?;
    let spawns: Vec<usize> = out
        .iter()
        .filter_map(|a| match a {
            Action::Spawn(i) => Some(*i),
            _ => None,
        })
        .collect();
    for i in spawns {
        let pid = h.pid_for(i);
        out.extend(h.send(Event::Spawned { daemon: i, pid }));
    }
    Ok((reloaded, out))
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
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

fn shown(h: &Harness) -> Vec<&str> {
    h.sup
        .daemons()
        .iter()
        .filter(|d| !d.retired || d.is_live())
        .map(|d| d.rules.name.as_str())
        .collect()
}

#[test]
fn added_start_removed_stop_changed_restart_kept_untouched() {
    let gone = DaemonRules {
        stop_signal: libc::SIGUSR1,
        ..vital("gone")
    };
    let mut h = Harness::new(vec![rules("keep"), gone, rules("edit")]);
    h.send(Event::Boot);
    let (keep_pid, edit_pid) = (h.pid(0), h.pid(2));
    h.now = secs(10);
    let (reloaded, out) = reload(
        &mut h,
        vec![rules("keep"), rules("edit"), rules("new")],
        vec![Change::Kept(0), Change::Changed(2), Change::Added],
        vec![1],
    )
    .unwrap();
    assert_eq!(reloaded.indices, [0, 2, 3]);
    let s = &reloaded.summary;
    assert_eq!(s.started, names(&["new"]));
    assert_eq!(s.stopped, names(&["gone"]));
    assert_eq!(s.restarted, names(&["edit"]));
    assert_eq!(s.kept, names(&["keep"]));
    assert!(s.updated.is_empty());
    // The removed one gets its own stop signal, the changed one its.
    assert_eq!(signals_sent(&out), [(1, libc::SIGUSR1), (2, libc::SIGTERM)]);
    assert_eq!(spawned(&out), [3]);
    assert_eq!(h.state(3), State::Running);
    assert!(events(&out).contains(&"reload"));
    assert_eq!(
        field(&out, "reload", "restarted"),
        Some(&FieldValue::Str("edit".into()))
    );
    // The removed vital daemon ends: no failure, and it leaves the list.
    let out = h.exit(1, ExitStatus::Signal(libc::SIGUSR1));
    assert!(!events(&out).contains(&"vital_exit"), "{out:?}");
    assert_eq!(exit_status(&out), None);
    assert_eq!(shown(&h), ["keep", "edit", "new"]);
    // The changed one comes back at once, a new instance.
    let out = h.exit(2, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(spawned(&out), [2]);
    assert_ne!(h.pid(2), edit_pid);
    // The kept one was never touched.
    assert_eq!(h.pid(0), keep_pid);
    assert_eq!(h.sup.daemons()[0].restarts, 0);
    assert_eq!(h.state(0), State::Running);
}

#[test]
fn in_place_updates_touch_no_process_and_keep_the_counters() {
    let mut h = Harness::new(vec![rules("web")]);
    h.send(Event::Boot);
    let pid = h.pid(0);
    let updated = DaemonRules {
        restart: RestartPolicy::Always,
        vital: true,
        ..rules("web")
    };
    let (reloaded, out) = reload(&mut h, vec![updated], vec![Change::Updated(0)], vec![]).unwrap();
    assert_eq!(reloaded.summary.updated, names(&["web"]));
    assert!(signals_sent(&out).is_empty());
    assert_eq!(h.pid(0), pid);
    assert!(h.sup.daemons()[0].rules.vital);
    // The new policy applies to the next exit: vital now, so fail fast.
    h.now = secs(5);
    let out = h.exit(0, ExitStatus::Code(4));
    assert!(events(&out).contains(&"vital_exit"));
}

#[test]
fn added_daemons_start_in_dependency_order() {
    let mut h = Harness::new(vec![rules("web")]);
    h.send(Event::Boot);
    let web_pid = h.pid(0);
    // New plan: web (0) now depends on db (2), which depends on cache (1).
    let web = DaemonRules {
        depends_on: vec![2],
        ..rules("web")
    };
    let db = DaemonRules {
        depends_on: vec![1],
        ..rules("db")
    };
    let (reloaded, out) = reload_ordered(
        &mut h,
        vec![web, rules("cache"), db],
        vec![1, 2, 0],
        vec![Change::Updated(0), Change::Added, Change::Added],
        vec![],
    )
    .unwrap();
    assert_eq!(reloaded.summary.started, names(&["cache", "db"]));
    // cache is index 1 and db index 2 in the supervisor: cache first.
    assert_eq!(spawned(&out), [1, 2]);
    // The edge is updated in place: web keeps running.
    assert_eq!(h.pid(0), web_pid);
    assert_eq!(h.sup.daemons()[0].rules.depends_on, [2]);
}

#[test]
fn a_reload_during_shutdown_is_refused_and_changes_nothing() {
    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    h.send(Event::Boot);
    h.send(Event::Signal(libc::SIGTERM));
    let before: Vec<(State, Option<i32>)> =
        h.sup.daemons().iter().map(|d| (d.state, d.pid)).collect();
    let refused = reload(
        &mut h,
        vec![rules("a"), rules("c")],
        vec![Change::Changed(0), Change::Added],
        vec![1],
    );
    assert_eq!(refused.unwrap_err(), "pidzero is shutting down");
    let after: Vec<(State, Option<i32>)> =
        h.sup.daemons().iter().map(|d| (d.state, d.pid)).collect();
    assert_eq!(before, after);
    assert_eq!(h.sup.daemons().len(), 2);
}

#[test]
fn a_reload_on_top_of_one_still_stopping_takes_the_newest_config() {
    let mut h = Harness::new(vec![rules("x"), rules("y")]);
    h.send(Event::Boot);
    let old_x = h.pid(0);
    // First reload: x removed, y changed; both are still stopping.
    reload(&mut h, vec![rules("y")], vec![Change::Changed(1)], vec![0]).unwrap();
    assert_eq!(h.state(0), State::Stopping);
    assert_eq!(h.state(1), State::Stopping);
    // Second reload: x back, y changed again.
    let newest_y = DaemonRules {
        stop_timeout: secs(3),
        health: None,
        ..rules("y")
    };
    let (second, out) = reload(
        &mut h,
        vec![rules("x"), newest_y.clone()],
        vec![Change::Added, Change::Changed(1)],
        vec![],
    )
    .unwrap();
    assert_eq!(second.summary.started, names(&["x"]));
    assert_eq!(second.indices, [2, 1]);
    // The new x waits for the old one's processes to be gone.
    assert!(spawned(&out).is_empty(), "{out:?}");
    assert_eq!(h.state(2), State::Pending);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(spawned(&out), [2]);
    assert_ne!(h.pid(2), old_x);
    // y restarts once, with the newest rules.
    let out = h.exit(1, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(spawned(&out), [1]);
    assert_eq!(h.sup.daemons()[1].rules, newest_y);
    assert_eq!(h.sup.daemons()[1].restarts, 1);
    assert_eq!(shown(&h), ["y", "x"]);
}

#[test]
fn a_vital_exit_during_a_reloads_restarts_fails_fast() {
    let mut h = Harness::new(vec![vital("api"), vital("db")]);
    h.send(Event::Boot);
    h.now = secs(10);
    // api changed: it is being restarted; its own exit is no failure.
    reload(
        &mut h,
        vec![vital("api"), vital("db")],
        vec![Change::Changed(0), Change::Kept(1)],
        vec![],
    )
    .unwrap();
    let out = h.send(Event::Exited {
        pid: h.pid(0),
        status: ExitStatus::Signal(libc::SIGTERM),
    });
    assert!(!events(&out).contains(&"vital_exit"), "{out:?}");
    assert_eq!(
        h.state(0),
        State::Backoff,
        "restarts once its group is gone"
    );
    // Before that, db (vital, kept) dies: fail fast wins, api never restarts.
    let out = h.send(Event::Exited {
        pid: h.pid(1),
        status: ExitStatus::Code(7),
    });
    assert!(events(&out).contains(&"vital_exit"));
    let out = h.send(Event::GroupGone { daemon: 0 });
    assert!(spawned(&out).is_empty());
    let out = h.send(Event::GroupGone { daemon: 1 });
    assert_eq!(exit_status(&out), Some(7));
}

#[test]
fn a_changed_daemon_that_had_ended_starts_again() {
    let mut h = Harness::new(vec![rules("once"), rules("stay")]);
    h.send(Event::Boot);
    h.now = secs(5);
    h.exit(0, ExitStatus::Code(2));
    assert_eq!(h.state(0), State::Failed);
    let (_, out) = reload(
        &mut h,
        vec![rules("once"), rules("stay")],
        vec![Change::Changed(0), Change::Kept(1)],
        vec![],
    )
    .unwrap();
    assert_eq!(spawned(&out), [0]);
    assert_eq!(h.state(0), State::Running);
}

#[test]
fn removing_every_running_daemon_ends_with_status_zero() {
    // A removed daemon killed by its stop signal is no failure of pidzero's.
    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    h.send(Event::Boot);
    h.now = secs(5);
    h.exit(1, ExitStatus::Code(0));
    reload(&mut h, vec![rules("b")], vec![Change::Kept(1)], vec![0]).unwrap();
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(0));
}

fn job(name: &str, schedule: &str) -> DaemonRules {
    use crate::config::schedule::{find_zone, parse_schedule};
    use crate::plan::rules::{JobSpec, Overlap};
    DaemonRules {
        job: Some(JobSpec {
            schedule: schedule.into(),
            cadence: parse_schedule(schedule).expect("schedule"),
            timezone: "UTC".into(),
            zone: find_zone("UTC").expect("zone"),
            overlap: Overlap::Skip,
        }),
        ..rules(name)
    }
}

/// The job timers armed by `actions`, with their due times.
fn job_timers(actions: &[Action]) -> Vec<Duration> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SetTimer {
                timer: Timer::JobDue { .. },
                at,
            } => Some(*at),
            _ => None,
        })
        .collect()
}

#[test]
fn a_changed_jobs_run_finishes_and_its_schedule_is_planned_again() {
    let mut h = Harness::new(vec![job("tick", "@every 10s")]);
    let out = h.send(Event::Boot);
    assert_eq!(job_timers(&out), [secs(10)]);
    h.now = secs(10);
    h.send(Event::Timer(Timer::JobDue { daemon: 0, seq: 1 }));
    assert_eq!(h.state(0), State::Running);
    h.now = secs(12);
    let (reloaded, out) = reload(
        &mut h,
        vec![job("tick", "@every 60s")],
        vec![Change::Changed(0)],
        vec![],
    )
    .unwrap();
    assert_eq!(reloaded.summary.restarted, names(&["tick"]));
    // The run in progress is not stopped; the next one is 60 s away.
    assert!(signals_sent(&out).is_empty(), "{out:?}");
    assert_eq!(job_timers(&out), [secs(72)]);
    assert_eq!(h.state(0), State::Running);
    h.exit(0, ExitStatus::Code(0));
    assert_eq!(h.state(0), State::Scheduled);
}

#[test]
fn a_daemon_that_becomes_a_job_is_replaced() {
    let mut h = Harness::new(vec![rules("tick")]);
    h.send(Event::Boot);
    let (reloaded, out) = reload(
        &mut h,
        vec![job("tick", "@every 10s")],
        vec![Change::Changed(0)],
        vec![],
    )
    .unwrap();
    assert_eq!(reloaded.summary.restarted, names(&["tick"]));
    assert!(reloaded.summary.started.is_empty());
    assert_eq!(reloaded.indices, [1]);
    // The old daemon is stopped; the job waits for it, then is scheduled.
    assert_eq!(signals_sent(&out), [(0, libc::SIGTERM)]);
    assert_eq!(h.state(1), State::Pending);
    h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(h.state(1), State::Scheduled);
    assert_eq!(shown(&h), ["tick"]);
}

#[test]
fn rules_a_reload_brings_in_get_the_notes_a_start_gives() {
    let mut h = Harness::new(vec![rules("a")]);
    h.send(Event::Boot);
    let quick = |name: &str| DaemonRules {
        restart: RestartPolicy::Always,
        restart_delay: Duration::ZERO,
        ..rules(name)
    };
    let (_, out) = reload(
        &mut h,
        vec![rules("a"), quick("b")],
        vec![Change::Kept(0), Change::Added],
        vec![],
    )
    .unwrap();
    assert_eq!(
        field(&out, "config_warning", "daemon"),
        Some(&FieldValue::Str("b".into()))
    );
    // Kept rules were noted when they came in: not again.
    let (_, out) = reload(
        &mut h,
        vec![rules("a"), quick("b")],
        vec![Change::Kept(0), Change::Kept(1)],
        vec![],
    )
    .unwrap();
    assert!(!events(&out).contains(&"config_warning"), "{out:?}");
}

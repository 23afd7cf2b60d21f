//! Readiness with a fake clock: each `ready` mode, `depends_on` waiting for
//! readiness, `ready_timeout`, RELOADING/STOPPING, EXTEND_TIMEOUT_USEC and the watchdog.

use super::*;
use crate::plan::rules::ReadyMode;

fn notify(name: &str) -> DaemonRules {
    DaemonRules {
        ready: ReadyMode::Systemd,
        ..rules(name)
    }
}

fn depends(mut r: DaemonRules, on: usize) -> DaemonRules {
    r.depends_on = vec![on];
    r
}

fn say(h: &mut Harness, daemon: usize, datagram: &str) -> Vec<Action> {
    let instance = h.sup.daemons()[daemon].instance;
    h.send(Event::Notify {
        daemon,
        instance,
        notice: Notice::parse(datagram.as_bytes()),
    })
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

fn timer_set(actions: &[Action], want: Timer) -> Option<Duration> {
    actions.iter().find_map(|a| match a {
        Action::SetTimer { timer, at } if *timer == want => Some(*at),
        _ => None,
    })
}

fn ready_deadline(daemon: usize, instance: u32) -> Timer {
    Timer::ReadyDeadline { daemon, instance }
}

fn watchdog(daemon: usize, instance: u32) -> Timer {
    Timer::WatchdogDue { daemon, instance }
}

#[test]
fn started_is_ready_on_spawn_without_an_event() {
    let mut h = Harness::new(vec![rules("a"), depends(rules("b"), 0)]);
    let out = h.send(Event::Boot);
    assert_eq!(spawned(&out), vec![0, 1]);
    assert!(h.sup.daemons()[0].is_ready());
    assert_eq!(
        h.sup.daemons()[0].readiness.ready_after,
        Some(Duration::ZERO)
    );
    assert!(!events(&out).contains(&"daemon_ready"));
}

#[test]
fn explicit_started_with_a_health_check_does_not_wait_for_health() {
    let db = DaemonRules {
        ready: ReadyMode::Started,
        ..with_health(rules("db"), 1, 0)
    };
    let mut h = Harness::new(vec![db, depends(rules("app"), 0)]);
    let out = h.send(Event::Boot);
    assert_eq!(spawned(&out), vec![0, 1]);
}

#[test]
fn health_readiness_waits_for_the_first_pass() {
    let db = DaemonRules {
        ready: ReadyMode::Health,
        ..with_health(rules("db"), 1, 0)
    };
    let mut h = Harness::new(vec![db, depends(rules("app"), 0)]);
    let out = h.send(Event::Boot);
    assert_eq!(spawned(&out), vec![0]);
    assert!(!h.sup.daemons()[0].is_ready());
    h.now = ms(1500);
    let out = probe(&mut h, 0, true);
    assert_eq!(spawned(&out), vec![1]);
    assert_eq!(
        h.sup.daemons()[0].readiness.ready_after,
        Some(ms(1500)),
        "time to ready is kept"
    );
    assert!(
        !events(&out).contains(&"daemon_ready"),
        "health_changed says it already"
    );
}

#[test]
fn notify_dependents_wait_for_ready_1() {
    let mut h = Harness::new(vec![notify("db"), depends(rules("app"), 0)]);
    let out = h.send(Event::Boot);
    assert_eq!(spawned(&out), vec![0]);
    assert_eq!(h.sup.daemons()[0].ready_state(), Some("waiting"));
    h.now = ms(700);
    let out = say(&mut h, 0, "STATUS=loading tables");
    assert!(spawned(&out).is_empty(), "STATUS alone is not readiness");
    assert_eq!(
        h.sup.daemons()[0].readiness.status_text.as_deref(),
        Some("loading tables")
    );
    h.now = ms(900);
    let out = say(&mut h, 0, "READY=1\nSTATUS=serving");
    assert_eq!(spawned(&out), vec![1]);
    assert_eq!(
        field(&out, "daemon_ready", "ready_after_ms"),
        Some(&FieldValue::Int(900))
    );
    assert_eq!(h.sup.daemons()[0].ready_state(), Some("ready"));
    // A second READY=1 is no new event.
    let out = say(&mut h, 0, "READY=1");
    assert!(events(&out).is_empty());
}

#[test]
fn notify_from_a_previous_instance_is_ignored() {
    let r = DaemonRules {
        restart: RestartPolicy::Always,
        ..notify("db")
    };
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    h.now = secs(5);
    h.exit(0, ExitStatus::Code(1));
    h.now = secs(7);
    h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 1,
    }));
    assert_eq!(h.sup.daemons()[0].instance, 2);
    h.send(Event::Notify {
        daemon: 0,
        instance: 1,
        notice: Notice::ready(),
    });
    assert!(!h.sup.daemons()[0].is_ready());
    h.send(Event::Notify {
        daemon: 0,
        instance: 2,
        notice: Notice::ready(),
    });
    assert!(h.sup.daemons()[0].is_ready());
}

#[test]
fn reloading_is_not_ready_until_the_next_ready_and_stopping_shows() {
    let mut h = Harness::new(vec![notify("db")]);
    h.send(Event::Boot);
    say(&mut h, 0, "READY=1");
    say(&mut h, 0, "RELOADING=1\nSTATUS=reloading config");
    assert!(!h.sup.daemons()[0].is_ready());
    assert_eq!(h.sup.daemons()[0].ready_state(), Some("reloading"));
    let out = say(&mut h, 0, "READY=1");
    assert!(h.sup.daemons()[0].is_ready());
    assert!(!events(&out).contains(&"daemon_ready"), "once per instance");
    say(&mut h, 0, "STOPPING=1");
    assert!(!h.sup.daemons()[0].is_ready());
    assert_eq!(h.sup.daemons()[0].ready_state(), Some("stopping"));
    say(&mut h, 0, "READY=1");
    assert!(!h.sup.daemons()[0].is_ready(), "stopping is for good");
}

#[test]
fn ready_timeout_fails_a_start_and_the_restart_policy_applies() {
    let r = DaemonRules {
        ready_timeout: Some(secs(5)),
        restart: RestartPolicy::OnFailure,
        ..notify("db")
    };
    let mut h = Harness::new(vec![r]);
    let out = h.send(Event::Boot);
    assert_eq!(timer_set(&out, ready_deadline(0, 1)), Some(secs(5)));
    h.now = secs(5);
    let out = h.send(Event::Timer(ready_deadline(0, 1)));
    assert_eq!(events(&out), vec!["ready_timeout"]);
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    // It stops cleanly when asked, yet its start failed: restarted.
    let out = h.exit(0, ExitStatus::Code(0));
    assert!(events(&out).contains(&"restarting"), "{:?}", events(&out));
    assert_eq!(h.state(0), State::Backoff);
}

#[test]
fn ready_timeout_without_restart_leaves_it_failed() {
    let r = DaemonRules {
        ready_timeout: Some(secs(5)),
        ..notify("db")
    };
    let mut h = Harness::new(vec![r, rules("other")]);
    h.send(Event::Boot);
    h.now = secs(5);
    h.send(Event::Timer(ready_deadline(0, 1)));
    h.exit(0, ExitStatus::Code(0));
    assert_eq!(h.state(0), State::Failed);
}

#[test]
fn ready_timeout_of_a_vital_daemon_fails_fast() {
    let r = DaemonRules {
        ready_timeout: Some(secs(5)),
        ..notify("db")
    };
    let r = DaemonRules { vital: true, ..r };
    let mut h = Harness::new(vec![r, rules("side")]);
    h.send(Event::Boot);
    h.now = secs(5);
    let out = h.send(Event::Timer(ready_deadline(0, 1)));
    assert_eq!(events(&out)[..2], ["ready_timeout", "vital_exit"]);
    assert_eq!(
        field(&out, "vital_exit", "reason"),
        Some(&FieldValue::Str("ready_timeout".into()))
    );
    h.exit(1, ExitStatus::Signal(libc::SIGTERM));
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(1));
}

#[test]
fn ready_in_time_disarms_the_ready_timeout() {
    let r = DaemonRules {
        ready_timeout: Some(secs(5)),
        vital: true,
        ..notify("db")
    };
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    h.now = secs(1);
    let out = say(&mut h, 0, "READY=1");
    assert!(out.contains(&Action::CancelTimer(ready_deadline(0, 1))));
    // A late timer (already in flight) changes nothing.
    h.now = secs(5);
    let out = h.send(Event::Timer(ready_deadline(0, 1)));
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn extend_timeout_usec_pushes_the_ready_deadline_out() {
    let r = DaemonRules {
        ready_timeout: Some(secs(5)),
        ..notify("db")
    };
    let mut h = Harness::new(vec![r, rules("other")]);
    h.send(Event::Boot);
    h.now = secs(4);
    let out = say(&mut h, 0, "EXTEND_TIMEOUT_USEC=10000000");
    assert_eq!(timer_set(&out, ready_deadline(0, 1)), Some(secs(14)));
    assert!(out.contains(&Action::CancelTimer(ready_deadline(0, 1))));
    // Shorter than what is left: no change.
    let out = say(&mut h, 0, "EXTEND_TIMEOUT_USEC=1000000");
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn extend_timeout_usec_while_stopping_pushes_the_stop_deadline_out() {
    let mut h = Harness::new(vec![notify("db"), rules("other")]);
    h.send(Event::Boot);
    h.sup.control("db", Control::Stop, h.now);
    h.now = secs(9);
    let stop = Timer::StopDeadline {
        daemon: 0,
        instance: 1,
    };
    let out = say(&mut h, 0, "STOPPING=1\nEXTEND_TIMEOUT_USEC=20000000");
    assert_eq!(timer_set(&out, stop), Some(secs(29)));
}

fn with_watchdog(r: DaemonRules, period: u64) -> DaemonRules {
    DaemonRules {
        watchdog: Some(secs(period)),
        ..r
    }
}

#[test]
fn each_keepalive_moves_the_watchdog_deadline() {
    let mut h = Harness::new(vec![with_watchdog(notify("db"), 2)]);
    let out = h.send(Event::Boot);
    assert_eq!(timer_set(&out, watchdog(0, 1)), Some(secs(2)));
    h.now = ms(1500);
    let out = say(&mut h, 0, "READY=1\nWATCHDOG=1");
    assert!(out.contains(&Action::CancelTimer(watchdog(0, 1))));
    assert_eq!(timer_set(&out, watchdog(0, 1)), Some(ms(3500)));
    // WATCHDOG_USEC= from the daemon changes the period.
    h.now = secs(2);
    let out = say(&mut h, 0, "WATCHDOG_USEC=5000000");
    assert_eq!(timer_set(&out, watchdog(0, 1)), Some(secs(7)));
    h.now = secs(3);
    let out = say(&mut h, 0, "WATCHDOG=1");
    assert_eq!(timer_set(&out, watchdog(0, 1)), Some(secs(8)));
}

#[test]
fn a_missed_keepalive_restarts_a_daemon_with_a_restart_policy() {
    let r = DaemonRules {
        restart: RestartPolicy::OnFailure,
        ..with_watchdog(notify("db"), 2)
    };
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    say(&mut h, 0, "READY=1\nWATCHDOG=1");
    h.now = secs(2);
    let out = h.send(Event::Timer(watchdog(0, 1)));
    assert_eq!(events(&out), vec!["watchdog_missed"]);
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert!(events(&out).contains(&"restarting"));
}

#[test]
fn a_missed_keepalive_of_a_vital_daemon_fails_fast() {
    let r = DaemonRules {
        vital: true,
        ..with_watchdog(notify("db"), 2)
    };
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    say(&mut h, 0, "READY=1");
    h.now = secs(2);
    let out = h.send(Event::Timer(watchdog(0, 1)));
    assert_eq!(events(&out)[..2], ["watchdog_missed", "vital_exit"]);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(1));
}

#[test]
fn watchdog_trigger_counts_as_a_miss_and_without_restart_it_is_not_ready() {
    let mut h = Harness::new(vec![with_watchdog(notify("db"), 2), rules("other")]);
    h.send(Event::Boot);
    say(&mut h, 0, "READY=1");
    let out = say(&mut h, 0, "WATCHDOG=trigger");
    assert_eq!(events(&out), vec!["watchdog_missed"]);
    assert!(
        signals_sent(&out).is_empty(),
        "restart never: it keeps running"
    );
    assert_eq!(h.sup.daemons()[0].ready_state(), Some("watchdog_missed"));
    say(&mut h, 0, "WATCHDOG=1");
    assert!(
        h.sup.daemons()[0].is_ready(),
        "a keep-alive makes it ready again"
    );
}

#[test]
fn readiness_timers_go_when_the_daemon_exits() {
    let r = DaemonRules {
        ready_timeout: Some(secs(5)),
        ..with_watchdog(notify("db"), 2)
    };
    let mut h = Harness::new(vec![r, rules("other")]);
    h.send(Event::Boot);
    let out = h.exit(0, ExitStatus::Code(3));
    assert!(out.contains(&Action::CancelTimer(ready_deadline(0, 1))));
    assert!(out.contains(&Action::CancelTimer(watchdog(0, 1))));
}

#[test]
fn a_stopping_daemon_misses_no_keepalive() {
    let mut h = Harness::new(vec![with_watchdog(notify("db"), 2), rules("other")]);
    h.send(Event::Boot);
    h.sup.control("db", Control::Stop, h.now);
    h.now = secs(2);
    let out = h.send(Event::Timer(watchdog(0, 1)));
    assert!(events(&out).is_empty());
}

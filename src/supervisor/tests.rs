//! Every supervisor rule with a fake clock and no processes.

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

fn rules(name: &str) -> DaemonRules {
    DaemonRules::named(name)
}

fn vital(name: &str) -> DaemonRules {
    DaemonRules {
        vital: true,
        ..rules(name)
    }
}

/// A supervisor plus a fake runtime: pids are 100 + daemon index + 10 × instance.
struct Harness {
    sup: Supervisor,
    now: Duration,
    actions: Vec<Action>,
}

impl Harness {
    fn new(rules: Vec<DaemonRules>) -> Self {
        let order = (0..rules.len()).collect();
        Self::with_order(rules, order)
    }

    fn with_order(rules: Vec<DaemonRules>, order: Vec<usize>) -> Self {
        Harness {
            sup: Supervisor::new(rules, order),
            now: Duration::ZERO,
            actions: vec![],
        }
    }

    /// Feeds an event and answers every Spawn with Spawned, as the runtime does.
    fn send(&mut self, event: Event) -> Vec<Action> {
        let mut queue = std::collections::VecDeque::from([event]);
        let mut all = vec![];
        while let Some(ev) = queue.pop_front() {
            let actions = self.sup.handle(ev, self.now);
            for a in &actions {
                if let Action::Spawn(i) = a {
                    let pid = self.pid_for(*i);
                    queue.push_back(Event::Spawned { daemon: *i, pid });
                }
            }
            all.extend(actions);
        }
        self.actions.extend(all.clone());
        all
    }

    fn pid_for(&self, i: usize) -> i32 {
        100 + i as i32 + 10 * self.sup.daemons()[i].instance as i32
    }

    fn pid(&self, i: usize) -> i32 {
        self.sup.daemons()[i].pid.expect("daemon is running")
    }

    fn exit(&mut self, i: usize, status: ExitStatus) -> Vec<Action> {
        let pid = self.pid(i);
        let mut out = self.send(Event::Exited { pid, status });
        out.extend(self.send(Event::GroupGone { daemon: i }));
        out
    }

    fn state(&self, i: usize) -> State {
        self.sup.daemons()[i].state
    }
}

fn exit_status(actions: &[Action]) -> Option<i32> {
    actions.iter().find_map(|a| match a {
        Action::Exit(s) => Some(*s),
        _ => None,
    })
}

fn events(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(e) => Some(e.event),
            _ => None,
        })
        .collect()
}

fn signals_sent(actions: &[Action]) -> Vec<(usize, i32)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SignalGroup { daemon, signal, .. }
            | Action::StopLeftovers { daemon, signal, .. } => Some((*daemon, *signal)),
            _ => None,
        })
        .collect()
}

fn field<'a>(actions: &'a [Action], event: &str, key: &str) -> Option<&'a FieldValue> {
    actions.iter().find_map(|a| match a {
        Action::Log(e) if e.event == event => {
            e.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
        }
        _ => None,
    })
}

#[test]
fn boot_starts_every_daemon_in_order() {
    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    let out = h.send(Event::Boot);
    let spawns: Vec<usize> = out
        .iter()
        .filter_map(|a| match a {
            Action::Spawn(i) => Some(*i),
            _ => None,
        })
        .collect();
    assert_eq!(spawns, vec![0, 1]);
    assert_eq!(h.state(0), State::Running);
    assert_eq!(h.state(1), State::Running);
    assert_eq!(
        events(&out),
        vec!["starting", "starting", "started", "started"]
    );
}

#[test]
fn vital_preflight_failure_exits_before_anything_starts() {
    let mut bad = vital("web");
    bad.preflight_failure = Some((127, "command not found: nope".into()));
    let mut h = Harness::new(vec![rules("side"), bad]);
    let out = h.send(Event::Boot);
    assert!(!out.iter().any(|a| matches!(a, Action::Spawn(_))));
    assert_eq!(exit_status(&out), Some(127));
    assert_eq!(events(&out), vec!["spawn_failed"]);
}

#[test]
fn non_vital_preflight_failure_counts_as_exit_127_and_goes_on() {
    let mut bad = rules("helper");
    bad.preflight_failure = Some((126, "not executable".into()));
    let mut h = Harness::new(vec![bad, rules("app")]);
    let out = h.send(Event::Boot);
    assert!(events(&out).contains(&"spawn_failed"));
    assert_eq!(h.state(0), State::Failed);
    assert_eq!(h.state(1), State::Running);
    assert_eq!(exit_status(&out), None);
    let out = h.exit(1, ExitStatus::Code(0));
    assert_eq!(exit_status(&out), Some(1), "one daemon failed");
}

#[test]
fn a_vital_daemon_exiting_0_is_told_apart_from_pidzero_exiting_1() {
    let mut h = Harness::new(vec![vital("web")]);
    h.send(Event::Boot);
    h.now = secs(5);
    let out = h.send(Event::Exited {
        pid: h.pid(0),
        status: ExitStatus::Code(0),
    });
    let line = out
        .iter()
        .find_map(|a| match a {
            Action::Log(e) if e.event == "vital_exit" => Some(e.line.clone()),
            _ => None,
        })
        .expect("a vital_exit event");
    assert_eq!(
        line,
        "vital daemon web exited with status 0; a vital daemon must not stop: pidzero exits 1; shutting down"
    );
    assert_eq!(
        field(&out, "vital_exit", "status"),
        Some(&FieldValue::Int(1))
    );
}

#[test]
fn vital_exit_stops_others_in_reverse_order_and_passes_status() {
    let mut h = Harness::new(vec![rules("db"), rules("cache"), vital("web")]);
    h.send(Event::Boot);
    h.now = secs(5);
    let out = h.send(Event::Exited {
        pid: h.pid(2),
        status: ExitStatus::Code(3),
    });
    assert!(events(&out).contains(&"vital_exit"));
    assert_eq!(
        field(&out, "vital_exit", "status"),
        Some(&FieldValue::Int(3))
    );
    let stops: Vec<(usize, i32)> = signals_sent(&out)
        .into_iter()
        .filter(|(d, _)| *d != 2)
        .collect();
    assert_eq!(stops, vec![(1, libc::SIGTERM), (0, libc::SIGTERM)]);
    assert_eq!(exit_status(&out), None, "waits for the others");
    h.send(Event::GroupGone { daemon: 2 });
    h.exit(1, ExitStatus::Signal(libc::SIGTERM));
    let out = h.exit(0, ExitStatus::Code(0));
    assert_eq!(exit_status(&out), Some(3));
}

#[test]
fn killed_vital_daemon_exits_128_plus_signal() {
    let mut h = Harness::new(vec![vital("web"), rules("side")]);
    h.send(Event::Boot);
    h.send(Event::Exited {
        pid: h.pid(0),
        status: ExitStatus::Signal(libc::SIGKILL),
    });
    h.send(Event::GroupGone { daemon: 0 });
    let out = h.exit(1, ExitStatus::Code(0));
    assert_eq!(exit_status(&out), Some(128 + libc::SIGKILL));
}

#[test]
fn all_non_vital_done_exit_zero_or_one() {
    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    h.send(Event::Boot);
    h.now = secs(2);
    assert_eq!(exit_status(&h.exit(0, ExitStatus::Code(0))), None);
    assert_eq!(exit_status(&h.exit(1, ExitStatus::Code(0))), Some(0));

    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    h.send(Event::Boot);
    h.exit(0, ExitStatus::Code(0));
    assert_eq!(exit_status(&h.exit(1, ExitStatus::Code(4))), Some(1));
}

#[test]
fn waits_for_leftover_group_members_before_exiting() {
    let mut h = Harness::new(vec![rules("a")]);
    h.send(Event::Boot);
    h.now = secs(3);
    let out = h.send(Event::Exited {
        pid: h.pid(0),
        status: ExitStatus::Code(0),
    });
    assert!(out.contains(&Action::StopLeftovers {
        daemon: 0,
        pgid: 100 + 10,
        signal: libc::SIGTERM,
    }));
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    assert_eq!(exit_status(&out), None);
    // The leftover ignores SIGTERM: SIGKILL after stop_timeout.
    h.now = secs(13);
    let out = h.send(Event::Timer(Timer::StopDeadline {
        daemon: 0,
        instance: 1,
    }));
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGKILL)]);
    assert_eq!(events(&out), vec!["killed"]);
    let out = h.send(Event::GroupGone { daemon: 0 });
    assert_eq!(exit_status(&out), Some(0));
}

#[test]
fn quick_clean_exit_gets_the_daemonizing_hint() {
    let mut h = Harness::new(vec![rules("nginx"), rules("other")]);
    h.send(Event::Boot);
    h.now = ms(200);
    let out = h.exit(0, ExitStatus::Code(0));
    assert!(
        matches!(field(&out, "exited", "hint"), Some(FieldValue::Str(s)) if s.contains("daemonizing"))
    );
    h.now = secs(3);
    let out = h.exit(1, ExitStatus::Code(0));
    assert_eq!(field(&out, "exited", "hint"), None);
}

#[test]
fn sigterm_stops_everything_with_status_zero() {
    let mut a = rules("a");
    a.stop_signal = libc::SIGINT;
    let mut h = Harness::new(vec![a, vital("b")]);
    h.send(Event::Boot);
    let out = h.send(Event::Signal(libc::SIGTERM));
    assert_eq!(events(&out), vec!["shutdown"]);
    assert_eq!(
        signals_sent(&out),
        vec![(1, libc::SIGTERM), (0, libc::SIGINT)]
    );
    assert_eq!(h.state(0), State::Stopping);
    // The vital daemon's exit during shutdown is not a vital failure.
    let out = h.exit(1, ExitStatus::Signal(libc::SIGTERM));
    assert!(!events(&out).contains(&"vital_exit"));
    let out = h.exit(0, ExitStatus::Code(0));
    assert_eq!(exit_status(&out), Some(0));
}

#[test]
fn stop_timeout_then_sigkill_and_second_signal_forces() {
    let mut slow = rules("slow");
    slow.stop_timeout = secs(2);
    let mut h = Harness::new(vec![slow, rules("other")]);
    h.send(Event::Boot);
    let out = h.send(Event::Signal(libc::SIGTERM));
    assert!(out.contains(&Action::SetTimer {
        timer: Timer::StopDeadline {
            daemon: 0,
            instance: 1
        },
        at: secs(2)
    }));
    h.now = secs(2);
    let out = h.send(Event::Timer(Timer::StopDeadline {
        daemon: 0,
        instance: 1,
    }));
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGKILL)]);
    let out = h.send(Event::Signal(libc::SIGINT));
    assert_eq!(
        signals_sent(&out),
        vec![(0, libc::SIGKILL), (1, libc::SIGKILL)]
    );
    // A third signal changes nothing more.
    assert!(signals_sent(&h.send(Event::Signal(libc::SIGTERM))).is_empty());
}

#[test]
fn stale_stop_deadline_is_ignored() {
    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    h.send(Event::Boot);
    h.send(Event::Signal(libc::SIGTERM));
    h.exit(0, ExitStatus::Code(0));
    let out = h.send(Event::Timer(Timer::StopDeadline {
        daemon: 0,
        instance: 1,
    }));
    assert!(signals_sent(&out).is_empty());
}

#[test]
fn other_signals_are_forwarded_to_every_running_daemon() {
    let mut h = Harness::new(vec![rules("a"), rules("b"), rules("c")]);
    h.send(Event::Boot);
    h.now = secs(2);
    h.exit(2, ExitStatus::Code(0));
    for sig in [libc::SIGHUP, libc::SIGUSR1, libc::SIGSEGV, libc::SIGWINCH] {
        let out = h.send(Event::Signal(sig));
        assert_eq!(signals_sent(&out), vec![(0, sig), (1, sig)]);
        assert!(events(&out).iter().all(|e| *e == "signal_forwarded"));
    }
}

#[test]
fn main_command_gets_stop_signals_and_its_status_passes_through() {
    let main = DaemonRules {
        is_main: true,
        ..vital("main")
    };
    let mut h = Harness::new(vec![rules("side"), main]);
    h.send(Event::Boot);
    let out = h.send(Event::Signal(libc::SIGTERM));
    assert_eq!(
        signals_sent(&out),
        vec![(1, libc::SIGTERM)],
        "forwarded, not a shutdown"
    );
    assert!(!h.sup.is_shutting_down());
    h.now = ms(100);
    let out = h.exit(1, ExitStatus::Code(0));
    assert_eq!(
        field(&out, "exited", "hint"),
        None,
        "no hint for the main command"
    );
    let to_sidecar: Vec<_> = signals_sent(&out)
        .into_iter()
        .filter(|(d, _)| *d == 0)
        .collect();
    assert_eq!(to_sidecar, vec![(0, libc::SIGTERM)], "sidecar stopped");
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(0), "main's 0 passes through");
}

#[test]
fn dependents_start_after_their_dependencies_run() {
    let mut web = rules("web");
    web.depends_on = vec![1];
    let mut h = Harness::with_order(vec![web, rules("db")], vec![1, 0]);
    let out = h.sup.handle(Event::Boot, h.now);
    assert_eq!(
        out.iter().filter(|a| matches!(a, Action::Spawn(_))).count(),
        1
    );
    assert!(out.contains(&Action::Spawn(1)));
    assert_eq!(h.state(0), State::Pending);
    let out = h.sup.handle(Event::Spawned { daemon: 1, pid: 50 }, h.now);
    assert!(out.contains(&Action::Spawn(0)));
}

#[test]
fn dependent_of_a_dead_dependency_never_starts_and_pidzero_exits() {
    let mut web = rules("web");
    web.depends_on = vec![0];
    let mut db = rules("db");
    db.preflight_failure = Some((127, "missing".into()));
    let mut h = Harness::new(vec![db, web]);
    let out = h.send(Event::Boot);
    assert_eq!(h.state(1), State::Pending);
    assert_eq!(exit_status(&out), Some(1));
}

#[test]
fn restart_policies_with_backoff_and_max_restarts() {
    let mut r = rules("worker");
    r.restart = RestartPolicy::OnFailure;
    r.max_restarts = Some(2);
    let mut h = Harness::new(vec![r, rules("keep")]);
    h.send(Event::Boot);
    let first = h.pid(0);
    let out = h.exit(0, ExitStatus::Code(1));
    assert_eq!(h.state(0), State::Backoff);
    assert_eq!(
        field(&out, "restarting", "attempt"),
        Some(&FieldValue::Int(1))
    );
    assert_eq!(
        field(&out, "restarting", "delay_ms"),
        Some(&FieldValue::Int(1000))
    );
    h.now = secs(1);
    h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 1,
    }));
    assert_eq!(h.state(0), State::Running);
    assert_ne!(h.pid(0), first);
    let out = h.exit(0, ExitStatus::Code(1));
    assert_eq!(
        field(&out, "restarting", "delay_ms"),
        Some(&FieldValue::Int(2000))
    );
    h.now = secs(3);
    h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 2,
    }));
    h.exit(0, ExitStatus::Code(1));
    assert_eq!(h.state(0), State::Failed, "max_restarts reached");

    let mut r = rules("oneshot");
    r.restart = RestartPolicy::OnFailure;
    let mut h = Harness::new(vec![r, rules("keep")]);
    h.send(Event::Boot);
    h.now = secs(2);
    h.exit(0, ExitStatus::Code(0));
    assert_eq!(
        h.state(0),
        State::Exited,
        "on-failure does not restart a clean exit"
    );
}

#[test]
fn restart_waits_for_the_old_group_to_be_gone() {
    let mut r = rules("srv");
    r.restart = RestartPolicy::Always;
    r.restart_delay = Duration::ZERO;
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    let out = h.send(Event::Exited {
        pid: h.pid(0),
        status: ExitStatus::Code(0),
    });
    assert!(!out.iter().any(|a| matches!(a, Action::Spawn(_))));
    h.now = backoff::MIN_DELAY;
    h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 1,
    }));
    assert_eq!(
        h.state(0),
        State::Backoff,
        "old group still holds processes"
    );
    h.send(Event::GroupGone { daemon: 0 });
    assert_eq!(h.state(0), State::Running);
}

#[test]
fn shutdown_during_backoff_ends_at_once() {
    let mut r = rules("srv");
    r.restart = RestartPolicy::Always;
    r.restart_delay = secs(20);
    let mut h = Harness::new(vec![r]);
    h.send(Event::Boot);
    h.exit(0, ExitStatus::Code(1));
    assert_eq!(h.state(0), State::Backoff);
    let out = h.send(Event::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(0));
}

#[test]
fn spawn_failure_of_a_running_vital_daemon_is_a_vital_exit() {
    let mut h = Harness::new(vec![rules("a"), vital("b")]);
    let out = h.sup.handle(Event::Boot, h.now);
    assert!(out.contains(&Action::Spawn(1)));
    h.sup.handle(Event::Spawned { daemon: 0, pid: 10 }, h.now);
    let out = h.sup.handle(
        Event::SpawnFailed {
            daemon: 1,
            status: 126,
            error: "permission denied".into(),
        },
        h.now,
    );
    assert_eq!(events(&out), vec!["spawn_failed", "vital_exit", "shutdown"]);
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    h.sup.handle(
        Event::Exited {
            pid: 10,
            status: ExitStatus::Code(0),
        },
        h.now,
    );
    let out = h.sup.handle(Event::GroupGone { daemon: 0 }, h.now);
    assert_eq!(exit_status(&out), Some(126));
}

fn with_health(mut r: DaemonRules, retries: u32, start_period: u64) -> DaemonRules {
    r.health = Some(crate::plan::HealthRules {
        interval: secs(10),
        retries,
        start_period: secs(start_period),
    });
    // What `plan` gives a daemon with a check and no `ready`.
    r.ready = crate::plan::rules::ReadyMode::Health;
    r
}

fn probe(h: &mut Harness, daemon: usize, passed: bool) -> Vec<Action> {
    let instance = h.sup.daemons()[daemon].instance;
    h.send(Event::ProbeResult {
        daemon,
        instance,
        passed,
        detail: "probe".into(),
    })
}

#[test]
fn probes_start_with_the_daemon_and_repeat() {
    let mut h = Harness::new(vec![with_health(rules("db"), 3, 0)]);
    let out = h.send(Event::Boot);
    assert!(out.contains(&Action::StartProbe {
        daemon: 0,
        instance: 1
    }));
    h.now = secs(1);
    let out = probe(&mut h, 0, false);
    assert!(
        out.contains(&Action::SetTimer {
            timer: Timer::ProbeDue {
                daemon: 0,
                instance: 1
            },
            at: secs(2)
        }),
        "every second while starting"
    );
    let out = probe(&mut h, 0, true);
    assert_eq!(events(&out), vec!["health_changed"]);
    assert!(out.contains(&Action::SetTimer {
        timer: Timer::ProbeDue {
            daemon: 0,
            instance: 1
        },
        at: secs(11)
    }));
    let out = h.send(Event::Timer(Timer::ProbeDue {
        daemon: 0,
        instance: 1,
    }));
    assert!(out.contains(&Action::StartProbe {
        daemon: 0,
        instance: 1
    }));
    // A result of an older instance is ignored.
    let out = h.send(Event::ProbeResult {
        daemon: 0,
        instance: 0,
        passed: false,
        detail: "old".into(),
    });
    assert!(out.is_empty());
}

#[test]
fn unhealthy_vital_daemon_fails_fast_with_status_one() {
    let mut h = Harness::new(vec![with_health(vital("web"), 2, 0), rules("side")]);
    h.send(Event::Boot);
    h.now = secs(1);
    probe(&mut h, 0, false);
    let out = probe(&mut h, 0, false);
    assert_eq!(
        events(&out),
        vec!["health_changed", "vital_exit", "shutdown"]
    );
    assert_eq!(
        field(&out, "vital_exit", "reason"),
        Some(&FieldValue::Str("unhealthy".into()))
    );
    h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    let out = h.exit(1, ExitStatus::Code(0));
    assert_eq!(exit_status(&out), Some(1));
}

#[test]
fn unhealthy_daemon_with_restart_policy_is_restarted_else_marked() {
    let mut r = with_health(rules("api"), 1, 0);
    r.restart = RestartPolicy::OnFailure;
    let mut h = Harness::new(vec![r, with_health(rules("plain"), 1, 0)]);
    h.send(Event::Boot);
    h.now = secs(1);
    let out = probe(&mut h, 0, false);
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    assert_eq!(h.state(0), State::Stopping);
    // It exits 0 on SIGTERM: still restarted, because it was unhealthy.
    h.exit(0, ExitStatus::Code(0));
    assert_eq!(h.state(0), State::Backoff);

    let out = probe(&mut h, 1, false);
    assert!(signals_sent(&out).is_empty());
    assert_eq!(h.state(1), State::Running);
    assert_eq!(
        h.sup.daemons()[1].health.as_ref().map(|t| t.health),
        Some(Health::Unhealthy)
    );
}

#[test]
fn start_period_failures_do_not_count() {
    let mut h = Harness::new(vec![with_health(vital("slow"), 1, 30)]);
    h.send(Event::Boot);
    h.now = secs(10);
    let out = probe(&mut h, 0, false);
    assert!(events(&out).is_empty());
    h.now = secs(31);
    let out = probe(&mut h, 0, false);
    assert!(events(&out).contains(&"vital_exit"));
}

#[test]
fn dependents_wait_for_a_healthy_dependency() {
    let mut web = rules("web");
    web.depends_on = vec![0];
    let mut h = Harness::new(vec![with_health(rules("db"), 3, 0), web]);
    h.send(Event::Boot);
    assert_eq!(h.state(0), State::Running);
    assert_eq!(
        h.state(1),
        State::Pending,
        "db is running but not healthy yet"
    );
    h.now = secs(2);
    probe(&mut h, 0, false);
    assert_eq!(h.state(1), State::Pending);
    let out = probe(&mut h, 0, true);
    assert!(out.contains(&Action::Spawn(1)));
    assert_eq!(h.state(1), State::Running);
}

#[test]
fn control_requests() {
    let mut h = Harness::new(vec![rules("a"), vital("v")]);
    h.send(Event::Boot);
    assert_eq!(
        h.sup.control("nope", Control::Stop, h.now).0,
        ControlOutcome::NotFound
    );
    assert!(matches!(
        h.sup.control("v", Control::Stop, h.now).0,
        ControlOutcome::Conflict(_)
    ));
    assert!(matches!(
        h.sup.control("a", Control::Start, h.now).0,
        ControlOutcome::Conflict(_)
    ));
    let (outcome, out) = h.sup.control("a", Control::Signal(libc::SIGHUP), h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Running));
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGHUP)]);

    // stop: no restart afterwards, and pidzero keeps running for the vital one.
    let (outcome, out) = h.sup.control("a", Control::Stop, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Stopping));
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(h.state(0), State::Exited);
    assert_eq!(exit_status(&out), None);

    // start again
    let (outcome, out) = h.sup.control("a", Control::Start, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Starting));
    assert!(out.contains(&Action::Spawn(0)));
    h.send(Event::Spawned {
        daemon: 0,
        pid: 500,
    });

    // restart of a vital daemon: no fail-fast, immediate start once the group is gone
    let (outcome, _) = h.sup.control("v", Control::Restart, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Stopping));
    let out = h.send(Event::Exited {
        pid: h.pid(1),
        status: ExitStatus::Signal(libc::SIGTERM),
    });
    assert!(!events(&out).contains(&"vital_exit"));
    let out = h.send(Event::GroupGone { daemon: 1 });
    assert!(out.contains(&Action::Spawn(1)));
    assert_eq!(h.state(1), State::Running);
    assert_eq!(h.sup.daemons()[1].restarts, 1);
}

#[test]
fn requested_shutdown_exits_zero_or_with_the_main_status() {
    let mut h = Harness::new(vec![rules("a")]);
    h.send(Event::Boot);
    let out = h.sup.request_shutdown(h.now);
    assert_eq!(signals_sent(&out), vec![(0, libc::SIGTERM)]);
    let out = h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(exit_status(&out), Some(0));

    let main = DaemonRules {
        is_main: true,
        ..vital("main")
    };
    let mut h = Harness::new(vec![main]);
    h.send(Event::Boot);
    h.sup.request_shutdown(h.now);
    let out = h.exit(0, ExitStatus::Code(5));
    assert_eq!(exit_status(&out), Some(5));
}

#[test]
fn a_restart_after_a_preflight_failure_tries_the_real_exec() {
    let mut r = rules("late");
    r.restart = RestartPolicy::Always;
    r.preflight_failure = Some((127, "command not found: late".into()));
    let mut h = Harness::new(vec![r, rules("keep")]);
    let out = h.send(Event::Boot);
    assert!(!out.contains(&Action::Spawn(0)));
    assert_eq!(h.state(0), State::Backoff);
    h.now = secs(1);
    let out = h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 0,
    }));
    assert!(out.contains(&Action::Spawn(0)));
    assert_eq!(h.state(0), State::Running);
}

#[test]
fn a_gone_group_cancels_its_stop_deadline() {
    let mut h = Harness::new(vec![rules("a"), rules("b")]);
    h.send(Event::Boot);
    h.now = secs(2);
    let out = h.send(Event::Exited {
        pid: h.pid(0),
        status: ExitStatus::Code(0),
    });
    let armed = Timer::StopDeadline {
        daemon: 0,
        instance: 1,
    };
    assert!(out.contains(&Action::SetTimer {
        timer: armed,
        at: secs(12)
    }));
    let out = h.send(Event::GroupGone { daemon: 0 });
    assert!(out.contains(&Action::CancelTimer(armed)));
}

/// The restart timer a batch of actions arms, if any.
fn restart_due(actions: &[Action]) -> Option<(Timer, Duration)> {
    actions.iter().find_map(|a| match a {
        Action::SetTimer {
            timer: timer @ Timer::RestartDue { .. },
            at,
        } => Some((*timer, *at)),
        _ => None,
    })
}

#[test]
fn a_zero_restart_delay_does_not_busy_loop() {
    let mut crasher = rules("w");
    crasher.restart = RestartPolicy::Always;
    crasher.restart_delay = Duration::ZERO;
    let mut h = Harness::new(vec![crasher]);
    let boot = h.send(Event::Boot);
    assert_eq!(events(&boot)[0], "config_warning", "{boot:?}");
    let mut starts = 1;
    let mut delays = vec![];
    // Bounded, so that a busy loop (no time passing) fails instead of hanging.
    while h.now < secs(2) && starts <= 100 {
        // The daemon exits the moment it starts.
        let out = h.exit(0, ExitStatus::Code(1));
        let (timer, at) = restart_due(&out).expect("a restart is scheduled");
        delays.push((at - h.now).as_millis());
        h.now = at;
        h.send(Event::Timer(timer));
        assert_eq!(h.state(0), State::Running);
        starts += 1;
    }
    assert_eq!(delays[..4], [100, 200, 400, 800], "{delays:?}");
    assert!(starts <= 6, "{starts} starts within 2 s: {delays:?}");
}

#[test]
fn a_restart_delay_at_the_floor_is_not_warned_about() {
    let mut w = rules("w");
    w.restart = RestartPolicy::OnFailure;
    w.restart_delay = ms(100);
    assert_eq!(restart_delay_note(&w), None);
    w.restart_delay = ms(10);
    assert!(restart_delay_note(&w).is_some_and(|n| n.contains("raised to 0.1 s")));
    w.restart = RestartPolicy::Never;
    assert_eq!(
        restart_delay_note(&w),
        None,
        "never restarted: no delay used"
    );
}

#[test]
fn a_daemon_without_a_process_has_no_health_verdict() {
    let mut crasher = with_health(rules("api"), 1, 0);
    crasher.restart = RestartPolicy::Always;
    let mut h = Harness::new(vec![crasher, with_health(rules("plain"), 1, 0)]);
    h.send(Event::Boot);
    probe(&mut h, 0, true);
    probe(&mut h, 1, true);
    let health = |h: &Harness, i: usize| h.sup.daemons()[i].health.as_ref().map(|t| t.health);
    assert_eq!(health(&h, 0), Some(Health::Healthy));
    // Crashed, waiting to restart: no verdict.
    h.exit(0, ExitStatus::Code(1));
    assert_eq!(h.state(0), State::Backoff);
    assert_eq!(health(&h, 0), None);
    // Stopped on request: no verdict either, once its process is gone.
    h.sup.control("plain", Control::Stop, h.now);
    assert_eq!(health(&h, 1), Some(Health::Healthy), "still stopping");
    h.exit(1, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(h.state(1), State::Exited);
    assert_eq!(health(&h, 1), None);
    // Started again: probing starts over.
    h.sup.control("plain", Control::Start, h.now);
    h.send(Event::Spawned {
        daemon: 1,
        pid: 500,
    });
    assert_eq!(health(&h, 1), Some(Health::Starting));
}

#[test]
fn the_restart_count_never_decreases() {
    let mut w = rules("w");
    w.restart = RestartPolicy::OnFailure;
    w.max_restarts = Some(1);
    // `keep` runs throughout, so pidzero does not end when `w` fails.
    let mut h = Harness::new(vec![w, rules("keep")]);
    h.send(Event::Boot);
    let restarts = |h: &Harness| h.sup.daemons()[0].restarts;
    h.exit(0, ExitStatus::Code(1));
    h.now = secs(5);
    h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 1,
    }));
    assert_eq!((h.state(0), restarts(&h)), (State::Running, 1));
    h.exit(0, ExitStatus::Code(1));
    assert_eq!(
        (h.state(0), restarts(&h)),
        (State::Failed, 1),
        "max_restarts"
    );
    // Started by hand: not a restart, and a fresh max_restarts budget.
    let (outcome, actions) = h.sup.control("w", Control::Start, h.now);
    assert_eq!(outcome, ControlOutcome::Accepted(State::Starting));
    assert!(actions.contains(&Action::Spawn(0)));
    h.send(Event::Spawned {
        daemon: 0,
        pid: 900,
    });
    assert_eq!(restarts(&h), 1);
    let out = h.exit(0, ExitStatus::Code(1));
    assert_eq!(
        field(&out, "restarting", "attempt"),
        Some(&FieldValue::Int(1))
    );
    assert_eq!((h.state(0), restarts(&h)), (State::Backoff, 2));
    // Restarted by hand: counts.
    h.now = secs(60);
    h.send(Event::Timer(Timer::RestartDue {
        daemon: 0,
        instance: 3,
    }));
    assert_eq!(h.state(0), State::Running);
    h.sup.control("w", Control::Restart, h.now);
    h.exit(0, ExitStatus::Signal(libc::SIGTERM));
    assert_eq!(restarts(&h), 3);
}

#[test]
fn a_manual_start_waits_for_the_old_group_and_leaves_no_stale_timer() {
    let mut h = Harness::new(vec![rules("w"), rules("keep")]);
    h.send(Event::Boot);
    let pid = h.pid(0);
    h.send(Event::Exited {
        pid,
        status: ExitStatus::Code(0),
    });
    let (_, out) = h.sup.control("w", Control::Start, h.now);
    assert!(!out.contains(&Action::Spawn(0)), "old group still there");
    assert_eq!(h.state(0), State::Pending);
    let out = h.send(Event::GroupGone { daemon: 0 });
    assert!(out.contains(&Action::CancelTimer(Timer::StopDeadline {
        daemon: 0,
        instance: 1
    })));
    assert!(out.contains(&Action::Spawn(0)));
    assert_eq!(h.state(0), State::Running);
}

/// Jobs: daemons with a `schedule`.
mod jobs;
mod ready;
mod reload;

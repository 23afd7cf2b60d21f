//! The supervisor under random event sequences, against a fake runtime that
//! carries out its actions as the real one does (spawns answered at once,
//! timers kept until fired or cancelled, groups gone only once watched).
//!
//! Invariants checked after every step: a vital exit is followed by a shutdown
//! and, once the processes are gone, an exit; no timer is left for a daemon
//! that is gone; restart counters never decrease; at most one process per
//! daemon; nothing is spawned once a shutdown began or ended.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::plan::rules::ReadyMode;
use crate::plan::HealthRules;

/// One daemon's rules, chosen at random; `depends_on` only names earlier daemons.
fn rules_strategy(index: usize) -> impl Strategy<Value = DaemonRules> {
    (
        any::<bool>(),
        prop::sample::select(vec![
            RestartPolicy::Never,
            RestartPolicy::OnFailure,
            RestartPolicy::Always,
        ]),
        prop::option::of(0u32..3),
        prop::option::of((1u32..3, 0u64..3)),
        prop::collection::vec(0..index.max(1), 0..2),
        0u64..3,
        prop::option::of(prop::sample::select(vec![126, 127])),
        (0u8..4, prop::option::of(1u64..4), prop::option::of(1u64..4)),
    )
        .prop_map(
            move |(vital, restart, max_restarts, health, deps, delay, preflight, ready)| {
                let (kind, ready_timeout, watchdog) = ready;
                let ready = match kind {
                    // What `plan` gives a daemon without `ready`.
                    0 => ReadyMode::default_for(health.is_some()),
                    1 => ReadyMode::Started,
                    2 => ReadyMode::Systemd,
                    _ => ReadyMode::Fd(3),
                };
                DaemonRules {
                    name: format!("d{index}"),
                    vital,
                    restart: if vital { RestartPolicy::Never } else { restart },
                    restart_delay: Duration::from_millis(delay * 50),
                    max_restarts,
                    depends_on: if index == 0 { vec![] } else { deps },
                    preflight_failure: preflight
                        .filter(|_| index > 0)
                        .map(|status| (status, "preflight".into())),
                    ready,
                    ready_timeout: ready_timeout
                        .filter(|_| ready != ReadyMode::Started)
                        .map(Duration::from_secs),
                    watchdog: watchdog
                        .filter(|_| ready == ReadyMode::Systemd)
                        .map(Duration::from_secs),
                    health: health.map(|(retries, start)| HealthRules {
                        interval: Duration::from_secs(1),
                        retries,
                        start_period: Duration::from_secs(start),
                    }),
                    stop_timeout: Duration::from_secs(2),
                    ..DaemonRules::named("x")
                }
            },
        )
}

fn supervisor_rules() -> impl Strategy<Value = (Vec<DaemonRules>, bool)> {
    (1usize..5).prop_flat_map(|n| {
        let all: Vec<_> = (0..n).map(rules_strategy).collect();
        (all, any::<bool>())
    })
}

#[derive(Debug, Clone)]
enum Op {
    /// The `k`-th live main process exits with this status.
    Exit(usize, ExitStatus),
    /// The `k`-th watched group is found empty.
    GroupGone(usize),
    /// The earliest timer fires (time moves to it).
    FireTimer,
    /// The `k`-th probe in flight finishes.
    Probe(usize, bool),
    Control(usize, Control),
    Signal(i32),
    RequestShutdown,
    Advance(u64),
    /// The next spawn fails.
    FailNextSpawn,
    /// The `k`-th live main process sends this sd_notify datagram.
    Notify(usize, &'static str),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), prop_oneof![
            (0i32..3).prop_map(ExitStatus::Code),
            prop::sample::select(vec![9, 15]).prop_map(ExitStatus::Signal),
        ]).prop_map(|(k, s)| Op::Exit(k, s)),
        3 => any::<usize>().prop_map(Op::GroupGone),
        4 => Just(Op::FireTimer),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(k, p)| Op::Probe(k, p)),
        2 => (any::<usize>(), prop_oneof![
            Just(Control::Start),
            Just(Control::Stop),
            Just(Control::Restart),
            Just(Control::Signal(libc::SIGHUP)),
        ]).prop_map(|(i, c)| Op::Control(i, c)),
        1 => prop::sample::select(vec![libc::SIGTERM, libc::SIGINT, libc::SIGHUP])
            .prop_map(Op::Signal),
        1 => Just(Op::RequestShutdown),
        2 => (0u64..3000).prop_map(Op::Advance),
        1 => Just(Op::FailNextSpawn),
        3 => (any::<usize>(), prop::sample::select(vec![
            "READY=1",
            "READY=1\nSTATUS=up",
            "WATCHDOG=1",
            "WATCHDOG=trigger",
            "RELOADING=1",
            "STOPPING=1",
            "EXTEND_TIMEOUT_USEC=2000000",
            "WATCHDOG_USEC=500000",
            "WATCHDOG_USEC=0",
        ])).prop_map(|(k, text)| Op::Notify(k, text)),
    ]
}

/// What the real runtime would keep: processes, groups, timers, probes.
#[derive(Default)]
struct FakeRuntime {
    now: Duration,
    next_pid: i32,
    /// Live main processes: pid -> daemon.
    live: BTreeMap<i32, usize>,
    /// Groups the supervisor asked to watch: daemon -> pgid.
    watched: BTreeMap<usize, i32>,
    timers: Vec<(Duration, Timer)>,
    probes: Vec<(usize, u32)>,
    fail_next_spawn: bool,
    exited: Option<i32>,
    vital_exit_seen: bool,
}

impl FakeRuntime {
    /// Feeds one event and carries out the actions, checking each batch.
    fn feed(&mut self, sup: &mut Supervisor, event: Event) -> Result<(), TestCaseError> {
        let shutting_down = sup.is_shutting_down();
        let actions = sup.handle(event, self.now);
        self.apply(sup, actions, shutting_down)
    }

    fn apply(
        &mut self,
        sup: &mut Supervisor,
        actions: Vec<Action>,
        was_shutting_down: bool,
    ) -> Result<(), TestCaseError> {
        let logs: Vec<&str> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Log(e) => Some(e.event),
                _ => None,
            })
            .collect();
        if let Some(at) = logs.iter().position(|e| *e == "vital_exit") {
            self.vital_exit_seen = true;
            prop_assert!(
                logs[at..].contains(&"shutdown"),
                "vital exit without shutdown: {logs:?}"
            );
            prop_assert!(sup.is_shutting_down());
        }
        let mut followups = vec![];
        for action in actions {
            match action {
                Action::Spawn(i) => {
                    prop_assert!(self.exited.is_none(), "spawn after exit");
                    prop_assert!(!was_shutting_down, "spawn during a shutdown");
                    prop_assert!(
                        !self.live.values().any(|&d| d == i),
                        "a second process for daemon {i}"
                    );
                    if std::mem::take(&mut self.fail_next_spawn) {
                        followups.push(Event::SpawnFailed {
                            daemon: i,
                            status: 127,
                            error: "no".into(),
                        });
                    } else {
                        self.next_pid += 1;
                        self.live.insert(self.next_pid, i);
                        followups.push(Event::Spawned {
                            daemon: i,
                            pid: self.next_pid,
                        });
                    }
                }
                Action::StopLeftovers { daemon, pgid, .. } => {
                    self.watched.insert(daemon, pgid);
                }
                Action::SetTimer { timer, at } => {
                    prop_assert!(at >= self.now, "a timer in the past");
                    self.timers.push((at, timer));
                }
                Action::CancelTimer(timer) => self.timers.retain(|(_, t)| *t != timer),
                Action::StartProbe { daemon, instance } => self.probes.push((daemon, instance)),
                Action::Exit(status) => {
                    prop_assert!(self.exited.is_none(), "two exits");
                    self.exited = Some(status);
                }
                Action::SignalGroup { .. } | Action::Log(_) => {}
            }
        }
        for event in followups {
            self.feed(sup, event)?;
        }
        Ok(())
    }

    fn step(&mut self, sup: &mut Supervisor, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Exit(k, status) => {
                if let Some((&pid, _)) = self.live.iter().nth(k % self.live.len().max(1)) {
                    self.live.remove(&pid);
                    self.feed(sup, Event::Exited { pid, status })?;
                }
            }
            Op::GroupGone(k) => {
                if let Some((&daemon, _)) = self.watched.iter().nth(k % self.watched.len().max(1)) {
                    self.watched.remove(&daemon);
                    self.feed(sup, Event::GroupGone { daemon })?;
                }
            }
            Op::FireTimer => self.fire_timer(sup)?,
            Op::Probe(k, passed) => {
                if !self.probes.is_empty() {
                    let (daemon, instance) = self.probes.remove(k % self.probes.len());
                    let detail = String::new();
                    let event = Event::ProbeResult {
                        daemon,
                        instance,
                        passed,
                        detail,
                    };
                    self.feed(sup, event)?;
                }
            }
            Op::Control(i, request) => {
                let shutting_down = sup.is_shutting_down();
                let name = format!("d{}", i % sup.daemons().len());
                let (_, actions) = sup.control(&name, request, self.now);
                self.apply(sup, actions, shutting_down)?;
            }
            Op::Signal(sig) => self.feed(sup, Event::Signal(sig))?,
            Op::RequestShutdown => {
                let shutting_down = sup.is_shutting_down();
                let actions = sup.request_shutdown(self.now);
                self.apply(sup, actions, shutting_down)?;
            }
            Op::Advance(ms) => self.now += Duration::from_millis(ms),
            Op::FailNextSpawn => self.fail_next_spawn = true,
            Op::Notify(k, text) => {
                if let Some((_, &daemon)) = self.live.iter().nth(k % self.live.len().max(1)) {
                    let instance = sup.daemons()[daemon].instance;
                    let notice = super::Notice::parse(text.as_bytes());
                    self.feed(
                        sup,
                        Event::Notify {
                            daemon,
                            instance,
                            notice,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn fire_timer(&mut self, sup: &mut Supervisor) -> Result<(), TestCaseError> {
        let Some(first) = (0..self.timers.len()).min_by_key(|&i| self.timers[i].0) else {
            return Ok(());
        };
        let (at, timer) = self.timers.remove(first);
        self.now = self.now.max(at);
        self.feed(sup, Event::Timer(timer))
    }

    /// No timer waits for a daemon that is gone: a stop deadline needs
    /// something left to kill, a restart a daemon in backoff, a probe a process.
    fn check_timers(&self, sup: &Supervisor) -> Result<(), TestCaseError> {
        if self.exited.is_some() {
            return Ok(());
        }
        for (_, timer) in &self.timers {
            let (daemon, ok) = match *timer {
                Timer::StopDeadline { daemon, .. } => (daemon, sup.daemons()[daemon].is_live()),
                Timer::RestartDue { daemon, .. } => {
                    (daemon, sup.daemons()[daemon].state == State::Backoff)
                }
                Timer::ProbeDue { daemon, .. }
                | Timer::ReadyDeadline { daemon, .. }
                | Timer::WatchdogDue { daemon, .. } => {
                    (daemon, sup.daemons()[daemon].pid.is_some())
                }
                // A job's due timer lives as long as its schedule: not when stopped.
                Timer::JobDue { daemon, .. } => {
                    let d = &sup.daemons()[daemon];
                    (daemon, !matches!(d.state, State::Exited | State::Failed))
                }
            };
            let d = &sup.daemons()[daemon];
            prop_assert!(
                ok,
                "{timer:?} left for {} in state {:?}",
                d.rules.name,
                d.state
            );
        }
        Ok(())
    }

    /// Every process dies and every group empties, until pidzero exits or
    /// nothing is left to happen.
    fn drain(&mut self, sup: &mut Supervisor) -> Result<(), TestCaseError> {
        for _ in 0..200 {
            if self.exited.is_some() {
                break;
            }
            if let Some(&pid) = self.live.keys().next() {
                self.live.remove(&pid);
                let status = ExitStatus::Signal(libc::SIGTERM);
                self.feed(sup, Event::Exited { pid, status })?;
            } else if let Some(&daemon) = self.watched.keys().next() {
                self.watched.remove(&daemon);
                self.feed(sup, Event::GroupGone { daemon })?;
            } else if !self.timers.is_empty() && sup.is_shutting_down() {
                self.fire_timer(sup)?;
            } else {
                break;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invariants_hold_under_random_events(
        (mut rules, main) in supervisor_rules(),
        ops in prop::collection::vec(op(), 0..60),
    ) {
        if main {
            let last = rules.len() - 1;
            rules[last].is_main = true;
            rules[last].vital = true;
            rules[last].restart = RestartPolicy::Never;
        }
        let order = (0..rules.len()).collect();
        let mut sup = Supervisor::new(rules, order);
        let mut rt = FakeRuntime::default();
        rt.feed(&mut sup, Event::Boot)?;
        let mut restarts: Vec<u32> = sup.daemons().iter().map(|d| d.restarts).collect();
        for op in ops {
            rt.step(&mut sup, op)?;
            rt.check_timers(&sup)?;
            for (i, d) in sup.daemons().iter().enumerate() {
                prop_assert!(d.restarts >= restarts[i], "restarts of {} went down", d.rules.name);
                restarts[i] = d.restarts;
            }
            let with_pid: HashSet<i32> = sup.daemons().iter().filter_map(|d| d.pid).collect();
            let live: HashSet<i32> = rt.live.keys().copied().collect();
            prop_assert_eq!(with_pid, live, "the supervisor's pids are the live ones");
        }
        let vital_exit = rt.vital_exit_seen;
        rt.drain(&mut sup)?;
        if vital_exit {
            prop_assert!(rt.exited.is_some(), "a vital exit that never ends pidzero");
            prop_assert!(rt.exited != Some(0), "a vital exit ends with status 0");
        }
        let by_daemon: HashMap<usize, usize> =
            rt.live.values().fold(HashMap::new(), |mut m, &d| {
                *m.entry(d).or_default() += 1;
                m
            });
        prop_assert!(by_daemon.values().all(|&n| n <= 1));
    }
}

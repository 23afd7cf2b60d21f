//! The event loop: OS happenings in, supervisor actions out.
//!
//! One tokio current-thread loop waits on the signalfd and the next timer and
//! nothing else, so an idle pidzero never wakes up. Each wake-up becomes
//! supervisor events; the supervisor's actions become syscalls here. Pipe
//! readers run as tasks on the same loop and hand their lines to the log
//! writer thread; they can be held up by a slow sink, the loop cannot.

pub mod process;
pub mod signals;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::SigSet;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::log::reader;
use crate::log::record::{timestamp_now, EventRecord, FieldValue, Level, Stream};
use crate::log::writer::LogHandle;
use crate::plan::Plan;
use crate::supervisor::{Action, DaemonRules, Event, Supervisor, Timer};
use process::SpawnContext;
use signals::Signals;

/// Builds the supervisor's view of the plan: rules only, no argv or environment.
pub fn rules_of(plan: &Plan) -> Vec<DaemonRules> {
    plan.daemons
        .iter()
        .map(|d| DaemonRules {
            name: d.name.clone(),
            vital: d.vital,
            is_main: d.inherit_stdin,
            stop_signal: d.stop_signal,
            stop_timeout: d.stop_timeout,
            restart: d.restart,
            restart_delay: d.restart_delay,
            max_restarts: d.max_restarts,
            depends_on: d.depends_on.clone(),
            preflight_failure: d.preflight.err().map(|e| {
                let what = match e.exit_code() {
                    127 => "command not found",
                    _ => "command not executable",
                };
                (e.exit_code(), format!("{what}: {}", d.program.display()))
            }),
        })
        .collect()
}

/// Runs the plan until the supervisor says to exit; returns the exit status.
/// Signals must already be blocked (see [`signals::block_all`]).
pub fn run(plan: Plan, log: LogHandle, max_line_bytes: usize, inherited_mask: SigSet) -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            internal_error(&log, &format!("cannot start the event loop: {e}"));
            return 1;
        }
    };
    rt.block_on(async move {
        let mut runtime = Runtime::new(plan, log, max_line_bytes, inherited_mask);
        match runtime.run().await {
            Ok(status) => status,
            Err(e) => {
                internal_error(&runtime.log, &format!("event loop failed: {e}"));
                1
            }
        }
    })
}

fn internal_error(log: &LogHandle, line: &str) {
    log.event(EventRecord {
        timestamp: timestamp_now(),
        level: Level::Error,
        event: "shutdown",
        fields: vec![("reason", FieldValue::Str("internal_error".into()))],
        line: line.to_string(),
    });
}

struct Runtime {
    supervisor: Supervisor,
    plan: Plan,
    log: LogHandle,
    max_line_bytes: usize,
    spawn_context: SpawnContext,
    started: Instant,
    /// Pending timers by deadline; the sequence number keeps equal deadlines apart.
    timers: BTreeMap<(Duration, u64), Timer>,
    timer_seq: u64,
    /// Process groups to report as gone once empty, by daemon.
    watched_groups: HashMap<usize, i32>,
    readers: Vec<JoinHandle<()>>,
    drain: watch::Sender<bool>,
    /// Reaped pids that were no daemon's main process (adopted orphans, group leftovers).
    reaped_others: u64,
    sources: Vec<Arc<str>>,
}

impl Runtime {
    fn new(plan: Plan, log: LogHandle, max_line_bytes: usize, inherited_mask: SigSet) -> Self {
        let supervisor = Supervisor::new(rules_of(&plan), plan.start_order.clone());
        let sources = plan
            .daemons
            .iter()
            .map(|d| Arc::from(d.name.as_str()))
            .collect();
        Runtime {
            supervisor,
            plan,
            log,
            max_line_bytes,
            spawn_context: SpawnContext::detect(inherited_mask),
            started: Instant::now(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            watched_groups: HashMap::new(),
            readers: Vec::new(),
            drain: watch::channel(false).0,
            reaped_others: 0,
            sources,
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    async fn run(&mut self) -> std::io::Result<i32> {
        let mut signals = Signals::new()?;
        let mut events = VecDeque::from([Event::Boot]);
        loop {
            while let Some(event) = events.pop_front() {
                let actions = self.supervisor.handle(event, self.now());
                for action in actions {
                    if let Some(status) = self.apply(action, &mut events) {
                        self.flush_readers().await;
                        return Ok(status);
                    }
                }
            }
            let next_timer = self.timers.keys().next().map(|&(at, _)| at);
            let sleep = next_timer.map(|at| tokio::time::sleep_until((self.started + at).into()));
            tokio::select! {
                received = signals.recv() => {
                    for sig in received? {
                        if sig == libc::SIGCHLD {
                            self.reap(&mut events);
                        } else {
                            events.push_back(Event::Signal(sig));
                        }
                    }
                }
                _ = async { sleep.expect("guarded by is_some").await }, if sleep.is_some() => {
                    self.fire_due_timers(&mut events);
                }
            }
        }
    }

    /// Carries out one action; returns the exit status when it is `Exit`.
    fn apply(&mut self, action: Action, events: &mut VecDeque<Event>) -> Option<i32> {
        match action {
            Action::Spawn(i) => events.push_back(self.spawn(i)),
            Action::SignalGroup { pgid, signal, .. } => process::signal_group(pgid, signal),
            Action::WatchGroup { daemon, pgid } => {
                self.watched_groups.insert(daemon, pgid);
                self.check_groups(events);
            }
            Action::SetTimer { timer, at } => {
                self.timer_seq += 1;
                self.timers.insert((at, self.timer_seq), timer);
            }
            Action::Log(e) => self.log.event(EventRecord {
                timestamp: timestamp_now(),
                level: e.level,
                event: e.event,
                fields: e.fields,
                line: e.line,
            }),
            Action::Exit(status) => return Some(status),
        }
        None
    }

    fn spawn(&mut self, i: usize) -> Event {
        match process::spawn(&self.plan.daemons[i], &self.spawn_context) {
            Ok(spawned) => {
                for (fd, stream) in [
                    (spawned.stdout, Stream::Stdout),
                    (spawned.stderr, Stream::Stderr),
                ] {
                    if let Some(fd) = fd {
                        self.readers.push(tokio::spawn(reader::pump(
                            fd,
                            self.sources[i].clone(),
                            stream,
                            self.max_line_bytes,
                            self.log.clone(),
                            self.drain.subscribe(),
                        )));
                    }
                }
                Event::Spawned {
                    daemon: i,
                    pid: spawned.pid,
                }
            }
            Err(e) => Event::SpawnFailed {
                daemon: i,
                status: process::spawn_error_status(&e),
                error: e.to_string(),
            },
        }
    }

    fn reap(&mut self, events: &mut VecDeque<Event>) {
        for (pid, status) in process::reap_all() {
            if self.supervisor.daemon_by_pid(pid).is_some() {
                events.push_back(Event::Exited { pid, status });
            } else {
                self.reaped_others += 1;
            }
        }
        self.check_groups(events);
    }

    /// Reports watched process groups that hold no process any more.
    fn check_groups(&mut self, events: &mut VecDeque<Event>) {
        let gone: Vec<usize> = self
            .watched_groups
            .iter()
            .filter(|(_, &pgid)| !process::group_alive(pgid))
            .map(|(&daemon, _)| daemon)
            .collect();
        for daemon in gone {
            self.watched_groups.remove(&daemon);
            events.push_back(Event::GroupGone { daemon });
        }
    }

    fn fire_due_timers(&mut self, events: &mut VecDeque<Event>) {
        let now = self.now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            events.push_back(Event::Timer(entry.remove()));
        }
        // A group member may have been reaped by someone else in the meantime.
        self.check_groups(events);
    }

    /// Lets every pipe reader take what its daemon wrote before exiting, then ends them.
    async fn flush_readers(&mut self) {
        let _ = self.drain.send(true);
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
    }
}

//! The event loop: OS happenings in, supervisor actions out.
//!
//! One tokio current-thread loop waits on the signalfd and the next timer and
//! nothing else, so an idle pidzero never wakes up. Each wake-up becomes
//! supervisor events; the supervisor's actions become syscalls here. Pipe
//! readers run as tasks on the same loop and hand their lines to the log
//! writer thread; they can be held up by a slow sink, the loop cannot.
//! pidzero's own records go through the [`outbox`], which keeps a reaped
//! daemon's `exited` record behind its last lines without making the loop
//! wait for them.

mod exec_image;
pub mod group;
pub mod notify;
pub mod outbox;
pub mod process;
pub mod reload;
pub mod signals;
pub mod snapshot;
mod vfork;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{
    self, ApiContext, ApiServer, ControlCommand, ControlReply, ControlRequest, LogSource, Snapshot,
};
use crate::config::{HealthProbe, OutputMode};
use crate::exit;
use crate::health::{self as probes, ProbeResult};
use crate::log::reader::{self, Flusher, PumpControl};
use crate::log::record::{timestamp_now, EventRecord, FieldValue, Level, Stream};
use crate::log::writer::{GiveUp, GIVE_UP_GRACE};
use crate::log::LogHandle;
use crate::plan::{Launch, Plan};
use crate::supervisor::{Action, Control, ControlOutcome, Event, Supervisor, Timer};
use outbox::Outbox;
use process::SpawnContext;
use signals::Signals;

/// Where and how the control API listens.
pub struct ApiSetup {
    /// The control socket; `None` when `api.socket` is null.
    pub socket: Option<PathBuf>,
    /// True when nobody chose the socket path: failing to bind it is then a
    /// warning (pidzero still runs its daemons), not a startup error.
    pub socket_is_default: bool,
    /// Whether a default socket that cannot be bound is worth a warning
    /// (not in the silent main-command mode, unless `-v`).
    pub warn_if_unavailable: bool,
    pub tcp: Option<SocketAddr>,
    pub token: Option<String>,
    pub logs: Arc<dyn LogSource>,
}

/// How the end waits for the log sinks: pending records are given up after
/// a second stop signal, or `shutdown_timeout` after the last daemon is gone.
pub struct LogExit {
    pub give_up: GiveUp,
    pub shutdown_timeout: Duration,
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// One warning per daemon whose `stop_signal` pidzero inherited as ignored:
/// its daemons inherit the ignore too (as with tini), so that signal will not
/// stop them and only the SIGKILL after `stop_timeout` will.
fn ignored_stop_signals(plan: &Plan, ignored: &signals::SignalBits) -> Vec<String> {
    plan.daemons
        .iter()
        .filter(|d| ignored.contains(d.rules.stop_signal))
        .map(|d| {
            format!(
                "daemon {}: its stop_signal {} was ignored when pidzero started and stays \
                 ignored in the daemon, so it will be stopped by SIGKILL after its stop_timeout",
                d.rules.name,
                crate::config::signal::signal_name(d.rules.stop_signal)
            )
        })
        .collect()
}

/// Runs the plan until the supervisor says to exit; returns the exit status.
/// Signals must already be blocked (see [`signals::block_all`]).
pub fn run(
    plan: Plan,
    log: LogHandle,
    inherited: signals::Inherited,
    api: ApiSetup,
    log_exit: LogExit,
    reloading: Option<reload::Reloading>,
) -> i32 {
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
    for warning in ignored_stop_signals(&plan, &inherited.ignored) {
        config_warning(&log, &warning);
    }
    rt.block_on(async move {
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let mut runtime = Runtime::new(plan, log, inherited, reports_tx);
        runtime.log_exit = Some(log_exit);
        runtime.reloading = reloading;
        match runtime.run(reports, api).await {
            Ok(status) => status,
            Err(e) => {
                let log = &runtime.log;
                runtime.outbox.release_now(|record| log.event(record));
                internal_error(log, &format!("event loop failed: {e}"));
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

/// A usage error found at startup (exit 2): on stderr, like configuration errors.
fn usage_error(line: &str) {
    eprintln!("pidzero: {line}");
}

fn config_warning(log: &LogHandle, line: &str) {
    log.event(EventRecord {
        timestamp: timestamp_now(),
        level: Level::Warn,
        event: "config_warning",
        fields: vec![],
        line: line.to_string(),
    });
}

/// Deadlines the loop keeps: the supervisor's timers and its own probe timeouts.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    Supervisor(Timer),
    /// A command probe (by pid) ran past its check's timeout.
    ProbeTimeout(i32),
}

/// A command probe process in flight.
struct ProbeRun {
    daemon: usize,
    instance: u32,
    timed_out: bool,
    /// Its entry in the deadline map, removed when the probe ends in time
    /// (so a finished probe causes no extra wake-up).
    deadline: (Duration, u64),
}

/// The outcome of a network probe task, sent back to the loop.
type ProbeReport = (usize, u32, ProbeResult);

struct Runtime {
    supervisor: Supervisor,
    /// What to start for each daemon (the supervisor holds their rules).
    launches: Vec<Launch>,
    log: LogHandle,
    spawn_context: SpawnContext,
    started: Instant,
    /// Pending timers by deadline; the sequence number keeps equal deadlines apart.
    timers: BTreeMap<(Duration, u64), Deadline>,
    probe_processes: HashMap<i32, ProbeRun>,
    probe_reports: mpsc::UnboundedSender<ProbeReport>,
    timer_seq: u64,
    /// Process groups to report as gone once empty, by daemon.
    watched_groups: HashMap<usize, i32>,
    readers: Vec<JoinHandle<()>>,
    drain: watch::Sender<bool>,
    /// pidzero's records, held back while a reaped daemon's last lines are
    /// being handed over (see [`outbox`]).
    outbox: Outbox,
    /// By daemon: the readers of its current instance, asked to hand over
    /// what their pipes hold when it is reaped.
    flushers: Vec<Vec<Flusher>>,
    /// By daemon: what opens the readers of an instance just spawned, put in
    /// the outbox after its `started` record.
    opening: Vec<Vec<oneshot::Sender<()>>>,
    /// Reaped pids that were no daemon's main process (adopted orphans, group leftovers).
    reaped_others: u64,
    /// Wall-clock time at `started`, for the API's timestamps.
    wall_base: SystemTime,
    snapshots: watch::Sender<Snapshot>,
    /// Something the API shows may have changed since the last snapshot
    /// (the supervisor handled something, or a pid was reaped). Wake-ups
    /// that only let held records go (one per reaped daemon, see
    /// [`outbox`]) leave it false: rebuilding the snapshot of every daemon
    /// at each of them made a stop of N daemons cost N² copies.
    snapshot_stale: bool,
    sources: Vec<Arc<str>>,
    /// How the end waits for the log sinks (none in unit tests).
    log_exit: Option<LogExit>,
    /// Stop signals received (TERM, INT, QUIT): from the second on, the end
    /// does not wait for the log sinks.
    stop_signals: u32,
    /// How to reload, and what is in force (none in unit tests).
    reloading: Option<reload::Reloading>,
    /// Where notify daemons' readers send what they read (see [`notify`]),
    /// and the receiving end until the loop takes it.
    notices: mpsc::Sender<notify::NotifyReport>,
    notices_rx: Option<mpsc::Receiver<notify::NotifyReport>>,
    /// By daemon: the reader of its current instance's notify socket or pipe.
    notify_readers: Vec<Option<JoinHandle<()>>>,
    /// Names this run's notify sockets apart from any other pidzero's.
    run_id: String,
}

impl Runtime {
    fn new(
        plan: Plan,
        log: LogHandle,
        inherited: signals::Inherited,
        probe_reports: mpsc::UnboundedSender<ProbeReport>,
    ) -> Self {
        let sources: Vec<Arc<str>> = plan
            .daemons
            .iter()
            .map(|d| Arc::from(d.rules.name.as_str()))
            .collect();
        let flushers = sources.iter().map(|_| Vec::new()).collect();
        let opening = sources.iter().map(|_| Vec::new()).collect();
        let notify_readers = sources.iter().map(|_| None).collect();
        let (notices, notices_rx) = mpsc::channel(notify::QUEUE);
        let (rules, launches) = plan
            .daemons
            .into_iter()
            .map(|d| (d.rules, d.launch))
            .unzip();
        Runtime {
            supervisor: Supervisor::new(rules, plan.start_order),
            launches,
            log,
            spawn_context: SpawnContext::detect(inherited),
            started: Instant::now(),
            timers: BTreeMap::new(),
            probe_processes: HashMap::new(),
            probe_reports,
            timer_seq: 0,
            watched_groups: HashMap::new(),
            readers: Vec::new(),
            drain: watch::channel(false).0,
            outbox: Outbox::default(),
            flushers,
            opening,
            reaped_others: 0,
            wall_base: SystemTime::now(),
            snapshots: watch::channel(Snapshot::default()).0,
            snapshot_stale: true,
            sources,
            log_exit: None,
            stop_signals: 0,
            reloading: None,
            notices,
            notices_rx: Some(notices_rx),
            notify_readers,
            run_id: notify::run_id(),
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    async fn run(
        &mut self,
        mut probe_reports: mpsc::UnboundedReceiver<ProbeReport>,
        api: ApiSetup,
    ) -> std::io::Result<i32> {
        let mut signals = Signals::new()?;
        let (control_tx, mut control) = mpsc::channel(16);
        let mut server = match self.start_api(api, control_tx).await {
            Ok(server) => server,
            Err(status) => return Ok(status),
        };
        let mut notices = match self.notices_rx.take() {
            Some(rx) => rx,
            None => mpsc::channel(1).1,
        };
        let mut events = VecDeque::from([Event::Boot]);
        loop {
            while let Some(event) = events.pop_front() {
                let spawned = match event {
                    Event::Exited { pid, .. } => {
                        self.hold_records_for_last_lines(pid);
                        None
                    }
                    Event::Spawned { daemon, .. } => Some(daemon),
                    _ => None,
                };
                // Jobs' cron schedules are about the wall clock.
                self.supervisor.set_wall_clock(jiff::Timestamp::now());
                self.snapshot_stale = true;
                let actions = self.supervisor.handle(event, self.now());
                let exit = self.apply_all(actions, &mut events);
                if let Some(daemon) = spawned {
                    // After its `started` record (and whatever waits before it).
                    let (log, readers) = (&self.log, std::mem::take(&mut self.opening[daemon]));
                    self.outbox.open(readers, |record| log.event(record));
                }
                if let Some(status) = exit {
                    return Ok(self.finish(status, server, &mut signals).await);
                }
            }
            self.publish_snapshot();
            let next_timer = self.timers.keys().next().map(|&(at, _)| at);
            let deadline = next_timer.map(|at| self.started + at);
            let next_deadline = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = signals.recv() => {
                    for sig in received? {
                        if sig == libc::SIGCHLD {
                            self.reap(&mut events);
                        } else {
                            self.stop_signals += u32::from(is_stop_signal(sig));
                            events.push_back(Event::Signal(sig));
                        }
                    }
                }
                _ = next_deadline => {
                    self.fire_due_timers(&mut events);
                }
                Some((daemon, instance, result)) = probe_reports.recv() => {
                    let (passed, detail) = match result {
                        Ok(detail) => (true, detail),
                        Err(detail) => (false, detail),
                    };
                    events.push_back(Event::ProbeResult { daemon, instance, passed, detail });
                }
                Some((daemon, instance, notice)) = notices.recv() => {
                    events.push_back(Event::Notify { daemon, instance, notice });
                }
                Some(request) = control.recv() => {
                    let actions = self.on_control(request, &mut server).await;
                    if let Some(status) = self.apply_all(actions, &mut events) {
                        return Ok(self.finish(status, server, &mut signals).await);
                    }
                }
                _ = self.outbox.front_answered(), if self.outbox.is_waiting() => {
                    let log = &self.log;
                    self.outbox.release(|record| log.event(record));
                }
            }
        }
    }

    /// The daemon whose main process `pid` was reaped has written all it
    /// will: its readers are asked to hand over what their pipes hold, and
    /// pidzero's records from now on (its `exited` first) wait for that.
    fn hold_records_for_last_lines(&mut self, pid: i32) {
        let Some(daemon) = self.supervisor.daemon_by_pid(pid) else {
            return;
        };
        let flushes = self.flushers[daemon].iter().map(Flusher::flush).collect();
        self.outbox.barrier(flushes);
    }

    /// Binds the control API before anything starts. A chosen socket or TCP
    /// address that cannot be bound is a startup error (exit 2); the default
    /// socket only warns, so pidzero still runs where /run is not writable.
    async fn start_api(
        &mut self,
        api: ApiSetup,
        control: mpsc::Sender<ControlRequest>,
    ) -> Result<Option<ApiServer>, i32> {
        if api.socket.is_none() && api.tcp.is_none() {
            return Ok(None);
        }
        let context = |socket: watch::Receiver<Snapshot>| ApiContext {
            snapshot: socket,
            control: control.clone(),
            logs: api.logs.clone(),
            token: api.token.clone(),
        };
        let first = api::start(
            api.socket.clone(),
            api.tcp,
            context(self.snapshots.subscribe()),
        )
        .await;
        let error = match first {
            Ok(server) => return Ok(Some(server)),
            Err(e) => e,
        };
        if !api.socket_is_default {
            usage_error(&format!("cannot start the control API: {error}"));
            return Err(exit::USAGE_ERROR);
        }
        if api.warn_if_unavailable {
            config_warning(&self.log, &format!("control socket not available: {error}"));
        }
        if api.tcp.is_none() {
            return Ok(None);
        }
        // The TCP listener was asked for explicitly: it must work.
        match api::start(None, api.tcp, context(self.snapshots.subscribe())).await {
            Ok(server) => Ok(Some(server)),
            Err(e) => {
                usage_error(&format!("cannot start the control API: {e}"));
                Err(exit::USAGE_ERROR)
            }
        }
    }

    /// Carries out actions in order, except that signals go first; returns
    /// the exit status on `Exit`.
    ///
    /// Signals first: a record (`shutdown`, `killed`) queued before them
    /// wakes the log writer thread, and that wake-up sat on the way from
    /// SIGTERM to the daemons. Their records keep their order among
    /// themselves; a signal only ever targets a group that existed before
    /// this batch (a spawn's group is known from its `Spawned` event, in a
    /// later batch), so no signal can overtake the spawn it is meant for.
    fn apply_all(&mut self, actions: Vec<Action>, events: &mut VecDeque<Event>) -> Option<i32> {
        for action in actions.iter().take_while(|a| !matches!(a, Action::Exit(_))) {
            if let Action::SignalGroup { pgid, signal, .. } = *action {
                let _ = group::signal(pgid, signal);
            }
        }
        for action in actions {
            if let Some(status) = self.apply(action, events) {
                return Some(status);
            }
        }
        None
    }

    /// Answers one control request and returns the supervisor's actions.
    async fn on_control(
        &mut self,
        request: ControlRequest,
        server: &mut Option<ApiServer>,
    ) -> Vec<Action> {
        let now = self.now();
        self.supervisor.set_wall_clock(jiff::Timestamp::now());
        self.snapshot_stale = true;
        let (name, control) = match request.command {
            ControlCommand::Reload => return self.reload(request.reply, server).await,
            ControlCommand::Shutdown => {
                let actions = self.supervisor.request_shutdown(now);
                let _ = request.reply.send(ControlReply::Accepted {
                    state: "stopping".into(),
                });
                return actions;
            }
            ControlCommand::Start(name) => (name, Control::Start),
            ControlCommand::Stop(name) => (name, Control::Stop),
            ControlCommand::Restart(name) => (name, Control::Restart),
            ControlCommand::Signal(name, sig) => (name, Control::Signal(sig)),
        };
        let (outcome, actions) = self.supervisor.control(&name, control, now);
        let reply = match outcome {
            ControlOutcome::Accepted(state) => ControlReply::Accepted {
                state: state.as_str().to_string(),
            },
            ControlOutcome::NotFound => ControlReply::NotFound,
            ControlOutcome::Conflict(why) => ControlReply::Conflict(why),
        };
        let _ = request.reply.send(reply);
        actions
    }

    /// Publishes the API's view when it changed.
    fn publish_snapshot(&mut self) {
        if !std::mem::take(&mut self.snapshot_stale) {
            return;
        }
        if self.snapshots.receiver_count() == 0 {
            return; // The API is off: nobody reads snapshots.
        }
        let snapshot = snapshot::build(
            &self.supervisor,
            &self.launches,
            self.wall_base,
            self.reaped_others,
        );
        self.snapshots.send_if_modified(|current| {
            if *current == snapshot {
                return false;
            }
            *current = snapshot;
            true
        });
    }

    /// The end: a last snapshot, every pipe drained, then the API closed
    /// (after letting it write the answers already given, such as a shutdown's 202).
    async fn finish(
        &mut self,
        status: i32,
        server: Option<ApiServer>,
        signals: &mut Signals,
    ) -> i32 {
        self.publish_snapshot();
        self.flush_readers(signals).await;
        tokio::task::yield_now().await;
        drop(server);
        status
    }

    /// Carries out one action; returns the exit status when it is `Exit`.
    fn apply(&mut self, action: Action, events: &mut VecDeque<Event>) -> Option<i32> {
        match action {
            Action::Spawn(i) => events.push_back(self.spawn(i)),
            // Sent already, ahead of the batch's other actions (`apply_all`).
            Action::SignalGroup { .. } => {}
            Action::StopLeftovers {
                daemon,
                pgid,
                signal,
            } => match group::signal(pgid, signal) {
                group::GroupState::Alive => {
                    self.watched_groups.insert(daemon, pgid);
                }
                group::GroupState::Gone => events.push_back(Event::GroupGone { daemon }),
            },
            Action::SetTimer { timer, at } => {
                self.set_deadline(at, Deadline::Supervisor(timer));
            }
            Action::CancelTimer(timer) => self
                .timers
                .retain(|_, d| !matches!(d, Deadline::Supervisor(t) if *t == timer)),
            Action::StartProbe { daemon, instance } => {
                if let Some(failed) = self.start_probe(daemon, instance) {
                    events.push_back(failed);
                }
            }
            Action::Log(e) => {
                let record = EventRecord {
                    timestamp: timestamp_now(),
                    level: e.level,
                    event: e.event,
                    fields: e.fields,
                    line: e.line,
                };
                let log = &self.log;
                self.outbox.record(record, |record| log.event(record));
            }
            Action::Exit(status) => return Some(status),
        }
        None
    }

    fn spawn(&mut self, i: usize) -> Event {
        match self.spawn_process(i) {
            Ok(spawned) => {
                // Readers of earlier instances that reached EOF are done: a
                // daemon restarting for weeks must not pile up their handles.
                // Pruned once the list holds twice the two pipes of every
                // daemon, not at each spawn: looking at every handle per
                // spawn made starting N daemons cost N² cache misses (the
                // hottest line of pidzero's own code in a `perf` profile of
                // starting 1,000 sleep daemons).
                if self.readers.len() >= 4 * self.launches.len() {
                    self.readers.retain(|reader| !reader.is_finished());
                }
                self.flushers[i].clear();
                for (fd, stream) in [
                    (spawned.stdout, Stream::Stdout),
                    (spawned.stderr, Stream::Stderr),
                ] {
                    if let Some(fd) = fd {
                        let (control, flusher, open) = PumpControl::new(self.drain.subscribe());
                        self.flushers[i].push(flusher);
                        self.opening[i].push(open);
                        self.readers.push(tokio::spawn(reader::pump(
                            fd,
                            self.sources[i].clone(),
                            stream,
                            self.log.for_daemon(self.launches[i].route),
                            control,
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

    /// Starts daemon `i`'s process, with its notify socket or notification
    /// pipe when its `ready` asks for one, and starts reading that.
    fn spawn_process(&mut self, i: usize) -> std::io::Result<process::Spawned> {
        use std::os::fd::AsRawFd;
        let launch = &self.launches[i];
        let instance = self.supervisor.daemons()[i].instance;
        let name = &self.sources[i];
        let prepared = notify::prepare(launch.ready, launch.watchdog, &self.run_id, name, instance)
            .map_err(|e| {
                let why = format!("cannot set up its readiness notification: {e}");
                std::io::Error::new(e.kind(), why)
            })?;
        let Some(mut prepared) = prepared else {
            return process::spawn(launch, &self.spawn_context);
        };
        let extras = process::Extras {
            env: std::mem::take(&mut prepared.env),
            fd: prepared.fd.as_ref().map(|(fd, n)| (fd.as_raw_fd(), *n)),
            watchdog_pid: launch.watchdog.is_some(),
        };
        let spawned = process::spawn_with(launch, &self.spawn_context, &extras)?;
        // The pipe's write end is the daemon's alone now (else no EOF ever).
        prepared.fd = None;
        if let Some(old) = self.notify_readers[i].take() {
            old.abort();
        }
        match prepared.listen(i, instance, spawned.pid, self.notices.clone()) {
            Ok(reader) => self.notify_readers[i] = Some(reader),
            // It runs, but will never be heard: its ready_timeout (or
            // dependents that wait) will tell.
            Err(e) => {
                let record = EventRecord {
                    timestamp: timestamp_now(),
                    level: Level::Error,
                    event: "notify_error",
                    fields: vec![("daemon", FieldValue::Str(self.sources[i].to_string()))],
                    line: format!(
                        "cannot read {}'s readiness notifications: {e}",
                        self.sources[i]
                    ),
                };
                let log = &self.log;
                self.outbox.record(record, |record| log.event(record));
            }
        }
        Ok(spawned)
    }

    fn set_deadline(&mut self, at: Duration, deadline: Deadline) -> (Duration, u64) {
        self.timer_seq += 1;
        let key = (at, self.timer_seq);
        self.timers.insert(key, deadline);
        key
    }

    /// Starts one health probe; returns a failed result when it cannot even start.
    fn start_probe(&mut self, daemon: usize, instance: u32) -> Option<Event> {
        let launch = &self.launches[daemon];
        let probe = launch.probe.as_ref()?;
        let timeout = probe.timeout;
        match &probe.check {
            HealthProbe::Command(command) => {
                let probe = probe_launch(launch, command);
                match process::spawn(&probe, &self.spawn_context) {
                    Ok(spawned) => {
                        let at = self.now() + timeout;
                        let deadline = self.set_deadline(at, Deadline::ProbeTimeout(spawned.pid));
                        self.probe_processes.insert(
                            spawned.pid,
                            ProbeRun {
                                daemon,
                                instance,
                                timed_out: false,
                                deadline,
                            },
                        );
                    }
                    Err(e) => {
                        return Some(Event::ProbeResult {
                            daemon,
                            instance,
                            passed: false,
                            detail: format!("cannot run the health command: {e}"),
                        })
                    }
                }
            }
            HealthProbe::Http(url) => {
                let (url, reports) = (url.clone(), self.probe_reports.clone());
                tokio::spawn(async move {
                    let _ =
                        reports.send((daemon, instance, probes::probe_http(&url, timeout).await));
                });
            }
            HealthProbe::Tcp(addr) => {
                let (addr, reports) = (addr.clone(), self.probe_reports.clone());
                tokio::spawn(async move {
                    let _ =
                        reports.send((daemon, instance, probes::probe_tcp(&addr, timeout).await));
                });
            }
        }
        None
    }

    fn reap(&mut self, events: &mut VecDeque<Event>) {
        for (pid, status) in process::reap_all() {
            if let Some(run) = self.probe_processes.remove(&pid) {
                self.timers.remove(&run.deadline);
                let detail = if run.timed_out {
                    "the health command timed out".to_string()
                } else {
                    format!(
                        "the health command exited with status {}",
                        status.as_status()
                    )
                };
                events.push_back(Event::ProbeResult {
                    daemon: run.daemon,
                    instance: run.instance,
                    passed: status.success() && !run.timed_out,
                    detail,
                });
            } else if self.supervisor.daemon_by_pid(pid).is_some() {
                events.push_back(Event::Exited { pid, status });
            } else {
                self.reaped_others += 1;
                self.snapshot_stale = true;
            }
        }
        self.check_groups(events);
    }

    /// Reports watched process groups that hold no process any more.
    fn check_groups(&mut self, events: &mut VecDeque<Event>) {
        let gone: Vec<usize> = self
            .watched_groups
            .iter()
            .filter(|(_, &pgid)| group::signal(pgid, 0) == group::GroupState::Gone)
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
            match entry.remove() {
                Deadline::Supervisor(timer) => events.push_back(Event::Timer(timer)),
                Deadline::ProbeTimeout(pid) => {
                    if let Some(run) = self.probe_processes.get_mut(&pid) {
                        run.timed_out = true;
                        let _ = group::signal(pid, libc::SIGKILL);
                    }
                }
            }
        }
        // A group member may have been reaped by someone else in the meantime.
        self.check_groups(events);
    }

    /// Lets every pipe reader take what its daemon wrote before exiting, then
    /// ends them; pidzero's held records go out as the lines they wait for
    /// are handed over, and all of them once the wait is over.
    ///
    /// Readers wait for the log writer, which may wait for a sink nobody
    /// reads: after a second stop signal (or at once if one came already),
    /// or `shutdown_timeout` from now, the writer is told to give up its
    /// pending writes; it then takes the rest at once (counting what it
    /// drops), so the readers end within [`GIVE_UP_GRACE`].
    async fn flush_readers(&mut self, signals: &mut Signals) {
        let _ = self.drain.send(true);
        // Readers of an instance whose `started` never came (a spawn that
        // raced the end): dropping their openers lets them drain too.
        self.opening.iter_mut().for_each(Vec::clear);
        let readers = std::mem::take(&mut self.readers);
        {
            let (outbox, log) = (&mut self.outbox, &self.log);
            let flushed = async move {
                outbox.release_all(|record| log.event(record)).await;
                for reader in readers {
                    let _ = reader.await;
                }
            };
            wait_or_give_up(flushed, self.log_exit.as_ref(), self.stop_signals, signals).await;
        }
        let log = &self.log;
        self.outbox.release_now(|record| log.event(record));
    }
}

/// Waits for `flushed` (the readers' last lines and the records after them)
/// until the log sinks are given up: see [`Runtime::flush_readers`].
async fn wait_or_give_up(
    flushed: impl std::future::Future<Output = ()>,
    log_exit: Option<&LogExit>,
    stop_signals: u32,
    signals: &mut Signals,
) {
    let mut flushed = std::pin::pin!(flushed);
    let Some(exit) = log_exit else {
        return flushed.await;
    };
    let deadline = Instant::now() + exit.shutdown_timeout;
    exit.give_up.set_deadline(deadline);
    if stop_signals >= 2 {
        exit.give_up.give_up();
    }
    if !exit.give_up.given_up() {
        let stop_signal = async {
            loop {
                match signals.recv().await {
                    Ok(received) if received.iter().any(|&s| is_stop_signal(s)) => break,
                    Ok(_) => {}
                    // Nothing more to hear: only the deadline is left.
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = &mut flushed => return,
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = stop_signal => {}
        }
        exit.give_up.give_up();
    }
    let _ = tokio::time::timeout(GIVE_UP_GRACE, flushed).await;
}

/// A command probe runs like its daemon (environment, user, working dir) but
/// through `/bin/sh -c`, in its own process group, with its output discarded.
fn probe_launch(daemon: &Launch, command: &str) -> Launch {
    let mut probe = daemon.clone();
    probe.argv = vec!["/bin/sh".into(), "-c".into(), command.to_string()];
    probe.program = "/bin/sh".into();
    probe.output = OutputMode::Discard;
    probe.inherit_stdin = false;
    probe.probe = None;
    probe.ready = crate::plan::rules::ReadyMode::Started;
    probe.watchdog = None;
    probe
}

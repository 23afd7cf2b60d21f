//! Shared pieces of the in-process API tests: a fake runtime that answers commands
//! and publishes snapshots, a fake log source, deadlines. Temp dirs and the HTTP
//! client are the harness's (`tests/common`), re-exported here; a test file that
//! uses this module declares `mod common;` too.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pidzero::api::{
    ApiContext, ControlCommand, ControlReply, ControlRequest, DaemonInfo, LastExit, LogCounters,
    LogSource, Snapshot,
};
use tokio::sync::{mpsc, watch};

// Not every API test talks HTTP itself (some drive the binary's client).
#[allow(unused_imports)]
pub use crate::common::http::*;
pub use crate::common::Dir;

/// Every test runs under this deadline.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("test deadline passed")
}

pub fn daemon(name: &str, vital: bool, state: &str, health: Option<&str>) -> DaemonInfo {
    let running = state == "running";
    DaemonInfo {
        name: name.into(),
        vital,
        state: state.into(),
        pid: running.then_some(4242),
        // Started 61.5 s ago: the server brings uptime_seconds up to date from this.
        started_at: running.then(|| {
            let started = std::time::SystemTime::now() - Duration::from_millis(61_500);
            humantime::format_rfc3339_millis(started).to_string()
        }),
        uptime_seconds: running.then_some(61.5),
        restarts: 2,
        health: health.map(Into::into),
        last_exit: Some(LastExit {
            code: Some(1),
            signal: None,
            at: "2026-11-28T14:08:00.000Z".into(),
        }),
        command: vec!["/usr/bin/web".into(), "--port".into(), "8080".into()],
        job: None,
        readiness: Default::default(),
    }
}

/// web (vital, running, healthy) and worker (not vital, exited).
pub fn initial_snapshot() -> Snapshot {
    Snapshot {
        daemons: vec![
            daemon("web", true, "running", Some("healthy")),
            daemon("worker", false, "exited", None),
        ],
        shutting_down: false,
        reaped_total: 3,
    }
}

/// Records and counters from memory.
#[derive(Default)]
pub struct FakeLogs {
    pub records: HashMap<String, Vec<String>>,
    pub counters: LogCounters,
}

impl LogSource for FakeLogs {
    fn recent(&self, daemon: &str, n: usize) -> Vec<String> {
        let all = self.records.get(daemon).cloned().unwrap_or_default();
        all[all.len().saturating_sub(n)..].to_vec()
    }

    fn counters(&self) -> LogCounters {
        self.counters.clone()
    }
}

pub fn fake_logs() -> FakeLogs {
    let web: Vec<String> = (1..=5)
        .map(|i| {
            format!(
                r#"{{"timestamp":"2026-11-28T14:09:0{i}.000Z","source":"web","stream":"stdout","line":"line {i}"}}"#
            )
        })
        .collect();
    FakeLogs {
        records: HashMap::from([("web".to_owned(), web)]),
        counters: LogCounters {
            per_daemon: vec![("web".into(), 5, 120), ("worker".into(), 0, 0)],
            sink_errors: vec![("stdout".into(), 0), ("file".into(), 1)],
        },
    }
}

/// The runtime's side: answers commands the way the supervisor would, publishes the
/// new snapshot, and remembers what it was asked.
pub struct FakeRuntime {
    pub snapshot: watch::Sender<Snapshot>,
    pub commands: Arc<Mutex<Vec<ControlCommand>>>,
}

impl FakeRuntime {
    /// Starts the fake runtime task and returns the context for the server.
    pub fn start(token: Option<&str>) -> (FakeRuntime, ApiContext) {
        Self::start_with(token, fake_logs(), true)
    }

    /// `answer: false` makes a runtime that takes commands and never answers.
    pub fn start_with(
        token: Option<&str>,
        logs: FakeLogs,
        answer: bool,
    ) -> (FakeRuntime, ApiContext) {
        let (snapshot_tx, snapshot_rx) = watch::channel(initial_snapshot());
        let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(16);
        let commands = Arc::new(Mutex::new(Vec::new()));
        let publish = snapshot_tx.clone();
        let seen = commands.clone();
        tokio::spawn(async move {
            let mut unanswered = Vec::new();
            while let Some(request) = control_rx.recv().await {
                seen.lock().unwrap().push(request.command.clone());
                if !answer {
                    unanswered.push(request);
                    continue;
                }
                let mut reply = ControlReply::NotFound;
                publish.send_modify(|s| reply = apply(s, &request.command));
                let _ = request.reply.send(reply);
            }
        });
        let ctx = ApiContext {
            snapshot: snapshot_rx,
            control: control_tx,
            logs: Arc::new(logs),
            token: token.map(Into::into),
        };
        (
            FakeRuntime {
                snapshot: snapshot_tx,
                commands,
            },
            ctx,
        )
    }

    pub fn commands(&self) -> Vec<ControlCommand> {
        self.commands.lock().unwrap().clone()
    }
}

fn apply(s: &mut Snapshot, command: &ControlCommand) -> ControlReply {
    if let ControlCommand::Shutdown = command {
        s.shutting_down = true;
        return ControlReply::Accepted {
            state: "stopping".into(),
        };
    }
    let (ControlCommand::Start(name)
    | ControlCommand::Stop(name)
    | ControlCommand::Restart(name)
    | ControlCommand::Signal(name, _)) = command
    else {
        unreachable!()
    };
    let Some(d) = s.daemons.iter_mut().find(|d| &d.name == name) else {
        return ControlReply::NotFound;
    };
    let running = d.state == "running";
    let live = matches!(d.state.as_str(), "running" | "starting" | "stopping");
    let new_state = match command {
        ControlCommand::Start(_) if live => {
            return ControlReply::Conflict(format!("{name} is already running"))
        }
        ControlCommand::Start(_) => "starting",
        ControlCommand::Stop(_) | ControlCommand::Signal(..) if !running => {
            return ControlReply::Conflict(format!("{name} is not running"))
        }
        ControlCommand::Stop(_) => "stopping",
        ControlCommand::Restart(_) => "stopping",
        _ => "running",
    };
    d.state = new_state.into();
    ControlReply::Accepted {
        state: new_state.into(),
    }
}

pub fn localhost() -> Option<std::net::SocketAddr> {
    Some("127.0.0.1:0".parse().unwrap())
}

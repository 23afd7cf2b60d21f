//! Shared pieces of the API tests: a fake runtime that answers commands and publishes
//! snapshots, a fake log source, raw HTTP over a socket, temp dirs, deadlines.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pidzero::api::{
    ApiContext, ControlCommand, ControlReply, ControlRequest, DaemonInfo, LastExit, LogCounters,
    LogSource, Snapshot,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Every test runs under this deadline.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("test deadline passed")
}

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pidzero-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Writes `request` as is and reads until the server closes the connection. A reset
/// (the server closed with part of the request unread) ends the answer too.
pub async fn raw<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &[u8]) -> Answer {
    let _ = stream.write_all(request).await;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        bytes.extend_from_slice(&buf[..n]);
    }
    parse(&bytes)
}

pub fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A request with `Connection: close`, so that the answer ends with the connection.
pub fn request(method: &str, path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: pidzero\r\nConnection: close\r\n");
    for h in headers {
        text.push_str(h);
        text.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

pub async fn unix(socket: &Path, method: &str, path: &str, body: &str) -> Answer {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    raw(stream, &request(method, path, &[], body)).await
}

pub async fn tcp(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw(stream, &request(method, path, headers, body)).await
}

pub fn localhost() -> Option<std::net::SocketAddr> {
    Some("127.0.0.1:0".parse().unwrap())
}

//! The client commands: one request each, a short answer, an exit status.

use std::io::Write;

use hyper::Method;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::http::{request, ClientError, Reply};
use super::{exit, Options};
use crate::api::DaemonInfo;

/// A client command of SPEC §1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `status [--json]`
    Status {
        json: bool,
    },
    /// `health`: exit 0 healthy, 1 unhealthy, 2 unreachable.
    Health,
    Start(String),
    Stop(String),
    Restart(String),
    /// Daemon and signal (a name such as `HUP` or a number; the server checks it).
    Signal(String, String),
    /// Daemon and number of records.
    Logs(String, usize),
    /// `logs --reopen`: the log file is closed and opened again.
    ReopenLogs,
    /// `reload`: read both files again and apply the difference.
    Reload,
    Shutdown,
}

/// Runs `command` on a small current-thread runtime, printing to stdout and stderr;
/// returns the exit status.
pub fn run(options: &Options, command: &Command) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pidzero: cannot start the client: {e}");
            return exit::FAILED;
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    runtime.block_on(execute(
        options,
        command,
        &mut stdout.lock(),
        &mut stderr.lock(),
    ))
}

/// Runs `command`, writing its output to `out` and its complaints to `err`. Write
/// errors (a closed pipe) are ignored: the exit status still tells the outcome.
pub async fn execute(
    options: &Options,
    command: &Command,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let token = options.token.as_deref();
    let endpoint = &options.endpoint;
    let (method, path, body) = match command {
        Command::Status { .. } => (Method::GET, "/daemons".to_owned(), None),
        Command::Health => (Method::GET, "/health".to_owned(), None),
        Command::Start(name) => (Method::POST, daemon_path(name, "/start"), None),
        Command::Stop(name) => (Method::POST, daemon_path(name, "/stop"), None),
        Command::Restart(name) => (Method::POST, daemon_path(name, "/restart"), None),
        Command::Signal(name, signal) => {
            let body = serde_json::json!({ "signal": signal }).to_string();
            (
                Method::POST,
                daemon_path(name, "/signal"),
                Some(body.into_bytes()),
            )
        }
        Command::Logs(name, n) => (
            Method::GET,
            daemon_path(name, &format!("/logs?lines={n}")),
            None,
        ),
        Command::ReopenLogs => (Method::POST, "/logs/reopen".to_owned(), None),
        Command::Shutdown => (Method::POST, "/shutdown".to_owned(), None),
        Command::Reload => (Method::POST, "/reload".to_owned(), None),
    };
    let reply = match request(endpoint, token, method, &path, body).await {
        Ok(reply) => reply,
        Err(e) => {
            let what = match (&e, command) {
                (ClientError::Unreachable(_), Command::Health) => "unreachable: ",
                _ => "",
            };
            let _ = writeln!(err, "pidzero: {what}{e}");
            return exit::UNREACHABLE;
        }
    };
    if let Command::Health = command {
        return health(&reply, out, err);
    }
    if !(200..300).contains(&reply.status) {
        let _ = writeln!(err, "pidzero: {}", server_message(&reply));
        if let Command::Reload = command {
            super::reload::print_errors(&reply.body, err);
        }
        return exit::FAILED;
    }
    let unexpected = |err: &mut dyn Write, what: &str| {
        let _ = writeln!(err, "pidzero: unexpected answer from {endpoint}: {what}");
        exit::FAILED
    };
    match command {
        Command::Status { json: true } => {
            let _ = out.write_all(&reply.body);
        }
        Command::Status { json: false } => {
            match serde_json::from_slice::<Vec<DaemonInfo>>(&reply.body) {
                Ok(daemons) => {
                    let _ = out.write_all(format_table(&daemons).as_bytes());
                }
                Err(e) => return unexpected(err, &e.to_string()),
            }
        }
        Command::Start(name) | Command::Stop(name) | Command::Restart(name) => {
            let state = state_of(&reply).unwrap_or_else(|| "accepted".into());
            let _ = writeln!(out, "{name}: {state}");
        }
        Command::Signal(name, signal) => {
            let _ = writeln!(out, "{name}: sent {signal}");
        }
        Command::Logs(..) => match serde_json::from_slice::<Vec<&RawValue>>(&reply.body) {
            Ok(records) => {
                for record in records {
                    let _ = writeln!(out, "{}", record.get());
                }
            }
            Err(e) => return unexpected(err, &e.to_string()),
        },
        Command::ReopenLogs => {
            let path = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v["path"].as_str().map(str::to_owned));
            match path {
                Some(path) => {
                    let _ = writeln!(out, "pidzero: reopened {path}");
                }
                None => return unexpected(err, "no path in the answer"),
            }
        }
        Command::Shutdown => {
            let _ = writeln!(out, "pidzero: shutting down");
        }
        Command::Reload => {
            if super::reload::print_answer(&reply.body, out, err).is_none() {
                return unexpected(err, "not a reload answer");
            }
        }
        // Answered before the generic handling; nothing more to print.
        Command::Health => {}
    }
    exit::OK
}

/// `/daemons/NAME...` with NAME percent-encoded where it has to be.
fn daemon_path(name: &str, rest: &str) -> String {
    let mut path = String::from("/daemons/");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            path.push(b as char);
        } else {
            path.push_str(&format!("%{b:02X}"));
        }
    }
    path.push_str(rest);
    path
}

/// One short line for a health check's log.
fn health(reply: &Reply, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    #[derive(Deserialize)]
    struct Health {
        #[serde(default)]
        failing: Vec<String>,
        #[serde(default)]
        shutting_down: bool,
    }
    match reply.status {
        200 => {
            let _ = writeln!(out, "healthy");
            exit::OK
        }
        503 => {
            let detail = match serde_json::from_slice::<Health>(&reply.body) {
                Ok(h) if h.shutting_down => ": shutting down".to_owned(),
                Ok(h) if !h.failing.is_empty() => format!(": {}", h.failing.join(", ")),
                _ => String::new(),
            };
            let _ = writeln!(out, "unhealthy{detail}");
            exit::FAILED
        }
        _ => {
            let _ = writeln!(err, "pidzero: {}", server_message(reply));
            exit::FAILED
        }
    }
}

/// The server's `{"error": …}` message, or the status when there is none.
fn server_message(reply: &Reply) -> String {
    #[derive(Deserialize)]
    struct Error {
        error: String,
    }
    match serde_json::from_slice::<Error>(&reply.body) {
        Ok(e) => e.error,
        Err(_) => format!("the server answered with status {}", reply.status),
    }
}

fn state_of(reply: &Reply) -> Option<String> {
    #[derive(Deserialize)]
    struct Accepted {
        state: String,
    }
    serde_json::from_slice::<Accepted>(&reply.body)
        .ok()
        .map(|a| a.state)
}

/// The `status` table: one line per daemon, columns aligned, `-` for nothing.
/// When some daemons announce their readiness (sd_notify, notification fd),
/// READY and STATUS columns follow (so a plain setup's output is unchanged).
/// When some daemons are jobs, a second table follows with their schedules.
pub fn format_table(daemons: &[DaemonInfo]) -> String {
    let mut header = vec![
        "NAME", "STATE", "PID", "UPTIME", "RESTARTS", "VITAL", "HEALTH",
    ];
    let announced = daemons.iter().any(|d| d.readiness.is_announced());
    if announced {
        header.extend(["READY", "STATUS"]);
    }
    let rows: Vec<Vec<String>> = daemons
        .iter()
        .map(|d| {
            let mut row = vec![
                d.name.clone(),
                d.state.clone(),
                d.pid.map_or_else(|| "-".into(), |p| p.to_string()),
                d.uptime_seconds.map_or_else(|| "-".into(), format_uptime),
                d.restarts.to_string(),
                if d.vital { "yes" } else { "no" }.into(),
                d.health.clone().unwrap_or_else(|| "-".into()),
            ];
            if announced {
                row.push(ready_cell(d));
                row.push(
                    d.readiness
                        .status_text
                        .clone()
                        .unwrap_or_else(|| "-".into()),
                );
            }
            row
        })
        .collect();
    let mut out = align(&header, &rows);
    let jobs = format_jobs_table(daemons);
    if !jobs.is_empty() {
        out.push('\n');
        out.push_str(&jobs);
    }
    out
}

/// `yes (0.7s)` with the time it took, `no` while waiting, else the
/// notify state (`reloading`, `stopping`, `watchdog_missed`); `-` when not running.
fn ready_cell(d: &DaemonInfo) -> String {
    match d.readiness.ready_state.as_deref() {
        None => "-".into(),
        Some("ready") => match d.readiness.ready_after_ms {
            Some(ms) => format!("yes ({:.1}s)", ms as f64 / 1000.0),
            None => "yes".into(),
        },
        Some("waiting") => "no".into(),
        Some(other) => other.into(),
    }
}

/// The jobs of `status`: schedule, next run, and how the last run went;
/// empty when no daemon is a job (so a plain setup's output is unchanged).
pub fn format_jobs_table(daemons: &[DaemonInfo]) -> String {
    const HEADER: [&str; 9] = [
        "JOB",
        "SCHEDULE",
        "NEXT RUN",
        "LAST RUN",
        "LAST STATUS",
        "DURATION",
        "RUNS",
        "FAILED",
        "SKIPPED",
    ];
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = daemons
        .iter()
        .filter_map(|d| Some((d, d.job.as_ref()?)))
        .map(|(d, job)| {
            let schedule = if job.timezone == "UTC" {
                job.schedule.clone()
            } else {
                format!("{} ({})", job.schedule, job.timezone)
            };
            let last = job.last_run.as_ref();
            vec![
                d.name.clone(),
                schedule,
                job.next_run.clone().unwrap_or_else(dash),
                last.map_or_else(dash, |r| r.started_at.clone()),
                last.map_or_else(dash, |r| match (&r.signal, r.code) {
                    (Some(signal), _) => signal.clone(),
                    (None, Some(code)) => code.to_string(),
                    (None, None) => dash(),
                }),
                last.map_or_else(dash, |r| format!("{:.1}s", r.duration_seconds)),
                job.runs.to_string(),
                job.failures.to_string(),
                job.skipped.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    align(&HEADER, &rows)
}

/// Lines of cells separated by two spaces, each column as wide as its widest cell.
fn align(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        out.push_str(&text);
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// `42s`, `5m07s`, `3h05m`, `2d04h`.
pub fn format_uptime(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds as u64
    } else {
        0
    };
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(name: &str, state: &str, pid: Option<i32>, up: Option<f64>) -> DaemonInfo {
        DaemonInfo {
            name: name.into(),
            vital: name == "web",
            state: state.into(),
            pid,
            started_at: None,
            uptime_seconds: up,
            restarts: if name == "worker" { 12 } else { 0 },
            health: (name == "web").then(|| "healthy".into()),
            last_exit: None,
            command: vec![],
            job: None,
            readiness: Default::default(),
        }
    }

    #[test]
    fn announced_readiness_gets_ready_and_status_columns() {
        let mut db = daemon("db", "running", Some(7), Some(3.0));
        db.readiness = crate::api::ReadyInfo {
            ready: true,
            ready_mode: "notify:systemd".into(),
            ready_state: Some("ready".into()),
            ready_after_ms: Some(700),
            status_text: Some("serving 3 clients".into()),
        };
        let mut cache = daemon("cache", "running", Some(8), Some(1.0));
        cache.readiness.ready_mode = "notify:fd".into();
        cache.readiness.ready_state = Some("waiting".into());
        let worker = daemon("worker", "exited", None, None);
        let expected = "\
NAME    STATE    PID  UPTIME  RESTARTS  VITAL  HEALTH  READY       STATUS
db      running  7    3s      0         no     -       yes (0.7s)  serving 3 clients
cache   running  8    1s      0         no     -       no          -
worker  exited   -    -       12        no     -       -           -
";
        assert_eq!(format_table(&[db, cache, worker]), expected);
    }

    #[test]
    fn jobs_get_a_second_table() {
        use crate::api::{JobInfo, JobRun};
        let mut backup = daemon("backup", "scheduled", None, None);
        backup.job = Some(JobInfo {
            schedule: "30 2 * * *".into(),
            timezone: "Europe/Paris".into(),
            overlap: "skip".into(),
            next_run: Some("2026-12-04T01:30:00.000Z".into()),
            last_run: Some(JobRun {
                started_at: "2026-12-03T01:30:00.002Z".into(),
                duration_seconds: 12.345,
                code: Some(0),
                signal: None,
            }),
            runs: 3,
            failures: 1,
            skipped: 0,
        });
        let mut tick = daemon("tick", "running", Some(7), Some(1.0));
        tick.job = Some(JobInfo {
            schedule: "@every 1m".into(),
            timezone: "UTC".into(),
            overlap: "queue".into(),
            next_run: None,
            last_run: None,
            runs: 1,
            failures: 0,
            skipped: 2,
        });
        let table = format_table(&[daemon("web", "running", Some(42), Some(5.0)), backup, tick]);
        assert_eq!(
            table,
            "\
NAME    STATE      PID  UPTIME  RESTARTS  VITAL  HEALTH
web     running    42   5s      0         yes    healthy
backup  scheduled  -    -       0         no     -
tick    running    7    1s      0         no     -

JOB     SCHEDULE                   NEXT RUN                  LAST RUN                  LAST STATUS  DURATION  RUNS  FAILED  SKIPPED
backup  30 2 * * * (Europe/Paris)  2026-12-04T01:30:00.000Z  2026-12-03T01:30:00.002Z  0            12.3s     3     1       0
tick    @every 1m                  -                         -                         -            -         1     0       2
"
        );
    }

    #[test]
    fn table_is_aligned() {
        let table = format_table(&[
            daemon("web", "running", Some(42), Some(3725.5)),
            daemon("worker", "backoff", None, None),
        ]);
        assert_eq!(
            table,
            "\
NAME    STATE    PID  UPTIME  RESTARTS  VITAL  HEALTH
web     running  42   1h02m   0         yes    healthy
worker  backoff  -    -       12        no     -
"
        );
    }

    #[test]
    fn empty_table_has_the_header() {
        assert_eq!(
            format_table(&[]),
            "NAME  STATE  PID  UPTIME  RESTARTS  VITAL  HEALTH\n"
        );
    }

    #[test]
    fn uptimes() {
        assert_eq!(format_uptime(0.4), "0s");
        assert_eq!(format_uptime(59.9), "59s");
        assert_eq!(format_uptime(427.0), "7m07s");
        assert_eq!(format_uptime(3600.0), "1h00m");
        assert_eq!(format_uptime(2.0 * 86_400.0 + 4.0 * 3600.0 + 5.0), "2d04h");
        assert_eq!(format_uptime(-3.0), "0s");
        assert_eq!(format_uptime(f64::NAN), "0s");
    }

    #[test]
    fn daemon_paths_are_encoded() {
        assert_eq!(daemon_path("web-1.a_b", "/stop"), "/daemons/web-1.a_b/stop");
        assert_eq!(daemon_path("a b/c", ""), "/daemons/a%20b%2Fc");
    }
}

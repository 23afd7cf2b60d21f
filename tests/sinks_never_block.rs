//! Black-box tests: no sink blocks pidzero or keeps it from ending.
//!
//! - a FIFO as the log file with no reader: daemons start, stdout gets
//!   their records and one `sink_error`, SIGTERM ends pidzero at once; with
//!   a sidecar daemon reading the FIFO, records arrive through it;
//! - a stdout pipe nobody reads: a second SIGTERM, or `shutdown_timeout`
//!   after the daemons are gone, ends pidzero with its status and a line on
//!   stderr counting the records it gave up;
//! - a stdout closed at start (`>&-`) and a file sink on a full device
//!   (`/dev/full`): supervision goes on, the failing sink is reported once
//!   and counted in /metrics, the other sink keeps working;
//! - `pidzero check` refuses a `log.max_files` above its bound, with its place.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A daemon that logs `tick N` every 50 ms until stopped.
const TICKER: &str = r#"{"name":"tick","command":["/bin/sh","-c","i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"]}"#;

/// GET /metrics over the control socket.
fn metrics(socket: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect to the control socket");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: pidzero\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The value of `pidzero_sink_errors_total{sink="SINK"}`, if present.
fn sink_errors(metrics: &str, sink: &str) -> Option<u64> {
    let key = format!("pidzero_sink_errors_total{{sink=\"{sink}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter_map(|l| parse_record(l.as_bytes()))
        .collect()
}

#[test]
fn fifo_without_reader_neither_blocks_startup_nor_sigterm() {
    let dir = Dir::new("fifo-noreader");
    let fifo = dir.p("ship.fifo");
    mkfifo(&fifo);
    dir.daemons(&format!("[{TICKER}]"));
    dir.config(&format!(
        r#"{{"log":{{"log_to_file":true,"file_path":{}}},"shutdown_timeout":5}}"#,
        js(path_str(&fifo))
    ));
    let started = Instant::now();
    let mut r = pz().config_dir(&dir).spawn();
    r.wait_record("tick 3", secs(5.0), |v| is_line(v, "tick", "tick 3"));
    let error = r.wait_record("a sink_error", secs(5.0), |v| {
        is_event(v, "sink_error", None)
    });
    assert!(started.elapsed() < secs(5.0), "{:?}", started.elapsed());
    assert_eq!(error["sink"], "file", "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("No such device or address"),
        "{error}"
    );
    // Retries go on without a new report, and without stopping stdout.
    r.wait_record("tick 25", secs(10.0), |v| is_line(v, "tick", "tick 25"));
    let errors = r
        .records()
        .into_iter()
        .filter(|v| is_event(v, "sink_error", None))
        .count();
    assert_eq!(errors, 1, "{}", r.dump());
    r.signal(libc::SIGTERM);
    let asked = Instant::now();
    let exit = r.wait_exit(secs(5.0));
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(asked.elapsed() < secs(3.0), "{:?}", asked.elapsed());
}

#[test]
fn records_reach_a_fifo_read_by_a_sidecar_daemon() {
    let dir = Dir::new("fifo-sidecar");
    let fifo = dir.p("ship.fifo");
    let shipped = dir.p("shipped.log");
    mkfifo(&fifo);
    let ship = format!(
        r#"{{"name":"ship","command":["/bin/sh","-c",{}]}}"#,
        js(format!(
            "exec cat '{}' > '{}'",
            fifo.display(),
            shipped.display()
        ))
    );
    dir.daemons(&format!("[{TICKER},{ship}]"));
    dir.config(&format!(
        r#"{{"log":{{"log_to_file":true,"file_path":{}}},"shutdown_timeout":5}}"#,
        js(path_str(&fifo))
    ));
    let mut r = pz().config_dir(&dir).spawn();
    let through_fifo = || {
        json_lines(&std::fs::read_to_string(&shipped).unwrap_or_default())
            .iter()
            .filter(|v| v["source"] == "tick")
            .count()
    };
    assert!(
        wait_until(secs(15.0), || through_fifo() >= 5).is_some(),
        "no tick records through the FIFO\n{}",
        r.dump()
    );
    // stdout had them all along.
    r.wait_record("tick 3", secs(5.0), |v| is_line(v, "tick", "tick 3"));
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(secs(8.0));
    assert_eq!(exit.status(), 0, "{}", r.dump());
}

/// pidzero with its stdout a pipe that this test never reads.
struct BlockedStdout {
    child: Child,
    /// Held open (never read) so that pidzero's writes block, not fail.
    _read_end: OwnedFd,
    pidfile: std::path::PathBuf,
}

impl Drop for BlockedStdout {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill(self.child.id() as i32, libc::SIGKILL);
            let _ = self.child.wait();
        }
        if let Some(pid) = read_pid(&self.pidfile) {
            if pgrp(pid) == Some(pid) {
                kill(-pid, libc::SIGKILL);
            }
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Starts pidzero (a daemon flooding its output) with stdout a pipe nobody
/// reads, and waits until its log writer is blocked on that pipe.
fn blocked_stdout(dir: &Dir, shutdown_timeout: u32) -> BlockedStdout {
    let pidfile = dir.p("flood.pid");
    let flood = format!(
        "echo $$ > '{}'; exec yes 'a line nobody reads'",
        pidfile.display()
    );
    dir.daemons(&format!(
        r#"[{{"name":"flood","command":["/bin/sh","-c",{}]}}]"#,
        js(flood)
    ));
    dir.config(&format!(
        r#"{{"api":{{"socket":null}},"shutdown_timeout":{shutdown_timeout}}}"#
    ));
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut command = Command::new(bin());
    command.arg("--config-dir").arg(&dir.path);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PIDZERO_") {
            command.env_remove(key);
        }
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pidzero");
    let run = BlockedStdout {
        child,
        _read_end: read_end,
        pidfile,
    };
    let mut in_a_row = 0;
    let blocked = wait_until(secs(15.0), || {
        let blocked = writer_blocked_on_pipe_write(run.child.id());
        in_a_row = if blocked { in_a_row + 1 } else { 0 };
        read_pid(&run.pidfile).is_some() && in_a_row >= 3
    });
    assert!(
        blocked.is_some(),
        "pidzero's writer did not block on stdout"
    );
    run
}

impl BlockedStdout {
    /// SIGTERM, then waits until the daemon is gone (reaped by pidzero).
    fn stop_daemons(&mut self) -> Instant {
        let flood = read_pid(&self.pidfile).unwrap();
        kill(self.child.id() as i32, libc::SIGTERM);
        let gone = wait_until(secs(10.0), || {
            !Path::new(&format!("/proc/{flood}")).exists()
        });
        assert!(gone.is_some(), "the daemon was not stopped");
        Instant::now()
    }

    fn wait_exit(&mut self, timeout: Duration) -> (i32, String) {
        let exited = wait_until(timeout, || matches!(self.child.try_wait(), Ok(Some(_))));
        assert!(exited.is_some(), "pidzero did not exit within {timeout:?}");
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code().unwrap_or(-1), stderr)
    }
}

/// The records given up for stdout, from pidzero's stderr line
/// `pidzero: log records lost: stdout N (M given up at exit)`.
fn given_up_count(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("pidzero: log records lost: stdout "))
        .and_then(|rest| rest.split_once(" (")?.1.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count of given-up records on stderr:\n{stderr}"))
}

#[test]
fn second_sigterm_ends_pidzero_while_nobody_reads_its_stdout() {
    let dir = Dir::new("blocked-2term");
    // A long shutdown_timeout: only the second signal can end it in time.
    let mut run = blocked_stdout(&dir, 60);
    run.stop_daemons();
    assert!(
        matches!(run.child.try_wait(), Ok(None)),
        "pidzero waits for its stdout after the daemons are gone"
    );
    kill(run.child.id() as i32, libc::SIGTERM);
    let asked = Instant::now();
    let (status, stderr) = run.wait_exit(secs(5.0));
    assert!(asked.elapsed() < secs(4.0), "{:?}", asked.elapsed());
    assert_eq!(status, 0, "a requested shutdown exits 0: {stderr}");
    assert!(given_up_count(&stderr) > 0, "{stderr}");
}

#[test]
fn shutdown_timeout_ends_pidzero_while_nobody_reads_its_stdout() {
    let dir = Dir::new("blocked-timeout");
    let mut run = blocked_stdout(&dir, 1);
    let gone = run.stop_daemons();
    let (status, stderr) = run.wait_exit(secs(6.0));
    let took = gone.elapsed();
    assert!(took < secs(4.0), "{took:?} after the daemons were gone");
    assert!(
        took > Duration::from_millis(500),
        "gave up before shutdown_timeout: {took:?}"
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(given_up_count(&stderr) > 0, "{stderr}");
}

#[test]
fn closed_stdout_is_reported_once_and_counted_and_the_file_goes_on() {
    let dir = Dir::new("closed-stdout");
    let log = dir.p("p.log");
    let socket = unique_socket_path();
    dir.daemons(
        r#"[{"name":"d","command":["/bin/sh","-c","i=0; while [ $i -lt 100 ]; do echo l $i; i=$((i+1)); done; exec sleep 60"]}]"#,
    );
    dir.config(&format!(
        r#"{{"log":{{"log_to_file":true,"file_path":{}}},"shutdown_timeout":5}}"#,
        js(path_str(&log))
    ));
    let mut r = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .shell_prefix("exec >&-")
        .spawn();
    let file_records = || json_lines(&std::fs::read_to_string(&log).unwrap_or_default());
    let ok = wait_until(secs(10.0), || {
        let records = file_records();
        records.iter().any(|v| is_line(v, "d", "l 99"))
            && records.iter().any(|v| is_event(v, "sink_error", None))
    });
    assert!(ok.is_some(), "{:?}\n{}", file_records(), r.dump());
    let records = file_records();
    let errors: Vec<_> = records
        .iter()
        .filter(|v| is_event(v, "sink_error", None))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["sink"], "stdout");
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("Bad file descriptor"),
        "{}",
        errors[0]
    );
    let metrics = metrics(&socket);
    assert!(
        sink_errors(&metrics, "stdout").is_some_and(|n| n >= 1),
        "{metrics}"
    );
    assert_eq!(sink_errors(&metrics, "file"), Some(0), "{metrics}");
    r.assert_running();
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(secs(8.0));
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(
        file_records()
            .iter()
            .any(|v| is_event(v, "exited", Some("d"))),
        "the file has the end too"
    );
    assert!(
        r.stderr_text()
            .contains("pidzero: log records lost: stdout "),
        "{}",
        r.dump()
    );
}

#[test]
fn full_device_as_log_file_is_reported_once_and_stdout_goes_on() {
    let dir = Dir::new("dev-full");
    let socket = unique_socket_path();
    dir.daemons(
        r#"[{"name":"d","command":["/bin/sh","-c","i=0; while [ $i -lt 200 ]; do echo l $i; i=$((i+1)); done; exec sleep 60"]}]"#,
    );
    dir.config(
        r#"{"log":{"log_to_file":true,"file_path":"/dev/full","max_file_size":100},"shutdown_timeout":5}"#,
    );
    let mut r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    r.wait_line("d", "l 199");
    let error = r.wait_event("sink_error", None);
    assert_eq!(error["sink"], "file", "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("No space left"),
        "{error}"
    );
    let metrics = metrics(&socket);
    assert!(
        sink_errors(&metrics, "file").is_some_and(|n| n >= 1),
        "{metrics}"
    );
    r.assert_running();
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(secs(8.0));
    assert_eq!(exit.status(), 0, "{}", r.dump());
    let errors = r
        .records()
        .into_iter()
        .filter(|v| is_event(v, "sink_error", None))
        .count();
    assert_eq!(errors, 1, "{}", r.dump());
    let kind = std::fs::metadata("/dev/full").unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&kind),
        "a device is never rotated"
    );
    assert!(
        r.stderr_text().contains("pidzero: log records lost: file "),
        "{}",
        r.dump()
    );
}

#[test]
fn check_refuses_max_files_above_its_bound_with_its_place() {
    let dir = Dir::new("max-files");
    dir.daemons(r#"[{"name":"d","command":"true"}]"#);
    dir.config("{\n  \"log\": {\n    \"max_files\": 100000000\n  }\n}\n");
    let (exit, _, stderr) = run_cmd(
        Command::new(bin())
            .arg("check")
            .arg("--config-dir")
            .arg(&dir.path),
        DEADLINE,
    );
    assert_eq!(exit.status(), 2, "{stderr}");
    assert!(
        stderr.contains(
            "config.json:3:18: field log.max_files: must be at most 1000, found 100000000"
        ),
        "{stderr}"
    );
}

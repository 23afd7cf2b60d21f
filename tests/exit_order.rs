//! §7: a daemon's output and pidzero's record of its exit are in order.
//!
//! A daemon that prints a burst and exits at once leaves its last lines in
//! the pipe when pidzero reaps it; the `exited` record must still come after
//! them, in every sink, and the next instance's `starting`, `started` and
//! lines after that `exited`. Many short-lived daemons restarted a few times
//! make the race likely: each instance is one chance for the record to
//! overtake the lines.
//!
//! The wait for the last lines is bounded: a grandchild that keeps the pipe
//! open after the daemon exited does not hold its `exited` record back.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::Value;

/// Daemons running at once.
const DAEMONS: usize = 16;
/// Lines each instance prints: about 14 KiB, well within a pipe's 64 KiB,
/// so `seq` writes them all and exits without waiting for pidzero.
const LINES: usize = 3000;
/// Restarts of each daemon (so `RESTARTS + 1` instances).
const RESTARTS: usize = 2;

/// What one daemon's records say, in order: its lines and pidzero's events
/// about it, as short tokens.
fn tokens_of(records: &[Value], daemon: &str) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| {
            if r["source"] == daemon {
                return Some(format!("line {}", r["line"].as_str().unwrap_or("?")));
            }
            if r["source"] != "pidzero" || r["daemon"] != daemon {
                return None;
            }
            let event = r["event"].as_str().unwrap_or("?");
            match event {
                // The last `exited` says it gave up; it has no pid.
                "exited" if r.get("pid").is_none() => Some("gave up".to_string()),
                "starting" | "started" | "exited" | "restarting" => Some(event.to_string()),
                _ => None,
            }
        })
        .collect()
}

/// The tokens every daemon must show: each instance starts, prints all its
/// lines, exits, and (but the last) is restarted.
fn expected_tokens() -> Vec<String> {
    let mut expected = Vec::new();
    for instance in 0..=RESTARTS {
        expected.push("starting".to_string());
        expected.push("started".to_string());
        expected.extend((1..=LINES).map(|i| format!("line {i}")));
        expected.push("exited".to_string());
        if instance < RESTARTS {
            expected.push("restarting".to_string());
        }
    }
    expected.push("gave up".to_string());
    expected
}

/// Where `got` first differs from `expected`, with a little context.
fn first_difference(got: &[String], expected: &[String]) -> Option<String> {
    let at = (0..got.len().max(expected.len())).find(|&i| got.get(i) != expected.get(i))?;
    let around = |v: &[String]| v[at.saturating_sub(3)..(at + 4).min(v.len())].join(" | ");
    Some(format!(
        "at {at} of {} (expected {}): got [{}], expected [{}]",
        got.len(),
        expected.len(),
        around(got),
        around(expected)
    ))
}

fn parse_all(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:.300}")))
        .collect()
}

/// One run of [`DAEMONS`] daemons, each restarted [`RESTARTS`] times;
/// returns, per sink, what went wrong for each daemon.
fn one_run(run: usize) -> Vec<String> {
    let d = Dir::new("exit-order");
    let daemons: Vec<Value> = (0..DAEMONS)
        .map(|i| {
            serde_json::json!({
                "name": format!("d{i}"),
                "command": ["seq", "1", LINES.to_string()],
                "restart": "always",
                "restart_delay": 0.1,
                "max_restarts": RESTARTS,
            })
        })
        .collect();
    d.daemons_value(&Value::Array(daemons));
    let file = d.p("pidzero.log");
    d.config(&format!(
        r#"{{"log":{{"log_to_file":true,"max_file_size":0,"file_path":{}}},"api":{{"socket":null}}}}"#,
        serde_json::to_string(file.to_str().unwrap()).unwrap()
    ));
    let finished = pz().config_dir(&d).run(secs(60.0));
    // Every daemon ends exiting 0 and stays down: pidzero exits 0.
    assert_eq!(finished.status(), 0, "run {run}\n{}", finished.dump());
    let from_file = parse_all(&d.read("pidzero.log"));
    let expected = expected_tokens();
    let mut problems = Vec::new();
    for (sink, records) in [("stdout", &finished.records), ("file", &from_file)] {
        for i in 0..DAEMONS {
            let name = format!("d{i}");
            if let Some(diff) = first_difference(&tokens_of(records, &name), &expected) {
                problems.push(format!("run {run}, {sink}, {name}: {diff}"));
            }
        }
    }
    problems
}

#[test]
fn each_instance_prints_all_its_lines_before_its_exit_and_after_its_start() {
    let mut problems = Vec::new();
    let mut failed_runs = BTreeMap::new();
    for run in 0..3 {
        let found = one_run(run);
        if !found.is_empty() {
            failed_runs.insert(run, found.len());
        }
        problems.extend(found);
    }
    assert!(
        problems.is_empty(),
        "{} daemon records out of order (runs with problems: {failed_runs:?}):\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
}

/// Kills a process by pid when dropped, so that a failed test leaves none.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill(self.0, libc::SIGKILL);
    }
}

/// A grandchild in a session of its own keeps the daemon's stdout open after
/// the daemon exited (and survives the stop signal sent to the daemon's
/// group): the daemon's lines still come before its `exited` record, and
/// that record is not held back until the grandchild ends.
#[test]
fn a_grandchild_holding_the_pipe_does_not_hold_back_the_exit() {
    let d = Dir::new("exit-order-grandchild");
    let pid_file = d.s("grandchild.pid");
    let script = format!(
        "seq 1 2000; setsid sh -c 'echo $$ > {pid_file}; exec sleep 60' & \
         while [ ! -s {pid_file} ]; do :; done; echo last; exit 3"
    );
    d.daemons_value(&serde_json::json!([
        {"name": "holder", "command": ["/bin/sh", "-c", script]},
        {"name": "keep", "command": ["sleep", "60"]},
    ]));
    d.config(r#"{"api":{"socket":null}}"#);
    let r = pz().config_dir(&d).spawn();
    let grandchild = KillOnDrop({
        d.wait_file("grandchild.pid", DEADLINE);
        let mut pid = None;
        wait_until(DEADLINE, || {
            pid = d.read("grandchild.pid").trim().parse().ok();
            pid.is_some()
        });
        pid.unwrap_or_else(|| panic!("no grandchild pid\n{}", r.dump()))
    });
    let exited = r.wait_record("holder's exited event", DEADLINE, |rec| {
        is_event(rec, "exited", Some("holder"))
    });
    let grandchild_alive = alive(grandchild.0);
    drop(grandchild);
    assert_eq!(exited["status"], 3, "{exited}");
    assert!(
        grandchild_alive,
        "the grandchild still held the pipe when the exit was logged"
    );
    let records = r.records();
    let position = |f: &dyn Fn(&Value) -> bool| records.iter().position(f);
    let last_line = position(&|rec| is_line(rec, "holder", "last"));
    let exit_record = position(&|rec| is_event(rec, "exited", Some("holder")));
    assert!(
        last_line.is_some() && last_line < exit_record,
        "last line at {last_line:?}, exited at {exit_record:?}\n{}",
        r.dump()
    );
    let lines: Vec<&str> = records
        .iter()
        .filter(|rec| rec["source"] == "holder")
        .filter_map(|rec| rec["line"].as_str())
        .collect();
    let expected: Vec<String> = (1..=2000)
        .map(|i| i.to_string())
        .chain(["last".to_string()])
        .collect();
    assert_eq!(lines, expected, "holder's lines\n{}", r.dump());
}

/// While stdout takes nothing, the readers wait for the writer and a reaped
/// instance's last lines stay in its reader: its `exited` record is held,
/// and the restarted instance's lines must wait behind it too, not slip
/// into the channel first once stdout takes records again.
#[test]
fn a_restarted_instance_waits_for_the_previous_exit_while_stdout_is_blocked() {
    let d = Dir::new("exit-order-blocked");
    let count = d.s("instances");
    let lines = 2000;
    d.daemons_value(&serde_json::json!([{
        "name": "x",
        "command": ["/bin/sh", "-c", format!("echo >> {count}; seq 1 {lines}")],
        "restart": "always",
        "restart_delay": 0.1,
        "max_restarts": RESTARTS,
    }]));
    d.config(r#"{"api":{"socket":null}}"#);
    let mut command = std::process::Command::new(bin());
    without_pidzero_env(&mut command);
    let mut child = command
        .arg("--config-dir")
        .arg(&d.path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id() as i32);
    // Nobody reads stdout until every instance has started: the first
    // instance's lines fill the pipe, and the later instances start while
    // the writer waits for it.
    let started = wait_until(secs(20.0), || {
        d.read("instances").lines().count() > RESTARTS
    });
    let mut out = Vec::new();
    let mut stdout = child.stdout.take().unwrap();
    std::io::Read::read_to_end(&mut stdout, &mut out).unwrap();
    let status = child.wait().unwrap();
    drop(guard);
    assert!(started.is_some(), "the instances did not all start");
    assert!(status.success(), "{status}");
    let records = parse_all(&String::from_utf8_lossy(&out));
    let mut expected = Vec::new();
    for instance in 0..=RESTARTS {
        expected.extend(["starting".to_string(), "started".to_string()]);
        expected.extend((1..=lines).map(|i| format!("line {i}")));
        expected.push("exited".to_string());
        if instance < RESTARTS {
            expected.push("restarting".to_string());
        }
    }
    expected.push("gave up".to_string());
    let got = tokens_of(&records, "x");
    if let Some(diff) = first_difference(&got, &expected) {
        panic!("x's records out of order: {diff}");
    }
}

//! The stop and exit paths: what is left of a daemon's process group when
//! its main process exits (one signal that both stops the leftovers and
//! tells whether any are left), and an exit that still writes every record.

mod common;

use common::*;
use std::time::Instant;

/// A leftover that honours SIGTERM is gone at once, long before its
/// `stop_timeout`: the group gets the stop signal when its leader is
/// reaped, not only a check that it still holds someone.
#[test]
fn a_leftover_gets_the_stop_signal_as_soon_as_its_leader_exits() {
    let d = Dir::new("leftoverterm");
    d.daemons(
        r#"[
  {"name": "parent", "stop_timeout": 60, "command": ["/bin/sh", "-c", "sleep 300 & echo child=$!"]},
  {"name": "keeper", "vital": true, "command": ["/bin/sh", "-c", "while :; do sleep 0.05; done"]}
]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    r.daemon_pid("keeper");
    let rec = r.wait_record("child=PID", DEADLINE, |r| {
        r["source"] == "parent" && r["line"].as_str().unwrap_or("").starts_with("child=")
    });
    let child: i32 = rec["line"].as_str().unwrap()[6..].parse().unwrap();
    let gone = wait_until(secs(5.0), || !alive(child));
    kill(child, libc::SIGKILL);
    assert!(gone.is_some(), "leftover {child} still there\n{}", r.dump());
    assert!(
        !r.records()
            .iter()
            .any(|r| is_event(r, "killed", Some("parent"))),
        "stopped by SIGKILL, not by its stop signal\n{}",
        r.dump()
    );
    r.assert_running();
}

/// The leader exits first and its leftover ignores SIGTERM: pidzero still
/// sends it SIGKILL after `stop_timeout`, and only exits once the group is
/// empty.
#[test]
fn the_end_waits_for_a_leftover_that_ignores_term_then_kills_it() {
    let d = Dir::new("leftoverend");
    d.daemons(
        r#"[{"name": "parent", "stop_timeout": 1,
  "command": ["/bin/sh", "-c", "trap '' TERM; sleep 300 & echo child=$!"]}]"#,
    );
    let t0 = Instant::now();
    let mut r = pz().config_dir(&d).spawn();
    let rec = r.wait_record("child=PID", DEADLINE, |r| {
        r["source"] == "parent" && r["line"].as_str().unwrap_or("").starts_with("child=")
    });
    let child: i32 = rec["line"].as_str().unwrap()[6..].parse().unwrap();
    let exit = r.wait_exit(DEADLINE);
    let took = t0.elapsed();
    let leftover_alive = alive(child);
    kill(child, libc::SIGKILL);
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(
        !leftover_alive,
        "pidzero exited before its leftover {child}"
    );
    assert!(
        took >= secs(0.7),
        "exited after {took:?}: before the leftover's stop_timeout"
    );
    let records = r.records();
    let exited = records
        .iter()
        .position(|r| is_event(r, "exited", Some("parent")));
    let killed = records
        .iter()
        .position(|r| is_event(r, "killed", Some("parent")));
    assert!(
        matches!((exited, killed), (Some(e), Some(k)) if e < k),
        "want exited, then killed\n{}",
        r.dump()
    );
}

/// A group whose leader was its only member is known empty from the one
/// signal sent to it: pidzero does not wait for the stop deadline (60 s
/// here) before it sees that nothing is left.
#[test]
fn a_group_left_empty_by_its_leader_ends_at_once() {
    let d = Dir::new("emptygroup");
    d.daemons(
        r#"[{"name": "a", "stop_timeout": 60, "command": ["/bin/sh", "-c", "echo bye"]},
  {"name": "b", "stop_timeout": 60, "command": ["/bin/sh", "-c", "sleep 0.2"]}]"#,
    );
    let t0 = Instant::now();
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(t0.elapsed() < secs(5.0), "took {:?}", t0.elapsed());
    assert!(f.find(|r| is_line(r, "a", "bye")).is_some(), "{}", f.dump());
}

/// On SIGTERM, every daemon's last lines and every `exited` record reach
/// stdout before pidzero exits, however many daemons stop at once and
/// however much they write on the way out: the exit no longer waits for the
/// log thread's teardown, only for its writes.
#[test]
fn every_last_line_and_exit_record_is_written_before_the_exit() {
    const N: usize = 20;
    let Some(pz) = pz().ns("lastlines") else {
        return;
    };
    let d = Dir::new("lastlines");
    let daemons: Vec<String> = (0..N)
        .map(|i| {
            format!(
                r#"{{"name": "d{i}", "command": ["/bin/sh", "-c",
  "trap 'seq 1 3000; echo bye-{i}; exit 0' TERM; echo up-{i}; while :; do sleep 0.05; done"]}}"#
            )
        })
        .collect();
    d.daemons(&format!("[{}]", daemons.join(",\n")));
    let mut r = pz.config_dir(&d).spawn();
    for i in 0..N {
        r.wait_line(&format!("d{i}"), &format!("up-{i}"));
    }
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0, "{}", r.dump());
    let records = r.records();
    let lines = records.iter().filter(|r| r["stream"] == "stdout").count();
    assert_eq!(lines, N * (3000 + 2), "{}", r.stderr_text());
    for i in 0..N {
        let name = format!("d{i}");
        let bye = records
            .iter()
            .position(|r| is_line(r, &name, &format!("bye-{i}")));
        let exited = records
            .iter()
            .position(|r| is_event(r, "exited", Some(&name)));
        assert!(
            matches!((bye, exited), (Some(b), Some(e)) if b < e),
            "{name}: want its last line, then its exited record\n{}",
            r.dump()
        );
    }
}

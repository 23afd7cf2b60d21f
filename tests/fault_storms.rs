//! Fault suite, storms: pidzero as PID 1 under a flood of signals, of orphans
//! and of crash-looping daemons. After each storm the same four things must
//! hold: pidzero still supervises (a vital exit is acted on within 100 ms),
//! no zombie is left, its descriptors are as many as before, and a crash loop
//! costs it under 1 % of a core.

mod common;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use serde_json::Value;

/// The longest a vital exit may take to become a `vital_exit` event.
const VITAL_EXIT_BOUND: Duration = Duration::from_millis(100);

/// A FIFO the vital daemon blocks on: writing a line to it makes the daemon
/// exit 7 at once, so the test decides the instant of the vital exit.
fn make_fifo(d: &Dir, name: &str) -> String {
    mkfifo(&d.p(name));
    d.s(name)
}

/// The vital daemon's entry: prints `ready`, then exits 7 when the FIFO gets
/// a line. It ignores the USR1 of the signal storm (forwarded to every daemon).
fn vital_on_fifo(fifo: &str) -> Value {
    serde_json::json!({
        "name": "keeper",
        "vital": true,
        "command": ["/bin/sh", "-c",
            format!("trap '' USR1; echo ready; read x < {fifo}; exit 7")],
    })
}

/// Makes the vital daemon exit and asserts pidzero names it in a
/// `vital_exit` event within [`VITAL_EXIT_BOUND`], then exits 7.
fn assert_vital_exit_prompt(r: &mut Running, fifo: &str) {
    let before = SystemTime::now();
    // Without blocking: a daemon that is gone already leaves no reader (ENXIO).
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .unwrap_or_else(|e| panic!("the vital daemon is not reading {fifo}: {e}\n{}", r.dump()));
    w.write_all(b"go\n").unwrap();
    drop(w);
    let ev = r.wait_event("vital_exit", Some("keeper"));
    let at = humantime::parse_rfc3339(ev["timestamp"].as_str().unwrap()).unwrap();
    // The record's timestamp is cut to the millisecond: allow that one.
    let took = at
        .duration_since(before)
        .unwrap_or_default()
        .saturating_sub(Duration::from_millis(1));
    assert!(
        took <= VITAL_EXIT_BOUND,
        "vital exit acted on after {took:?}\n{}",
        r.dump()
    );
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 7, "{}", r.dump());
}

fn no_zombies_soon(r: &Running) {
    wait_until(DEADLINE, || zombie_children(r.pid).is_empty())
        .unwrap_or_else(|| panic!("zombies left: {:?}\n{}", zombie_children(r.pid), r.dump()));
}

fn fds_back_to(r: &Running, before: usize) {
    wait_until(DEADLINE, || fd_count(r.pid) <= before).unwrap_or_else(|| {
        panic!(
            "pidzero holds {} fds, {before} before the storm\n{}",
            fd_count(r.pid),
            r.dump()
        )
    });
}

#[test]
fn signal_storm_of_usr1_and_chld_leaves_supervision_intact() {
    let d = Dir::new("storm-signals");
    let fifo = make_fifo(&d, "keeper.fifo");
    d.daemons_value(&serde_json::json!([
        vital_on_fifo(&fifo),
        {"name": "listener", "command": ["/bin/sh", "-c",
            "trap 'n=$((n+1))' USR1; echo up; while :; do sleep 1; done"]},
    ]));
    let Some(p) = pz().config_dir(&d).ns("signal_storm") else {
        return;
    };
    let mut r = p.spawn();
    r.wait_line("keeper", "ready");
    r.wait_line("listener", "up");
    let fds = fd_count(r.pid);

    for _ in 0..10_000 {
        kill(r.pid, libc::SIGUSR1);
        kill(r.pid, libc::SIGCHLD);
    }
    // The storm is over once pidzero has forwarded the last USR1 it read.
    r.wait_event("signal_forwarded", None);
    r.assert_running();
    no_zombies_soon(&r);
    fds_back_to(&r, fds);
    assert_vital_exit_prompt(&mut r, &fifo);
}

#[test]
fn orphan_storm_is_reaped_completely() {
    let d = Dir::new("storm-orphans");
    let fifo = make_fifo(&d, "keeper.fifo");
    d.daemons_value(&serde_json::json!([
        vital_on_fifo(&fifo),
        // Each subshell leaves a `sleep 0` behind that pidzero adopts.
        {"name": "orphaner", "command": ["/bin/sh", "-c",
            "i=0; while [ $i -lt 2000 ]; do (sleep 0 &); i=$((i+1)); done; echo done; exec sleep 100000"]},
    ]));
    let Some(p) = pz().config_dir(&d).ns("orphan_storm") else {
        return;
    };
    let mut r = p.spawn();
    r.wait_line("keeper", "ready");
    let fds = fd_count(r.pid);
    r.wait_line("orphaner", "done");
    // Every adopted orphan has ended and been reaped: pidzero's only
    // children left are its two daemons.
    wait_until(DEADLINE, || children(r.pid).len() == 2)
        .unwrap_or_else(|| panic!("children left: {:?}\n{}", children(r.pid), r.dump()));
    no_zombies_soon(&r);
    fds_back_to(&r, fds);
    assert_vital_exit_prompt(&mut r, &fifo);
}

#[test]
fn crash_loops_with_every_restart_setting_cost_little() {
    let d = Dir::new("storm-crash");
    let fifo = make_fifo(&d, "keeper.fifo");
    d.daemons_value(&serde_json::json!([
        vital_on_fifo(&fifo),
        {"name": "always0", "command": ["/bin/sh", "-c", "exit 3"],
         "restart": "always", "restart_delay": 0},
        {"name": "failure0", "command": ["/bin/sh", "-c", "exit 1"],
         "restart": "on-failure", "restart_delay": 0},
        {"name": "always-ok", "command": ["/bin/sh", "-c", "exit 0"],
         "restart": "always", "restart_delay": 0},
        {"name": "capped", "command": ["/bin/sh", "-c", "exit 2"],
         "restart": "always", "restart_delay": 0, "max_restarts": 3},
        {"name": "never", "command": ["/bin/sh", "-c", "exit 4"], "restart": "never"},
        {"name": "missing", "command": ["/nonexistent/program"],
         "restart": "always", "restart_delay": 0},
    ]));
    let Some(p) = pz().config_dir(&d).ns("crash_loops") else {
        return;
    };
    let mut r = p.spawn();
    r.wait_line("keeper", "ready");
    let fds = fd_count(r.pid);
    // Let the backoff settle, then measure a window of steady crash looping.
    let settle = Instant::now() + Duration::from_secs(2);
    wait_until(DEADLINE, || Instant::now() >= settle);
    let cpu0 = cpu_time(r.pid);
    let t0 = Instant::now();
    let starts0 = r.records().len();
    let window_end = t0 + Duration::from_secs(3);
    wait_until(DEADLINE, || Instant::now() >= window_end);
    let cpu = cpu_time(r.pid) - cpu0;
    let wall = t0.elapsed();
    let records = r.records().len() - starts0;
    assert!(
        cpu.as_secs_f64() < wall.as_secs_f64() * 0.01 + 0.011,
        "pidzero used {cpu:?} of CPU in {wall:?} of crash loops ({records} records)\n{}",
        r.dump()
    );
    let capped_starts = r
        .records()
        .iter()
        .filter(|x| is_event(x, "starting", Some("capped")))
        .count();
    assert_eq!(
        capped_starts, 4,
        "max_restarts 3: one start and three restarts"
    );
    let never_starts = r
        .records()
        .iter()
        .filter(|x| is_event(x, "starting", Some("never")))
        .count();
    assert_eq!(never_starts, 1);
    r.assert_running();
    no_zombies_soon(&r);
    fds_back_to(&r, fds);
    assert_vital_exit_prompt(&mut r, &fifo);
}

//! The shipped examples run as the README says.

mod common;

use common::*;
use std::time::Instant;

fn demo_dir() -> String {
    manifest_dir()
        .join("examples/demo")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn demo_passes_check() {
    let f = pz()
        .args(["check", "--config-dir", &demo_dir()])
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
}

#[test]
fn demo_logs_and_fails_fast_when_the_vital_daemon_is_killed() {
    let mut r = pz().args(["--config-dir", &demo_dir()]).spawn();
    let web = r.daemon_pid("web");
    let ticker = r.daemon_pid("ticker");
    r.wait_line("web", "hello from web");
    r.wait_line("ticker", "tick 1 (demo)");
    let t0 = Instant::now();
    kill(web, libc::SIGKILL);
    let exit = r.wait_exit(DEADLINE);
    let took = t0.elapsed();
    assert_ne!(exit.status(), 0, "{}", r.dump());
    assert_eq!(exit.status(), 137, "{}", r.dump());
    assert!(
        took < secs(1.0),
        "took {took:?} to exit after the vital daemon died"
    );
    assert!(!alive(ticker), "ticker still running");
    let ev = r.wait_event("vital_exit", Some("web"));
    assert_eq!(ev["status"], 137, "{ev}");
    let tick = r.wait_line("ticker", "tick 1 (demo)");
    assert_eq!(tick["stream"], "stderr");
}

#[test]
fn demo_stops_on_sigterm() {
    let mut r = pz().args(["--config-dir", &demo_dir()]).spawn();
    r.wait_line("web", "hello from web");
    r.wait_event("started", Some("ticker"));
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0, "{}", r.dump());
}

#[test]
fn main_command_example() {
    let dir = manifest_dir().join("examples/main-command");
    let f = pz()
        .args(["--config-dir", dir.to_str().unwrap(), "--"])
        .args(["/bin/sh", "-c", "sleep 0.3; echo main done; exit 3"])
        .run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        f.stdout_text().lines().any(|l| l == "main done"),
        "{}",
        f.dump()
    );
    assert!(
        f.find(|r| is_line(r, "sidecar", "sidecar alive (metrics)"))
            .is_some(),
        "{}",
        f.dump()
    );
}

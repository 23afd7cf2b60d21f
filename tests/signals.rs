//! §6 Signals and shutdown. Each test runs twice: with pidzero as an
//! ordinary process, and as PID 1 of a PID namespace (where the kernel drops
//! signals PID 1 has no handler for, so forwarding must be deliberate).

mod common;

use common::*;
use std::time::Instant;

/// A daemon script that logs `ready`, logs `got-SIG` for each signal in
/// `echo_sigs`, and on `stop_sig` touches `<name>.stopped` and exits 0.
fn trap_script(d: &Dir, name: &str, stop_sig: &str, echo_sigs: &[&str]) -> String {
    let mut body = String::new();
    for s in echo_sigs {
        body.push_str(&format!("trap 'echo got-{s}' {s}\n"));
    }
    body.push_str(&format!(
        "trap 'touch {}; exit 0' {stop_sig}\necho ready\nwhile :; do sleep 0.05; done",
        d.s(&format!("{name}.stopped"))
    ));
    d.script(&format!("{name}.sh"), &body)
}

fn start(d: &Dir, ns: bool, test: &str) -> Option<Running> {
    let b = pz().config_dir(d);
    let b = if ns { b.ns(test)? } else { b };
    Some(b.spawn())
}

fn graceful(ns: bool, sig: i32) {
    let d = Dir::new("graceful");
    let a = trap_script(&d, "a", "TERM", &[]);
    let b = trap_script(&d, "b", "TERM", &[]);
    d.daemons(&format!(
        r#"[{{"name": "a", "command": [{}]}}, {{"name": "b", "vital": true, "command": [{}]}}]"#,
        js(&a),
        js(&b)
    ));
    let Some(mut r) = start(&d, ns, "graceful") else {
        return;
    };
    r.wait_line("a", "ready");
    r.wait_line("b", "ready");
    let t0 = Instant::now();
    r.signal(sig);
    let exit = r.wait_exit(DEADLINE);
    let took = t0.elapsed();
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(
        d.exists("a.stopped") && d.exists("b.stopped"),
        "{}",
        r.dump()
    );
    // Shutdown takes as long as the daemons take, not the 10 s default timeout.
    assert!(took < secs(2.0), "shutdown took {took:?}");
    let ev = r.wait_event("shutdown", None);
    assert!(ev["reason"].is_string(), "{ev}");
    // A vital daemon stopped during shutdown is no vital_exit.
    assert!(
        !r.records().iter().any(|r| is_event(r, "vital_exit", None)),
        "{}",
        r.dump()
    );
}

#[test]
fn sigterm_graceful_shutdown() {
    graceful(false, libc::SIGTERM);
}

#[test]
fn sigterm_graceful_shutdown_as_pid1() {
    graceful(true, libc::SIGTERM);
}

#[test]
fn sigint_and_sigquit_graceful_shutdown() {
    graceful(false, libc::SIGINT);
    graceful(false, libc::SIGQUIT);
}

#[test]
fn shutdown_event_names_the_signal() {
    let d = Dir::new("shutdownev");
    let a = trap_script(&d, "a", "TERM", &[]);
    d.daemons(&format!(r#"[{{"name": "a", "command": [{}]}}]"#, js(&a)));
    let mut r = pz().config_dir(&d).spawn();
    r.wait_line("a", "ready");
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
    let ev = r.wait_event("shutdown", None);
    assert_eq!(ev["signal"], "SIGTERM", "{ev}");
}

#[test]
fn per_daemon_stop_signal() {
    let d = Dir::new("stopsig");
    let u = trap_script(&d, "u", "USR1", &[]);
    let i = trap_script(&d, "i", "INT", &[]);
    let h = trap_script(&d, "h", "HUP", &[]);
    d.daemons(&format!(
        r#"[
  {{"name": "u", "stop_signal": "USR1", "command": [{}]}},
  {{"name": "i", "stop_signal": 2, "command": [{}]}},
  {{"name": "h", "stop_signal": "SIGHUP", "command": [{}]}}
]"#,
        js(&u),
        js(&i),
        js(&h)
    ));
    let mut r = pz().config_dir(&d).spawn();
    for n in ["u", "i", "h"] {
        r.wait_line(n, "ready");
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
    for n in ["u", "i", "h"] {
        assert!(
            d.exists(&format!("{n}.stopped")),
            "{n} did not get its stop signal\n{}",
            r.dump()
        );
    }
}

fn ignoring_term_killed_after_stop_timeout(ns: bool) {
    let d = Dir::new("stoptimeout");
    d.daemons(
        r#"[
  {"name": "stubborn", "stop_timeout": 1.5,
   "command": ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]},
  {"name": "polite", "command": ["/bin/sh", "-c", "echo ready; while :; do sleep 0.05; done"]}
]"#,
    );
    let Some(mut r) = start(&d, ns, "ignoring_term_killed_after_stop_timeout") else {
        return;
    };
    let pid = r.daemon_pid("stubborn");
    r.wait_line("stubborn", "ready");
    r.wait_line("polite", "ready");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    let took = t0.elapsed();
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(
        took >= secs(1.4),
        "SIGKILL after {took:?}, before stop_timeout"
    );
    assert!(
        took < secs(2.5),
        "shutdown took {took:?}, stop_timeout is 1.5 s"
    );
    let ev = r.wait_event("killed", Some("stubborn"));
    assert_eq!(ev["signal"], "SIGKILL", "{ev}");
    if !ns {
        assert!(!alive(pid));
    }
}

#[test]
fn ignoring_term_is_killed_after_stop_timeout() {
    ignoring_term_killed_after_stop_timeout(false);
}

#[test]
fn ignoring_term_is_killed_after_stop_timeout_as_pid1() {
    ignoring_term_killed_after_stop_timeout(true);
}

#[test]
fn shutdown_timeout_from_config() {
    let d = Dir::new("shuttimeout");
    d.config(r#"{"shutdown_timeout": 1}"#);
    d.daemons(
        r#"[{"name": "stubborn",
   "command": ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]}]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    r.wait_line("stubborn", "ready");
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    let took = t0.elapsed();
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(took >= secs(0.9), "killed after {took:?}");
    assert!(
        took < secs(2.0),
        "shutdown took {took:?}, shutdown_timeout is 1 s"
    );
}

#[test]
fn second_sigterm_forces_kill() {
    let d = Dir::new("secondterm");
    d.daemons(
        r#"[{"name": "stubborn", "stop_timeout": 30,
   "command": ["/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"]}]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    let pid = r.daemon_pid("stubborn");
    r.wait_line("stubborn", "ready");
    r.signal(libc::SIGTERM);
    r.wait_event("shutdown", None);
    let t0 = Instant::now();
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert!(t0.elapsed() < secs(1.0), "took {:?}", t0.elapsed());
    assert!(exit.status() == 0 || exit.status() == 1, "{}", r.dump());
    assert!(!alive(pid));
}

fn forwarded(ns: bool) {
    let d = Dir::new("forward");
    let sigs = [
        "HUP", "USR1", "USR2", "WINCH", "ALRM", "SEGV", "ILL", "FPE", "BUS", "ABRT", "TRAP", "SYS",
    ];
    let a = trap_script(&d, "a", "TERM", &sigs);
    let b = trap_script(&d, "b", "TERM", &sigs);
    d.daemons(&format!(
        r#"[{{"name": "a", "command": [{}]}}, {{"name": "b", "command": [{}]}}]"#,
        js(&a),
        js(&b)
    ));
    let Some(mut r) = start(&d, ns, "forwarded") else {
        return;
    };
    r.wait_line("a", "ready");
    r.wait_line("b", "ready");
    for s in sigs {
        r.signal(signal_number(s));
        let got = format!("got-{s}");
        r.wait_line("a", &got);
        r.wait_line("b", &got);
        let ev = r.wait_record(&format!("signal_forwarded {s}"), DEADLINE, |r| {
            is_event(r, "signal_forwarded", None) && r["signal"] == format!("SIG{s}")
        });
        assert!(ev["level"].is_string(), "{ev}");
        r.assert_running();
    }
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

#[test]
fn other_signals_are_forwarded() {
    forwarded(false);
}

#[test]
fn other_signals_are_forwarded_as_pid1() {
    forwarded(true);
}

fn grandchildren(ns: bool) {
    let d = Dir::new("grandchildren");
    let gc = d.script(
        "gc.sh",
        &format!(
            "trap 'touch {}; exit 0' TERM\necho gc-ready\nwhile :; do sleep 0.05; done",
            d.s("gc.stopped")
        ),
    );
    // The daemon's shell starts a child shell, which starts the grandchild;
    // the daemon itself survives SIGTERM, so only a signal to the whole group
    // reaches the grandchild before the stop_timeout's SIGKILL.
    let parent = d.script(
        "parent.sh",
        &format!(
            "trap 'echo parent-got-term' TERM\n/bin/sh -c '{gc} & wait' &\nwhile :; do sleep 0.05; done"
        ),
    );
    d.daemons(&format!(
        r#"[{{"name": "p", "stop_timeout": 3, "command": [{}]}}]"#,
        js(&parent)
    ));
    let Some(mut r) = start(&d, ns, "grandchildren") else {
        return;
    };
    r.wait_line("p", "gc-ready");
    r.signal(libc::SIGTERM);
    r.wait_line("p", "parent-got-term");
    d.wait_file("gc.stopped", secs(2.0));
    r.assert_running();
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

#[test]
fn sigterm_reaches_grandchildren() {
    grandchildren(false);
}

#[test]
fn sigterm_reaches_grandchildren_as_pid1() {
    grandchildren(true);
}

#[test]
fn sigpipe_does_not_kill_pidzero() {
    let d = Dir::new("sigpipe");
    d.daemons(
        r#"[{"name": "a", "command": ["/bin/sh", "-c", "echo ready; while :; do sleep 0.05; done"]}]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    r.wait_line("a", "ready");
    r.signal(libc::SIGPIPE);
    r.signal(libc::SIGUSR1); // forwarded: kills the daemon (default action)
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.signal, None, "pidzero died of a signal\n{}", r.dump());
}

#[test]
fn no_wakeups_while_idle() {
    let d = Dir::new("idle");
    d.daemons(r#"[{"name": "quiet", "vital": true, "command": "sleep 300"}]"#);
    let mut r = pz().config_dir(&d).spawn();
    r.daemon_pid("quiet");
    // Let start-up settle: wait until the count stops moving for 200 ms.
    let delta =
        wakeups_once_idle(r.pid).unwrap_or_else(|| panic!("pidzero never goes idle\n{}", r.dump()));
    assert!(delta <= 2, "{delta} wake-ups in 2 s while idle");
    r.assert_running();
}

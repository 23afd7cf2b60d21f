//! §5 Lifecycle and §9 exit statuses: preflight, vital exits, the
//! daemonizing hint, process-group clean-up, exit when nothing is left.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

/// daemons.json whose first daemon (non-vital) would create a marker file,
/// followed by `rest`.
fn with_marker(d: &Dir, rest: &str) {
    d.daemons(&format!(
        r#"[
  {{"name": "marker", "command": ["/bin/touch", {}]}},
  {rest}
]"#,
        js(d.s("started"))
    ));
}

#[test]
fn preflight_vital_not_found_is_127_nothing_started() {
    for cmd in [
        r#""/nonexistent/bin/web""#,
        r#"["/nonexistent/bin/web", "-x"]"#,
        r#""no-such-program-pidzero-test --flag""#,
    ] {
        let d = Dir::new("pre127");
        with_marker(
            &d,
            &format!(r#"{{"name": "web", "vital": true, "command": {cmd}}}"#),
        );
        let f = pz().config_dir(&d).run(DEADLINE);
        assert_eq!(f.status(), 127, "{cmd}: {}", f.dump());
        assert!(
            !d.exists("started"),
            "{cmd}: a daemon ran before preflight failed"
        );
        assert!(
            f.find(|r| is_event(r, "started", None)).is_none(),
            "{}",
            f.dump()
        );
    }
}

#[test]
fn preflight_vital_not_executable_is_126() {
    let d = Dir::new("pre126");
    let p = d.write("not-exec.sh", "#!/bin/sh\necho hi\n");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    with_marker(
        &d,
        &format!(
            r#"{{"name": "web", "vital": true, "command": [{}]}}"#,
            js(path_str(&p))
        ),
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 126, "{}", f.dump());
    assert!(!d.exists("started"), "a daemon ran before preflight failed");
}

#[test]
fn preflight_non_vital_missing_is_spawn_failed_and_goes_on() {
    let d = Dir::new("prenonvital");
    d.daemons(
        r#"[
  {"name": "ghost", "command": "/nonexistent/bin/ghost"},
  {"name": "web", "vital": true, "command": ["/bin/sh", "-c", "echo alive; exit 3"]}
]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    let ev = f
        .find(|r| is_event(r, "spawn_failed", Some("ghost")))
        .unwrap_or_else(|| panic!("no spawn_failed for ghost\n{}", f.dump()));
    assert_eq!(ev["status"], 127, "{ev}");
    assert!(ev["error"].is_string(), "{ev}");
    assert!(
        f.find(|r| is_line(r, "web", "alive")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn vital_exit_statuses() {
    // (command, expected status)
    let cases = [
        ("exit 3", 3),
        ("exit 0", 1),
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ];
    for (cmd, want) in cases {
        let d = Dir::new("vital");
        d.daemons(&format!(
            r#"[{{"name": "web", "vital": true, "command": ["/bin/sh", "-c", {}]}}]"#,
            js(cmd)
        ));
        let f = pz().config_dir(&d).run(DEADLINE);
        assert_eq!(f.status(), want, "{cmd}: {}", f.dump());
        let ev = f
            .find(|r| is_event(r, "vital_exit", Some("web")))
            .unwrap_or_else(|| panic!("{cmd}: no vital_exit event\n{}", f.dump()));
        assert_eq!(ev["level"], "error", "{ev}");
        let exited = f
            .find(|r| is_event(r, "exited", Some("web")))
            .unwrap_or_else(|| panic!("{cmd}: no exited event\n{}", f.dump()));
        if cmd.starts_with("kill") {
            assert_eq!(exited["status"], want, "{exited}");
            let name = if want == 137 { "SIGKILL" } else { "SIGTERM" };
            assert_eq!(exited["signal"], name, "{exited}");
        } else {
            assert!(exited.get("signal").is_none(), "{exited}");
        }
    }
}

#[test]
fn vital_exit_stops_the_others() {
    let d = Dir::new("vitalstops");
    let other = d.script(
        "other.sh",
        &format!(
            "trap 'touch {}; exit 0' TERM\necho other-up\nwhile :; do sleep 0.05; done",
            d.s("other-stopped")
        ),
    );
    d.daemons(&format!(
        r#"[
  {{"name": "other", "command": [{}]}},
  {{"name": "web", "vital": true,
    "command": ["/bin/sh", "-c", "echo web-up; while :; do sleep 0.05; done"]}}
]"#,
        js(&other)
    ));
    let mut r = pz().config_dir(&d).spawn();
    let other_pid = r.daemon_pid("other");
    let web = r.daemon_pid("web");
    r.wait_line("other", "other-up");
    r.wait_line("web", "web-up");
    let t0 = Instant::now();
    kill(web, libc::SIGKILL);
    let exit = r.wait_exit(DEADLINE);
    let took = t0.elapsed();
    assert_eq!(exit.status(), 137, "{}", r.dump());
    assert!(took < secs(1.0), "took {took:?} to fail fast");
    assert!(d.exists("other-stopped"), "other daemon was not stopped");
    assert!(!alive(other_pid));
}

#[test]
fn daemonizing_hint() {
    let d = Dir::new("hint");
    d.daemons(
        r#"[
  {"name": "quick", "command": "true"},
  {"name": "slow", "command": "sleep 1.2"}
]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let quick = f
        .find(|r| is_event(r, "exited", Some("quick")))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(quick["status"], 0, "{quick}");
    assert!(quick["hint"].is_string(), "no hint: {quick}");
    let slow = f
        .find(|r| is_event(r, "exited", Some("slow")))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert!(slow.get("hint").is_none(), "{slow}");
}

#[test]
fn no_hint_for_quick_failure() {
    let d = Dir::new("nohint");
    d.daemons(r#"[{"name": "fail", "command": ["/bin/sh", "-c", "exit 2"]}]"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 1, "{}", f.dump());
    let ev = f
        .find(|r| is_event(r, "exited", Some("fail")))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(ev["status"], 2, "{ev}");
    assert!(ev.get("hint").is_none(), "{ev}");
}

#[test]
fn leftover_in_a_daemons_group_is_stopped() {
    let d = Dir::new("leftover");
    // The daemon's main process leaves a child behind in its group and exits;
    // a vital keeper keeps pidzero running meanwhile.
    d.daemons(
        r#"[
  {"name": "parent", "command": ["/bin/sh", "-c", "sleep 300 & echo child=$!"]},
  {"name": "keeper", "vital": true, "command": ["/bin/sh", "-c", "while :; do sleep 0.05; done"]}
]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    r.daemon_pid("keeper");
    let rec = r.wait_record("child=PID", DEADLINE, |r| {
        r["source"] == "parent" && r["line"].as_str().unwrap_or("").starts_with("child=")
    });
    let child: i32 = rec["line"].as_str().unwrap()[6..].parse().unwrap();
    let gone = wait_until(DEADLINE, || !alive(child));
    kill(child, libc::SIGKILL);
    assert!(gone.is_some(), "leftover {child} not stopped\n{}", r.dump());
    r.assert_running();
}

#[test]
fn leftover_ignoring_term_is_killed_after_stop_timeout() {
    let d = Dir::new("leftoverkill");
    d.daemons(
        r#"[
  {"name": "parent", "stop_timeout": 1,
   "command": ["/bin/sh", "-c", "trap '' TERM; sleep 300 & echo child=$!"]},
  {"name": "keeper", "vital": true, "command": ["/bin/sh", "-c", "while :; do sleep 0.05; done"]}
]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    r.daemon_pid("keeper");
    let rec = r.wait_record("child=PID", DEADLINE, |r| {
        r["source"] == "parent" && r["line"].as_str().unwrap_or("").starts_with("child=")
    });
    let child: i32 = rec["line"].as_str().unwrap()[6..].parse().unwrap();
    let t0 = Instant::now();
    let gone = wait_until(DEADLINE, || !alive(child));
    let took = t0.elapsed();
    kill(child, libc::SIGKILL);
    assert!(gone.is_some(), "leftover {child} not killed\n{}", r.dump());
    assert!(
        took >= secs(0.7),
        "killed after {took:?}, before stop_timeout"
    );
    assert!(
        took < secs(3.0),
        "killed after {took:?}, long after stop_timeout"
    );
    r.assert_running();
}

#[test]
fn exits_0_when_all_daemons_exited_0() {
    let d = Dir::new("all0");
    d.daemons(r#"[{"name": "a", "command": "true"}, {"name": "b", "command": "sleep 0.2"}]"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
}

#[test]
fn exits_1_when_some_non_vital_failed() {
    let d = Dir::new("some1");
    d.daemons(
        r#"[{"name": "a", "command": "true"}, {"name": "b", "command": ["/bin/sh", "-c", "exit 4"]}]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 1, "{}", f.dump());
    let ev = f
        .find(|r| is_event(r, "exited", Some("b")))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(ev["status"], 4, "{ev}");
}

#[test]
fn all_non_vital_spawn_failed_exits_1() {
    let d = Dir::new("allfailed");
    d.daemons(r#"[{"name": "ghost", "command": "/nonexistent/ghost"}]"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 1, "{}", f.dump());
}

#[test]
fn starting_and_started_events() {
    let d = Dir::new("events");
    d.daemons(r#"[{"name": "web", "command": "true"}]"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let starting = f
        .records
        .iter()
        .position(|r| is_event(r, "starting", Some("web")));
    let started = f
        .records
        .iter()
        .position(|r| is_event(r, "started", Some("web")));
    let exited = f
        .records
        .iter()
        .position(|r| is_event(r, "exited", Some("web")));
    assert!(
        starting.is_some() && started.is_some() && exited.is_some(),
        "{}",
        f.dump()
    );
    assert!(starting < started && started < exited, "{}", f.dump());
    let s = &f.records[started.unwrap()];
    assert!(s["pid"].as_i64().unwrap() > 1, "{s}");
    let e = &f.records[exited.unwrap()];
    assert_eq!(e["pid"], s["pid"], "{e}");
}

/// A program that is not on the daemon's PATH at start but is there by a
/// restart is found then: its name stays bare and is looked up again.
#[test]
fn a_program_installed_after_start_is_found_by_a_restart() {
    let d = Dir::new("lateprog");
    std::fs::create_dir_all(d.p("bin")).unwrap();
    let program = d.p("bin").join("pidzero-late-program");
    // `installer` starts after `late` has failed its first start (start order
    // is file order), puts the program on `late`'s PATH, and waits for it.
    let install = format!(
        "printf '#!/bin/sh\\ntouch {marker}\\n' > {program}.tmp && chmod +x {program}.tmp \
         && mv {program}.tmp {program} && until [ -e {marker} ]; do sleep 0.02; done; exit 3",
        marker = d.s("ran"),
        program = program.display()
    );
    d.daemons(&format!(
        r#"[
  {{"name": "late", "command": "pidzero-late-program", "restart": "always",
    "restart_delay": 0.05, "environment": {{"PATH": {path}}}}},
  {{"name": "installer", "vital": true, "command": {install}}}
]"#,
        path = js(format!("{}:/usr/bin:/bin", d.s("bin"))),
        install = serde_json::to_string(&["/bin/sh", "-c", &install]).unwrap()
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        d.exists("ran"),
        "the restart did not run the program\n{}",
        f.dump()
    );
    assert!(
        f.find(|r| is_event(r, "spawn_failed", Some("late")))
            .is_some(),
        "{}",
        f.dump()
    );
}

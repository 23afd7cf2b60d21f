//! §2/§5 lifecycle extensions: restart policies with backoff, health checks
//! of every kind, start order on healthy dependencies.

mod common;

use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::time::Instant;

fn events_of<'a>(records: &'a [Value], event: &str, daemon: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| is_event(r, event, Some(daemon)))
        .collect()
}

/// A port nothing listens on right now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn each_restart_policy_against_each_way_of_ending() {
    // (policy, how the daemon ends, expected starts, expected pidzero status)
    let cases = [
        ("never", "exit 0", 1, 0),
        ("never", "exit 1", 1, 1),
        ("never", "kill -9 $$", 1, 1),
        ("on-failure", "exit 0", 1, 0),
        ("on-failure", "exit 1", 3, 1),
        ("on-failure", "kill -9 $$", 3, 1),
        ("always", "exit 0", 3, 0),
        ("always", "exit 1", 3, 1),
        ("always", "kill -9 $$", 3, 1),
    ];
    for (policy, ending, starts, status) in cases {
        let d = Dir::new("restart");
        d.daemons(&format!(
            r#"[{{"name": "w", "command": ["/bin/sh", "-c", "sleep 0.05; {ending}"],
                 "restart": "{policy}", "restart_delay": 0.05, "max_restarts": 2}}]"#
        ));
        let f = pz().config_dir(&d).run(DEADLINE);
        let what = format!("{policy} / {ending}");
        assert_eq!(f.status(), status, "{what}: {}", f.dump());
        assert_eq!(
            events_of(&f.records, "started", "w").len(),
            starts,
            "{what}: {}",
            f.dump()
        );
        let restarting = events_of(&f.records, "restarting", "w");
        assert_eq!(restarting.len(), starts - 1, "{what}");
        for (n, ev) in restarting.iter().enumerate() {
            assert_eq!(ev["attempt"], n as u64 + 1, "{what}: {ev}");
        }
    }
}

#[test]
fn backoff_doubles_between_restarts() {
    let d = Dir::new("backoff");
    d.daemons(
        r#"[{"name": "w", "command": "exit 1", "restart": "always",
             "restart_delay": 0.1, "max_restarts": 3}]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    let delays: Vec<u64> = events_of(&f.records, "restarting", "w")
        .iter()
        .map(|e| e["delay_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(delays, vec![100, 200, 400], "{}", f.dump());
    assert!(
        f.find(|r| is_event(r, "exited", Some("w"))
            && r["line"].as_str().unwrap_or("").contains("gave up"))
            .is_some(),
        "max_restarts reached must be reported\n{}",
        f.dump()
    );
}

#[test]
fn a_restart_never_overlaps_the_previous_instance() {
    let d = Dir::new("overlap");
    let leftover = d.s("leftover.pid");
    // Each instance leaves a background process in its group; the next one
    // checks that the previous leftover is gone before it starts its own.
    let script = format!(
        "if [ -f {leftover} ] && kill -0 $(cat {leftover}) 2>/dev/null; then echo OVERLAP; fi; \
         sleep 1000 & echo $! > {leftover}; echo instance; exit 1"
    );
    d.daemons(&format!(
        r#"[{{"name": "w", "command": ["/bin/sh", "-c", {}], "restart": "on-failure",
             "restart_delay": 0, "max_restarts": 2, "stop_timeout": 5}}]"#,
        js(&script)
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    let instances = f
        .records
        .iter()
        .filter(|r| is_line(r, "w", "instance"))
        .count();
    assert_eq!(instances, 3, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "w", "OVERLAP")).is_none(),
        "a new instance started while the old one's group was alive\n{}",
        f.dump()
    );
}

#[test]
fn shutdown_during_backoff_ends_at_once() {
    let d = Dir::new("backoffstop");
    d.daemons(
        r#"[{"name": "w", "command": "exit 1", "restart": "always", "restart_delay": 20},
            {"name": "keeper", "command": "sleep 1000"}]"#,
    );
    let r = pz().config_dir(&d).spawn();
    r.wait_event("restarting", Some("w"));
    let t = Instant::now();
    r.signal(libc::SIGTERM);
    let mut r = r;
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(t.elapsed() < secs(3.0), "took {:?}", t.elapsed());
}

#[test]
fn command_probe_passing_and_failing() {
    let d = Dir::new("cmdprobe");
    d.daemons(
        r#"[{"name": "good", "command": "sleep 1000",
             "health": {"command": "true", "interval": 0.2}},
            {"name": "bad", "command": "sleep 1000",
             "health": {"command": "exit 3", "interval": 0.1, "retries": 2}}]"#,
    );
    let mut r = pz().config_dir(&d).spawn();
    let ev = r.wait_event("health_changed", Some("good"));
    assert_eq!(ev["health"], "healthy", "{ev}");
    let ev = r.wait_event("health_changed", Some("bad"));
    assert_eq!(ev["health"], "unhealthy", "{ev}");
    assert!(ev["detail"].as_str().unwrap().contains("status 3"), "{ev}");
    r.assert_running();
}

#[test]
fn http_and_tcp_probes_passing_and_failing() {
    let port = free_port();
    let closed = free_port();
    let d = Dir::new("netprobe");
    d.daemons(&format!(
        r#"[{{"name": "web", "command": ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"],
              "health": {{"http": "http://127.0.0.1:{port}/", "interval": 0.2, "start_period": 10}}}},
            {{"name": "missing-page", "command": "sleep 1000",
              "health": {{"http": "http://127.0.0.1:{port}/no-such-page", "interval": 0.2, "retries": 1, "start_period": 0}}}},
            {{"name": "tcp-up", "command": "sleep 1000",
              "health": {{"tcp": "127.0.0.1:{port}", "interval": 0.2, "start_period": 10}}}},
            {{"name": "tcp-down", "command": "sleep 1000",
              "health": {{"tcp": "127.0.0.1:{closed}", "interval": 0.2, "retries": 1}}}}]"#
    ));
    let r = pz().config_dir(&d).spawn();
    let timeout = secs(15.0);
    for (daemon, health, detail) in [
        ("web", "healthy", "answered 200"),
        ("tcp-up", "healthy", "connected"),
        ("tcp-down", "unhealthy", "cannot connect"),
    ] {
        let ev = r.wait_record(&format!("{daemon} {health}"), timeout, |e| {
            is_event(e, "health_changed", Some(daemon)) && e["health"] == health
        });
        assert!(ev["detail"].as_str().unwrap().contains(detail), "{ev}");
    }
    // 404 fails; the page check may fail before the server is up too, so look
    // for the 404 itself.
    r.wait_record("a 404 makes the http probe fail", timeout, |e| {
        is_event(e, "health_changed", Some("missing-page")) && e["health"] == "unhealthy"
            || (is_event(e, "health_changed", Some("missing-page"))
                && e["detail"].as_str().unwrap_or("").contains("404"))
    });
    let mut r = r;
    r.assert_running();
}

#[test]
fn a_hung_probe_is_killed_at_its_timeout_and_reaped() {
    let d = Dir::new("hungprobe");
    d.daemons(
        r#"[{"name": "w", "command": "sleep 1000",
             "health": {"command": "exec sleep 977", "timeout": 0.3, "interval": 0.2, "retries": 1}}]"#,
    );
    let Some(pz) = pz()
        .config_dir(&d)
        .ns("a_hung_probe_is_killed_at_its_timeout_and_reaped")
    else {
        return;
    };
    let r = pz.spawn();
    let t = Instant::now();
    let ev = r.wait_event("health_changed", Some("w"));
    assert_eq!(ev["health"], "unhealthy", "{ev}");
    assert!(ev["detail"].as_str().unwrap().contains("timed out"), "{ev}");
    assert!(t.elapsed() < secs(5.0));
    // The killed probe does not linger, not even as a zombie: only the
    // daemon's own `sleep 1000` (and perhaps a probe in flight) are children.
    let pid = r.pid;
    wait_until(DEADLINE, || zombie_children(pid).is_empty())
        .unwrap_or_else(|| panic!("zombies left: {:?}\n{}", zombie_children(pid), r.dump()));
}

#[test]
fn vital_daemon_turning_unhealthy_fails_fast() {
    let d = Dir::new("vitalhealth");
    let flag = d.write("healthy", "");
    d.daemons(&format!(
        r#"[{{"name": "side", "command": "sleep 1000"}},
            {{"name": "web", "vital": true, "command": "sleep 1000",
              "health": {{"command": "test -f {}", "interval": 0.1, "retries": 2}}}}]"#,
        path_str(&flag)
    ));
    let mut r = pz().config_dir(&d).spawn();
    let ev = r.wait_event("health_changed", Some("web"));
    assert_eq!(ev["health"], "healthy");
    std::fs::remove_file(&flag).unwrap();
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 1, "{}", r.dump());
    let records = r.records();
    let vital = records
        .iter()
        .find(|e| is_event(e, "vital_exit", Some("web")))
        .unwrap_or_else(|| panic!("no vital_exit\n{}", r.dump()));
    assert_eq!(vital["reason"], "unhealthy", "{vital}");
    assert!(
        records.iter().any(|e| is_event(e, "exited", Some("side"))),
        "side was not stopped\n{}",
        r.dump()
    );
}

#[test]
fn dependents_start_once_their_dependency_is_healthy() {
    let d = Dir::new("order");
    let ready = d.s("ready");
    d.daemons(&format!(
        r#"[{{"name": "web", "command": "sleep 1000", "depends_on": ["db"]}},
            {{"name": "db", "command": "sleep 0.8; touch {ready}; exec sleep 1000",
              "health": {{"command": "test -f {ready}", "interval": 0.1}}}}]"#
    ));
    let r = pz().config_dir(&d).spawn();
    r.wait_event("started", Some("web"));
    let records = r.records();
    let pos = |f: &dyn Fn(&Value) -> bool| records.iter().position(f).unwrap();
    let db_started = pos(&|e| is_event(e, "started", Some("db")));
    let db_healthy =
        pos(&|e| is_event(e, "health_changed", Some("db")) && e["health"] == "healthy");
    let web_started = pos(&|e| is_event(e, "started", Some("web")));
    assert!(
        db_started < db_healthy && db_healthy < web_started,
        "{}",
        r.dump()
    );
    assert!(d.exists("ready"));
}

#[test]
fn vital_with_restart_and_dependency_cycles_are_config_errors() {
    for (daemons, expected) in [
        (
            r#"[{"name": "a", "command": "true", "vital": true, "restart": "always"}]"#,
            "daemons.json:1:61: daemon a: field restart:",
        ),
        (
            r#"[{"name": "a", "command": "true"},
                {"name": "b", "command": "true", "depends_on": ["c"]},
                {"name": "c", "command": "true", "depends_on": ["b"]}]"#,
            "dependency cycle: b -> c -> b",
        ),
    ] {
        let d = Dir::new("cfg4");
        d.daemons(daemons);
        let f = pz().config_dir(&d).run(DEADLINE);
        assert_eq!(f.status(), 2, "{}", f.dump());
        assert!(f.stderr.contains(expected), "{}", f.stderr);
        assert!(f.records.is_empty(), "nothing may start\n{}", f.dump());
    }
}

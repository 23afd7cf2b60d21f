//! §8 daemon objects and metrics after a daemon's process is gone: no stale
//! health verdict, and restart counters that never go backwards.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// One request over the control socket; returns the body.
fn call(socket: &str, method: &str, path: &str) -> String {
    let mut stream = UnixStream::connect(socket).expect("connect to the control socket");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: pidzero\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    body.to_string()
}

fn daemon(socket: &str, name: &str) -> Value {
    serde_json::from_str(&call(socket, "GET", &format!("/daemons/{name}"))).unwrap()
}

/// The value of the metric line `NAME{daemon="DAEMON"} VALUE`.
fn metric(socket: &str, name: &str, daemon: &str) -> u64 {
    let text = call(socket, "GET", "/metrics");
    let prefix = format!("{name}{{daemon=\"{daemon}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn stopped_and_crashed_daemons_have_no_health_and_keep_their_restart_count() {
    let d = Dir::new("daemonstate");
    let socket = unique_socket_path();
    d.daemons(
        r#"[{"name": "web", "command": ["/bin/sleep", "30"],
             "health": {"command": "true", "interval": 0.2}},
            {"name": "w", "command": ["/bin/sh", "-c", "exit 1"],
             "restart": "on-failure", "restart_delay": 0.1, "max_restarts": 1,
             "health": {"command": "true"}},
            {"name": "keep", "command": ["/bin/sleep", "30"]}]"#,
    );
    let r = pz().config_dir(&d).arg("--socket").arg(&socket).spawn();
    r.wait_event("health_changed", Some("web"));
    assert_eq!(daemon(&socket, "web")["health"], "healthy");

    // Stopped by hand: no process, no verdict.
    call(&socket, "POST", "/daemons/web/stop");
    let stopped = wait_until(DEADLINE, || daemon(&socket, "web")["state"] == "exited");
    assert!(stopped.is_some(), "{}", r.dump());
    let web = daemon(&socket, "web");
    assert_eq!(web["health"], Value::Null, "{web}");
    assert_eq!(metric(&socket, "pidzero_daemon_up", "web"), 0);

    // Crashed until it gave up: failed, one restart, no verdict.
    let failed = wait_until(DEADLINE, || daemon(&socket, "w")["state"] == "failed");
    assert!(failed.is_some(), "{}", r.dump());
    let w = daemon(&socket, "w");
    assert_eq!(
        (w["restarts"].as_u64(), &w["health"]),
        (Some(1), &Value::Null)
    );
    assert_eq!(metric(&socket, "pidzero_daemon_restarts_total", "w"), 1);

    // Started again by hand: the counter goes on from where it was.
    call(&socket, "POST", "/daemons/w/start");
    let mut seen = vec![];
    let gave_up_again = wait_until(DEADLINE, || {
        let total = metric(&socket, "pidzero_daemon_restarts_total", "w");
        if seen.last() != Some(&total) {
            seen.push(total);
        }
        total == 2 && daemon(&socket, "w")["state"] == "failed"
    });
    assert!(gave_up_again.is_some(), "{seen:?}\n{}", r.dump());
    assert!(seen.iter().all(|&n| n >= 1), "went backwards: {seen:?}");
}

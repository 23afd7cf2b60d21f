//! `pidzero reload` / `POST /reload` against the real binary, as PID 1:
//! the daemons' difference applied (added, removed, changed, kept), an
//! invalid configuration refused with every error and nothing changed,
//! config.json's log format, log file and API token taking effect, and a
//! reload refused while pidzero shuts down.

mod common;

use std::process::Command;

use common::http::{http, Target};
use common::*;
use serde_json::{json, Value};

fn client(socket: &str, args: &[&str]) -> (Exit, String, String) {
    let mut cmd = Command::new(bin());
    without_pidzero_env(&mut cmd);
    cmd.args(args).env("PIDZERO_SOCKET", socket);
    run_cmd(&mut cmd, DEADLINE)
}

/// The daemon objects of `GET /daemons`, by name.
fn daemons(socket: &str) -> Vec<Value> {
    let answer = http(&Target::unix(socket), "GET", "/daemons", &[], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json().as_array().cloned().unwrap_or_default()
}

fn daemon(socket: &str, name: &str) -> Option<Value> {
    daemons(socket).into_iter().find(|d| d["name"] == name)
}

/// A daemon that says `got USR1` when its stop signal arrives.
const USR1_SAYER: &str = "trap 'echo got USR1; exit 0' USR1; echo ready; sleep 1000 & wait";

fn start(dir: &Dir, test: &str) -> Option<(Running, String)> {
    let socket = unique_socket_path();
    let pz = pz()
        .config_dir(dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns(test)?;
    Some((pz.spawn(), socket))
}

#[test]
fn reload_starts_the_added_stops_the_removed_restarts_the_changed_keeps_the_rest() {
    let dir = Dir::new("reload-diff");
    let gone = dir.script("gone.sh", USR1_SAYER);
    dir.daemons_value(&json!([
        { "name": "keep", "command": "sleep 1000" },
        { "name": "gone", "command": [gone], "stop_signal": "USR1", "vital": true },
        { "name": "edit", "command": "sleep 1000", "environment": ["MODE=one"] },
    ]));
    let Some((mut running, socket)) = start(&dir, "reload-diff") else {
        return;
    };
    running.wait_line("gone", "ready");
    let keep_pid = running.daemon_pid("keep");
    let edit_pid = running.daemon_pid("edit");
    dir.daemons_value(&json!([
        { "name": "keep", "command": "sleep 1000" },
        { "name": "edit", "command": "sleep 1000", "environment": ["MODE=two"] },
        { "name": "added", "command": "echo hello from added; exec sleep 1000" },
    ]));
    let (exit, out, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(0), "{out}{err}\n{}", running.dump());
    assert_eq!(
        out.trim_end(),
        "pidzero: reloaded\nstarted: added\nstopped: gone\nrestarted: edit\nkept: keep",
        "{err}"
    );
    // The added one runs.
    running.wait_line("added", "hello from added");
    // The removed one got its own stop signal; its end is no vital failure.
    running.wait_line("gone", "got USR1");
    running.wait_event("exited", Some("gone"));
    // The changed one has a new pid.
    let restarted = running.wait_record("a second start of edit", DEADLINE, |r| {
        is_event(r, "started", Some("edit")) && r["pid"] != edit_pid
    });
    assert_ne!(restarted["pid"], edit_pid);
    // The event lists the same as the answer.
    let event = running.wait_event("reload", None);
    assert_eq!(event["started"], "added");
    assert_eq!(event["stopped"], "gone");
    assert_eq!(event["restarted"], "edit");
    assert_eq!(event["kept"], "keep");
    // The API forgets the removed one once it is gone; the kept one has
    // the same pid and restart count.
    wait_until(DEADLINE, || daemon(&socket, "gone").is_none())
        .unwrap_or_else(|| panic!("gone is still listed\n{}", running.dump()));
    let keep = daemon(&socket, "keep").unwrap();
    assert_eq!(keep["pid"], keep_pid);
    assert_eq!(keep["restarts"], 0);
    assert_eq!(keep["state"], "running");
    assert!(!running
        .records()
        .iter()
        .any(|r| is_event(r, "vital_exit", None)));
    running.assert_running();
    running.signal(libc::SIGTERM);
    assert_eq!(
        running.wait_exit(DEADLINE).status(),
        0,
        "{}",
        running.dump()
    );
}

#[test]
fn an_invalid_configuration_is_refused_with_every_error_and_nothing_changes() {
    let dir = Dir::new("reload-invalid");
    dir.daemons_value(&json!([
        { "name": "a", "command": "sleep 1000" },
        { "name": "b", "command": "sleep 1000" },
    ]));
    let Some((mut running, socket)) = start(&dir, "reload-invalid") else {
        return;
    };
    let pids = (running.daemon_pid("a"), running.daemon_pid("b"));
    // A JSON syntax error: line and column.
    dir.daemons("[\n  {\"name\": \"a\", \"command\": \"sleep 1000\"},\n  {\"name\": \"b\" \"command\": \"x\"}\n]\n");
    let (exit, out, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(1), "{out}{err}");
    let file = dir.p("daemons.json");
    assert!(
        err.contains(&format!("{}:3:", file.display())),
        "no file:line:col in {err:?}"
    );
    // Plan errors (an unknown dependency) come with their position, as at
    // startup; so does a vital daemon whose executable is missing, which
    // a start would refuse too (exit 127).
    let refused = |daemons: &str| {
        dir.daemons(daemons);
        let answer = http(&Target::unix(&socket), "POST", "/reload", &[], "");
        assert_eq!(answer.status, 422, "{}", answer.body);
        let errors: Vec<String> = answer.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        errors
    };
    let errors = refused(
        "[\n  {\"name\": \"a\", \"command\": \"sleep 1000\", \"depends_on\": [\"nope\"]},\n  {\"name\": \"b\", \"command\": \"sleep 1000\", \"depends_on\": [\"nix\"]}\n]\n",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("{}:2:", file.display())),
        "{errors:?}"
    );
    assert!(errors[0].contains("nope"), "{errors:?}");
    assert!(
        errors[1].starts_with(&format!("{}:3:", file.display())),
        "{errors:?}"
    );
    let errors = refused(
        "[\n  {\"name\": \"a\", \"command\": \"sleep 1000\"},\n  {\"name\": \"b\", \"vital\": true, \"command\": \"/no/such/program\"}\n]\n",
    );
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("{}:3:", file.display())),
        "{errors:?}"
    );
    assert!(errors[0].contains("/no/such/program"), "{errors:?}");
    running.wait_event("reload_failed", None);
    // Nothing changed.
    let now = (
        daemon(&socket, "a").unwrap()["pid"].clone(),
        daemon(&socket, "b").unwrap()["pid"].clone(),
    );
    assert_eq!(now, (json!(pids.0), json!(pids.1)));
    assert_eq!(daemons(&socket).len(), 2);
    running.assert_running();
}

/// A daemon that writes `tick N` five times a second.
const TICKER: &str = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done";

#[test]
fn a_new_log_format_applies_to_the_next_records() {
    let dir = Dir::new("reload-format");
    dir.daemons_value(&json!([{ "name": "ticker", "command": TICKER }]));
    dir.config(r#"{"log": {"format": "json"}}"#);
    let Some((running, socket)) = start(&dir, "reload-format") else {
        return;
    };
    running.wait_record("a JSON tick", DEADLINE, |r| r["source"] == "ticker");
    dir.config(r#"{"log": {"format": "text"}}"#);
    let (exit, out, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(0), "{out}{err}");
    assert!(out.contains("kept: ticker"), "{out}");
    // The reload's own event and the next lines are text.
    running.wait_raw("the reload event as text", DEADLINE, |l| {
        l.contains(" pidzero event: info reload ") && l.contains("kept=ticker")
    });
    running.wait_raw("a text tick", DEADLINE, |l| {
        !l.starts_with('{') && l.contains(" ticker stdout: tick ")
    });
}

#[test]
fn a_logrotate_style_move_then_reload_writes_a_new_file() {
    let dir = Dir::new("reload-rotate");
    dir.daemons_value(&json!([{ "name": "ticker", "command": TICKER }]));
    let file = dir.p("pidzero.log");
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "log_to_stdout": false, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    let Some((running, socket)) = start(&dir, "reload-rotate") else {
        return;
    };
    let has_tick = |p: &std::path::Path| {
        std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"source\":\"ticker\""))
    };
    wait_until(DEADLINE, || has_tick(&file))
        .unwrap_or_else(|| panic!("no tick in the log file\n{}", running.dump()));
    let moved = dir.p("pidzero.log.1");
    std::fs::rename(&file, &moved).unwrap();
    let (exit, out, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(0), "{out}{err}");
    wait_until(DEADLINE, || has_tick(&file))
        .unwrap_or_else(|| panic!("no tick in the new log file\n{}", running.dump()));
    let old_lines = std::fs::read_to_string(&moved).unwrap().lines().count();
    assert!(old_lines > 0);
}

#[test]
fn a_new_token_takes_effect_for_the_next_request() {
    let dir = Dir::new("reload-token");
    dir.daemons_value(&json!([{ "name": "a", "command": "sleep 1000" }]));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config =
        |token: &str| format!(r#"{{"api": {{"listen": "127.0.0.1:{port}", "token": "{token}"}}}}"#);
    dir.config(&config("old-token"));
    let Some((mut running, socket)) = start(&dir, "reload-token") else {
        return;
    };
    running.daemon_pid("a");
    let tcp = Target::tcp(port);
    let with = |token: &str| {
        http(
            &tcp,
            "GET",
            "/daemons",
            &[("Authorization", &format!("Bearer {token}"))],
            "",
        )
        .status
    };
    assert_eq!(with("old-token"), 200);
    dir.config(&config("new-token"));
    let (exit, out, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(0), "{out}{err}");
    assert_eq!(with("old-token"), 401);
    assert_eq!(with("new-token"), 200);
}

#[test]
fn a_changed_listen_address_rebinds_and_a_taken_one_changes_nothing() {
    let dir = Dir::new("reload-listen");
    dir.daemons_value(&json!([{ "name": "a", "command": "sleep 1000" }]));
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (first, second) = (free(), free());
    let config = |port: u16, daemon: &str| {
        dir.config(&format!(r#"{{"api": {{"listen": "127.0.0.1:{port}"}}}}"#));
        dir.daemons_value(&json!([{ "name": daemon, "command": "sleep 1000" }]));
    };
    config(first, "a");
    let Some((mut running, socket)) = start(&dir, "reload-listen") else {
        return;
    };
    running.daemon_pid("a");
    let health = |port: u16| {
        common::http::try_http(&Target::tcp(port), "GET", "/health", &[], "").map(|a| a.status)
    };
    assert_eq!(health(first).ok(), Some(200));
    // A taken address: the reload fails as a whole (daemon b is not started).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    config(taken.local_addr().unwrap().port(), "b");
    let answer = http(&Target::unix(&socket), "POST", "/reload", &[], "");
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(answer.body.contains("cannot listen on"), "{}", answer.body);
    assert!(daemon(&socket, "b").is_none());
    assert_eq!(health(first).ok(), Some(200));
    drop(taken);
    // A free one: the new listener answers, the old one is closed.
    config(second, "a");
    let (exit, out, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(0), "{out}{err}");
    assert_eq!(health(second).ok(), Some(200));
    assert!(health(first).is_err(), "the old listener still answers");
}

#[test]
fn a_reload_during_shutdown_is_refused() {
    let dir = Dir::new("reload-shutdown");
    // It ignores its stop signal: the shutdown lasts its stop_timeout.
    dir.daemons_value(&json!([{
        "name": "stubborn",
        "command": "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        "stop_timeout": 3
    }]));
    let Some((mut running, socket)) = start(&dir, "reload-shutdown") else {
        return;
    };
    running.wait_line("stubborn", "ready");
    let target = Target::unix(&socket);
    assert_eq!(http(&target, "POST", "/shutdown", &[], "").status, 202);
    let answer = http(&target, "POST", "/reload", &[], "");
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(answer.body.contains("shutting down"), "{}", answer.body);
    let (exit, _, err) = client(&socket, &["reload"]);
    assert_eq!(exit.code, Some(1));
    assert!(err.contains("shutting down"), "{err}");
    assert_eq!(
        running.wait_exit(DEADLINE).status(),
        0,
        "{}",
        running.dump()
    );
}

#[test]
fn sighup_is_forwarded_and_does_not_reload() {
    let dir = Dir::new("reload-hup");
    dir.daemons_value(&json!([{
        "name": "hup",
        "command": "trap 'echo got HUP' HUP; echo ready; while :; do sleep 0.1; done"
    }]));
    let Some((mut running, _socket)) = start(&dir, "reload-hup") else {
        return;
    };
    running.wait_line("hup", "ready");
    dir.daemons_value(&json!([
        { "name": "hup", "command": "sleep 1000" },
        { "name": "added", "command": "sleep 1000" },
    ]));
    running.signal(libc::SIGHUP);
    running.wait_line("hup", "got HUP");
    let records = running.records();
    assert!(
        !records
            .iter()
            .any(|r| is_event(r, "reload", None) || is_event(r, "started", Some("added"))),
        "{}",
        running.dump()
    );
    running.assert_running();
}

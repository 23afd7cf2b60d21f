//! Reload meets readiness: a daemon a reload adds with a notify socket or
//! notification fd gets one like a daemon of the first start, and a kept
//! daemon that depends on it starts only once it said it is ready.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn reload(socket: &str) -> (Exit, String, String) {
    let mut cmd = Command::new(bin());
    without_pidzero_env(&mut cmd);
    cmd.args(["reload"]).env("PIDZERO_SOCKET", socket);
    run_cmd(&mut cmd, DEADLINE)
}

#[test]
fn a_notify_daemon_added_by_a_reload_announces_itself_and_its_dependent_waits() {
    let dir = Dir::new("reload-ready");
    dir.daemons_value(&json!([{ "name": "first", "command": "sleep 1000" }]));
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("reload-ready")
    else {
        return;
    };
    let mut running = pz.spawn();
    running.wait_event("started", Some("first"));
    dir.daemons_value(&json!([
        { "name": "first", "command": "sleep 1000" },
        { "name": "late", "ready": { "notify": "fd" },
          "command": "echo before ready; echo >&3; exec sleep 1000" },
        { "name": "after", "command": "echo after started; exec sleep 1000",
          "depends_on": ["late"] },
    ]));
    let (exit, out, err) = reload(&socket);
    assert_eq!(exit.code, Some(0), "{out}{err}\n{}", running.dump());
    running.wait_line("after", "after started");
    let records = running.records();
    let at = |f: &dyn Fn(&serde_json::Value) -> bool| records.iter().position(f);
    let ready = at(&|r| is_event(r, "daemon_ready", Some("late")));
    let starting = at(&|r| is_event(r, "starting", Some("after")));
    assert!(
        ready.is_some() && ready < starting,
        "after started before late was ready\n{}",
        running.dump()
    );
    running.assert_running();
}

//! §8 end to end: the real binary with real daemons, asked over its control socket
//! and TCP, and the client commands of §1 against it.

mod api_e2e_support;
mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;

use api_e2e_support::*;
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "s3cr3t-env-value-4711";

/// Every field of a daemon object, with the types §8 gives them.
fn assert_daemon_object(d: &Value) {
    let o = d
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {d}"));
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "command",
            "health",
            "last_exit",
            "name",
            "pid",
            "ready",
            "ready_after_ms",
            "ready_mode",
            "ready_state",
            "restarts",
            "started_at",
            "state",
            "status_text",
            "uptime_seconds",
            "vital"
        ],
        "{d}"
    );
    assert!(d["name"].is_string() && d["vital"].is_boolean() && d["state"].is_string());
    assert!(d["restarts"].is_u64(), "{d}");
    assert!(d["pid"].is_null() || d["pid"].is_i64(), "{d}");
    assert!(d["health"].is_null() || d["health"].is_string(), "{d}");
    assert!(
        d["command"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)),
        "{d}"
    );
    if d["state"] == "running" {
        rfc3339_ms(d["started_at"].as_str().expect("started_at"));
        assert!(
            d["uptime_seconds"].as_f64().is_some_and(|u| u >= 0.0),
            "{d}"
        );
        assert!(d["pid"].as_i64().is_some_and(|p| p > 0), "{d}");
    }
    if let Some(e) = d["last_exit"].as_object() {
        rfc3339_ms(e["at"].as_str().expect("last_exit.at"));
        assert!(
            e.contains_key("code") != e.contains_key("signal"),
            "code or signal: {d}"
        );
    }
}

fn shell(cmd: &str) -> Value {
    json!(["/bin/sh", "-c", cmd])
}

#[test]
fn every_route_against_live_daemons() {
    let d = Dir::new("e2e-routes");
    let sock = unique_socket_path();
    d.daemons_value(&json!([
        {"name": "web", "vital": true,
         "command": "trap 'echo got-hup' HUP; echo web-up; while :; do sleep 0.1; done",
         "environment": [format!("SECRET_TOKEN={SECRET}")]},
        {"name": "side", "command": ["sleep", "1000"],
         "environment": {"OTHER_SECRET": SECRET}},
        {"name": "chatty",
         "command": "i=1; while [ $i -le 20 ]; do echo line-$i; i=$((i+1)); done; exec sleep 1000"},
        {"name": "quitter", "command": ["/bin/sh", "-c", "exit 3"]},
    ]));
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let t = Target::unix(&sock);
    let web_pid = r.daemon_pid("web");
    let side_pid = r.daemon_pid("side");
    r.daemon_pid("chatty");
    r.wait_line("chatty", "line-20");
    r.wait_line("web", "web-up");
    r.wait_event("exited", Some("quitter"));
    let mut answers: Vec<String> = Vec::new();

    // /version
    let a = get(&t, "/version");
    assert_eq!(a.status, 200);
    assert_eq!(a.json(), json!({"version": env!("CARGO_PKG_VERSION")}));
    answers.push(a.body);

    // /health
    let a = get(&t, "/health");
    assert_eq!((a.status, a.json()), (200, json!({"status": "healthy"})));
    answers.push(a.body);

    // /daemons and /daemons/NAME
    let quitter = wait_answer(&t, "/daemons/quitter", "with a last exit", |a| {
        a.json()["last_exit"].is_object()
    });
    let a = get(&t, "/daemons");
    assert_eq!(a.status, 200);
    let list = a.json();
    answers.push(a.body.clone());
    let list = list.as_array().expect("array");
    let names: Vec<&str> = list.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web", "side", "chatty", "quitter"]);
    list.iter().for_each(assert_daemon_object);
    let web = &list[0];
    assert_eq!(web["vital"], true);
    assert_eq!(web["state"], "running");
    assert_eq!(web["pid"], web_pid);
    assert_eq!(web["restarts"], 0);
    assert_eq!(web["health"], Value::Null);
    assert_eq!(web["last_exit"], Value::Null);
    assert_eq!(
        web["command"],
        shell("trap 'echo got-hup' HUP; echo web-up; while :; do sleep 0.1; done")
    );
    assert_eq!(list[1]["command"], json!(["sleep", "1000"]));
    assert_eq!(list[1]["vital"], false);
    let q = quitter.json();
    assert_daemon_object(&q);
    assert_eq!(q["last_exit"]["code"], 3, "{q}");
    assert_eq!(q["pid"], Value::Null);
    assert_ne!(q["state"], "running");
    answers.push(quitter.body);
    // The uptime is brought up to date at each answer.
    let up1 = daemon(&t, "web")["uptime_seconds"].as_f64().unwrap();
    std::thread::sleep(secs(0.3));
    let up2 = daemon(&t, "web")["uptime_seconds"].as_f64().unwrap();
    assert!(up2 >= up1 + 0.2, "uptime {up1} then {up2}");
    let a = get(&t, "/daemons/web");
    assert_eq!(a.status, 200);
    answers.push(a.body);
    let a = get(&t, "/daemons/nope");
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.json()["error"].is_string());

    // signal
    let a = post(&t, "/daemons/web/signal", r#"{"signal":"HUP"}"#);
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json()["state"], "running");
    r.wait_line("web", "got-hup");
    let a = post(&t, "/daemons/web/signal", r#"{"signal":"NOPE"}"#);
    assert_eq!(a.status, 400, "{a:?}");
    let a = post(&t, "/daemons/web/signal", "HUP");
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(
        post(&t, "/daemons/nope/signal", r#"{"signal":"HUP"}"#).status,
        404
    );
    assert_eq!(
        post(&t, "/daemons/quitter/signal", r#"{"signal":"HUP"}"#).status,
        409
    );
    assert!(alive(web_pid), "HUP must not have stopped web");

    // logs?lines=N
    let a = get(&t, "/daemons/chatty/logs?lines=5");
    assert_eq!(a.status, 200, "{a:?}");
    let recs = a.json();
    let lines: Vec<&str> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["source"], "chatty", "{r}");
            assert_eq!(r["stream"], "stdout", "{r}");
            rfc3339_ms(r["timestamp"].as_str().unwrap());
            r["line"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        lines,
        ["line-16", "line-17", "line-18", "line-19", "line-20"]
    );
    answers.push(a.body);
    let a = get(&t, "/daemons/chatty/logs");
    assert_eq!(a.json().as_array().unwrap().len(), 20);
    let a = get(&t, "/daemons/web/logs?lines=100");
    let web_lines: Vec<Value> = a.json().as_array().unwrap().clone();
    assert!(web_lines.iter().all(|r| r["source"] == "web"), "{a:?}");
    assert!(web_lines.iter().any(|r| r["line"] == "got-hup"), "{a:?}");
    answers.push(a.body);
    assert_eq!(get(&t, "/daemons/chatty/logs?lines=x").status, 400);
    assert_eq!(get(&t, "/daemons/nope/logs").status, 404);

    // stop / start / restart
    let a = post(&t, "/daemons/side/stop", "");
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json()["state"], "stopping");
    let side = wait_state(&t, "side", "exited");
    assert_eq!(side["last_exit"]["signal"], "SIGTERM", "{side}");
    assert_eq!(side["pid"], Value::Null);
    assert!(!alive(side_pid));
    let a = post(&t, "/daemons/side/stop", "");
    assert_eq!(a.status, 409, "{a:?}");
    assert!(
        a.json()["error"].as_str().unwrap().contains("not running"),
        "{a:?}"
    );
    let a = post(&t, "/daemons/web/stop", "");
    assert_eq!(a.status, 409, "stopping a vital daemon: {a:?}");
    let a = post(&t, "/daemons/side/start", "");
    assert_eq!(a.status, 202, "{a:?}");
    let side = wait_state(&t, "side", "running");
    let new_pid = side["pid"].as_i64().unwrap() as i32;
    assert_ne!(new_pid, side_pid);
    assert_eq!(post(&t, "/daemons/side/start", "").status, 409);
    let a = post(&t, "/daemons/side/restart", "");
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(a.json()["state"], "stopping");
    let side = wait_answer(&t, "/daemons/side", "restarted", |a| {
        let d = a.json();
        d["state"] == "running" && d["pid"] != new_pid
    })
    .json();
    assert_eq!(side["restarts"], 1, "{side}");
    for action in ["start", "stop", "restart"] {
        let a = post(&t, &format!("/daemons/nope/{action}"), "");
        assert_eq!(a.status, 404, "{action}: {a:?}");
    }
    // Wrong method, unknown route.
    assert_eq!(get(&t, "/daemons/side/stop").status, 405);
    assert_eq!(post(&t, "/daemons", "").status, 405);
    assert_eq!(get(&t, "/nothing-here").status, 404);
    answers.push(get(&t, "/daemons").body);
    answers.push(get(&t, "/metrics").body);

    // No environment value in any answer.
    for body in &answers {
        assert!(
            !body.contains(SECRET),
            "an environment value leaked: {body}"
        );
    }

    // shutdown
    let a = post(&t, "/shutdown", "");
    assert_eq!((a.status, a.json()), (202, json!({"state": "stopping"})));
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(
        !std::path::Path::new(&sock).exists(),
        "socket file left behind"
    );
}

#[test]
fn health_turns_503_when_a_vital_check_fails_and_during_shutdown() {
    let d = Dir::new("e2e-health");
    let sock = unique_socket_path();
    let ok = d.s("ok");
    d.daemons_value(&json!([
        {"name": "web", "vital": true, "stop_timeout": 3,
         "command": "trap '' TERM; while :; do sleep 0.05; done",
         "health": {"command": format!("test -f {ok}"), "interval": 0.2, "retries": 2}},
        {"name": "side", "command": "trap '' TERM; exec sleep 1000"},
    ]));
    d.write("ok", "");
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let t = Target::unix(&sock);
    wait_api(&t);
    let a = wait_answer(&t, "/health", "healthy", |a| a.status == 200);
    assert_eq!(a.json(), json!({"status": "healthy"}));
    assert_eq!(daemon(&t, "web")["health"], "healthy");
    let (code, out, _) = client(&["health", "--socket", &sock], &[]);
    assert_eq!((code, out.as_str()), (0, "healthy"));

    std::fs::remove_file(d.p("ok")).unwrap();
    let a = wait_answer(&t, "/health", "unhealthy", |a| a.status == 503);
    let body = a.json();
    assert_eq!(body["status"], "unhealthy", "{body}");
    assert_eq!(body["failing"], json!(["web"]), "{body}");
    let (code, out, _) = client(&["health"], &[("PIDZERO_SOCKET", &sock)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("unhealthy"), "{out}");
    // A vital daemon failing its check is a vital exit with status 1; web ignores TERM,
    // so the API still answers during the 3 s of stop_timeout.
    r.wait_event("vital_exit", Some("web"));
    let exit = r.wait_exit(secs(15.0));
    assert_eq!(exit.status(), 1, "{}", r.dump());
    assert!(!std::path::Path::new(&sock).exists());
}

#[test]
fn shutdown_answers_202_then_health_is_503_and_commands_409() {
    let d = Dir::new("e2e-shutdown");
    let sock = unique_socket_path();
    d.daemons_value(&json!([
        {"name": "stubborn", "stop_timeout": 2, "command": "trap '' TERM; while :; do sleep 0.05; done"},
    ]));
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let t = Target::unix(&sock);
    r.daemon_pid("stubborn");
    wait_api(&t);
    let (code, out, err) = client(&["shutdown", "--socket", &sock], &[]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("shutting down"), "{out}");
    let a = get(&t, "/health");
    assert_eq!(a.status, 503, "{a:?}");
    assert_eq!(a.json()["status"], "unhealthy");
    assert_eq!(a.json()["shutting_down"], true);
    let a = post(&t, "/daemons/stubborn/restart", "");
    assert_eq!(a.status, 409, "{a:?}");
    let (code, out, _) = client(&["health", "--socket", &sock], &[]);
    assert_eq!(code, 1, "{out}");
    let exit = r.wait_exit(secs(10.0));
    assert_eq!(exit.status(), 0, "{}", r.dump());
    assert!(!std::path::Path::new(&sock).exists());
    let (code, _, err) = client(&["health", "--socket", &sock], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn control_socket_mode_stale_and_live() {
    let d = Dir::new("e2e-socket");
    let sock = unique_socket_path();
    d.daemons(r#"[{"name": "idle", "command": ["sleep", "1000"]}]"#);
    // A stale socket file: bound, then the listener dropped without unlinking
    // (as a killed pidzero leaves it).
    drop(UnixListener::bind(&sock).unwrap());
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
    // Nobody answers on it (another test thread forking at the moment of the bind
    // can hold the listener for an instant: wait for that to pass).
    wait_until(DEADLINE, || {
        std::os::unix::net::UnixStream::connect(&sock)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .expect("the stale socket still answers");

    let mut first = pz().config_dir(&d).arg("--socket").arg(&sock).spawn();
    let t = Target::unix(&sock);
    wait_api(&t);
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    // Answering at all shows the stale file was replaced.
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A second pidzero on the same, live socket: exit 2, the socket named.
    let second = pz()
        .config_dir(&d)
        .env("PIDZERO_SOCKET", &sock)
        .run(DEADLINE);
    assert_eq!(second.status(), 2, "{}", second.dump());
    let all = format!("{}\n{}", second.stdout_text(), second.stderr);
    assert!(
        second.stderr.contains(&sock),
        "the message on stderr must name the socket: {all}"
    );
    assert!(
        second.find(|r| is_event(r, "started", None)).is_none(),
        "nothing may start: {all}"
    );
    // The first one still owns its file and answers.
    assert_eq!(std::fs::symlink_metadata(&sock).unwrap().ino(), meta.ino());
    assert_eq!(get(&t, "/version").status, 200);
    first.assert_running();

    first.signal(libc::SIGTERM);
    assert_eq!(first.wait_exit(DEADLINE).status(), 0, "{}", first.dump());
    assert!(!std::path::Path::new(&sock).exists(), "removed at exit");
}

#[test]
fn an_explicit_socket_that_cannot_be_bound_is_exit_2() {
    let d = Dir::new("e2e-badsock");
    d.daemons(r#"[{"name": "idle", "command": ["sleep", "1000"]}]"#);
    let bad = d.s("no-such-dir/pz.sock");
    let f = pz().config_dir(&d).arg("--socket").arg(&bad).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(format!("{}{}", f.stdout_text(), f.stderr).contains(&bad));
    // api.socket: null turns it off.
    api_config(&d, r#"{"socket": null}"#);
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &bad).spawn();
    r.daemon_pid("idle");
    r.assert_running();
}

#[test]
fn tcp_token_rules_with_the_real_binary() {
    let d = Dir::new("e2e-token");
    let port = free_port();
    d.daemons(
        r#"[{"name": "keeper", "vital": true, "command": ["sleep", "1000"]},
            {"name": "side", "command": ["sleep", "1000"]}]"#,
    );
    d.config(&format!(
        r#"{{"api": {{"listen": "127.0.0.1:{port}", "token": "file-token-abc"}}}}"#
    ));
    let sock = unique_socket_path();
    let mut r = pz()
        .config_dir(&d)
        .env("PIDZERO_SOCKET", &sock)
        .env("PIDZERO_API_TOKEN", "env-token-xyz")
        .spawn();
    let tcp = Target::tcp(port);
    r.daemon_pid("side");
    wait_api(&Target::unix(&sock));
    let bearer = |t: &str| format!("Bearer {t}");
    // /health is open.
    let a = get(&tcp, "/health");
    assert_eq!(a.status, 200, "{a:?}");
    // Everything else needs the token; the environment's wins over the file's.
    for path in [
        "/daemons",
        "/daemons/side",
        "/metrics",
        "/version",
        "/daemons/side/logs",
    ] {
        let a = get(&tcp, path);
        assert_eq!(a.status, 401, "{path}: {a:?}");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"), "{a:?}");
        let file = bearer("file-token-abc");
        let a = http(&tcp, "GET", path, &[("Authorization", &file)], "");
        assert_eq!(a.status, 401, "file token must lose to the env one: {path}");
        let env = bearer("env-token-xyz");
        let a = http(&tcp, "GET", path, &[("Authorization", &env)], "");
        assert_eq!(a.status, 200, "{path}: {a:?}");
    }
    let env = bearer("env-token-xyz");
    assert_eq!(
        http(&tcp, "POST", "/daemons/side/stop", &[], "").status,
        401
    );
    let a = http(
        &tcp,
        "POST",
        "/daemons/side/stop",
        &[("Authorization", &env)],
        "",
    );
    assert_eq!(a.status, 202, "{a:?}");
    // The client with --url and --token.
    let url = format!("http://127.0.0.1:{port}");
    let (code, out, err) = client(
        &["start", "side", "--url", &url, "--token", "env-token-xyz"],
        &[],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "side: starting");
    let (code, _, err) = client(&["status", "--url", &url, "--token", "wrong"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.is_empty());
    let (code, out, _) = client(&["health", "--url", &url], &[]);
    assert_eq!((code, out.as_str()), (0, "healthy"));
    let (code, out, err) = client(
        &["status", "--json"],
        &[
            ("PIDZERO_URL", &url),
            ("PIDZERO_API_TOKEN", "env-token-xyz"),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()[1]["name"],
        "side"
    );
    // The Unix socket needs no token.
    assert_eq!(get(&Target::unix(&sock), "/daemons").status, 200);
    let a = http(&tcp, "POST", "/shutdown", &[("Authorization", &env)], "");
    assert_eq!(a.status, 202, "{a:?}");
    assert_eq!(r.wait_exit(DEADLINE).status(), 0);
    let all = format!("{}\n{}", r.stdout_lines().join("\n"), r.stderr_text());
    for secret in ["file-token-abc", "env-token-xyz"] {
        assert!(
            !all.contains(secret),
            "token {secret} in pidzero's output:\n{all}"
        );
    }
}

#[test]
fn tcp_file_token_alone_and_no_token_read_only() {
    // api.token alone.
    let d = Dir::new("e2e-filetoken");
    let port = free_port();
    d.daemons(r#"[{"name": "side", "command": ["sleep", "1000"]}]"#);
    d.config(&format!(
        r#"{{"api": {{"listen": "127.0.0.1:{port}", "token": "only-in-file"}}}}"#
    ));
    let mut r = pz().config_dir(&d).spawn();
    let tcp = Target::tcp(port);
    r.daemon_pid("side");
    wait_answer(&tcp, "/health", "at all", |a| a.status == 200);
    assert_eq!(get(&tcp, "/daemons").status, 401);
    let a = http(
        &tcp,
        "GET",
        "/daemons",
        &[("Authorization", "Bearer only-in-file")],
        "",
    );
    assert_eq!(a.status, 200);
    let a = http(
        &tcp,
        "POST",
        "/shutdown",
        &[("Authorization", "Bearer only-in-file")],
        "",
    );
    assert_eq!(a.status, 202);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0);
    let all = format!("{}\n{}", r.stdout_lines().join("\n"), r.stderr_text());
    assert!(!all.contains("only-in-file"), "{all}");

    // No token: TCP serves GET only.
    let d = Dir::new("e2e-notoken");
    let port = free_port();
    let sock = unique_socket_path();
    d.daemons(r#"[{"name": "side", "command": ["sleep", "1000"]}]"#);
    d.config(&format!(r#"{{"api": {{"listen": "127.0.0.1:{port}"}}}}"#));
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let tcp = Target::tcp(port);
    r.daemon_pid("side");
    wait_answer(&tcp, "/health", "at all", |a| a.status == 200);
    assert_eq!(get(&tcp, "/daemons").status, 200);
    assert_eq!(get(&tcp, "/metrics").status, 200);
    for path in ["/daemons/side/stop", "/daemons/side/restart", "/shutdown"] {
        let a = post(&tcp, path, "");
        assert_eq!(a.status, 403, "{path}: {a:?}");
    }
    let a = http(
        &tcp,
        "POST",
        "/shutdown",
        &[("Authorization", "Bearer anything")],
        "",
    );
    assert_eq!(a.status, 403);
    let (code, _, err) = client(
        &["shutdown", "--url", &format!("http://127.0.0.1:{port}")],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(daemon(&Target::unix(&sock), "side")["state"], "running");
    r.assert_running();
    assert_eq!(post(&Target::unix(&sock), "/shutdown", "").status, 202);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0);
}

#[test]
fn metrics_move() {
    let d = Dir::new("e2e-metrics");
    let sock = unique_socket_path();
    d.daemons_value(&json!([
        {"name": "talker", "command": "trap 'echo said-something' HUP; echo ready; while :; do sleep 0.05; done"},
        {"name": "crasher", "restart": "on-failure", "restart_delay": 0.1,
         "command": "sleep 0.2; exit 1"},
        {"name": "orphans", "command": "(sleep 0.1 &) ; exec sleep 1000"},
    ]));
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let t = Target::unix(&sock);
    r.daemon_pid("talker");
    // Its trap is set: a HUP now runs it instead of killing the shell.
    r.wait_line("talker", "ready");
    wait_api(&t);
    let m = metrics(&t);
    for family in [
        "pidzero_daemon_up",
        "pidzero_daemon_restarts_total",
        "pidzero_log_records_total",
        "pidzero_log_bytes_total",
        "pidzero_sink_errors_total",
        "pidzero_reaped_total",
    ] {
        assert!(m.help.iter().any(|h| h == family), "no HELP for {family}");
        assert!(m.types.contains_key(family), "no TYPE for {family}");
    }
    assert_eq!(m.types["pidzero_daemon_up"], "gauge");
    assert_eq!(m.types["pidzero_reaped_total"], "counter");
    assert_eq!(m.value(r#"pidzero_daemon_up{daemon="talker"}"#), Some(1.0));

    // Log records.
    let key = r#"pidzero_log_records_total{daemon="talker"}"#;
    let bytes_key = r#"pidzero_log_bytes_total{daemon="talker"}"#;
    let before = m.value(key).unwrap_or(0.0);
    let bytes_before = m.value(bytes_key).unwrap_or(0.0);
    // One HUP at a time: the shell runs its trap once for HUPs that arrive
    // together, so each waits for the line of the one before. (The shell
    // may also report its `sleep` killed by the HUP, on stderr.)
    for sent in 1..=3 {
        assert_eq!(
            post(&t, "/daemons/talker/signal", r#"{"signal":"HUP"}"#).status,
            202
        );
        wait_answer(
            &t,
            "/daemons/talker/logs?lines=1000",
            "with the trap's line",
            |a| {
                a.status == 200
                    && a.json().as_array().is_some_and(|records| {
                        records
                            .iter()
                            .filter(|r| r["line"] == "said-something")
                            .count()
                            >= sent
                    })
            },
        );
    }
    let after = wait_metric(&t, key, |v| v >= before + 3.0);
    assert!(after >= before + 3.0);
    let bytes_after = metrics(&t).value(bytes_key).unwrap();
    assert!(bytes_after >= bytes_before + 3.0 * "said-something".len() as f64);

    // Restarts, by crash and by request.
    let restarts = wait_metric(
        &t,
        r#"pidzero_daemon_restarts_total{daemon="crasher"}"#,
        |v| v >= 2.0,
    );
    assert!(restarts >= 2.0);
    let key = r#"pidzero_daemon_restarts_total{daemon="talker"}"#;
    assert_eq!(metrics(&t).value(key), Some(0.0));
    assert_eq!(post(&t, "/daemons/talker/restart", "").status, 202);
    wait_metric(&t, key, |v| v == 1.0);

    // Orphans.
    let reaped = wait_metric(&t, "pidzero_reaped_total", |v| v >= 1.0);
    assert!(reaped >= 1.0);
    let reaped_before = reaped;
    assert_eq!(post(&t, "/daemons/orphans/restart", "").status, 202);
    wait_metric(&t, "pidzero_reaped_total", |v| v > reaped_before);

    assert_eq!(post(&t, "/shutdown", "").status, 202);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

/// Every column of the header starts at the same offset in every row.
fn assert_aligned(table: &str) {
    let lines: Vec<&str> = table.lines().collect();
    let starts = |l: &str| -> Vec<usize> {
        let b = l.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] != b' ' && (i == 0 || b[i - 1] == b' '))
            .collect()
    };
    let header = starts(lines[0]);
    assert_eq!(header.len(), 7, "{table}");
    for l in &lines[1..] {
        assert_eq!(starts(l), header, "not aligned:\n{table}");
    }
}

#[test]
fn client_commands_against_the_real_binary() {
    let d = Dir::new("e2e-cli");
    let sock = unique_socket_path();
    d.daemons_value(&json!([
        {"name": "web", "vital": true,
         "command": "trap 'echo hup-seen' HUP; echo hello; echo world; while :; do sleep 0.05; done"},
        {"name": "background-worker", "command": ["sleep", "1000"]},
    ]));
    let mut r = pz().config_dir(&d).spawn_with_socket(&sock);
    let web = r.daemon_pid("web");
    r.daemon_pid("background-worker");
    r.wait_line("web", "world");
    let s = ["--socket", sock.as_str()];
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&s);
        client(&all, &[])
    };

    let (code, out, err) = cli(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert_aligned(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("NAME "), "{out}");
    for col in ["STATE", "PID", "UPTIME", "RESTARTS", "VITAL", "HEALTH"] {
        assert!(lines[0].contains(col), "{out}");
    }
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "web");
    assert_eq!(row[1], "running");
    assert_eq!(row[2], web.to_string());
    assert_eq!(row[4], "0");
    assert_eq!(row[5], "yes");
    assert_eq!(row[6], "-");
    assert!(lines[2].starts_with("background-worker  running"), "{out}");

    let (code, out, _) = cli(&["status", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["name"], "web");
    assert_eq!(v[1]["command"], json!(["sleep", "1000"]));

    let (code, out, _) = cli(&["health"]);
    assert_eq!((code, out.as_str()), (0, "healthy"));

    let (code, out, err) = cli(&["logs", "web", "-n", "2"]);
    assert_eq!(code, 0, "{err}");
    let recs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 2, "{out}");
    assert_eq!(
        (recs[0]["line"].as_str(), recs[1]["line"].as_str()),
        (Some("hello"), Some("world"))
    );
    let (code, out, _) = cli(&["logs", "web"]);
    assert_eq!((code, out.lines().count()), (0, 2));

    let (code, out, err) = cli(&["signal", "web", "HUP"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "web: sent HUP");
    r.wait_line("web", "hup-seen");
    let (code, _, err) = cli(&["signal", "web", "BOGUS"]);
    assert_eq!(code, 1);
    assert!(err.contains("signal"), "{err}");

    let (code, out, err) = cli(&["stop", "background-worker"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "background-worker: stopping"),
        "{err}"
    );
    wait_state(&Target::unix(&sock), "background-worker", "exited");
    let (code, _, err) = cli(&["stop", "background-worker"]);
    assert_eq!(code, 1);
    assert!(err.contains("not running"), "{err}");
    let (code, _, err) = cli(&["stop", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("vital"), "{err}");
    let (code, out, _) = cli(&["start", "background-worker"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("background-worker: "), "{out}");
    wait_state(&Target::unix(&sock), "background-worker", "running");
    let (code, out, _) = cli(&["restart", "background-worker"]);
    assert_eq!((code, out.as_str()), (0, "background-worker: stopping"));
    let (code, _, err) = cli(&["restart", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("nope"), "{err}");

    let (code, out, _) = cli(&["shutdown"]);
    assert_eq!((code, out.as_str()), (0, "pidzero: shutting down"));
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());

    // Nothing listening: health says so and exits 2, the others too.
    let (code, out, err) = cli(&["health"]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("unreachable") && err.contains(&sock), "{err}");
    let (code, _, err) = cli(&["status"]);
    assert_eq!(code, 2);
    assert!(err.contains(&sock), "{err}");
    let port = free_port();
    let (code, _, err) = client(
        &["health", "--url", &format!("http://127.0.0.1:{port}")],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}

trait SpawnWithSocket {
    fn spawn_with_socket(self, sock: &str) -> Running;
}

impl SpawnWithSocket for Pz {
    fn spawn_with_socket(self, sock: &str) -> Running {
        let r = self.env("PIDZERO_SOCKET", sock).spawn();
        wait_api(&Target::unix(sock));
        r
    }
}

/// The run mode takes its TCP token from `--token` too (it wins over
/// `api.token`), and a blank `PIDZERO_API_TOKEN` leaves `api.token` in force.
#[test]
fn token_from_the_command_line_and_a_blank_environment() {
    for (args, env, in_force, refused) in [
        (
            &["--token", "cli-token-123"][..],
            None,
            "cli-token-123",
            "file-token-abc",
        ),
        (&[][..], Some("  "), "file-token-abc", "  "),
    ] {
        let d = Dir::new("tokensrc");
        let port = free_port();
        d.daemons(r#"[{"name": "keeper", "vital": true, "command": ["sleep", "1000"]}]"#);
        d.config(&format!(
            r#"{{"api": {{"listen": "127.0.0.1:{port}", "token": "file-token-abc"}}}}"#
        ));
        let mut pz = pz().config_dir(&d).args(args);
        if let Some(value) = env {
            pz = pz.env("PIDZERO_API_TOKEN", value);
        }
        let mut r = pz.spawn();
        let tcp = Target::tcp(port);
        r.daemon_pid("keeper");
        wait_answer(&tcp, "/health", "at all", |a| a.status == 200);
        let with = |t: &str| {
            let bearer = format!("Bearer {t}");
            http(&tcp, "GET", "/daemons", &[("Authorization", &bearer)], "").status
        };
        assert_eq!(with(in_force), 200, "{args:?} {env:?}");
        assert_eq!(with(refused), 401, "{args:?} {env:?}");
        r.signal(libc::SIGTERM);
        assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
    }
}

/// With both sinks off, daemon lines are still kept for `GET
/// /daemons/NAME/logs` and counted in `/metrics`, in order: the records then
/// never reach the writer thread, and the reader keeps them itself.
#[test]
fn logs_are_kept_with_no_sink() {
    let d = Dir::new("logsnosink");
    d.daemons(
        r#"[{"name": "quiet", "command": "seq 1 300; exec sleep 1000"},
            {"name": "keeper", "vital": true, "command": ["sleep", "1000"]}]"#,
    );
    d.config(r#"{"log": {"log_to_stdout": false, "log_to_file": false}}"#);
    let sock = unique_socket_path();
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let t = Target::unix(&sock);
    wait_api(&t);
    let answer = wait_answer(
        &t,
        "/daemons/quiet/logs?lines=1000",
        "with 300 records",
        |a| a.status == 200 && a.json().as_array().is_some_and(|r| r.len() == 300),
    );
    let records = answer.json();
    let lines: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(
                (&r["source"], &r["stream"]),
                (&"quiet".into(), &"stdout".into())
            );
            r["line"].as_str().unwrap()
        })
        .collect();
    let expected: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    assert_eq!(lines, expected);
    let key = r#"pidzero_log_records_total{daemon="quiet"}"#;
    assert_eq!(metrics(&t).value(key), Some(300.0));
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
    assert!(
        r.stdout_raw().is_empty(),
        "the stdout sink is off: {}",
        r.dump()
    );
}

/// `GET /daemons/NAME/logs`: 100 records without `lines`, never more than the
/// 1,000 kept, oldest first and the newest last.
#[test]
fn logs_default_to_100_and_keep_1000() {
    let d = Dir::new("logscap");
    d.daemons(
        r#"[{"name": "many", "command": "seq 1 1500; exec sleep 1000"},
            {"name": "keeper", "vital": true, "command": ["sleep", "1000"]}]"#,
    );
    let sock = unique_socket_path();
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    r.wait_line("many", "1500");
    let t = Target::unix(&sock);
    wait_api(&t);
    let lines_of = |path: &str| -> Vec<String> {
        let a = get(&t, path);
        assert_eq!(a.status, 200, "{path}: {a:?}");
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_str().unwrap().to_string())
            .collect()
    };
    let default = lines_of("/daemons/many/logs");
    assert_eq!(default.len(), 100);
    assert_eq!(
        (default[0].as_str(), default[99].as_str()),
        ("1401", "1500")
    );
    let all = lines_of("/daemons/many/logs?lines=5000");
    assert_eq!(all.len(), 1000);
    assert_eq!((all[0].as_str(), all[999].as_str()), ("501", "1500"));
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

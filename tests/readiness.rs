//! Readiness that daemons announce, with the real binary and real protocol
//! clients: a Python sd_notify client (its own `socket.sendto` to the
//! abstract `@` address), Debian's `systemd-notify`, and s6's notification
//! fd written by `sh`. Dependents start after `READY=1`, `/health` is 503
//! until a vital notify daemon is ready, a missed `ready_timeout` or
//! keep-alive fails a vital daemon, a datagram from outside the daemon is
//! ignored, and a quiet notify or watchdog daemon costs pidzero no wake-up.

mod common;

use std::path::{Path, PathBuf};

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::Value;

/// A small sd_notify client: runs its arguments as steps.
/// `send:TEXT` sends TEXT (with `\n` for newlines) to `$NOTIFY_SOCKET`;
/// `sleep:S`; `wait:PATH` waits for a file (the test's go-ahead);
/// `print-socket` prints `$NOTIFY_SOCKET`; `print:TEXT`; `flood` sends
/// status datagrams as fast as it can, for ever. Then it sleeps.
const CLIENT: &str = r#"
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for step in sys.argv[1:]:
    kind, _, arg = step.partition(":")
    if kind == "send":
        s.sendto(arg.replace("\\n", "\n").encode(), addr)
    elif kind == "sleep":
        time.sleep(float(arg))
    elif kind == "wait":
        while not os.path.exists(arg):
            time.sleep(0.02)
    elif kind == "print-socket":
        print(os.environ["NOTIFY_SOCKET"], flush=True)
    elif kind == "print":
        print(arg, flush=True)
    elif kind == "flood":
        n = 0
        while True:
            n += 1
            s.sendto(b"STATUS=%d" % n, addr)
time.sleep(300)
"#;

/// A config dir with the client script, `daemons` written in it.
fn setup(tag: &str, daemons: &str) -> (Dir, PathBuf) {
    let d = Dir::new(tag);
    d.write("notify.py", CLIENT);
    d.daemons(
        &daemons
            .replace("CLIENT", &d.s("notify.py"))
            .replace("GOFILE", &d.s("GO")),
    );
    let socket = PathBuf::from(unique_socket_path());
    (d, socket)
}

fn pidzero(d: &Dir, socket: &Path) -> Pz {
    pz().config_dir(d)
        .env("PIDZERO_SOCKET", socket.to_str().expect("utf-8 path"))
}

fn position(records: &[Value], f: impl Fn(&Value) -> bool) -> Option<usize> {
    records.iter().position(f)
}

fn daemon_info(socket: &Path, name: &str) -> Value {
    get(&Target::unix(socket), &format!("/daemons/{name}")).json()
}

#[test]
fn a_dependent_starts_only_after_ready_1_from_a_python_client() {
    let (d, socket) = setup(
        "ready-python",
        r#"[{"name": "db", "vital": true, "ready": {"notify": "systemd"},
             "command": ["python3", "CLIENT", "send:STATUS=loading", "wait:GOFILE",
                         "send:READY=1\nSTATUS=serving 3 clients"]},
            {"name": "app", "command": "echo app started; exec sleep 300", "depends_on": ["db"]}]"#,
    );
    let Some(pz) = pidzero(&d, &socket).ns("a_dependent_starts_only_after_ready_1") else {
        return;
    };
    let r = pz.spawn();
    let target = Target::unix(&socket);
    // Waiting: its own status text shows, /health fails on it, app waits.
    wait_until(DEADLINE, || {
        common::http::try_http(&target, "GET", "/daemons/db", &[], "")
            .is_ok_and(|a| a.json()["status_text"] == "loading")
    })
    .unwrap_or_else(|| panic!("no status text\n{}", r.dump()));
    let db = daemon_info(&socket, "db");
    assert_eq!(db["ready"], false, "{db}");
    assert_eq!(db["ready_state"], "waiting", "{db}");
    assert_eq!(db["ready_mode"], "notify:systemd", "{db}");
    let health = get(&target, "/health");
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.json()["failing"], serde_json::json!(["db"]));
    assert_eq!(daemon_info(&socket, "app")["state"], "pending");

    d.write("GO", "");
    r.wait_line("app", "app started");
    let records = r.records();
    let ready = position(&records, |rec| is_event(rec, "daemon_ready", Some("db")))
        .unwrap_or_else(|| panic!("no daemon_ready\n{}", r.dump()));
    let starting = position(&records, |rec| is_event(rec, "starting", Some("app")))
        .unwrap_or_else(|| panic!("app never started\n{}", r.dump()));
    assert!(
        ready < starting,
        "app started before db was ready\n{}",
        r.dump()
    );
    assert!(
        records[ready]["ready_after_ms"].as_u64().is_some(),
        "{}",
        records[ready]
    );

    let db = daemon_info(&socket, "db");
    assert_eq!(db["ready"], true, "{db}");
    assert_eq!(db["status_text"], "serving 3 clients", "{db}");
    assert!(db["ready_after_ms"].as_u64().is_some(), "{db}");
    assert_eq!(get(&target, "/health").status, 200);
    let metrics = parse_metrics(&get(&target, "/metrics").body);
    assert_eq!(
        metrics.value("pidzero_daemon_ready{daemon=\"db\"}"),
        Some(1.0)
    );
    assert!(metrics
        .value("pidzero_daemon_ready_seconds{daemon=\"db\"}")
        .is_some_and(|s| s > 0.0));
    // The CLI shows it too.
    let (exit, out, err) = run_cmd(
        std::process::Command::new(bin())
            .arg("status")
            .env("PIDZERO_SOCKET", &socket),
        DEADLINE,
    );
    assert_eq!(exit.status(), 0, "{err}");
    assert!(
        out.lines()
            .next()
            .is_some_and(|h| h.contains("READY") && h.contains("STATUS")),
        "{out}"
    );
    assert!(out.contains("serving 3 clients"), "{out}");
}

#[test]
fn debian_systemd_notify_announces_readiness() {
    let tool = Path::new("/usr/bin/systemd-notify");
    if !tool.exists() {
        if std::env::var_os("PIDZERO_REQUIRE_NS").is_some() {
            panic!("/usr/bin/systemd-notify is missing (install the systemd package)");
        }
        eprintln!(
            "SKIP debian_systemd_notify_announces_readiness: no {}",
            tool.display()
        );
        return;
    }
    let (d, socket) = setup(
        "ready-systemd-notify",
        r#"[{"name": "db", "ready": {"notify": "systemd"},
             "command": "systemd-notify --ready --status='warmed up' && echo notified; exec sleep 300"},
            {"name": "app", "command": "echo app started; exec sleep 300", "depends_on": ["db"]}]"#,
    );
    let Some(pz) = pidzero(&d, &socket).ns("debian_systemd_notify_announces_readiness") else {
        return;
    };
    let r = pz.spawn();
    r.wait_line("app", "app started");
    // systemd-notify waits for pidzero to take its message (BARRIER=1) and
    // succeeds.
    r.wait_line("db", "notified");
    let records = r.records();
    let ready = position(&records, |rec| is_event(rec, "daemon_ready", Some("db")));
    let starting = position(&records, |rec| is_event(rec, "starting", Some("app")));
    assert!(ready.is_some() && ready < starting, "{}", r.dump());
    let db = daemon_info(&socket, "db");
    assert_eq!(db["status_text"], "warmed up", "{db}");
    assert_eq!(db["ready"], true, "{db}");
}

#[test]
fn a_newline_on_the_notification_fd_means_ready() {
    let (d, socket) = setup(
        "ready-fd",
        r#"[{"name": "three", "ready": {"notify": "fd"}, "command": "echo >&3; exec sleep 300"},
            {"name": "five", "ready": {"notify": "fd", "fd": 5},
             "command": "printf 'ok\n' >&5; exec 5>&-; exec sleep 300"},
            {"name": "app", "command": "echo app started; exec sleep 300",
             "depends_on": ["three", "five"]}]"#,
    );
    let r = pidzero(&d, &socket).spawn();
    r.wait_line("app", "app started");
    let records = r.records();
    let starting = position(&records, |rec| is_event(rec, "starting", Some("app")));
    for name in ["three", "five"] {
        let ready = position(&records, |rec| is_event(rec, "daemon_ready", Some(name)));
        assert!(ready.is_some() && ready < starting, "{name}\n{}", r.dump());
        assert_eq!(daemon_info(&socket, name)["ready_mode"], "notify:fd");
    }
}

#[test]
fn a_notification_fd_closed_without_a_newline_runs_into_the_ready_timeout() {
    let (d, socket) = setup(
        "ready-fd-eof",
        r#"[{"name": "silent", "ready": {"notify": "fd"}, "ready_timeout": 0.5,
             "command": "exec 3>&-; exec sleep 300"},
            {"name": "other", "command": "sleep 300"}]"#,
    );
    let mut r = pidzero(&d, &socket).spawn();
    let timeout = r.wait_event("ready_timeout", Some("silent"));
    assert_eq!(timeout["timeout_ms"], 500, "{timeout}");
    r.wait_event("exited", Some("silent"));
    wait_until(DEADLINE, || {
        daemon_info(&socket, "silent")["state"] == "failed"
    })
    .unwrap_or_else(|| panic!("not failed\n{}", r.dump()));
    r.assert_running();
}

#[test]
fn a_vital_daemon_that_misses_its_ready_timeout_ends_pidzero() {
    let (d, socket) = setup(
        "ready-timeout-vital",
        r#"[{"name": "db", "vital": true, "ready": {"notify": "systemd"}, "ready_timeout": 0.5,
             "command": ["python3", "CLIENT", "send:STATUS=still loading"]},
            {"name": "app", "command": "sleep 300", "depends_on": ["db"]}]"#,
    );
    let mut r = pidzero(&d, &socket).spawn();
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 1, "{}", r.dump());
    let records = r.records();
    assert!(
        records
            .iter()
            .any(|rec| is_event(rec, "ready_timeout", Some("db"))),
        "{}",
        r.dump()
    );
    let vital = records
        .iter()
        .find(|rec| is_event(rec, "vital_exit", Some("db")))
        .unwrap_or_else(|| panic!("no vital_exit\n{}", r.dump()));
    assert_eq!(vital["reason"], "ready_timeout", "{vital}");
    assert!(
        !records
            .iter()
            .any(|rec| is_event(rec, "starting", Some("app"))),
        "app must never start\n{}",
        r.dump()
    );
}

#[test]
fn two_keepalives_then_silence_restarts_the_daemon() {
    let (d, socket) = setup(
        "ready-watchdog-restart",
        r#"[{"name": "db", "restart": "on-failure", "restart_delay": 0.1,
             "ready": {"notify": "systemd"}, "watchdog": 0.5,
             "command": ["python3", "CLIENT", "send:READY=1\nWATCHDOG=1", "sleep:0.2",
                         "send:WATCHDOG=1", "print:silent now"]}]"#,
    );
    let r = pidzero(&d, &socket).spawn();
    let missed = r.wait_event("watchdog_missed", Some("db"));
    assert!(
        missed["detail"].as_str().is_some_and(|s| s.contains("0.5")),
        "{missed}"
    );
    r.wait_event("restarting", Some("db"));
    wait_until(DEADLINE, || {
        r.records()
            .iter()
            .filter(|rec| is_event(rec, "started", Some("db")))
            .count()
            >= 2
    })
    .unwrap_or_else(|| panic!("not started again\n{}", r.dump()));
    let _ = socket;
}

#[test]
fn a_vital_daemon_that_misses_a_keepalive_ends_pidzero() {
    let (d, socket) = setup(
        "ready-watchdog-vital",
        r#"[{"name": "db", "vital": true, "ready": {"notify": "systemd"}, "watchdog": 0.5,
             "command": ["python3", "CLIENT", "send:READY=1\nWATCHDOG=1", "sleep:0.2",
                         "send:WATCHDOG=1"]},
            {"name": "side", "command": "sleep 300"}]"#,
    );
    let mut r = pidzero(&d, &socket).spawn();
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 1, "{}", r.dump());
    let records = r.records();
    let keepalive_in = records
        .iter()
        .position(|rec| is_event(rec, "daemon_ready", Some("db")));
    let missed = records
        .iter()
        .position(|rec| is_event(rec, "watchdog_missed", Some("db")));
    assert!(
        keepalive_in.is_some() && missed > keepalive_in,
        "{}",
        r.dump()
    );
    let vital = records
        .iter()
        .find(|rec| is_event(rec, "vital_exit", Some("db")))
        .unwrap_or_else(|| panic!("no vital_exit\n{}", r.dump()));
    assert_eq!(vital["reason"], "watchdog", "{vital}");
}

#[test]
fn the_daemon_sees_its_watchdog_period() {
    let (d, socket) = setup(
        "ready-watchdog-env",
        r#"[{"name": "db", "ready": {"notify": "systemd"}, "watchdog": 30,
             "command": "echo \"usec=$WATCHDOG_USEC pid=$WATCHDOG_PID/$$ socket=$NOTIFY_SOCKET\"; exec sleep 300"}]"#,
    );
    let r = pidzero(&d, &socket).spawn();
    let line = r.wait_record("the environment line", DEADLINE, |rec| {
        rec["source"] == "db"
    });
    let text = line["line"].as_str().unwrap_or_default();
    assert!(text.starts_with("usec=30000000 pid="), "{text}");
    // WATCHDOG_PID is the daemon's own pid (sd_watchdog_enabled checks it).
    let pids = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .unwrap_or_default();
    let (watchdog_pid, own) = pids.split_once('/').unwrap_or_default();
    assert!(!own.is_empty() && watchdog_pid == own, "{text}");
    assert!(text.contains(" socket=@pidzero-"), "{text}");
    assert!(text.ends_with("/db/1"), "{text}");
}

#[test]
fn a_datagram_from_outside_the_daemon_is_ignored() {
    let (d, socket) = setup(
        "ready-forged",
        r#"[{"name": "db", "ready": {"notify": "systemd"},
             "command": ["python3", "CLIENT", "print-socket", "wait:GOFILE", "send:STATUS=genuine"]}]"#,
    );
    let r = pidzero(&d, &socket).spawn();
    let line = r.wait_record("NOTIFY_SOCKET", DEADLINE, |rec| rec["source"] == "db");
    let address = line["line"].as_str().unwrap_or_default().to_string();
    // The test process is in no daemon's process group.
    let forger = std::os::unix::net::UnixDatagram::unbound().expect("socket");
    let abstract_name = address.strip_prefix('@').expect("abstract address");
    let addr =
        <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            abstract_name.as_bytes(),
        )
        .expect("address");
    forger
        .send_to_addr(b"READY=1\nSTATUS=forged", &addr)
        .expect("send");
    // The daemon's own message comes after the forged one on the same
    // socket: once it shows, the forged one was read (and ignored).
    d.write("GO", "");
    wait_until(DEADLINE, || {
        daemon_info(&socket, "db")["status_text"] == "genuine"
    })
    .unwrap_or_else(|| panic!("no genuine status\n{}", r.dump()));
    assert_eq!(daemon_info(&socket, "db")["ready"], false);
    assert!(!r
        .records()
        .iter()
        .any(|rec| is_event(rec, "daemon_ready", None)));
}

#[test]
fn no_wakeups_while_notify_and_watchdog_daemons_are_quiet() {
    let (d, socket) = setup(
        "ready-idle",
        r#"[{"name": "db", "ready": {"notify": "systemd"}, "ready_timeout": 3600,
             "command": ["python3", "CLIENT", "send:READY=1\nSTATUS=up"]},
            {"name": "watched", "ready": {"notify": "systemd"}, "watchdog": 3600,
             "command": ["python3", "CLIENT", "send:READY=1\nWATCHDOG=1"]},
            {"name": "app", "command": "sleep 300", "depends_on": ["db", "watched"]}]"#,
    );
    let mut r = pidzero(&d, &socket).spawn();
    r.daemon_pid("app");
    let delta =
        wakeups_once_idle(r.pid).unwrap_or_else(|| panic!("pidzero never goes idle\n{}", r.dump()));
    assert!(
        delta <= 2,
        "{delta} wake-ups in 2 s with quiet notify daemons"
    );
    r.assert_running();
}

#[test]
fn a_flooding_daemon_starves_neither_the_api_nor_signals() {
    let (d, socket) = setup(
        "ready-flood",
        r#"[{"name": "flood", "ready": {"notify": "systemd"}, "command": ["python3", "CLIENT", "flood"]},
            {"name": "other", "command": "sleep 300"}]"#,
    );
    let mut r = pidzero(&d, &socket).spawn();
    wait_until(DEADLINE, || {
        common::http::try_http(&Target::unix(&socket), "GET", "/daemons/flood", &[], "")
            .is_ok_and(|a| a.json()["status_text"].is_string())
    })
    .unwrap_or_else(|| panic!("no status from the flood\n{}", r.dump()));
    for _ in 0..5 {
        let asked = std::time::Instant::now();
        let answer = get(&Target::unix(&socket), "/health");
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            asked.elapsed() < secs(1.0),
            "/health took {:?}",
            asked.elapsed()
        );
    }
    // The status keeps moving: the flood is being read, not dropped wholesale.
    let first = daemon_info(&socket, "flood")["status_text"].clone();
    wait_until(DEADLINE, || {
        daemon_info(&socket, "flood")["status_text"] != first
    })
    .unwrap_or_else(|| panic!("status never changed\n{}", r.dump()));
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0, "{}", r.dump());
}

#[test]
fn a_watchdog_daemon_runs_a_script_without_shebang_like_any_daemon() {
    let (d, socket) = setup("ready-watchdog-script", "[]");
    let script = d.write(
        "plain-script",
        "echo \"ran with $1 pid=$WATCHDOG_PID\"\nexec sleep 300\n",
    );
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    d.daemons(&format!(
        r#"[{{"name": "db", "ready": {{"notify": "systemd"}}, "watchdog": 30,
              "command": ["{}", "first"]}}]"#,
        script.display()
    ));
    let r = pidzero(&d, &socket).spawn();
    let line = r.wait_record("the script's line", DEADLINE, |rec| rec["source"] == "db");
    let text = line["line"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("ran with first pid="),
        "{text}\n{}",
        r.dump()
    );
    assert!(text.len() > "ran with first pid=".len(), "{text}");
}

//! Scheduled jobs with the real binary: runs logged and counted, `start`
//! runs a job now, an overlapping run is skipped and counted, a vital job
//! that fails ends pidzero with its status, no wake-ups between due times,
//! and a time zone that cannot be found is a configuration error.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::Value;

/// pidzero with `daemons` and its control socket; the socket's path is returned.
fn start(tag: &str, daemons: &str) -> (Dir, Running, PathBuf) {
    let d = Dir::new(tag);
    d.daemons(daemons);
    let socket = PathBuf::from(unique_socket_path());
    let r = pz()
        .config_dir(&d)
        .env("PIDZERO_SOCKET", socket.to_str().expect("utf-8 path"))
        .spawn();
    (d, r, socket)
}

fn metric(socket: &Path, key: &str) -> f64 {
    let Ok(answer) = common::http::try_http(
        &Target::Unix(socket.to_path_buf()),
        "GET",
        "/metrics",
        &[],
        "",
    ) else {
        return 0.0;
    };
    parse_metrics(&answer.body).value(key).unwrap_or(0.0)
}

fn daemon(socket: &Path, name: &str) -> Value {
    get(
        &Target::Unix(socket.to_path_buf()),
        &format!("/daemons/{name}"),
    )
    .json()
}

/// The client subcommand `args` against `socket`: exit code and stdout.
fn client(socket: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(bin());
    without_pidzero_env(&mut cmd)
        .args(args)
        .env("PIDZERO_SOCKET", socket);
    let (exit, out, err) = run_cmd(&mut cmd, DEADLINE);
    assert!(err.is_empty() || exit.status() != 0, "{err}");
    (exit.status(), out)
}

#[test]
fn each_run_is_logged_and_counted_in_metrics_and_the_api() {
    let (_d, mut r, socket) = start(
        "job-runs",
        r#"[{"name": "tick", "command": "echo tick-ran", "schedule": "@every 1s"}]"#,
    );
    let runs = r#"pidzero_job_runs_total{daemon="tick"}"#;
    let done = wait_until(DEADLINE, || metric(&socket, runs) >= 2.0);
    assert!(done.is_some(), "two runs in {DEADLINE:?}\n{}", r.dump());
    // Each run's output is a record of its own.
    let lines = || {
        r.records()
            .iter()
            .filter(|rec| is_line(rec, "tick", "tick-ran"))
            .count()
    };
    assert!(
        wait_until(DEADLINE, || lines() >= 2).is_some(),
        "{}",
        r.dump()
    );
    let finished = r.wait_event("job_finished", Some("tick"));
    assert_eq!(finished["status"], 0, "{finished}");
    assert!(finished["duration_ms"].is_i64(), "{finished}");
    assert!(finished["next_run"].is_string(), "{finished}");
    let info = daemon(&socket, "tick");
    assert_eq!(info["job"]["schedule"], "@every 1s", "{info}");
    assert_eq!(info["job"]["timezone"], "UTC", "{info}");
    assert_eq!(info["job"]["overlap"], "skip", "{info}");
    assert_eq!(info["job"]["last_run"]["code"], 0, "{info}");
    assert_eq!(info["job"]["failures"], 0, "{info}");
    assert!(metric(&socket, r#"pidzero_job_failures_total{daemon="tick"}"#) == 0.0);
    // A job between runs is no reason to be unhealthy, nor to exit.
    let health = get(&Target::Unix(socket.to_path_buf()), "/health");
    assert_eq!(health.status, 200, "{}", health.body);
    r.assert_running();
}

#[test]
fn start_runs_a_job_now_and_status_shows_it() {
    let (_d, mut r, socket) = start(
        "job-start",
        r#"[{"name": "report", "command": "echo report-ran", "schedule": "@every 1h",
             "vital": true}]"#,
    );
    r.wait_event("job_scheduled", Some("report"));
    let info = daemon(&socket, "report");
    assert_eq!(info["state"], "scheduled", "{info}");
    assert!(info["job"]["next_run"].is_string(), "{info}");
    assert_eq!(info["job"]["runs"], 0, "{info}");

    let (code, out) = client(&socket, &["start", "report"]);
    assert_eq!(code, 0, "{out}");
    r.wait_line("report", "report-ran");
    r.wait_event("job_finished", Some("report"));
    let back = wait_until(DEADLINE, || {
        daemon(&socket, "report")["state"] == "scheduled"
    });
    assert!(back.is_some(), "{}", daemon(&socket, "report"));
    assert_eq!(daemon(&socket, "report")["job"]["runs"], 1);

    let (code, table) = client(&socket, &["status"]);
    assert_eq!(code, 0);
    let job_line = table
        .lines()
        .find(|l| l.starts_with("report ") && l.contains("@every 1h"))
        .unwrap_or_else(|| panic!("no job line in\n{table}"));
    assert!(job_line.contains(" 0 "), "last status 0: {job_line}");
    let (code, _) = client(&socket, &["health"]);
    assert_eq!(code, 0, "a vital job between runs is healthy");
    r.assert_running();
}

#[test]
fn an_overlapping_run_is_skipped_and_counted() {
    let (_d, mut r, socket) = start(
        "job-skip",
        r#"[{"name": "slow", "command": "echo slow-started; exec sleep 60",
             "schedule": "@every 1s"}]"#,
    );
    r.wait_line("slow", "slow-started");
    let skipped = r.wait_event("job_skipped", Some("slow"));
    assert_eq!(skipped["overlap"], "skip", "{skipped}");
    let counted = wait_until(DEADLINE, || {
        metric(&socket, r#"pidzero_job_skipped_total{daemon="slow"}"#) >= 1.0
    });
    assert!(counted.is_some(), "{}", r.dump());
    assert_eq!(
        metric(&socket, r#"pidzero_job_runs_total{daemon="slow"}"#),
        1.0
    );
    // Shutdown stops the running job like any daemon.
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0, "{}", r.dump());
}

#[test]
fn overlap_replace_stops_the_running_one_and_starts_the_new_one() {
    let (_d, mut r, socket) = start(
        "job-replace",
        r#"[{"name": "sync", "command": "echo sync-started; exec sleep 60",
             "schedule": "@every 1s", "overlap": "replace"}]"#,
    );
    let replaced = r.wait_event("job_replaced", Some("sync"));
    assert_eq!(replaced["overlap"], "replace", "{replaced}");
    let runs = r#"pidzero_job_runs_total{daemon="sync"}"#;
    let second = wait_until(DEADLINE, || metric(&socket, runs) >= 2.0);
    assert!(second.is_some(), "{}", r.dump());
    let started = || {
        r.records()
            .iter()
            .filter(|rec| is_line(rec, "sync", "sync-started"))
            .count()
    };
    assert!(
        wait_until(DEADLINE, || started() >= 2).is_some(),
        "{}",
        r.dump()
    );
    let info = daemon(&socket, "sync");
    assert_eq!(info["job"]["last_run"]["signal"], "SIGTERM", "{info}");
    assert_eq!(
        info["job"]["failures"], 0,
        "a replaced run is no failure: {info}"
    );
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

#[test]
fn a_vital_job_that_fails_ends_pidzero_with_its_status() {
    let (_d, mut r, _socket) = start(
        "job-vital",
        r#"[{"name": "web", "command": "sleep 300"},
            {"name": "migrate", "command": "echo migrating; exit 7", "schedule": "@every 1s",
             "vital": true}]"#,
    );
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 7, "{}", r.dump());
    let records = r.records();
    assert!(records
        .iter()
        .any(|rec| is_line(rec, "migrate", "migrating")));
    let vital = records
        .iter()
        .find(|rec| is_event(rec, "vital_exit", Some("migrate")))
        .unwrap_or_else(|| panic!("no vital_exit\n{}", r.dump()));
    assert_eq!(vital["status"], 7, "{vital}");
}

#[test]
fn no_wakeups_between_two_runs() {
    let (_d, mut r, _socket) = start(
        "job-idle",
        r#"[{"name": "hourly", "command": "true", "schedule": "@every 1h"},
            {"name": "nightly", "command": "true", "schedule": "0 3 * * *",
             "timezone": "Europe/Paris"},
            {"name": "quiet", "command": "sleep 300"}]"#,
    );
    r.wait_event("job_scheduled", Some("nightly"));
    r.daemon_pid("quiet");
    let delta =
        wakeups_once_idle(r.pid).unwrap_or_else(|| panic!("pidzero never goes idle\n{}", r.dump()));
    assert!(delta <= 2, "{delta} wake-ups in 2 s with jobs due later");
    r.assert_running();
}

#[test]
fn a_time_zone_without_a_database_is_a_configuration_error() {
    // A scratch image has no /usr/share/zoneinfo: hide it in a mount namespace.
    if !ns_available("a_time_zone_without_a_database_is_a_configuration_error") {
        return;
    }
    let d = Dir::new("job-tz");
    d.daemons(
        r#"[{"name": "utc", "command": "true", "schedule": "0 3 * * *"},
  {"name": "nightly", "command": "true", "schedule": "0 3 * * *", "timezone": "Europe/Paris"}]"#,
    );
    let check = |hide: bool| {
        let hide = if hide {
            "mount -t tmpfs tmpfs /usr/share/zoneinfo && "
        } else {
            ""
        };
        let mut cmd = Command::new("unshare");
        without_pidzero_env(&mut cmd)
            .args(["--mount", "/bin/sh", "-c"])
            .arg(format!("{hide}exec \"$0\" \"$@\""))
            .arg(bin())
            .args(["check", "--config-dir", &d.s(".")])
            .env_remove("TZDIR");
        run_cmd(&mut cmd, DEADLINE)
    };
    let (exit, _out, err) = check(false);
    assert_eq!(exit.status(), 0, "with zoneinfo: {err}");
    let (exit, _out, err) = check(true);
    assert_eq!(exit.status(), 2, "{err}");
    assert_config_error(
        &err,
        "daemons.json",
        Some(2),
        Some("nightly"),
        Some("timezone"),
    );
    assert!(err.contains("no time zone database"), "{err}");
    assert_eq!(
        err.matches("daemons.json:").count(),
        1,
        "UTC needs no database: {err}"
    );
}

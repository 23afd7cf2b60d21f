//! `check` and the run agree: what `check` calls OK the run accepts, and what
//! the run refuses before starting a daemon `check` reports, for the log
//! file, executables and the control socket.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;

/// `check` with the given options before it (so a `--socket` there beats
/// the PIDZERO_SOCKET that `pz()` sets, as it does for a run).
fn check(d: &Dir, before: &[&str]) -> Finished {
    pz().args(before).arg("check").config_dir(d).run(DEADLINE)
}

fn run(d: &Dir, before: &[&str]) -> Finished {
    pz().args(before).config_dir(d).run(DEADLINE)
}

/// A daemon that leaves a marker file, so a test can tell it started.
fn marker_daemon(d: &Dir, extra: &str) -> String {
    format!(
        r#"[{{"name": "m", "command": ["/bin/touch", {}]{extra}}}]"#,
        js(d.s("started"))
    )
}

fn assert_check_reports(c: &Finished, field: &str, text: &str) {
    assert_eq!(c.status(), 2, "check: {}", c.dump());
    assert!(
        c.stderr
            .lines()
            .any(|l| l.contains(&format!("field {field}:")) && l.contains(text)),
        "check should report {field}: {text}\n{}",
        c.dump()
    );
}

#[test]
fn log_file_in_an_existing_directory_both_accept() {
    let d = Dir::new("agree-log-ok");
    fs::create_dir(d.p("logs")).unwrap();
    d.daemons(&marker_daemon(&d, ""));
    d.config(r#"{"log": {"log_to_file": true, "file_path": "logs/pz.log"}}"#);
    let c = check(&d, &[]);
    assert_eq!(c.status(), 0, "{}", c.dump());
    assert!(!d.exists("started"), "check started a daemon");
    let f = run(&d, &[]);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(d.exists("started"), "{}", f.dump());
    assert!(d.exists("logs/pz.log"), "{}", f.dump());
}

#[test]
fn log_file_the_run_cannot_open_is_reported_by_check() {
    for (tag, path, text) in [
        (
            "agree-log-nodir",
            "missing/pz.log",
            "missing does not exist",
        ),
        ("agree-log-isdir", "adir", "it is a directory"),
    ] {
        let d = Dir::new(tag);
        fs::create_dir(d.p("adir")).unwrap();
        d.daemons(&marker_daemon(&d, ""));
        d.config(&format!(
            r#"{{"log": {{"log_to_file": true, "file_path": {}}}}}"#,
            js(path)
        ));
        let f = run(&d, &[]);
        assert_eq!(f.status(), 2, "{tag}: {}", f.dump());
        assert!(
            f.stderr.contains("cannot open the log file"),
            "{}",
            f.dump()
        );
        assert!(!d.exists("started"), "{tag}: the run started a daemon");
        assert_check_reports(&check(&d, &[]), "log.file_path", text);
    }
}

#[test]
fn executables_that_resolve_both_accept() {
    let d = Dir::new("agree-exe-ok");
    fs::create_dir(d.p("bin")).unwrap();
    d.write(
        "bin/mark",
        &format!("#!/bin/sh\n/bin/touch {}\n", d.s("started")),
    );
    fs::set_permissions(d.p("bin/mark"), fs::Permissions::from_mode(0o755)).unwrap();
    // A bare name found on the daemon's own PATH only.
    d.daemons(&format!(
        r#"[{{"name": "m", "command": "mark", "environment": {{"PATH": {}}}}}]"#,
        js(d.s("bin"))
    ));
    let c = check(&d, &[]);
    assert_eq!(c.status(), 0, "{}", c.dump());
    let f = run(&d, &[]);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(d.exists("started"), "{}", f.dump());
}

#[test]
fn vital_executables_the_run_refuses_are_reported_by_check() {
    let d = Dir::new("agree-exe-bad");
    d.write("plain", "#!/bin/sh\n");
    fs::set_permissions(d.p("plain"), fs::Permissions::from_mode(0o644)).unwrap();
    for (program, status, text) in [
        (d.s("missing"), 127, "does not exist; a run exits 127"),
        (
            d.s("plain"),
            126,
            "has no execute permission; a run exits 126",
        ),
    ] {
        d.daemons(&format!(
            r#"[{{"name": "side", "command": ["/bin/touch", {}]}},
  {{"name": "v", "vital": true, "command": [{}]}}]"#,
            js(d.s("started")),
            js(&program)
        ));
        let f = run(&d, &[]);
        assert_eq!(f.status(), status, "{}", f.dump());
        assert!(!d.exists("started"), "the run started a daemon");
        let c = check(&d, &[]);
        assert_check_reports(&c, "command", text);
        assert_config_error(
            &c.stderr,
            "daemons.json",
            Some(2),
            Some("v"),
            Some("command"),
        );
    }
}

#[test]
fn control_socket_both_ways() {
    let d = Dir::new("agree-socket");
    d.daemons(&marker_daemon(&d, ""));
    let bad = d.s("none/pz.sock");
    let f = run(&d, &["--socket", &bad]);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(!d.exists("started"), "the run started a daemon");
    let c = check(&d, &["--socket", &bad]);
    assert_eq!(c.status(), 2, "{}", c.dump());
    assert!(
        c.stderr
            .contains(&format!("--socket: cannot listen on {bad}")),
        "{}",
        c.dump()
    );
    let good = unique_socket_path();
    let c = check(&d, &["--socket", &good]);
    assert_eq!(c.status(), 0, "{}", c.dump());
    let f = run(&d, &["--socket", &good]);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(d.exists("started"), "{}", f.dump());
}

/// `pidzero ARGS` as user `nobody` (root cannot be refused a write), or
/// `None` with a loud skip when that is impossible here.
fn as_nobody(args: &[&str]) -> Option<(Exit, String, String)> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        eprintln!("SKIP: needs root and /usr/bin/setpriv to run pidzero as another user");
        return None;
    }
    let mut cmd = std::process::Command::new(setpriv);
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(bin())
        .args(args);
    Some(run_cmd(without_pidzero_env(&mut cmd), DEADLINE))
}

#[test]
fn directories_pidzero_may_not_write_both_ways() {
    let d = Dir::new("agree-not-writable");
    d.daemons(&marker_daemon(&d, ""));
    // Readable by all, writable by root only.
    for path in [d.path.clone(), d.p("daemons.json")] {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    for (config, field, run_says) in [
        (
            r#"{"log": {"log_to_file": true}, "api": {"socket": null}}"#,
            "log.log_to_file",
            "cannot open the log file",
        ),
        (
            r#"{"api": {"socket": "pz.sock"}}"#,
            "api.socket",
            "cannot start the control API",
        ),
    ] {
        d.config(config);
        fs::set_permissions(d.p("config.json"), fs::Permissions::from_mode(0o644)).unwrap();
        let dir = d.s("");
        let Some((exit, _, err)) = as_nobody(&["--config-dir", &dir]) else {
            return;
        };
        assert_eq!(exit.code, Some(2), "run, {field}: {err}");
        assert!(err.contains(run_says), "run, {field}: {err}");
        assert!(!d.exists("started"), "the run started a daemon");
        let Some((exit, _, err)) = as_nobody(&["check", "--config-dir", &dir]) else {
            return;
        };
        assert_eq!(exit.code, Some(2), "check, {field}: {err}");
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("field {field}:")) && l.contains("is not writable")),
            "check, {field}: {err}"
        );
    }
}

//! `pidzero check` reports everything a run would refuse before starting a
//! daemon, all at once, with file, line:column, daemon and field; `--json`
//! gives the same as one JSON array.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::Value;

/// A config dir whose daemons.json has one problem of each kind a daemon can
/// have, one daemon per line (line N+1 holds daemon N), and whose config.json
/// turns on a log file in a missing directory and a socket in another.
fn every_kind(d: &Dir) {
    fs::create_dir_all(d.p("bin/adir")).unwrap();
    d.write("bin/plain", "#!/bin/sh\n");
    fs::set_permissions(d.p("bin/plain"), fs::Permissions::from_mode(0o644)).unwrap();
    d.write("afile", "");
    let bin = d.s("bin");
    d.daemons(&format!(
        r#"[
  {{"name": "abs", "command": [{missing}]}},
  {{"name": "bare", "command": "no-such-program-pz", "environment": {{"PATH": {bin}}}}},
  {{"name": "plain", "command": [{plain}], "vital": true}},
  {{"name": "adir", "command": [{adir}]}},
  {{"name": "who", "command": "true", "user": "no-such-user-pz"}},
  {{"name": "grp", "command": "true", "user": "root:no-such-group-pz"}},
  {{"name": "nowd", "command": "true", "working_dir": "missing-dir"}},
  {{"name": "filewd", "command": "true", "working_dir": "afile"}},
  {{"name": "x", "command": "true", "depends_on": ["y"]}},
  {{"name": "y", "command": "true", "depends_on": ["x"]}},
  {{"name": "lost", "command": "true", "depends_on": ["ghost"]}}
]"#,
        missing = js(d.s("missing-program")),
        bin = js(&bin),
        plain = js(d.s("bin/plain")),
        adir = js(d.s("bin/adir")),
    ));
    d.config(&format!(
        "{{\n  \"log\": {{\"log_to_file\": true,\n    \"file_path\": {}}},\n  \"api\": {{\"socket\": {}}}\n}}\n",
        js(d.s("no-log-dir/pidzero.log")),
        js(d.s("no-socket-dir/pz.sock")),
    ));
}

/// What one `check` printed.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn status(&self) -> i32 {
        self.code.unwrap_or(-1)
    }
    fn dump(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `check` without PIDZERO_SOCKET (which `pz()` sets), so that `api.socket` counts.
fn check(d: &Dir, extra: &[&str]) -> Out {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("check")
        .args(extra)
        .arg("--config-dir")
        .arg(&d.path);
    let (exit, stdout, stderr) = run_cmd(without_pidzero_env(&mut cmd), DEADLINE);
    Out {
        code: exit.code,
        stdout,
        stderr,
    }
}

fn parse_json(stdout: &str) -> Vec<Value> {
    let value: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{stdout}"));
    value.as_array().expect("a JSON array").clone()
}

#[test]
fn every_problem_kind_is_reported_at_once() {
    let d = Dir::new("check-every");
    every_kind(&d);
    let f = check(&d, &[]);
    assert_eq!(f.status(), 2, "{}", f.dump());
    let expect = [
        (2, "abs", "command", "does not exist"),
        (
            3,
            "bare",
            "command",
            "in no directory of the daemon's own PATH",
        ),
        (
            4,
            "plain",
            "command",
            "has no execute permission; a run exits 126",
        ),
        (5, "adir", "command", "is a directory"),
        (6, "who", "user", "no-such-user-pz"),
        (7, "grp", "user", "no-such-group-pz"),
        (8, "nowd", "working_dir", "missing-dir"),
        (9, "filewd", "working_dir", "is not a directory"),
        (10, "x", "depends_on", "dependency cycle: x -> y -> x"),
        (12, "lost", "depends_on", "ghost"),
    ];
    for (line, daemon, field, text) in expect {
        assert_config_error(
            &f.stderr,
            "daemons.json",
            Some(line),
            Some(daemon),
            Some(field),
        );
        assert!(
            f.stderr.lines().any(
                |l| l.contains(&format!("daemon {daemon}: field {field}:")) && l.contains(text)
            ),
            "{daemon}: expected {text:?}\n{}",
            f.stderr
        );
    }
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("config.json:3:18: field log.file_path:")
                && l.contains("no-log-dir does not exist")),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("config.json:4:21: field api.socket:")
                && l.contains("no-socket-dir does not exist")),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("pidzero: 12 problem(s) found"),
        "{}",
        f.stderr
    );
    assert!(f.stdout.is_empty(), "{}", f.dump());
}

#[test]
fn json_lists_every_problem_field_by_field() {
    let d = Dir::new("check-json");
    every_kind(&d);
    let f = check(&d, &["--json"]);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(f.stderr.is_empty(), "{}", f.dump());
    let problems = parse_json(&f.stdout);
    assert_eq!(problems.len(), 12, "{}", f.dump());
    for p in &problems {
        let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["column", "daemon", "field", "file", "line", "message", "severity"],
            "{p}"
        );
        assert_eq!(p["severity"], "error", "{p}");
    }
    let first = &problems[0];
    assert_eq!(first["file"], d.s("daemons.json"));
    assert_eq!(first["line"], 2);
    assert_eq!(first["column"], 30);
    assert_eq!(first["daemon"], "abs");
    assert_eq!(first["field"], "command");
    assert_eq!(
        first["message"],
        format!(
            "command not found: {} does not exist; a run logs spawn_failed and counts it as exit status 127",
            d.s("missing-program")
        )
    );
    let log = problems
        .iter()
        .find(|p| p["field"] == "log.file_path")
        .expect("the log file problem");
    assert_eq!(log["file"], d.s("config.json"));
    assert_eq!(
        (&log["line"], &log["column"]),
        (&Value::from(3), &Value::from(18))
    );
    assert_eq!(log["daemon"], Value::Null);
}

#[test]
fn json_without_problems_is_an_empty_array() {
    let d = Dir::new("check-json-clean");
    d.daemons(r#"[{"name": "a", "command": "true"}]"#);
    d.config(r#"{"api": {"socket": null}}"#);
    let f = check(&d, &["--json"]);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert_eq!(f.stdout.trim_end(), "[]");
    assert!(parse_json(&f.stdout).is_empty());
}

#[test]
fn missing_config_json_is_not_called_ok() {
    let d = Dir::new("check-noconfig");
    d.daemons(r#"[{"name": "a", "command": "true"}]"#);
    let f = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let out = f.stdout_text();
    assert!(
        out.contains(&format!("{}: not found: defaults used", d.s("config.json"))),
        "{out}"
    );
    assert!(!out.contains("config.json: OK"), "{out}");
    let f = pz().arg("check").arg("--json").config_dir(&d).run(DEADLINE);
    let notes = parse_json(&f.stdout_text());
    assert_eq!(notes.len(), 1, "{}", f.dump());
    assert_eq!(notes[0]["severity"], "note");
    assert_eq!(notes[0]["message"], "not found: defaults used");
    // Present and valid: OK.
    d.config("{}");
    let f = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert!(
        f.stdout_text()
            .contains(&format!("{}: OK", d.s("config.json"))),
        "{}",
        f.dump()
    );
}

#[test]
fn socket_comes_from_the_option_unless_turned_off() {
    let d = Dir::new("check-socket");
    d.daemons(r#"[{"name": "a", "command": "true"}]"#);
    let nowhere = d.s("none/pz.sock");
    // --socket (or PIDZERO_SOCKET) in a missing directory: an error.
    let f = pz()
        .arg("check")
        .config_dir(&d)
        .env("PIDZERO_SOCKET", &nowhere)
        .run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(
        f.stderr.contains(&format!(
            "pidzero: --socket: cannot listen on {nowhere}: directory"
        )),
        "{}",
        f.dump()
    );
    // Given before `check`, it counts too.
    let f = pz()
        .args(["--socket", &nowhere, "check"])
        .config_dir(&d)
        .run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    // api.socket: null means no socket at all.
    d.config(r#"{"api": {"socket": null}}"#);
    let f = pz()
        .args(["check", "--socket", &nowhere])
        .config_dir(&d)
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
}

#[test]
fn check_help_offers_no_client_options() {
    let (exit, out, err) = run_cmd(
        without_pidzero_env(std::process::Command::new(bin()).args(["check", "--help"])),
        DEADLINE,
    );
    assert_eq!(exit.code, Some(0), "{err}");
    for option in ["--url", "--token"] {
        assert!(!out.contains(option), "{option} under check:\n{out}");
    }
    for option in [
        "--config-dir",
        "--daemons",
        "--config",
        "--socket",
        "--json",
    ] {
        assert!(out.contains(option), "{option} missing:\n{out}");
    }
    // And they are refused there, not silently ignored.
    let (exit, _, err) = run_cmd(
        without_pidzero_env(std::process::Command::new(bin()).args(["check", "--url", "x"])),
        DEADLINE,
    );
    assert_eq!(exit.code, Some(2), "{err}");
}

/// `check --json > report.json` on a full disk must not look like a clean
/// report: the write error is said and the status is 1.
#[test]
fn a_report_that_cannot_be_written_is_a_failure() {
    let d = Dir::new("check-full");
    d.daemons(r#"[{"name": "ok", "command": "true"}]"#);
    d.write("config.json", r#"{"api": {"socket": null}}"#);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["check", "--json", "--config-dir", &d.s(".")]);
    without_pidzero_env(&mut cmd);
    let out = cmd
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the report to stdout"), "{err}");
}

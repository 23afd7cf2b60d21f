//! §2 daemons.json and §3 config.json: each error names file, line:column,
//! daemon and field; nothing is started; config.json options take effect.

mod common;

use common::*;

/// Runs `daemons` (a template where `MARKER_DAEMON` stands for a valid daemon
/// that would create a marker file) in run mode and with `check`; both must
/// exit 2 and start nothing. Returns run mode's stderr.
fn expect_error(tag: &str, daemons: &str) -> String {
    let d = Dir::new(tag);
    let marker = format!(
        r#"{{"name": "marker", "command": ["/bin/touch", {}]}}"#,
        js(d.s("started"))
    );
    d.daemons(&daemons.replace("MARKER_DAEMON", &marker));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "run mode: {}", f.dump());
    assert!(
        !d.exists("started"),
        "a daemon was started despite the error"
    );
    assert!(
        f.find(|r| is_event(r, "started", None)).is_none(),
        "{}",
        f.dump()
    );
    let c = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(c.status(), 2, "check: {}", c.dump());
    assert!(!d.exists("started"));
    // check prints the same problems.
    for l in error_lines(&f.stderr, "daemons.json") {
        assert!(
            c.stderr.contains(l.trim()),
            "check did not print `{l}`:\n{}",
            c.stderr
        );
    }
    f.stderr
}

#[test]
fn unknown_field() {
    let e = expect_error(
        "unknown",
        r#"[
  MARKER_DAEMON,
  {"name": "web", "command": "true",
   "vitall": true}
]"#,
    );
    assert_config_error(&e, "daemons.json", Some(4), Some("web"), Some("vitall"));
}

#[test]
fn wrong_types() {
    let e = expect_error(
        "types",
        r#"[
  MARKER_DAEMON,
  {"name": "a", "command": "true", "vital": "yes"},
  {"name": "b", "command": 42},
  {"name": "c", "command": "true", "environment": "A=1"},
  {"name": "d", "command": "true", "stop_timeout": "soon"}
]"#,
    );
    assert_config_error(&e, "daemons.json", Some(3), Some("a"), Some("vital"));
    assert_config_error(&e, "daemons.json", Some(4), Some("b"), Some("command"));
    assert_config_error(&e, "daemons.json", Some(5), Some("c"), Some("environment"));
    assert_config_error(&e, "daemons.json", Some(6), Some("d"), Some("stop_timeout"));
}

#[test]
fn duplicate_name() {
    let e = expect_error(
        "dup",
        r#"[
  MARKER_DAEMON,
  {"name": "web", "command": "true"},
  {"name": "web", "command": "true"}
]"#,
    );
    assert_config_error(&e, "daemons.json", Some(4), Some("web"), Some("name"));
}

#[test]
fn bad_names() {
    let long = "x".repeat(65);
    let e = expect_error(
        "badname",
        &format!(
            r#"[
  MARKER_DAEMON,
  {{"name": "has space", "command": "true"}},
  {{"name": "", "command": "true"}},
  {{"name": "main", "command": "true"}},
  {{"name": "pidzero", "command": "true"}},
  {{"name": "{long}", "command": "true"}},
  {{"name": "slash/y", "command": "true"}}
]"#
        ),
    );
    for line in 3..=8 {
        assert_config_error(&e, "daemons.json", Some(line), None, Some("name"));
    }
}

#[test]
fn missing_required_fields() {
    let e = expect_error(
        "missing",
        r#"[
  MARKER_DAEMON,
  {"name": "nocmd"},
  {"command": "true"}
]"#,
    );
    assert_config_error(&e, "daemons.json", Some(3), Some("nocmd"), Some("command"));
    assert_config_error(&e, "daemons.json", Some(4), None, Some("name"));
}

#[test]
fn bad_environment_entries() {
    let e = expect_error(
        "badenv",
        r#"[
  MARKER_DAEMON,
  {"name": "a", "command": "true", "environment": ["NOEQUALS"]},
  {"name": "b", "command": "true", "environment": ["=value"]},
  {"name": "c", "command": "true", "environment": [42]},
  {"name": "d", "command": "true", "environment": {"K": 1}}
]"#,
    );
    assert_config_error(&e, "daemons.json", Some(3), Some("a"), Some("environment"));
    assert_config_error(&e, "daemons.json", Some(4), Some("b"), Some("environment"));
    assert_config_error(&e, "daemons.json", Some(5), Some("c"), Some("environment"));
    assert_config_error(&e, "daemons.json", Some(6), Some("d"), Some("environment"));
}

#[test]
fn bad_extension_values() {
    let e = expect_error(
        "badext",
        r#"[
  MARKER_DAEMON,
  {"name": "a", "command": "true", "stop_signal": "NOPE"},
  {"name": "b", "command": "true", "output": "somewhere"},
  {"name": "c", "command": []}
]"#,
    );
    assert_config_error(&e, "daemons.json", Some(3), Some("a"), Some("stop_signal"));
    assert_config_error(&e, "daemons.json", Some(4), Some("b"), Some("output"));
    assert_config_error(&e, "daemons.json", Some(5), Some("c"), Some("command"));
}

#[test]
fn empty_array() {
    let d = Dir::new("empty");
    d.daemons("[]\n");
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(f.stderr.contains("daemons.json"), "{}", f.dump());
}

#[test]
fn empty_array_is_fine_with_a_main_command() {
    let d = Dir::new("emptymain");
    d.daemons("[]\n");
    let f = pz()
        .config_dir(&d)
        .args(["--", "/bin/sh", "-c", "exit 7"])
        .run(DEADLINE);
    assert_eq!(f.status(), 7, "{}", f.dump());
}

#[test]
fn object_instead_of_array() {
    let d = Dir::new("object");
    d.daemons(&format!(
        r#"{{"name": "marker", "command": ["/bin/touch", {}]}}"#,
        js(d.s("started"))
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(f.stderr.contains("daemons.json:1:"), "{}", f.dump());
    assert!(!d.exists("started"));
}

#[test]
fn syntax_error_names_line_and_column() {
    let d = Dir::new("syntax");
    d.daemons("[\n  {\"name\": \"a\", \"command\": \"true\",}\n]\n");
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(f.stderr.contains("daemons.json:2:"), "{}", f.dump());
}

// --- config.json -----------------------------------------------------------

fn echo_daemon(d: &Dir, text: &str) {
    d.daemons(&format!(
        r#"[{{"name": "web", "command": ["/bin/echo", {}]}}]"#,
        js(text)
    ));
}

#[test]
fn config_unknown_keys_are_errors() {
    let d = Dir::new("cfgunknown");
    echo_daemon(&d, "never");
    d.config(
        r#"{
  "log": {
    "jsn": false
  },
  "shutdown_timeot": 3
}"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("config.json:3:") && l.contains("jsn")),
        "{}",
        f.dump()
    );
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("config.json:5:") && l.contains("shutdown_timeot")),
        "{}",
        f.dump()
    );
    assert!(!f.stdout_text().contains("never"), "{}", f.dump());
}

#[test]
fn config_wrong_type_is_an_error() {
    let d = Dir::new("cfgtype");
    echo_daemon(&d, "never");
    d.config("{\n  \"shutdown_timeout\": \"ten\"\n}\n");
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("config.json:2:") && l.contains("shutdown_timeout")),
        "{}",
        f.dump()
    );
}

#[test]
fn missing_config_json_means_json_to_stdout() {
    let d = Dir::new("cfgmissing");
    echo_daemon(&d, "hello");
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "web", "hello")).is_some(),
        "{}",
        f.dump()
    );
    assert!(!d.exists("pidzero.log"), "log file written by default");
}

#[test]
fn map_format() {
    let d = Dir::new("cfgmap");
    echo_daemon(&d, "GET / 200");
    d.config(r#"{"log": {"json": false}}"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let out = f.stdout_text();
    let line = out
        .lines()
        .find(|l| l.contains("source => web"))
        .unwrap_or_else(|| panic!("no map record for web\n{}", f.dump()));
    assert!(line.starts_with("{timestamp => "), "{line}");
    assert!(
        line.ends_with(", source => web, stream => stdout, line => GET / 200}"),
        "{line}"
    );
    // Events are maps too; nothing is JSON.
    assert!(out.lines().all(|l| !l.starts_with("{\"")), "{out}");
}

#[test]
fn log_format_wins_over_log_json() {
    let d = Dir::new("cfgformat");
    echo_daemon(&d, "fmt-wins");
    d.config(r#"{"log": {"json": true, "format": "map"}}"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.stdout_text().contains("line => fmt-wins}"),
        "{}",
        f.dump()
    );
}

#[test]
fn log_to_file_with_relative_path() {
    let d = Dir::new("cfgfile");
    echo_daemon(&d, "to-file");
    d.config(r#"{"log": {"log_to_file": true, "file_path": "logs.jsonl"}}"#);
    let cwd = Dir::new("cfgfilecwd");
    let f = pz().config_dir(&d).cwd(&cwd.path).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    // Relative to the config dir, not the cwd.
    let text = d.read("logs.jsonl");
    assert!(!cwd.exists("logs.jsonl"));
    let recs: Vec<_> = text
        .lines()
        .map(|l| parse_record(l.as_bytes()).unwrap_or_else(|| panic!("not JSON: {l}")))
        .collect();
    assert!(recs.iter().any(|r| is_line(r, "web", "to-file")), "{text}");
    // And still to stdout.
    assert!(
        f.find(|r| is_line(r, "web", "to-file")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn log_to_stdout_false() {
    let d = Dir::new("cfgnostdout");
    echo_daemon(&d, "only-file");
    let file = d.s("abs.log");
    d.config(&format!(
        r#"{{"log": {{"log_to_stdout": false, "log_to_file": true, "file_path": {}}}}}"#,
        js(&file)
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout not empty:\n{}", f.dump());
    assert!(
        d.read("abs.log").contains("only-file"),
        "{}",
        d.read("abs.log")
    );
}

#[test]
fn environment_in_both_forms_is_literal() {
    let d = Dir::new("envforms");
    d.daemons(
        r#"[
  {"name": "arr", "command": ["/bin/sh", "-c", "echo \"$A|$B\""],
   "environment": ["A=one=1", "B=$HOME"]},
  {"name": "obj", "command": ["/bin/sh", "-c", "echo \"$A|$B\""],
   "environment": {"A": "two", "B": "x y"}}
]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "arr", "one=1|$HOME")).is_some(),
        "{}",
        f.dump()
    );
    assert!(
        f.find(|r| is_line(r, "obj", "two|x y")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn environment_adds_to_pidzeros_own() {
    let d = Dir::new("envinherit");
    d.daemons(
        r#"[{"name": "e", "command": ["/bin/sh", "-c", "echo \"$INHERITED $OWN\""],
            "environment": ["OWN=mine"]}]"#,
    );
    let f = pz()
        .config_dir(&d)
        .env("INHERITED", "from-pidzero")
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "e", "from-pidzero mine")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn working_dir() {
    let d = Dir::new("workdir");
    let wd = Dir::new("workdir-target");
    d.daemons(&format!(
        r#"[{{"name": "w", "command": "pwd", "working_dir": {}}}]"#,
        js(path_str(&wd.path))
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "w", path_str(&wd.path))).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn user_by_name_and_number() {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n*** SKIP user_by_name_and_number: needs root ***\n");
        return;
    }
    let d = Dir::new("user");
    d.daemons(
        r#"[
  {"name": "byname", "command": "id", "user": "nobody"},
  {"name": "bynum", "command": "id", "user": "65534:65534"}
]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    for name in ["byname", "bynum"] {
        let r = f
            .find(|r| r["source"] == name && r["stream"] == "stdout")
            .unwrap_or_else(|| panic!("no output from {name}\n{}", f.dump()));
        let line = r["line"].as_str().unwrap();
        assert!(line.starts_with("uid=65534"), "{name}: {line}");
        assert!(line.contains("gid=65534"), "{name}: {line}");
        // No supplementary group of root's left over.
        assert!(!line.contains("0(root)"), "{name}: {line}");
    }
}

/// `check` lists what planning finds (an unknown user, a dependency cycle)
/// beside the files' own problems, instead of only once those are fixed.
#[test]
fn check_lists_plan_problems_beside_file_problems() {
    let d = Dir::new("check-both");
    d.daemons(
        r#"[
  {"name": "web", "command": "true", "restart": "sometimes"},
  {"name": "worker", "command": "true", "user": "no-such-user-pidzero"},
  {"name": "a", "command": "true", "depends_on": ["b"]},
  {"name": "b", "command": "true", "depends_on": ["a", "web"]}
]"#,
    );
    let c = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(c.status(), 2, "{}", c.dump());
    assert_config_error(
        &c.stderr,
        "daemons.json",
        Some(2),
        Some("web"),
        Some("restart"),
    );
    assert_config_error(
        &c.stderr,
        "daemons.json",
        Some(3),
        Some("worker"),
        Some("user"),
    );
    assert!(
        c.stderr.contains("no-such-user-pidzero") && c.stderr.contains("cycle"),
        "{}",
        c.stderr
    );
    // `b` depends on `web`, which has a problem of its own: not reported as unknown.
    assert!(!c.stderr.contains("unknown daemon"), "{}", c.stderr);
    assert!(c.stderr.contains("3 problem(s) found"), "{}", c.stderr);
}

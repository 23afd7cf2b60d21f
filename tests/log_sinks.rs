//! Per-daemon `sinks`: a daemon routed to the file never appears on stdout
//! and one routed to stdout never in the file; daemons without `sinks`
//! and pidzero's own events go to both. Naming a handler that is off or
//! not configured is a configuration error at the `sinks` field.

mod common;

use common::*;
use serde_json::{json, Value};

const LINES: usize = 500;

/// `source`'s records in `text` (one JSON record a line).
fn sources(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn count(records: &[Value], source: &str) -> usize {
    records.iter().filter(|r| r["source"] == source).count()
}

#[test]
fn each_daemon_reaches_only_its_sinks() {
    let dir = Dir::new("sinks-route");
    let printer = |name: &str| {
        dir.script(
            &format!("{name}.sh"),
            &format!("i=0; while [ $i -lt {LINES} ]; do echo \"{name} $i\"; i=$((i+1)); done"),
        )
    };
    let (debug, app, both) = (printer("debug"), printer("app"), printer("both"));
    dir.daemons_value(&json!([
        { "name": "debug", "command": [debug], "sinks": ["file"] },
        { "name": "app", "command": [app], "sinks": ["stdout"] },
        { "name": "both", "command": [both] },
    ]));
    let file = dir.p("pidzero.log");
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    let Some(pz) = pz().config_dir(&dir).ns("sinks-route") else {
        return;
    };
    let done = pz.run(DEADLINE);
    assert_eq!(done.status(), 0, "{}", done.dump());
    let stdout = sources(&done.stdout_text());
    let in_file = sources(&dir.read("pidzero.log"));
    assert_eq!(count(&stdout, "debug"), 0, "{}", done.dump());
    assert_eq!(count(&stdout, "app"), LINES, "{}", done.dump());
    assert_eq!(count(&stdout, "both"), LINES);
    assert_eq!(count(&in_file, "debug"), LINES);
    assert_eq!(count(&in_file, "app"), 0);
    assert_eq!(count(&in_file, "both"), LINES);
    // pidzero's own events: every one on both sinks.
    let events = |records: &[Value]| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["source"] == "pidzero")
            .map(|r| format!("{} {}", r["event"], r["daemon"]))
            .collect()
    };
    assert!(!events(&stdout).is_empty());
    assert_eq!(events(&stdout), events(&in_file));
    // Lines kept in order on the sinks that take them.
    let lines = |records: &[Value], source: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["source"] == source)
            .map(|r| r["line"].as_str().unwrap().to_owned())
            .collect()
    };
    let expected = |name: &str| {
        (0..LINES)
            .map(|i| format!("{name} {i}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(lines(&in_file, "debug"), expected("debug"));
    assert_eq!(lines(&stdout, "app"), expected("app"));
}

/// `check` (and a run) refuses `sinks` naming a handler that is off or not
/// configured, or unknown, with file:line:col, daemon and field.
#[test]
fn sinks_that_are_not_on_are_config_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"["file"]"#, "{}", "log.log_to_file"),
        (
            r#"["stdout"]"#,
            r#"{"log": {"log_to_stdout": false, "log_to_file": true}}"#,
            "log.log_to_stdout",
        ),
        (r#"["stdout", "syslog"]"#, "{}", "`log.syslog`"),
        (r#"["forward"]"#, "{}", "`log.forward`"),
        (r#"["stdout", "stdout"]"#, "{}", "listed twice"),
        (r#"["stderr"]"#, "{}", "unknown sink `stderr`"),
        (r#""file""#, "{}", "expected an array"),
    ];
    for (sinks, config, message) in cases {
        let dir = Dir::new("sinks-bad");
        dir.daemons(&format!(
            "[\n  {{\"name\": \"web\", \"command\": \"true\",\n   \"sinks\": {sinks}}}\n]"
        ));
        dir.config(config);
        for args in [&["check"][..], &[]] {
            let done = pz().args(args).config_dir(&dir).run(DEADLINE);
            assert_eq!(done.status(), 2, "{sinks} {args:?}: {}", done.dump());
            assert_config_error(
                &done.stderr,
                "daemons.json",
                Some(3),
                Some("web"),
                Some("sinks"),
            );
            assert!(done.stderr.contains(message), "{sinks}: {}", done.stderr);
            assert!(
                !done.stdout_text().contains("\"started\""),
                "nothing started"
            );
        }
    }
}

/// `"sinks": []` is allowed: the lines go to no sink but are still kept
/// for `pidzero logs`.
#[test]
fn no_sinks_keeps_lines_for_the_api_only() {
    let dir = Dir::new("sinks-none");
    let program = dir.script("quiet.sh", "echo hidden; exec sleep 30");
    dir.daemons_value(&json!([{ "name": "quiet", "command": [program], "sinks": [] }]));
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("sinks-none")
    else {
        return;
    };
    let running = pz.spawn();
    running.wait_event("started", Some("quiet"));
    let target = http::Target::unix(&socket);
    wait_until(DEADLINE, || {
        let answer = http::get(&target, "/daemons/quiet/logs");
        answer.json().as_array().is_some_and(|a| a.len() == 1)
    })
    .unwrap_or_else(|| panic!("the line was not kept\n{}", running.dump()));
    let records = http::get(&target, "/daemons/quiet/logs").json();
    assert_eq!(records[0]["line"], "hidden");
    assert!(!running.stdout_lines().iter().any(|l| l.contains("hidden")));
}

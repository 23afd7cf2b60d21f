//! §7 Logs: one JSON record per line, fields in order, streams, the last
//! unterminated line, lossy UTF-8, records never torn.

mod common;

use common::*;

fn run_daemons(tag: &str, json: &str) -> Finished {
    let d = Dir::new(tag);
    d.daemons(json);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    f
}

fn assert_timestamp(ts: &str) {
    let b = ts.as_bytes();
    let ok = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit());
    assert!(ok, "timestamp not RFC 3339 UTC with milliseconds: {ts:?}");
}

#[test]
fn every_stdout_line_is_a_json_record() {
    let f = run_daemons("alljson", r#"[{"name": "web", "command": "echo hi"}]"#);
    assert!(!f.stdout.is_empty());
    for l in f.stdout.split(|&b| b == b'\n') {
        let r = parse_record(l)
            .unwrap_or_else(|| panic!("not a JSON record: {}", String::from_utf8_lossy(l)));
        assert_timestamp(r["timestamp"].as_str().unwrap());
    }
}

#[test]
fn daemon_line_fields_in_order() {
    let f = run_daemons(
        "order",
        r#"[{"name": "web", "command": ["/bin/sh", "-c", "echo GET / 200; echo oops >&2"]}]"#,
    );
    let raw = f.stdout_text();
    let out = raw
        .lines()
        .find(|l| l.contains("GET / 200"))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(
        keys_in_order(out),
        ["timestamp", "source", "stream", "line"],
        "{out}"
    );
    assert!(out.starts_with(r#"{"timestamp":""#), "{out}");
    assert!(
        out.ends_with(r#"Z","source":"web","stream":"stdout","line":"GET / 200"}"#),
        "{out}"
    );
    assert!(
        f.find(|r| is_line(r, "web", "oops") && r["stream"] == "stderr")
            .is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn event_fields_in_order() {
    let f = run_daemons("evorder", r#"[{"name": "web", "command": "true"}]"#);
    let raw = f.stdout_text();
    let started = raw
        .lines()
        .find(|l| l.contains(r#""event":"started""#))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(
        keys_in_order(started),
        [
            "timestamp",
            "source",
            "stream",
            "level",
            "event",
            "daemon",
            "pid",
            "line"
        ],
        "{started}"
    );
    let exited = raw
        .lines()
        .find(|l| l.contains(r#""event":"exited""#))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    let keys = keys_in_order(exited);
    assert_eq!(
        keys[..8],
        [
            "timestamp",
            "source",
            "stream",
            "level",
            "event",
            "daemon",
            "pid",
            "status"
        ],
        "{exited}"
    );
    assert_eq!(keys.last().unwrap(), "line", "{exited}");
    let r = parse_record(started.as_bytes()).unwrap();
    assert_eq!(r["source"], "pidzero");
    assert_eq!(r["stream"], "event");
    assert_eq!(r["level"], "info");
    assert!(r["pid"].is_i64(), "{r}");
    assert!(!r["line"].as_str().unwrap().is_empty(), "{r}");
}

#[test]
fn vital_exit_event_fields() {
    let d = Dir::new("vitalev");
    d.daemons(r#"[{"name": "web", "vital": true, "command": ["/bin/sh", "-c", "exit 3"]}]"#);
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    let raw = f.stdout_text();
    let l = raw
        .lines()
        .find(|l| l.contains(r#""event":"vital_exit""#))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(
        keys_in_order(l),
        [
            "timestamp",
            "source",
            "stream",
            "level",
            "event",
            "daemon",
            "status",
            "line"
        ],
        "{l}"
    );
    let r = parse_record(l.as_bytes()).unwrap();
    assert_eq!(r["level"], "error");
    assert_eq!(r["status"], 3);
}

#[test]
fn last_unterminated_line_and_crlf() {
    let f = run_daemons(
        "unterminated",
        r#"[
  {"name": "a", "command": ["/bin/sh", "-c", "printf 'crlf\\r\\nno-newline'"]},
  {"name": "b", "command": ["/bin/sh", "-c", "printf 'err-no-newline' >&2"]}
]"#,
    );
    for (src, line) in [("a", "crlf"), ("a", "no-newline"), ("b", "err-no-newline")] {
        assert!(
            f.find(|r| is_line(r, src, line)).is_some(),
            "{src}: {line:?}\n{}",
            f.dump()
        );
    }
}

#[test]
fn invalid_utf8_becomes_replacement_character() {
    let f = run_daemons(
        "utf8",
        r#"[{"name": "a", "command": ["/bin/sh", "-c", "printf 'a\\377b \\303\\251\\n'"]}]"#,
    );
    assert!(
        f.find(|r| is_line(r, "a", "a\u{FFFD}b \u{e9}")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn special_characters_are_escaped() {
    let f = run_daemons(
        "escape",
        r#"[{"name": "a", "command": ["/bin/sh", "-c", "printf 'q\"uote back\\\\slash tab\\tx bell\\007 {}\\n'"]}]"#,
    );
    assert!(
        f.find(|r| is_line(r, "a", "q\"uote back\\slash tab\tx bell\u{7} {}"))
            .is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn empty_lines_are_records() {
    let f = run_daemons(
        "emptylines",
        r#"[{"name": "a", "command": ["/bin/sh", "-c", "printf 'x\\n\\ny\\n'"]}]"#,
    );
    let lines: Vec<&str> = f
        .records
        .iter()
        .filter(|r| r["source"] == "a" && r["stream"] == "stdout")
        .map(|r| r["line"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["x", "", "y"], "{}", f.dump());
}

#[test]
fn records_never_torn_and_keep_order() {
    // Three daemons write 3000 lines each as fast as they can, on both streams.
    let body = r#"i=0; while [ $i -lt 3000 ]; do printf 'line %d "q" \\ \t end\n' $i; printf 'err %d\n' $i >&2; i=$((i+1)); done"#;
    let d = Dir::new("torn");
    d.daemons_value(&serde_json::json!([
        {"name": "a", "command": ["/bin/sh", "-c", body]},
        {"name": "b", "command": ["/bin/sh", "-c", body]},
        {"name": "c", "command": ["/bin/sh", "-c", body]},
    ]));
    let f = pz().config_dir(&d).run(secs(60.0));
    assert_eq!(f.status(), 0, "{}", f.exit.status());
    for l in f.stdout.split(|&b| b == b'\n') {
        assert!(
            parse_record(l).is_some(),
            "torn or invalid record: {}",
            String::from_utf8_lossy(l)
        );
    }
    for src in ["a", "b", "c"] {
        for (stream, prefix) in [("stdout", "line "), ("stderr", "err ")] {
            let nums: Vec<u32> = f
                .records
                .iter()
                .filter(|r| r["source"] == src && r["stream"] == stream)
                .map(|r| {
                    let line = r["line"].as_str().unwrap();
                    if stream == "stdout" {
                        assert!(line.ends_with(" \"q\" \\ \t end"), "{line:?}");
                    }
                    line[prefix.len()..]
                        .split(' ')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap_or_else(|_| panic!("{line:?}"))
                })
                .collect();
            let want: Vec<u32> = (0..3000).collect();
            assert!(
                nums == want,
                "{src} {stream}: lost, duplicated or reordered lines ({} records)",
                nums.len()
            );
        }
    }
}

#[test]
fn exited_event_for_signal_names_it() {
    let f = {
        let d = Dir::new("sigev");
        d.daemons(r#"[{"name": "k", "command": ["/bin/sh", "-c", "kill -KILL $$"]}]"#);
        pz().config_dir(&d).run(DEADLINE)
    };
    assert_eq!(f.status(), 1, "{}", f.dump());
    let ev = f
        .find(|r| is_event(r, "exited", Some("k")))
        .unwrap_or_else(|| panic!("{}", f.dump()));
    assert_eq!(ev["status"], 137, "{ev}");
    assert_eq!(ev["signal"], "SIGKILL", "{ev}");
}

#[test]
fn output_discard_and_inherit() {
    let d = Dir::new("outputmodes");
    d.daemons(
        r#"[
  {"name": "gone", "output": "discard", "command": "echo discarded-text"},
  {"name": "raw", "output": "inherit", "command": "echo raw-text"}
]"#,
    );
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let out = f.stdout_text();
    assert!(!out.contains("discarded-text"), "{out}");
    assert!(
        out.lines().any(|l| l == "raw-text"),
        "inherit passes the line through raw\n{out}"
    );
}

#[test]
fn closed_stdout_does_not_kill_pidzero() {
    // stdout is a pipe whose reader goes away after one line: pidzero must not
    // die of SIGPIPE/EPIPE; the file sink keeps every record.
    let d = Dir::new("closedstdout");
    d.config(r#"{"log": {"log_to_file": true, "file_path": "all.log"}}"#);
    d.daemons(
        r#"[{"name": "web", "vital": true, "command": ["/bin/sh", "-c",
  "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done; sleep 0.3; echo last; exit 3"]}]"#,
    );
    let script = format!(
        "{{ {} --config-dir {}; echo \"status=$?\" >&2; }} | head -n 1 >/dev/null",
        bin().display(),
        d.s("")
    );
    let (_, _, err) = run_cmd(
        std::process::Command::new("/bin/sh").args(["-c", &script]),
        DEADLINE,
    );
    assert!(err.contains("status=3"), "pidzero's status: {err}");
    let log = d.read("all.log");
    let recs: Vec<_> = log
        .lines()
        .map(|l| parse_record(l.as_bytes()).unwrap_or_else(|| panic!("not JSON: {l}")))
        .collect();
    assert!(recs.iter().any(|r| is_line(r, "web", "last")), "{log}");
    assert!(recs.iter().any(|r| is_line(r, "web", "line 499")), "{log}");
}

#[test]
fn last_lines_come_before_the_exited_event() {
    // A daemon that writes a burst and exits at once: its SIGCHLD races the
    // pipe reader, and the reader must win (nothing waits for it, though).
    for run in 0..10 {
        let d = Dir::new("lastlines");
        d.daemons(
            r#"[{"name": "w", "vital": true, "command": "seq 1 2000; echo last words; exit 3"}]"#,
        );
        let f = pz().config_dir(&d).run(DEADLINE);
        assert_eq!(f.status(), 3, "{}", f.dump());
        let last = f.records.iter().position(|r| is_line(r, "w", "last words"));
        let exited = f
            .records
            .iter()
            .position(|r| is_event(r, "exited", Some("w")));
        assert!(
            matches!((last, exited), (Some(l), Some(e)) if l < e),
            "run {run}: the last line must come before `exited`\n{}",
            f.dump()
        );
    }
}

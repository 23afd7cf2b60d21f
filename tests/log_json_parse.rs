//! `"parse": "json"`: a daemon printing JSON objects and other lines, mixed
//! on stdout and stderr; each record checked key by key, in key order.

mod common;

use common::*;
use serde_json::{json, Value};

/// What the daemon prints, one line each, and on which stream.
const LINES: &[(&str, &str)] = &[
    ("stdout", r#"{"level":"warn","msg":"disk low","free":0.5}"#),
    ("stdout", "plain text"),
    ("stdout", r#"{"a":1} trailing"#),
    ("stdout", "[1,2]"),
    ("stderr", r#"{"severity":"ERROR","nested":{"x":[1,"two"]}}"#),
    ("stdout", r#"  {"msg":"spaces around"}  "#),
    ("stdout", r#"{"msg":"esc \u00e9 \"q\" \\ \/","level":30}"#),
    ("stdout", r#"{"unterminated":"#),
    ("stderr", "stderr text"),
    ("stdout", "{}"),
];

#[test]
fn object_lines_become_fields_and_others_stay_lines() {
    let dir = Dir::new("json-parse");
    let mut script = String::new();
    for (stream, line) in LINES {
        // printf '%s\n' keeps the line byte for byte.
        let quoted = line.replace('\'', "'\\''");
        let redirect = if *stream == "stderr" { " >&2" } else { "" };
        script.push_str(&format!("printf '%s\\n' '{quoted}'{redirect}\n"));
    }
    let program = dir.script("app.sh", &script);
    dir.daemons_value(&json!([{ "name": "app", "command": [program], "parse": "json" }]));
    let Some(pz) = pz().config_dir(&dir).ns("json-parse") else {
        return;
    };
    let done = pz.run(DEADLINE);
    assert_eq!(done.status(), 0, "{}", done.dump());
    let text = done.stdout_text();
    let raws: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""source":"app""#))
        .collect();
    // Lines of one stream keep their order; the two streams may interleave.
    for stream in ["stdout", "stderr"] {
        let expected: Vec<&str> = LINES
            .iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, l)| *l)
            .collect();
        let got: Vec<&str> = raws
            .iter()
            .copied()
            .filter(|r| r.contains(&format!(r#""stream":"{stream}""#)))
            .collect();
        assert_eq!(got.len(), expected.len(), "{stream}:\n{}", done.dump());
        for (raw, line) in got.into_iter().zip(expected) {
            check_record(raw, stream, line);
        }
    }
}

/// One record against the line it came from.
fn check_record(raw: &str, stream: &str, line: &str) {
    let record: Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
    let keys = keys_in_order(raw);
    assert_eq!(record["source"], "app", "{raw}");
    assert_eq!(record["stream"], stream, "{raw}");
    let object = serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object);
    let Some(object) = object else {
        assert_eq!(keys, ["timestamp", "source", "stream", "line"], "{raw}");
        assert_eq!(record["line"], line, "{raw}");
        return;
    };
    // The object's bytes, copied as written (no re-escaping).
    assert!(
        raw.ends_with(&format!(r#""fields":{}}}"#, line.trim())),
        "{raw}"
    );
    assert_eq!(record["fields"], object, "{raw}");
    let level = object
        .get("level")
        .or_else(|| object.get("severity"))
        .map(|l| match l {
            Value::String(s) => s.to_lowercase(),
            Value::Number(n) if n.as_i64() == Some(30) => "info".into(),
            other => panic!("unexpected level {other}"),
        });
    match level {
        Some(level) => {
            assert_eq!(
                keys,
                ["timestamp", "source", "stream", "level", "fields"],
                "{raw}"
            );
            assert_eq!(record["level"], level, "{raw}");
        }
        None => assert_eq!(keys, ["timestamp", "source", "stream", "fields"], "{raw}"),
    }
}

/// A line cut at `max_line_bytes` is never parsed, not even its last piece
/// when that piece alone is an object; `pidzero logs` shows the same
/// records as stdout.
#[test]
fn cut_lines_are_never_objects() {
    let dir = Dir::new("json-cut");
    let long = format!("{}{}", "x".repeat(64), r#"{"a":1}"#);
    let program = dir.script(
        "app.sh",
        &format!("printf '%s\\n' '{long}' '{{\"b\":2}}'\n"),
    );
    dir.daemons_value(&json!([{ "name": "app", "command": [program], "parse": "json" }]));
    dir.config(r#"{"log": {"max_line_bytes": 64}}"#);
    let Some(pz) = pz().config_dir(&dir).ns("json-cut") else {
        return;
    };
    let done = pz.run(DEADLINE);
    assert_eq!(done.status(), 0, "{}", done.dump());
    let app: Vec<&Value> = done
        .records
        .iter()
        .filter(|r| r["source"] == "app")
        .collect();
    assert_eq!(app.len(), 3, "{}", done.dump());
    assert_eq!(app[0]["line"], "x".repeat(64));
    assert_eq!(app[0]["partial"], true);
    assert_eq!(app[1]["line"], r#"{"a":1}"#, "{}", done.dump());
    assert_eq!(app[2]["fields"], json!({"b": 2}), "{}", done.dump());
}

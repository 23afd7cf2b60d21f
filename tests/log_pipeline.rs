//! Black-box tests of the log pipeline through the built binary: the four
//! formats and how they are chosen, escaping, framing, and the file sink.

mod common;
#[path = "log_support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// Runs one daemon `web` that prints a stdout and a stderr line, with the
/// given `log` fields and environment; returns pidzero's stdout.
fn formatted(log_json: &str, env: &[(&str, &str)]) -> String {
    let daemons = format!(
        "[{}]",
        sh_daemon("web", "printf 'GET / 200\\n'; printf 'oops\\n' >&2")
    );
    let dir = config_dir("format", &daemons, log_json);
    let mut command = pidzero(&dir);
    command.envs(env.iter().copied());
    let output = run(command, DEADLINE);
    assert!(output.status.success(), "{output:?}");
    mask_timestamp(&String::from_utf8(output.stdout).unwrap())
}

/// The expected daemon records and `starting` event in one format.
fn expected(format: &str) -> [&'static str; 3] {
    match format {
        "json" => [
            r#"{"timestamp":"TS","source":"web","stream":"stdout","line":"GET / 200"}"#,
            r#"{"timestamp":"TS","source":"web","stream":"stderr","line":"oops"}"#,
            r#"{"timestamp":"TS","source":"pidzero","stream":"event","level":"info","event":"starting","daemon":"web","line":"starting web"}"#,
        ],
        "map" => [
            "{timestamp => TS, source => web, stream => stdout, line => GET / 200}",
            "{timestamp => TS, source => web, stream => stderr, line => oops}",
            "{timestamp => TS, source => pidzero, stream => event, level => info, event => starting, daemon => web, line => starting web}",
        ],
        "logfmt" => [
            r#"timestamp=TS source=web stream=stdout line="GET / 200""#,
            "timestamp=TS source=web stream=stderr line=oops",
            r#"timestamp=TS source=pidzero stream=event level=info event=starting daemon=web line="starting web""#,
        ],
        "text" => [
            "TS web stdout: GET / 200",
            "TS web stderr: oops",
            "TS pidzero event: info starting daemon=web: starting web",
        ],
        _ => unreachable!(),
    }
}

fn assert_format(output: &str, format: &str) {
    for line in expected(format) {
        assert!(
            output.lines().any(|l| l == line),
            "{format}: no line\n  {line}\nin\n{output}"
        );
    }
}

#[test]
fn every_format_by_log_format() {
    for format in ["json", "map", "logfmt", "text"] {
        let output = formatted(&format!(r#""format":"{format}""#), &[]);
        assert_format(&output, format);
    }
    // A cut line in the raw text of each format: `partial` comes last.
    for (format, end) in [
        ("json", r#","line":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","partial":true}"#),
        ("map", ", line => aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, partial => true}"),
        ("logfmt", " line=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa partial=true"),
        ("text", " d stdout partial: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
    ] {
        let daemons = format!("[{}]", sh_daemon("d", "printf 'a%.0s' $(seq 70); echo"));
        let log = format!(r#""format":"{format}","max_line_bytes":64"#);
        let dir = config_dir("partial", &daemons, &log);
        let output = run(pidzero(&dir), DEADLINE);
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.lines().any(|l| l.ends_with(end)), "{format}: {text}");
    }
}

#[test]
fn json_is_the_default_and_log_json_false_means_map() {
    assert_format(&formatted("", &[]), "json");
    assert_format(&formatted(r#""json":true"#, &[]), "json");
    assert_format(&formatted(r#""json":false"#, &[]), "map");
    // log.format wins over log.json.
    assert_format(&formatted(r#""json":false,"format":"text""#, &[]), "text");
}

#[test]
fn pidzero_log_format_overrides_the_config() {
    let env = [("PIDZERO_LOG_FORMAT", "logfmt")];
    assert_format(&formatted(r#""format":"json""#, &env), "logfmt");
    let env = [("PIDZERO_LOG_FORMAT", "text")];
    assert_format(&formatted(r#""json":false"#, &env), "text");
}

/// The records of the one daemon `d` running `script`, with `log` fields.
fn daemon_records(tag: &str, script: &str, log_json: &str) -> Vec<serde_json::Value> {
    let dir = config_dir(tag, &format!("[{}]", sh_daemon("d", script)), log_json);
    let output = run(pidzero(&dir), DEADLINE);
    assert!(output.status.success(), "{output:?}");
    records(&output.stdout)
        .into_iter()
        .filter(|r| r["source"] == "d")
        .collect()
}

#[test]
fn json_escapes_quotes_backslashes_controls_and_replaces_invalid_utf8() {
    // Every C0 control but the newline, then quote, backslash, DEL,
    // invalid UTF-8 (a lone 0xff and a cut 3-byte sequence) and valid é.
    let controls: String = (0u8..0x20)
        .filter(|&b| b != b'\n')
        .map(|b| format!("\\{b:03o}"))
        .collect();
    let script = format!(
        "printf 'c{controls} q\\042 b\\134 del\\177 bad\\377 cut\\342\\202 ok\\303\\251\\n'"
    );
    let got = daemon_records("escape", &script, "");
    assert_eq!(got.len(), 1, "{got:?}");
    let mut expected: String = "c".into();
    expected.extend((0u8..0x20).filter(|&b| b != b'\n').map(char::from));
    expected.push_str(" q\" b\\ del\x7f bad\u{FFFD} cut\u{FFFD} ok\u{e9}");
    assert_eq!(got[0]["line"], expected.as_str());
    // The escapes themselves, in the raw output.
    let dir = config_dir("escape-raw", &format!("[{}]", sh_daemon("d", &script)), "");
    let output = run(pidzero(&dir), DEADLINE);
    let text = String::from_utf8(output.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(r#""source":"d""#))
        .unwrap();
    for escape in [
        r"\u0000",
        r"\u0001",
        r"\u001f",
        r"\b",
        r"\t",
        r"\f",
        r"\r",
        r"\u000b",
        r"\u001b",
        r#"q\""#,
        r"b\\",
        "del\x7f",
        "bad\u{FFFD}",
        "ok\u{e9}",
    ] {
        assert!(line.contains(escape), "no {escape:?} in {line}");
    }
}

#[test]
fn logfmt_quotes_values_that_need_it() {
    let dir = config_dir(
        "logfmt",
        &format!(
            "[{}]",
            sh_daemon("d", r#"printf 'plain\na=b\nsay "hi"\n\n'"#)
        ),
        r#""format":"logfmt""#,
    );
    let output = run(pidzero(&dir), DEADLINE);
    let text = mask_timestamp(&String::from_utf8(output.stdout).unwrap());
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" source=d ")).collect();
    assert_eq!(
        lines,
        [
            "timestamp=TS source=d stream=stdout line=plain",
            r#"timestamp=TS source=d stream=stdout line="a=b""#,
            r#"timestamp=TS source=d stream=stdout line="say \"hi\"""#,
            r#"timestamp=TS source=d stream=stdout line="""#,
        ]
    );
}

#[test]
fn long_lines_are_cut_with_partial_and_crlf_and_the_last_line_are_handled() {
    // 150 bytes at max_line_bytes 64 → 64 + 64 + 22; exactly 64 → one
    // record; `\r\n` loses the `\r`, a lone `\r` stays; the last line has no `\n`.
    let script =
        r"printf '%0150d\n' 0; printf '%064d\n' 1; printf 'crlf\r\nmid\rcr\r\n'; printf 'tail'";
    let got = daemon_records("framing", script, r#""max_line_bytes":64"#);
    let view: Vec<(String, bool)> = got
        .iter()
        .map(|r| {
            (
                r["line"].as_str().unwrap().to_string(),
                r.get("partial") == Some(&serde_json::Value::Bool(true)),
            )
        })
        .collect();
    let zeros = |n: usize| "0".repeat(n);
    let expected = vec![
        (zeros(64), true),
        (zeros(64), true),
        (zeros(22), false),
        (format!("{}1", zeros(63)), false),
        ("crlf".to_string(), false),
        ("mid\rcr".to_string(), false),
        ("tail".to_string(), false),
    ];
    assert_eq!(view, expected);
    // `partial` is present only on the cut pieces (its place in the record,
    // last, is checked by the raw-text tests of the formats).
    assert!(got[2].get("partial").is_none());
}

fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line[6..].trim(), 8).unwrap()
}

#[test]
fn file_sink_appends_with_mode_0640_relative_to_the_config_dir() {
    let daemons = format!("[{}]", sh_daemon("d", "echo one; echo two"));
    let dir = config_dir(
        "file",
        &daemons,
        r#""log_to_file":true,"log_to_stdout":false,"file_path":"p.log""#,
    );
    std::fs::write(dir.p("p.log"), "old\n").unwrap();
    let cwd = Dir::new("file-cwd");
    let mut command = pidzero(&dir);
    command.current_dir(&cwd);
    let output = run(command, DEADLINE);
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty(), "log_to_stdout false: {output:?}");
    assert!(
        !cwd.p("p.log").exists(),
        "relative to the config dir, not the cwd"
    );
    let text = std::fs::read_to_string(dir.p("p.log")).unwrap();
    let rest = text.strip_prefix("old\n").expect("appended");
    let got = records(rest.as_bytes());
    assert_eq!(lines_of(&got, "d"), ["one", "two"]);
    assert!(!events(&got, "started").is_empty());

    // A new file is created 0640 (less the umask).
    std::fs::write(
        dir.p("config.json"),
        r#"{"log":{"log_to_file":true,"file_path":"new.log"},"api":{"socket":null}}"#,
    )
    .unwrap();
    let output = run(pidzero(&dir), DEADLINE);
    assert!(output.status.success(), "{output:?}");
    let mode = std::fs::metadata(dir.p("new.log"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640 & !umask());
    // Both sinks got the same records.
    assert_eq!(
        std::fs::read(dir.p("new.log")).unwrap(),
        output.stdout,
        "file and stdout differ"
    );
}

#[test]
fn file_sink_rotates_by_size_keeping_max_files() {
    let daemons = format!(
        "[{}]",
        sh_daemon(
            "d",
            "i=0; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); done"
        )
    );
    let dir = config_dir(
        "rotate",
        &daemons,
        r#""log_to_file":true,"log_to_stdout":false,"file_path":"p.log","max_file_size":4096,"max_files":2"#,
    );
    let output = run(pidzero(&dir), DEADLINE);
    assert!(output.status.success(), "{output:?}");
    assert!(!dir.p("p.log.3").exists(), "only max_files rotated files");
    let mut all = Vec::new();
    for name in ["p.log.2", "p.log.1", "p.log"] {
        let data = std::fs::read(dir.p(name)).unwrap();
        assert!(data.len() <= 4096, "{name} has {} bytes", data.len());
        assert!(data.len() > 3000, "{name} has only {} bytes", data.len());
        all.extend(records(&data));
    }
    // The newest records, whole and in order, up to the last line.
    let lines = lines_of(&all, "d");
    let first: usize = lines[0].strip_prefix("line ").unwrap().parse().unwrap();
    let expected: Vec<String> = (first..300).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected);
    assert!(first > 0, "older records must have been dropped");
}

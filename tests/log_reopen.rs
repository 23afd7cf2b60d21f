//! Reopen on request, for an outside logrotate: the file is renamed away,
//! `pidzero logs --reopen` (or `POST /logs/reopen`) makes pidzero close it
//! and open its path again. Across a flood of lines and several reopens,
//! no record is lost, torn or out of order.

mod common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

const BURSTS: usize = 40;
const BURST: usize = 5000;
const REOPENS: usize = 4;

fn client(socket: &str, args: &[&str]) -> (Exit, String, String) {
    let mut cmd = Command::new(bin());
    without_pidzero_env(&mut cmd);
    cmd.args(args).env("PIDZERO_SOCKET", socket);
    run_cmd(&mut cmd, DEADLINE)
}

/// The `flood` lines of a file, in order; every line must be a whole record.
fn flood_lines(path: &std::path::Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("torn record ({e}): {l:?}"))
        })
        .filter(|r| r["source"] == "flood")
        .map(|r| r["line"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn reopen_during_a_flood_loses_and_tears_nothing() {
    let dir = Dir::new("reopen-flood");
    let program = dir.script(
        "flood.sh",
        &format!(
            "i=0\nwhile [ $i -lt {BURSTS} ]; do seq $((i*{BURST}+1)) $((i*{BURST}+{BURST})); i=$((i+1)); sleep 0.05; done"
        ),
    );
    dir.daemons_value(&json!([{ "name": "flood", "command": [program] }]));
    let file = dir.p("pidzero.log");
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "log_to_stdout": false, "max_file_size": 0, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("reopen-flood")
    else {
        return;
    };
    let mut running = pz.spawn();
    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut rotated = Vec::new();
    for k in 1..=REOPENS {
        wait_until(DEADLINE, || size(&file) > 0)
            .unwrap_or_else(|| panic!("nothing written to the log file\n{}", running.dump()));
        let old = dir.p(&format!("pidzero.log.r{k}"));
        std::fs::rename(&file, &old).unwrap();
        rotated.push(old);
        let (exit, out, err) = client(&socket, &["logs", "--reopen"]);
        assert_eq!(exit.code, Some(0), "{out}{err}\n{}", running.dump());
        assert_eq!(
            out.trim_end(),
            format!("pidzero: reopened {}", file.display())
        );
        assert!(file.exists(), "reopen created the file again");
    }
    let exit = running.wait_exit(secs(60.0));
    assert_eq!(exit.status(), 0, "{}", running.dump());
    let mut all = Vec::new();
    for path in rotated.iter().chain([&file]) {
        let lines = flood_lines(path);
        all.extend(lines);
    }
    let expected: Vec<u64> = (1..=(BURSTS * BURST) as u64).collect();
    assert!(
        all == expected,
        "{} records, not 1..={} in order",
        all.len(),
        expected.len()
    );
    // The reopens came while the flood was on: its lines are in several files.
    let files_with_lines = rotated
        .iter()
        .chain([&file])
        .filter(|p| !flood_lines(p).is_empty())
        .count();
    assert!(
        files_with_lines >= 2,
        "the flood ended before the first reopen"
    );
}

#[test]
fn reopen_over_http_answers_the_path_and_409_without_a_file() {
    let dir = Dir::new("reopen-http");
    let program = dir.script("idle.sh", "echo one; exec sleep 30");
    dir.daemons_value(&json!([{ "name": "idle", "command": [program] }]));
    let file = dir.p("app.log");
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("reopen-http")
    else {
        return;
    };
    let running = pz.spawn();
    running.wait_line("idle", "one");
    let target = http::Target::unix(&socket);
    std::fs::remove_file(&file).unwrap();
    let answer = http::post(&target, "/logs/reopen", "");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json(),
        json!({"reopened": ["file"], "path": path_str(&file)})
    );
    assert!(file.exists());
    let answer = http::get(&target, "/logs/reopen");
    assert_eq!(answer.status, 405, "{answer:?}");
    drop(running);

    // Without a file sink: 409, and the CLI exits 1 saying why.
    let dir = Dir::new("reopen-nofile");
    let program = dir.script("idle.sh", "echo one; exec sleep 30");
    dir.daemons_value(&json!([{ "name": "idle", "command": [program] }]));
    let socket = unique_socket_path();
    let Some(nofile) = common::pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("reopen-nofile")
    else {
        return;
    };
    let running = nofile.spawn();
    running.wait_line("idle", "one");
    let answer = http::post(&http::Target::unix(&socket), "/logs/reopen", "");
    assert_eq!(answer.status, 409, "{answer:?}");
    let (exit, out, err) = client(&socket, &["logs", "--reopen"]);
    assert_eq!(exit.code, Some(1), "{out}{err}");
    assert!(err.contains("no log file to reopen"), "{err}");
}

/// `logs` needs a NAME unless `--reopen`, and `--reopen` takes none
/// (usage errors, before any request is made).
#[test]
fn logs_needs_a_name_or_reopen() {
    let socket = unique_socket_path();
    let (exit, _, err) = client(&socket, &["logs"]);
    assert_eq!(exit.code, Some(2), "{err}");
    assert!(err.contains("required"), "{err}");
    for args in [
        &["logs", "web", "--reopen"][..],
        &["logs", "--reopen", "-n", "5"],
    ] {
        let (exit, _, err) = client(&socket, args);
        assert_eq!(exit.code, Some(2), "{args:?}: {err}");
        assert!(err.contains("cannot be used with"), "{args:?}: {err}");
    }
    // Nobody listens: the request is made, and fails as unreachable.
    let (exit, _, err) = client(&socket, &["logs", "--reopen"]);
    assert_eq!(exit.code, Some(2), "{err}");
    assert!(err.contains(&socket), "{err}");
}

//! `/metrics` for the writer's own sinks: `pidzero_log_written_total`,
//! `pidzero_log_dropped_total`, `pidzero_sink_errors_total` and
//! `pidzero_log_queued_records` with `sink="stdout"` and `sink="file"`,
//! as the network sinks have them: written is what reached the sink,
//! dropped what a failed write lost, queued what is on its way.

mod common;

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::{json, Value};

fn metric(socket: &str, key: &str) -> Option<f64> {
    let answer = get(&Target::unix(socket), "/metrics");
    parse_metrics(&answer.body).value(key)
}

fn file_records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A config dir with one daemon `gen` that prints `lines` numbered lines
/// and stays, and a file sink beside stdout; returns the dir and the file.
fn generator_with_file(name: &str, lines: u32) -> (Dir, std::path::PathBuf) {
    let dir = Dir::new(name);
    let program = dir.script("gen.sh", &format!("seq 1 {lines}\nexec sleep 600"));
    dir.daemons_value(&json!([{ "name": "gen", "command": [program] }]));
    let file = dir.p("pidzero.log");
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    (dir, file)
}

/// Both sinks count every record they wrote (daemon lines and events),
/// nothing dropped, nothing left queued once the daemon is quiet.
#[test]
fn stdout_and_file_count_what_they_wrote() {
    let (dir, file) = generator_with_file("sink-metrics", 5000);
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("sink-metrics")
    else {
        return;
    };
    let mut running = pz.spawn();
    running.wait_line("gen", "5000");
    let m = |key: &str| metric(&socket, key);
    let settled = wait_until(DEADLINE, || {
        let records = file_records(&file);
        records.iter().filter(|r| r["source"] == "gen").count() == 5000
            && m(r#"pidzero_log_written_total{sink="file"}"#) == Some(records.len() as f64)
            && m(r#"pidzero_log_written_total{sink="stdout"}"#) == Some(records.len() as f64)
    });
    assert!(
        settled.is_some(),
        "file has {} records; /metrics:\n{}",
        file_records(&file).len(),
        get(&Target::unix(&socket), "/metrics").body
    );
    assert_eq!(running.records().len(), file_records(&file).len());
    for sink in ["stdout", "file"] {
        let key = |name: &str| format!(r#"{name}{{sink="{sink}"}}"#);
        assert_eq!(m(&key("pidzero_log_dropped_total")), Some(0.0), "{sink}");
        assert_eq!(m(&key("pidzero_log_queued_records")), Some(0.0), "{sink}");
        assert_eq!(m(&key("pidzero_sink_errors_total")), Some(0.0), "{sink}");
    }
    kill(running.pid, libc::SIGTERM);
    assert_eq!(
        running.wait_exit(DEADLINE).status(),
        0,
        "{}",
        running.dump()
    );
}

/// A stdout closed from the start: every record it should have had is
/// counted as dropped, none as written, while the file gets them all.
#[test]
fn a_closed_stdout_counts_its_records_as_dropped() {
    let (dir, file) = generator_with_file("sink-metrics-closed", 2000);
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .shell_prefix("exec >&-")
        .ns("sink-metrics-closed")
    else {
        return;
    };
    let mut running = pz.spawn();
    let m = |key: &str| metric(&socket, key);
    let settled = wait_until(DEADLINE, || {
        let records = file_records(&file);
        let lines = records.iter().filter(|r| r["source"] == "gen").count();
        // The file also has the sink_error event about stdout.
        lines == 2000
            && m(r#"pidzero_log_written_total{sink="file"}"#) == Some(records.len() as f64)
            && m(r#"pidzero_log_dropped_total{sink="stdout"}"#) == Some(records.len() as f64 - 1.0)
    });
    assert!(
        settled.is_some(),
        "file has {} records; /metrics:\n{}",
        file_records(&file).len(),
        get(&Target::unix(&socket), "/metrics").body
    );
    assert_eq!(m(r#"pidzero_log_written_total{sink="stdout"}"#), Some(0.0));
    assert_eq!(m(r#"pidzero_log_queued_records{sink="stdout"}"#), Some(0.0));
    assert!(m(r#"pidzero_sink_errors_total{sink="stdout"}"#).unwrap() >= 1.0);
    assert_eq!(m(r#"pidzero_log_dropped_total{sink="file"}"#), Some(0.0));
    kill(running.pid, libc::SIGTERM);
    running.wait_exit(DEADLINE);
}

//! Per-daemon `sinks` with a network handler: a daemon routed to `forward`
//! only reaches the forward receiver, one routed to `stdout` only reaches
//! stdout, and pidzero's own events reach both.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::thread;

use common::*;
use serde_json::Value;

#[test]
fn forward_gets_only_the_daemons_routed_to_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let mut got = Vec::new();
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.read_to_end(&mut got);
        }
        String::from_utf8_lossy(&got).into_owned()
    });
    let dir = Dir::new("net-routing");
    dir.daemons(
        r#"[
  {"name": "remote", "command": ["/bin/sh", "-c", "seq -f 'remote %g' 1 500"], "sinks": ["forward"]},
  {"name": "local", "command": ["/bin/sh", "-c", "seq -f 'local %g' 1 500"], "sinks": ["stdout"]}
]"#,
    );
    dir.config(&format!(
        r#"{{"log": {{"forward": {{"address": "tcp://127.0.0.1:{port}"}}}}}}"#
    ));
    let finished = pz().config_dir(&dir).run(secs(30.0));
    assert_eq!(finished.status(), 0, "{}", finished.stderr);
    let forwarded: Vec<Value> = server
        .join()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let lines_of = |records: &[Value], source: &str| -> Vec<String> {
        records
            .iter()
            .filter(|r| r["source"] == source)
            .filter_map(|r| r["line"].as_str().map(str::to_owned))
            .collect()
    };
    let want = |who: &str| -> Vec<String> { (1..=500).map(|i| format!("{who} {i}")).collect() };
    assert_eq!(lines_of(&forwarded, "remote"), want("remote"));
    assert!(lines_of(&forwarded, "local").is_empty());
    let stdout = finished.records.clone();
    assert_eq!(lines_of(&stdout, "local"), want("local"));
    assert!(lines_of(&stdout, "remote").is_empty());
    // pidzero's own events go to every handler.
    for records in [&forwarded, &stdout] {
        for daemon in ["remote", "local"] {
            assert!(
                records
                    .iter()
                    .any(|r| r["event"] == "exited" && r["daemon"] == daemon),
                "no exited event for {daemon}"
            );
        }
    }
}

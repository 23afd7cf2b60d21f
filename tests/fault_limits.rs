//! Fault suite, resource limits: pidzero out of file descriptors, and its log
//! file's directory deleted under it. Supervision must go on: the
//! API answers again once descriptors are free, the other sink keeps every
//! record, and a vital exit still ends pidzero with the daemon's status.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::*;

fn health(socket: &str) -> Option<String> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn out_of_descriptors_pidzero_waits_without_spinning_and_recovers() {
    let d = Dir::new("emfile");
    let socket = d.s("pz.sock");
    d.daemons(&format!(
        r#"[{{"name": "keeper", "vital": true,
             "command": ["/bin/sh", "-c", "echo ready; read x < {}; exit 5"]}},
            {{"name": "ticker", "command": ["/bin/sh", "-c", "while :; do echo tick; sleep 0.2; done"]}}]"#,
        d.s("keeper.fifo")
    ));
    mkfifo(&d.p("keeper.fifo"));
    let Some(p) = pz()
        .config_dir(&d)
        .env("PIDZERO_SOCKET", &socket)
        .shell_prefix("ulimit -n 40")
        .ns("emfile")
    else {
        return;
    };
    let mut r = p.spawn();
    r.wait_line("keeper", "ready");
    wait_until(DEADLINE, || health(&socket).is_some()).expect("the API answers");

    // Hold connections until pidzero has no descriptor left to accept with.
    let mut held = Vec::new();
    for _ in 0..64 {
        match UnixStream::connect(&socket) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    wait_until(DEADLINE, || fd_count(r.pid) >= 40)
        .unwrap_or_else(|| panic!("pidzero holds {} fds of 40", fd_count(r.pid)));

    // At the limit: no busy loop on accept (under 5 % of a core).
    let cpu0 = cpu_time(r.pid);
    let t0 = std::time::Instant::now();
    let end = t0 + Duration::from_secs(2);
    wait_until(DEADLINE, || std::time::Instant::now() >= end);
    let cpu = cpu_time(r.pid) - cpu0;
    assert!(
        cpu.as_secs_f64() <= t0.elapsed().as_secs_f64() * 0.05 + 0.011,
        "pidzero used {cpu:?} of CPU while out of descriptors\n{}",
        r.dump()
    );
    r.assert_running();
    // Logging goes on meanwhile: the pipes it has are still read.
    let ticks = r
        .records()
        .iter()
        .filter(|x| is_line(x, "ticker", "tick"))
        .count();
    r.wait_record("another tick", DEADLINE, |x| is_line(x, "ticker", "tick"));
    assert!(ticks > 0);

    // Descriptors free again: the API answers.
    drop(held);
    wait_until(DEADLINE, || {
        health(&socket).is_some_and(|a| a.starts_with("HTTP/1.1 200"))
    })
    .unwrap_or_else(|| panic!("no /health answer after the clients left\n{}", r.dump()));

    // And supervision is intact.
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(d.p("keeper.fifo"))
        .unwrap();
    w.write_all(b"go\n").unwrap();
    drop(w);
    assert_eq!(r.wait_exit(DEADLINE).status(), 5, "{}", r.dump());
}

#[test]
fn log_directory_deleted_under_pidzero_leaves_stdout_whole() {
    let d = Dir::new("deleted-sink");
    let logs = d.p("logs");
    std::fs::create_dir(&logs).unwrap();
    let log_dir = logs.to_str().unwrap().to_string();
    // Small files: rotation soon needs the directory that is gone.
    d.config(&format!(
        r#"{{"log": {{"log_to_file": true, "log_to_stdout": true, "max_file_size": 2048,
                      "file_path": "{log_dir}/pidzero.log"}}}}"#
    ));
    d.daemons(&format!(
        r#"[{{"name": "counter", "vital": true, "command": ["/bin/sh", "-c",
             "i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo line $i; done; read x < {fifo}; while [ $i -lt 400 ]; do i=$((i+1)); echo line $i; done; sleep 100000"]}}]"#,
        fifo = d.s("go.fifo")
    ));
    mkfifo(&d.p("go.fifo"));
    let Some(p) = pz().config_dir(&d).ns("deleted_sink") else {
        return;
    };
    let mut r = p.spawn();
    r.wait_line("counter", "line 20");
    // pidzero may rotate into the directory while it is being removed
    // (ENOTEMPTY): try until it is gone.
    wait_until(DEADLINE, || {
        std::fs::remove_dir_all(&logs).is_ok() || !logs.exists()
    })
    .expect("the log directory removed");
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(d.p("go.fifo"))
        .unwrap();
    w.write_all(b"go\n").unwrap();
    drop(w);
    r.wait_event("sink_error", None);
    r.wait_line("counter", "line 400");
    // Every line reached stdout, once and in order.
    let lines: Vec<String> = r
        .records()
        .iter()
        .filter(|x| x["source"] == "counter")
        .map(|x| x["line"].as_str().unwrap_or_default().to_string())
        .collect();
    let want: Vec<String> = (1..=400).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want, "{}", r.dump());
    r.assert_running();
    r.signal(libc::SIGTERM);
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
}

/// A FIFO where a config file should be (nobody writing to it) is refused at
/// once with exit 2, by the run and by `check`, instead of waiting forever
/// for a writer with every signal blocked.
#[test]
fn a_fifo_as_a_config_file_is_refused_at_once() {
    for file in ["daemons.json", "config.json"] {
        let d = Dir::new("fifo-config");
        d.daemons(r#"[{"name": "a", "command": "true"}]"#);
        let _ = std::fs::remove_file(d.p(file));
        mkfifo(&d.p(file));
        for check in [false, true] {
            let mut p = pz().config_dir(&d);
            if check {
                p = p.arg("check");
            }
            let f = p.run(DEADLINE);
            assert_eq!(f.status(), 2, "{file}, check {check}: {}", f.dump());
            assert!(
                f.stderr.contains(&format!(
                    "{file}: cannot read: it is a FIFO, not a regular file"
                )),
                "{file}, check {check}: {}",
                f.stderr
            );
        }
    }
}

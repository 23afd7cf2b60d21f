//! §8 "The API never blocks or breaks supervision", with the real binary: 64 slow
//! clients hold every connection slot of the control socket while a vital daemon is
//! killed, and a 65th client is still answered at once. (Its own test binary, so no other test competes for the CPU meanwhile.)

mod api_e2e_support;
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use api_e2e_support::*;
use common::*;
use serde_json::json;

#[test]
fn sixty_four_slow_clients_do_not_delay_a_vital_exit() {
    let d = Dir::new("e2e-slow");
    let sock = unique_socket_path();
    let port = free_port();
    d.daemons_value(&json!([
        {"name": "db", "vital": true, "command": ["sleep", "1000"]},
        {"name": "side", "command": ["sleep", "1000"]},
    ]));
    d.config(&format!(r#"{{"api": {{"listen": "127.0.0.1:{port}"}}}}"#));
    let mut r = pz().config_dir(&d).env("PIDZERO_SOCKET", &sock).spawn();
    let db = r.daemon_pid("db");
    r.daemon_pid("side");
    let unix = Target::unix(&sock);
    let tcp = Target::tcp(port);
    wait_api(&unix);

    // pidzero holds its two listeners (Unix and TCP) and nothing else: the
    // connection of `wait_api` may take a moment to close.
    let listeners = wait_until(DEADLINE, || open_sockets(r.pid) == 2);
    assert!(
        listeners.is_some(),
        "pidzero holds {} sockets",
        open_sockets(r.pid)
    );
    let sockets_before = 2;

    // 64 clients connect and send half a request head, then say nothing more.
    let mut slow: Vec<UnixStream> = (0..64)
        .map(|i| {
            let mut s = UnixStream::connect(&sock).unwrap_or_else(|e| panic!("client {i}: {e}"));
            s.write_all(b"GET /health HTTP/1.1\r\nHost: pidzero\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // pidzero has accepted them all: it holds 64 more sockets.
    let accepted = wait_until(DEADLINE, || open_sockets(r.pid) >= sockets_before + 64);
    assert!(accepted.is_some(), "pidzero did not accept the 64 clients");

    // The socket's slots are all taken: a 65th client is answered at once, in the
    // place of the slow client that has waited longest, which is closed...
    let t0 = Instant::now();
    let mut newcomer = UnixStream::connect(&sock).unwrap();
    newcomer
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    newcomer.set_read_timeout(Some(secs(1.0))).unwrap();
    let mut answer = Vec::new();
    newcomer
        .read_to_end(&mut answer)
        .unwrap_or_else(|e| panic!("the 65th client got no answer: {e}"));
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    assert!(t0.elapsed() < secs(1.0), "slow /health: {:?}", t0.elapsed());
    slow[0].set_read_timeout(Some(secs(1.0))).unwrap();
    let mut rest = Vec::new();
    slow[0]
        .read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("the oldest slow client was not closed: {e}"));

    // ... while TCP, the other listener, still answers, again and again.
    for _ in 0..20 {
        let t0 = Instant::now();
        let a = get(&tcp, "/health");
        assert_eq!(a.status, 200, "{a:?}");
        assert!(t0.elapsed() < secs(1.0), "slow /health: {:?}", t0.elapsed());
    }
    let a = get(&tcp, "/daemons/db");
    assert_eq!(a.json()["state"], "running");

    // Kill the vital daemon: pidzero acts on it at once.
    let killed_at = now_ms();
    let t0 = Instant::now();
    assert!(kill(db, libc::SIGKILL));
    let ev = r.wait_event("vital_exit", Some("db"));
    let seen_after = t0.elapsed();
    let exited = r.wait_event("exited", Some("db"));
    let acted_ms = rfc3339_ms(ev["timestamp"].as_str().unwrap()) - killed_at;
    let exited_ms = rfc3339_ms(exited["timestamp"].as_str().unwrap()) - killed_at;
    eprintln!(
        "vital_exit {acted_ms} ms after the kill by its timestamp (exited {exited_ms} ms), \
         seen by the test after {seen_after:?}"
    );
    assert!(
        acted_ms <= 100,
        "vital_exit stamped {acted_ms} ms after the kill\n{}",
        r.dump()
    );
    assert!(
        seen_after < secs(1.0),
        "vital_exit reached stdout after {seen_after:?}"
    );
    assert_eq!(ev["status"], 137, "{ev}");
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 137, "{}", r.dump());
    assert!(!std::path::Path::new(&sock).exists());
    // The slow clients were let go.
    for s in &mut slow {
        s.set_read_timeout(Some(secs(2.0))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
}

/// How many sockets process `pid` has open (its `/proc/PID/fd` links).
fn open_sockets(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter(|fd| {
                    std::fs::read_link(fd.path())
                        .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

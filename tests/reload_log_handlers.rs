//! A reload that changes the network log handlers: records from then on go
//! to the new receiver, the old handler lets go of its connection, and a
//! handler the new config.json drops leaves `/metrics`.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::json;

/// What one receiver got, and whether its (single) connection ended.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<(Vec<u8>, bool)>>);

impl Receiver {
    /// Listens on a free port; accepts one connection and reads it to its end.
    fn start() -> (Receiver, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Receiver::default();
        let shared = received.clone();
        thread::spawn(move || {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut buffer = [0u8; 65536];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => shared.0.lock().unwrap().0.extend_from_slice(&buffer[..n]),
                }
            }
            shared.0.lock().unwrap().1 = true;
        });
        (received, port)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap().0).into_owned()
    }

    fn closed(&self) -> bool {
        self.0.lock().unwrap().1
    }
}

fn reload(socket: &str) -> (Exit, String, String) {
    let mut cmd = Command::new(bin());
    without_pidzero_env(&mut cmd);
    cmd.args(["reload"]).env("PIDZERO_SOCKET", socket);
    run_cmd(&mut cmd, DEADLINE)
}

fn forward_to(port: u16) -> serde_json::Value {
    json!({ "log": { "forward": { "address": format!("tcp://127.0.0.1:{port}") } } })
}

#[test]
fn a_reload_moves_forward_to_its_new_receiver_and_drops_a_removed_handler() {
    let (first, first_port) = Receiver::start();
    let (second, second_port) = Receiver::start();
    let dir = Dir::new("reload-net");
    dir.config(&forward_to(first_port).to_string());
    dir.daemons_value(&json!([{ "name": "one", "command": "echo said-one; exec sleep 1000" }]));
    let socket = unique_socket_path();
    let Some(pz) = pz()
        .config_dir(&dir)
        .env("PIDZERO_SOCKET", &socket)
        .ns("reload-net")
    else {
        return;
    };
    let mut running = pz.spawn();
    wait_until(DEADLINE, || first.text().contains("said-one"))
        .unwrap_or_else(|| panic!("the first receiver got nothing\n{}", running.dump()));

    // To the second receiver.
    dir.config(&forward_to(second_port).to_string());
    dir.daemons_value(&json!([
        { "name": "one", "command": "echo said-one; exec sleep 1000" },
        { "name": "two", "command": "echo said-two; exec sleep 1000" },
    ]));
    let (exit, out, err) = reload(&socket);
    assert_eq!(exit.code, Some(0), "{out}{err}\n{}", running.dump());
    assert!(!out.contains("warning"), "{out}");
    wait_until(DEADLINE, || second.text().contains("said-two"))
        .unwrap_or_else(|| panic!("the second receiver got nothing\n{}", running.dump()));
    wait_until(DEADLINE, || first.closed())
        .unwrap_or_else(|| panic!("the old handler kept its connection\n{}", running.dump()));
    assert!(!first.text().contains("said-two"), "{}", first.text());
    let metrics = parse_metrics(&get(&Target::unix(&socket), "/metrics").body);
    assert!(
        metrics.value(r#"pidzero_log_written_total{sink="forward"}"#) >= Some(1.0),
        "the new handler's counters are not in /metrics"
    );

    // No forward at all.
    dir.config("{}");
    dir.daemons_value(&json!([
        { "name": "one", "command": "echo said-one; exec sleep 1000" },
        { "name": "two", "command": "echo said-two; exec sleep 1000" },
        { "name": "three", "command": "echo said-three; exec sleep 1000" },
    ]));
    let (exit, out, err) = reload(&socket);
    assert_eq!(exit.code, Some(0), "{out}{err}\n{}", running.dump());
    running.wait_line("three", "said-three");
    wait_until(DEADLINE, || second.closed()).unwrap_or_else(|| {
        panic!(
            "the removed handler kept its connection\n{}",
            running.dump()
        )
    });
    assert!(!second.text().contains("said-three"), "{}", second.text());
    let metrics = parse_metrics(&get(&Target::unix(&socket), "/metrics").body);
    assert_eq!(
        metrics.value(r#"pidzero_log_written_total{sink="forward"}"#),
        None,
        "a removed handler is still in /metrics"
    );
    running.assert_running();
}

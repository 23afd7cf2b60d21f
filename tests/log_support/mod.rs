//! Helpers for the log tests (`tests/log_*.rs` include this file with
//! `#[path]`, next to `mod common;`, whose temp dirs and `wait_until` they use).
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

pub use crate::common::{wait_until, Dir};

pub const PIDZERO: &str = env!("CARGO_BIN_EXE_pidzero");

/// A config dir holding `daemons.json` and `config.json` (the control socket
/// off, so tests never collide on it; `log_json` is the `log` object's fields).
pub fn config_dir(tag: &str, daemons: &str, log_json: &str) -> Dir {
    let dir = Dir::new(tag);
    dir.daemons(daemons);
    dir.config(&format!(
        r#"{{"log":{{{log_json}}},"api":{{"socket":null}},"shutdown_timeout":5}}"#
    ));
    dir
}

/// One daemon entry of `daemons.json` running `script` with `/bin/sh -c`.
pub fn sh_daemon(name: &str, script: &str) -> String {
    let command = serde_json::to_string(&["/bin/sh", "-c", script]).unwrap();
    format!(r#"{{"name":"{name}","command":{command}}}"#)
}

/// `pidzero --config-dir DIR`, with no `PIDZERO_*` variable inherited.
pub fn pidzero(dir: impl AsRef<Path>) -> Command {
    let mut command = Command::new(PIDZERO);
    command.arg("--config-dir").arg(dir.as_ref());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PIDZERO_") {
            command.env_remove(key);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Waits for `child`; kills it and fails the test after `deadline`.
pub fn wait_deadline(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let mut status = None;
    let exited = wait_until(deadline, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    match (exited, status) {
        (Some(()), Some(status)) => status,
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {deadline:?}");
        }
    }
}

/// Runs `command` to its end with stdout and stderr captured; fails after `deadline`.
pub fn run(mut command: Command, deadline: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn pidzero");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let status = wait_deadline(&mut child, deadline, "pidzero");
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Every line of `text` parsed as JSON; fails on any line that is not.
pub fn records(text: &[u8]) -> Vec<serde_json::Value> {
    let text = std::str::from_utf8(text).expect("records are UTF-8");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:.300}")))
        .collect()
}

/// The `line` of every record of `source`, in order.
pub fn lines_of(records: &[serde_json::Value], source: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["source"] == source)
        .map(|r| r["line"].as_str().unwrap().to_string())
        .collect()
}

/// The records that are pidzero's `event` events.
pub fn events<'a>(records: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    records
        .iter()
        .filter(|r| r["source"] == "pidzero" && r["event"] == event)
        .collect()
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line[6..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// Can this process mount inside a new mount namespace? When not, a test
/// that needs it is skipped with a loud message, unless `PIDZERO_REQUIRE_NS=1`
/// (then it fails).
pub fn mount_namespaces_available(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs -o size=4k tmpfs /mnt",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("PIDZERO_REQUIRE_NS").as_deref() != Ok("1"),
            "{test}: `unshare --mount` with a tmpfs mount is unavailable and PIDZERO_REQUIRE_NS=1"
        );
        eprintln!("SKIPPED {test}: needs `unshare --mount` and mount (root); set PIDZERO_REQUIRE_NS=1 to fail instead");
    }
    ok
}

/// Each line of `text` with its first RFC 3339 millisecond timestamp replaced by `TS`.
pub fn mask_timestamp(text: &str) -> String {
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let is_stamp = |b: &[u8]| {
        b.len() >= 24
            && shape.iter().zip(b).all(|(&s, &c)| {
                if s == b'd' {
                    c.is_ascii_digit()
                } else {
                    s == c
                }
            })
    };
    let mut out = String::new();
    for line in text.lines() {
        let at = (0..line.len())
            .find(|&i| is_stamp(&line.as_bytes()[i..]))
            .unwrap_or_else(|| panic!("no timestamp in {line}"));
        out.push_str(&line[..at]);
        out.push_str("TS");
        out.push_str(&line[at + 24..]);
        out.push('\n');
    }
    out
}

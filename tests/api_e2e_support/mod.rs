//! Helpers for the end-to-end tests of the control API against the real binary:
//! waits on API answers and metrics, a free port and the client commands of the
//! binary. The HTTP client and the metrics parser are the harness's
//! (`common::http`, `common::metrics`), re-exported here.

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

pub use crate::common::http::*;
pub use crate::common::metrics::{parse_metrics, Metrics};

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `GET path` until `f` holds for the answer; returns that answer.
pub fn wait_answer(target: &Target, path: &str, what: &str, f: impl Fn(&Answer) -> bool) -> Answer {
    let mut last = None;
    let ok = wait_until(DEADLINE, || match try_http(target, "GET", path, &[], "") {
        Ok(a) => {
            let done = f(&a);
            last = Some(a);
            done
        }
        Err(_) => false,
    });
    match ok {
        Some(()) => last.unwrap(),
        None => panic!("GET {path}: no answer {what} within {DEADLINE:?}; last: {last:?}"),
    }
}

/// Waits until the API answers on `target` (the socket is bound before any daemon starts,
/// but the process may not be there yet).
pub fn wait_api(target: &Target) {
    wait_answer(target, "/version", "at all", |a| a.status == 200);
}

/// The daemon object `name` from `GET /daemons/NAME`.
pub fn daemon(target: &Target, name: &str) -> Value {
    let a = get(target, &format!("/daemons/{name}"));
    assert_eq!(a.status, 200, "{a:?}");
    a.json()
}

/// Waits until daemon `name` is in `state`; returns its object.
pub fn wait_state(target: &Target, name: &str, state: &str) -> Value {
    wait_answer(
        target,
        &format!("/daemons/{name}"),
        &format!("with state {state}"),
        |a| a.status == 200 && a.json()["state"] == state,
    )
    .json()
}

pub fn metrics(target: &Target) -> Metrics {
    let a = get(target, "/metrics");
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{a:?}"
    );
    parse_metrics(&a.body)
}

/// Waits until metric `key` satisfies `f`; returns its value.
pub fn wait_metric(target: &Target, key: &str, f: impl Fn(f64) -> bool) -> f64 {
    let mut last = None;
    let ok = wait_until(DEADLINE, || {
        last = metrics(target).value(key);
        last.is_some_and(&f)
    });
    match ok {
        Some(()) => last.unwrap(),
        None => panic!("metric {key}: condition not met within {DEADLINE:?}; last {last:?}"),
    }
}

/// Runs a client command of the binary: (exit status, stdout, stderr).
pub fn client(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(bin());
    c.args(args);
    for k in [
        "PIDZERO_SOCKET",
        "PIDZERO_URL",
        "PIDZERO_API_TOKEN",
        "PIDZERO_CONFIG_DIR",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let (exit, out, err) = run_cmd(&mut c, DEADLINE);
    (exit.status(), out, err)
}

/// `config.json` with the given `api` object.
pub fn api_config(d: &Dir, api: &str) {
    d.config(&format!(r#"{{"api": {api}}}"#));
}

/// Milliseconds between two RFC 3339 timestamps (b - a).
pub fn rfc3339_ms(t: &str) -> i128 {
    let t = humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("bad timestamp {t}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i128
}

pub fn now_ms() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i128
}

pub const SHORT: Duration = Duration::from_millis(300);

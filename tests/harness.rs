//! The shared test harness itself (`tests/common`): what the other tests rely
//! on when they make temp dirs, wait for conditions, talk HTTP and read
//! `/metrics`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::http::{parse_answer, request};
use common::metrics::parse_metrics;
use common::*;

#[test]
fn dir_is_fresh_reachable_by_other_users_and_removed_on_drop() {
    let d = Dir::new("harness");
    let path = d.path.clone();
    assert!(path.is_dir());
    assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0, "not empty");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    d.write("sub/file", "x");
    assert_eq!(d.read("sub/file"), "x");
    assert_ne!(Dir::new("harness").path, path, "two dirs share a path");
    drop(d);
    assert!(!path.exists(), "{} left behind", path.display());
}

#[test]
fn wait_until_answers_at_once_or_at_the_deadline() {
    assert_eq!(wait_until(Duration::ZERO, || true), Some(()));
    let timeout = Duration::from_millis(50);
    let start = Instant::now();
    assert_eq!(wait_until(timeout, || false), None);
    assert!(
        start.elapsed() >= timeout,
        "gave up after {:?}",
        start.elapsed()
    );
    // A condition that comes true by the deadline is not a timeout.
    let end = Instant::now() + timeout;
    assert_eq!(wait_until(timeout, || Instant::now() >= end), Some(()));
}

#[test]
fn answers_are_parsed_and_dechunked() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
    let a = parse_answer(raw).expect("an answer");
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/plain"));
    assert_eq!(a.header("CONTENT-TYPE"), Some("text/plain"));
    assert_eq!(a.body, "abcde");
    assert!(
        parse_answer(b"HTTP/1.1 200 OK\r\n").is_none(),
        "no end of head"
    );
    assert!(parse_answer(b"garbage\r\n\r\n").is_none(), "no status");
}

#[test]
fn requests_close_the_connection_and_announce_their_body() {
    let r = request("POST", "/x", &[("Authorization", "Bearer t")], "{}");
    assert_eq!(
        String::from_utf8(r).unwrap(),
        "POST /x HTTP/1.1\r\nHost: pidzero\r\nConnection: close\r\nAuthorization: Bearer t\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    );
    let r = request("GET", "/y", &[], "");
    assert_eq!(
        String::from_utf8(r).unwrap(),
        "GET /y HTTP/1.1\r\nHost: pidzero\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn metrics_are_found_by_their_written_key() {
    let m = parse_metrics(
        "# HELP up Is it up.\n# TYPE up gauge\nup{daemon=\"a\"} 1\nup{daemon=\"b\"} 0\n",
    );
    assert_eq!(m.value(r#"up{daemon="a"}"#), Some(1.0));
    assert_eq!(m.value(r#"up{daemon="b"}"#), Some(0.0));
    assert_eq!(m.value("up"), None);
    assert_eq!(m.samples.len(), 2);
    assert_eq!(m.types["up"], "gauge");
    let twice = "# HELP up a\n# HELP up b\n# TYPE up gauge\nup 1\n";
    assert!(std::panic::catch_unwind(|| parse_metrics(twice)).is_err());
}

//! Helpers for the end-to-end tests of the control API against the real binary:
//! a tiny blocking HTTP/1.1 client over the control socket or TCP, a free port,
//! a Prometheus text parser and the client commands of the binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::*;

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Target {
    pub fn unix(path: impl AsRef<Path>) -> Target {
        Target::Unix(path.as_ref().to_path_buf())
    }

    pub fn tcp(port: u16) -> Target {
        Target::Tcp(SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The raw request bytes (with `Connection: close`).
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: pidzero\r\nConnection: close\r\n");
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// Sends one request and reads the answer to EOF (10 s at most).
pub fn try_http(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    let request = request_bytes(method, path, headers, body);
    let mut raw = Vec::new();
    match target {
        Target::Unix(p) => {
            let mut s = UnixStream::connect(p)?;
            s.set_read_timeout(Some(DEADLINE))?;
            s.write_all(&request)?;
            s.read_to_end(&mut raw)?;
        }
        Target::Tcp(a) => {
            let mut s = TcpStream::connect_timeout(a, DEADLINE)?;
            s.set_read_timeout(Some(DEADLINE))?;
            s.write_all(&request)?;
            s.read_to_end(&mut raw)?;
        }
    }
    parse_answer(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not an HTTP answer: {:?}", String::from_utf8_lossy(&raw)),
        )
    })
}

pub fn http(
    target: &Target,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    try_http(target, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {target:?}: {e}"))
}

pub fn get(target: &Target, path: &str) -> Answer {
    http(target, "GET", path, &[], "")
}

pub fn post(target: &Target, path: &str, body: &str) -> Answer {
    http(target, "POST", path, &[], body)
}

pub fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body)?;
    }
    Some(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

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

/// A parsed `/metrics` page: every sample by `name{labels}` (labels as written).
#[derive(Debug, Default)]
pub struct Metrics {
    pub samples: HashMap<String, f64>,
    pub help: Vec<String>,
    pub types: HashMap<String, String>,
}

impl Metrics {
    pub fn value(&self, key: &str) -> Option<f64> {
        self.samples.get(key).copied()
    }
}

/// Parses the text exposition format; panics on a line it does not understand or a
/// sample whose family has no HELP and TYPE line before it.
pub fn parse_metrics(text: &str) -> Metrics {
    let mut m = Metrics::default();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.trim().is_empty(), "empty HELP: {line}");
            m.help.push(name.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "bad TYPE: {line}"
            );
            m.types.insert(name.to_string(), kind.to_string());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let (key, value) = line.rsplit_once(' ').expect("sample: name value");
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if let Some(labels) = key.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(
                    labels.starts_with('{') && labels.ends_with('}'),
                    "bad labels: {line}"
                );
                let inner = &labels[1..labels.len() - 1];
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    assert!(
                        !k.is_empty() && v.starts_with('"') && v.ends_with('"'),
                        "{line}"
                    );
                }
            }
        }
        assert!(
            m.help.iter().any(|h| h == name) && m.types.contains_key(name),
            "sample without HELP and TYPE before it: {line}"
        );
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        m.samples.insert(key.to_string(), v);
    }
    m
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

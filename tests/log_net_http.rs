//! Black-box tests of the HTTP log handlers `log.loki` and `log.otlp` with
//! the real binary and a receiver of the test's own (a `TcpListener` that
//! speaks enough HTTP/1.1: it records every request and answers what the
//! test scripted, 204 by default):
//!
//! - every line arrives once, in order, in bodies that follow each
//!   protocol's documented schema (Loki's push API; OTLP's
//!   `ExportLogsServiceRequest` in the protobuf JSON mapping);
//! - 500 then 204: the batch is sent again, nothing lost;
//! - 400: the batch is dropped and counted, not retried;
//! - the receiver away: drops counted in `/metrics`, one `sink_error` and
//!   one `sink_recovered`, stdout lossless;
//! - batching by count and by time; no wake-up while idle;
//! - bad settings: exit 2 naming `config.json:LINE:COL` and the key.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use common::http::{get, Target};
use common::metrics::parse_metrics;
use common::*;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Lower-cased names.
    headers: HashMap<String, String>,
    body: Value,
    /// The status it was answered.
    status: u16,
    at: Instant,
}

/// A receiver on a port of its own; answers `script` in turn, then 204.
/// 200 in a script is an OTLP partial success: one record rejected.
#[derive(Clone)]
struct Receiver {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    fn start(script: &[u16]) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    fn on(listener: TcpListener, script: &[u16]) -> Receiver {
        let receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            requests: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
        };
        let shared = receiver.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = shared.clone();
                thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    /// Serves one connection, request after request (keep-alive).
    fn serve(&self, mut stream: TcpStream) {
        let mut data = Vec::new();
        let mut buffer = [0u8; 65536];
        loop {
            let Some((head, body, used)) = parse_request(&data) else {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => data.extend_from_slice(&buffer[..n]),
                }
                continue;
            };
            data.drain(..used);
            let status = self.script.lock().unwrap().pop().unwrap_or(204);
            let mut lines = head.lines();
            let first: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let body = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
            self.requests.lock().unwrap().push(Request {
                method: first[0].to_string(),
                path: first.get(1).unwrap_or(&"").to_string(),
                headers,
                body,
                status,
                at: Instant::now(),
            });
            let answer = if status == 204 {
                "HTTP/1.1 204 No Content\r\n\r\n".to_string()
            } else if status == 200 {
                let text =
                    r#"{"partialSuccess":{"rejectedLogRecords":"1","errorMessage":"scripted"}}"#;
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )
            } else {
                let text = format!("scripted {status}");
                format!(
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )
            };
            if stream.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies it accepted (answered 204), in order.
    fn accepted(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 204)
            .map(|r| r.body)
            .collect()
    }
}

/// A whole request at the start of `data`: head, body, bytes used.
fn parse_request(data: &[u8]) -> Option<(String, Vec<u8>, usize)> {
    let end = data.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.trim().parse::<usize>().unwrap());
    let start = end + 4;
    (data.len() >= start + length)
        .then(|| (head, data[start..start + length].to_vec(), start + length))
}

/// A port nobody listens on (just freed).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(socket: &str, key: &str) -> Option<f64> {
    let answer = get(&Target::unix(socket), "/metrics");
    parse_metrics(&answer.body).value(key)
}

// ---------------------------------------------------------------------------
// Loki
// ---------------------------------------------------------------------------

/// One Loki entry, as checked against the push API's schema.
#[derive(Debug, Clone)]
struct Entry {
    labels: HashMap<String, String>,
    nanos: u128,
    line: String,
}

/// Checks a push body against Loki's schema and returns its entries:
/// `{"streams":[{"stream":{labels},"values":[["<ns>","<line>"],...]}]}`,
/// every label value a string, every time a string of digits.
fn loki_entries(body: &Value) -> Vec<Entry> {
    let object = body.as_object().expect("an object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["streams"], "{body}");
    let mut entries = Vec::new();
    for stream in body["streams"].as_array().expect("streams: an array") {
        let keys: Vec<&String> = stream.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["stream", "values"], "{stream}");
        let labels: HashMap<String, String> = stream["stream"]
            .as_object()
            .expect("stream: an object")
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().expect("label values are strings").to_string(),
                )
            })
            .collect();
        for name in labels.keys() {
            let mut chars = name.chars();
            assert!(
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "label name {name}"
            );
        }
        let values = stream["values"].as_array().expect("values: an array");
        assert!(!values.is_empty(), "{stream}");
        for value in values {
            let pair = value.as_array().expect("an entry is an array");
            assert_eq!(pair.len(), 2, "{value}");
            let nanos = pair[0].as_str().expect("the time is a string");
            assert!(
                nanos.len() >= 19 && nanos.bytes().all(|b| b.is_ascii_digit()),
                "{nanos}"
            );
            entries.push(Entry {
                labels: labels.clone(),
                nanos: nanos.parse().unwrap(),
                line: pair[1].as_str().expect("the line is a string").to_string(),
            });
        }
    }
    entries
}

#[test]
fn loki_gets_every_line_once_in_order_in_its_push_schema() {
    let receiver = Receiver::start(&[]);
    let dir = Dir::new("loki-schema");
    let n = 3000;
    dir.daemons(&format!(
        r#"[{{"name":"gen","command":["/bin/sh","-c","seq -f 'line %g' 1 {n}; echo same; echo same; echo oops >&2"]}}]"#
    ));
    dir.config(&format!(
        r#"{{"log":{{"loki":{{"url":"http://127.0.0.1:{}/loki/api/v1/push","labels":{{"app":"shop"}},"headers":{{"X-Scope-OrgID":"tenant-1"}},"batch_records":500}}}}}}"#,
        receiver.port
    ));
    let finished = pz().config_dir(&dir).run(secs(30.0));
    assert_eq!(finished.status(), 0, "{}", finished.dump());
    let requests = receiver.requests();
    assert!(requests.len() >= 2, "{} requests", requests.len());
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/loki/api/v1/push");
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.headers["x-scope-orgid"], "tenant-1");
        assert_eq!(request.status, 204);
    }
    let entries: Vec<Entry> = receiver.accepted().iter().flat_map(loki_entries).collect();
    // Labels: the static ones, the source and the stream; nothing else.
    for entry in &entries {
        let mut names: Vec<&str> = entry.labels.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["app", "source", "stream"], "{entry:?}");
        assert_eq!(entry.labels["app"], "shop");
    }
    // Times strictly increase within each stream, across requests.
    let mut last: HashMap<(String, String), u128> = HashMap::new();
    for entry in &entries {
        let key = (
            entry.labels["source"].clone(),
            entry.labels["stream"].clone(),
        );
        if let Some(&before) = last.get(&key) {
            assert!(entry.nanos > before, "{entry:?} after {before}");
        }
        last.insert(key, entry.nanos);
    }
    // The line is the JSON record; every stdout line once, in order.
    let records: Vec<(Entry, Value)> = entries
        .iter()
        .map(|e| (e.clone(), serde_json::from_str(&e.line).unwrap()))
        .collect();
    let stdout: Vec<&str> = records
        .iter()
        .filter(|(e, _)| e.labels["source"] == "gen" && e.labels["stream"] == "stdout")
        .map(|(_, r)| r["line"].as_str().unwrap())
        .collect();
    let mut want: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    want.extend(["same".to_string(), "same".to_string()]);
    assert!(
        stdout == want,
        "{} stdout lines, not as written",
        stdout.len()
    );
    // The record's time is the entry's, to the millisecond.
    for (entry, record) in &records {
        let ms = entry.nanos / 1_000_000;
        let stamp = record["timestamp"].as_str().unwrap();
        assert_eq!(&stamp[20..23], format!("{:03}", ms % 1000), "{entry:?}");
    }
    assert!(records
        .iter()
        .any(|(e, r)| e.labels["stream"] == "stderr" && r["line"] == "oops"));
    let started = records
        .iter()
        .find(|(_, r)| r["event"] == "started")
        .expect("pidzero's events too");
    assert_eq!(started.0.labels["source"], "pidzero");
    assert_eq!(started.0.labels["stream"], "event");
    assert_eq!(started.1["daemon"], "gen");
}

// ---------------------------------------------------------------------------
// OTLP
// ---------------------------------------------------------------------------

/// Every object key in `value` is lowerCamelCase, as the protobuf JSON
/// mapping writes field names (attribute names are values, not keys).
fn assert_lower_camel_keys(value: &Value) {
    match value {
        Value::Object(members) => {
            for (key, item) in members {
                assert!(
                    key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                        && key.chars().all(|c| c.is_ascii_alphanumeric()),
                    "key {key:?}"
                );
                assert_lower_camel_keys(item);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_lower_camel_keys),
        _ => {}
    }
}

/// Checks an `AnyValue`: exactly one of its kinds, 64-bit integers as strings.
fn check_any_value(value: &Value) {
    let object = value.as_object().expect("AnyValue: an object");
    if object.is_empty() {
        return;
    }
    assert_eq!(object.len(), 1, "{value}");
    let (kind, inner) = object.iter().next().unwrap();
    match kind.as_str() {
        "stringValue" => assert!(inner.is_string(), "{value}"),
        "boolValue" => assert!(inner.is_boolean(), "{value}"),
        "intValue" => {
            let text = inner.as_str().expect("intValue: a string");
            assert!(text.parse::<i64>().is_ok(), "{value}");
        }
        "doubleValue" => assert!(inner.is_number(), "{value}"),
        "arrayValue" => inner["values"]
            .as_array()
            .unwrap()
            .iter()
            .for_each(check_any_value),
        "kvlistValue" => check_key_values(&inner["values"]),
        other => panic!("unknown AnyValue kind {other}: {value}"),
    }
}

/// `[{"key": string, "value": AnyValue}, ...]`.
fn check_key_values(list: &Value) {
    for kv in list.as_array().expect("a list of KeyValue") {
        assert!(kv["key"].is_string(), "{kv}");
        check_any_value(&kv["value"]);
    }
}

/// The attributes of a KeyValue list as strings (`intValue`s included).
fn attributes(list: &Value) -> HashMap<String, Value> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["key"].as_str().unwrap().to_string(), kv["value"].clone()))
        .collect()
}

/// Checks an `ExportLogsServiceRequest` and returns its log records.
fn otlp_records(body: &Value) -> Vec<Value> {
    assert_lower_camel_keys(body);
    let mut out = Vec::new();
    for resource_logs in body["resourceLogs"].as_array().expect("resourceLogs") {
        let resource = &resource_logs["resource"]["attributes"];
        check_key_values(resource);
        assert!(
            attributes(resource).contains_key("service.name"),
            "{resource}"
        );
        for scope_logs in resource_logs["scopeLogs"].as_array().expect("scopeLogs") {
            assert_eq!(scope_logs["scope"]["name"], "pidzero");
            for record in scope_logs["logRecords"].as_array().expect("logRecords") {
                for time in ["timeUnixNano", "observedTimeUnixNano"] {
                    let text = record[time]
                        .as_str()
                        .unwrap_or_else(|| panic!("{time}: {record}"));
                    assert!(
                        text.parse::<u64>()
                            .is_ok_and(|t| t > 1_600_000_000_000_000_000),
                        "{record}"
                    );
                }
                let number = record["severityNumber"]
                    .as_u64()
                    .expect("severityNumber: a number");
                assert!((1..=24).contains(&number), "{record}");
                assert!(record["severityText"].is_string(), "{record}");
                check_any_value(&record["body"]);
                check_key_values(&record["attributes"]);
                out.push(record.clone());
            }
        }
    }
    out
}

#[test]
fn otlp_gets_every_line_once_in_order_as_export_requests() {
    let receiver = Receiver::start(&[]);
    let dir = Dir::new("otlp-schema");
    let n = 2000;
    dir.daemons(&format!(
        r#"[{{"name":"gen","command":["/bin/sh","-c","seq -f 'line %g' 1 {n}; echo 'ERROR: disk full' >&2; echo slow >&2"]}},
            {{"name":"api","parse":"json","command":["/bin/echo","{{\"level\":\"warn\",\"msg\":\"hot\",\"n\":3}}"]}}]"#
    ));
    dir.config(&format!(
        r#"{{"log":{{"otlp":{{"url":"http://127.0.0.1:{}","service_name":"shop","resource":{{"deployment.environment":"test"}}}}}}}}"#,
        receiver.port
    ));
    let finished = pz().config_dir(&dir).run(secs(30.0));
    assert_eq!(finished.status(), 0, "{}", finished.dump());
    for request in receiver.requests() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/logs");
        assert_eq!(request.headers["content-type"], "application/json");
    }
    let bodies = receiver.accepted();
    let resource = attributes(&bodies[0]["resourceLogs"][0]["resource"]["attributes"]);
    assert_eq!(resource["service.name"]["stringValue"], "shop");
    assert_eq!(resource["deployment.environment"]["stringValue"], "test");
    let records: Vec<Value> = bodies.iter().flat_map(otlp_records).collect();
    let of = |source: &str, stream: &str| -> Vec<Value> {
        records
            .iter()
            .filter(|r| {
                let a = attributes(&r["attributes"]);
                a["source"]["stringValue"] == source && a["stream"]["stringValue"] == stream
            })
            .cloned()
            .collect()
    };
    let lines: Vec<String> = of("gen", "stdout")
        .iter()
        .map(|r| r["body"]["stringValue"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = (1..=n).map(|i| format!("line {i}")).collect();
    assert!(lines == want, "{} lines, not as written", lines.len());
    assert!(of("gen", "stdout")
        .iter()
        .all(|r| r["severityNumber"] == 9 && r["severityText"] == "INFO"));
    let stderr = of("gen", "stderr");
    assert_eq!(stderr.len(), 2);
    assert_eq!(
        (
            stderr[0]["severityNumber"].as_u64(),
            stderr[1]["severityNumber"].as_u64()
        ),
        (Some(17), Some(13))
    );
    // A parsed JSON line: a kvlist body with the object's level.
    let api = &of("api", "stdout")[0];
    assert_eq!(api["severityNumber"], 13, "{api}");
    let members = attributes(&api["body"]["kvlistValue"]["values"]);
    assert_eq!(members["n"]["intValue"], "3");
    assert_eq!(members["msg"]["stringValue"], "hot");
    // Events: their fields as attributes, integers as strings.
    let exited = records
        .iter()
        .find(|r| {
            let a = attributes(&r["attributes"]);
            a.get("event").is_some_and(|e| e["stringValue"] == "exited")
                && a["daemon"]["stringValue"] == "gen"
        })
        .expect("the exited event");
    let a = attributes(&exited["attributes"]);
    assert_eq!(a["source"]["stringValue"], "pidzero");
    assert_eq!(a["status"]["intValue"], "0");
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

#[test]
fn a_500_is_retried_until_accepted_and_nothing_is_lost() {
    let receiver = Receiver::start(&[500, 503]);
    let dir = Dir::new("loki-retry");
    dir.daemons(
        r#"[{"name":"gen","command":["/bin/sh","-c","seq -f 'line %g' 1 50; exec sleep 1000"]}]"#,
    );
    dir.config(&format!(
        r#"{{"log":{{"loki":{{"url":"http://127.0.0.1:{}/push","format":"line","batch_wait":"100ms"}}}}}}"#,
        receiver.port
    ));
    let socket = unique_socket_path();
    let mut r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    let back = r.wait_record("loki's sink_recovered", secs(20.0), |v| {
        is_event(v, "sink_recovered", None) && v["sink"] == "loki"
    });
    assert_eq!(back["dropped"], 0, "{back}");
    let lines = || -> Vec<String> {
        receiver
            .accepted()
            .iter()
            .flat_map(loki_entries)
            .filter(|e| e.labels["source"] == "gen")
            .map(|e| e.line)
            .collect()
    };
    assert!(
        wait_until(DEADLINE, || lines().len() >= 50).is_some(),
        "{:?}",
        lines()
    );
    let want: Vec<String> = (1..=50).map(|i| format!("line {i}")).collect();
    assert_eq!(lines(), want);
    let statuses: Vec<u16> = receiver.requests().iter().map(|q| q.status).collect();
    assert_eq!(statuses[..3], [500, 503, 204], "{statuses:?}");
    // The same batch, sent again as it was.
    let requests = receiver.requests();
    assert_eq!(requests[0].body, requests[2].body);
    let errors = metric(&socket, r#"pidzero_sink_errors_total{sink="loki"}"#);
    assert_eq!(errors, Some(2.0));
    let written = metric(&socket, r#"pidzero_log_written_total{sink="loki"}"#).unwrap();
    assert!(written >= 50.0, "{written}");
    assert_eq!(
        metric(&socket, r#"pidzero_log_dropped_total{sink="loki"}"#),
        Some(0.0)
    );
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    let finished = r.finish();
    let error = finished
        .find(|v| is_event(v, "sink_error", None) && v["sink"] == "loki")
        .expect("a sink_error");
    assert!(error["error"].as_str().unwrap().contains("500"), "{error}");
}

#[test]
fn a_400_drops_the_batch_counts_it_and_does_not_retry() {
    let receiver = Receiver::start(&[400]);
    let dir = Dir::new("otlp-refused");
    let go = dir.p("go");
    dir.daemons(&format!(
        r#"[{{"name":"gen","sinks":["otlp"],"command":["/bin/sh","-c","echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo after; exec sleep 1000"]}}]"#,
        go = go.display()
    ));
    dir.config(&format!(
        r#"{{"log":{{"otlp":{{"url":"http://127.0.0.1:{}","batch_wait":0.2}}}}}}"#,
        receiver.port
    ));
    let socket = unique_socket_path();
    let mut r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    let refused = r.wait_record("otlp's sink_error", DEADLINE, |v| {
        is_event(v, "sink_error", None) && v["sink"] == "otlp"
    });
    let reason = refused["error"].as_str().unwrap();
    assert!(
        reason.contains("400") && reason.contains("dropped"),
        "{refused}"
    );
    let dropped = metric(&socket, r#"pidzero_log_dropped_total{sink="otlp"}"#).unwrap();
    assert!(dropped >= 1.0, "{dropped}");
    std::fs::write(&go, "").unwrap();
    let bodies_with = |text: &str| {
        receiver
            .requests()
            .iter()
            .filter(|q| q.body.to_string().contains(text))
            .count()
    };
    assert!(wait_until(DEADLINE, || bodies_with("\"after\"") == 1).is_some());
    r.wait_record("otlp's sink_recovered", DEADLINE, |v| {
        is_event(v, "sink_recovered", None) && v["sink"] == "otlp"
    });
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    drop(r.finish());
    // The refused batch was sent once, never again.
    assert_eq!(bodies_with("\"first\""), 1);
}

/// A 2xx answer with an OTLP partial success: the rejected records are
/// dropped and counted (not sent again), the rest written.
#[test]
fn an_otlp_partial_success_counts_the_rejected_records() {
    let receiver = Receiver::start(&[200]);
    let dir = Dir::new("otlp-partial");
    let go = dir.p("go");
    dir.daemons(&format!(
        r#"[{{"name":"gen","command":["/bin/sh","-c","echo one; echo two; while [ ! -e {go} ]; do sleep 0.05; done; echo after; exec sleep 1000"]}}]"#,
        go = go.display()
    ));
    dir.config(&format!(
        r#"{{"log":{{"otlp":{{"url":"http://127.0.0.1:{}","batch_wait":0.3}}}}}}"#,
        receiver.port
    ));
    let socket = unique_socket_path();
    let mut r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    let error = r.wait_record("otlp's sink_error", DEADLINE, |v| {
        is_event(v, "sink_error", None) && v["sink"] == "otlp"
    });
    let reason = error["error"].as_str().unwrap();
    assert!(
        reason.contains("rejected 1 of") && reason.contains("scripted"),
        "{error}"
    );
    assert_eq!(
        metric(&socket, r#"pidzero_log_dropped_total{sink="otlp"}"#),
        Some(1.0)
    );
    std::fs::write(&go, "").unwrap();
    r.wait_record("otlp's sink_recovered", DEADLINE, |v| {
        is_event(v, "sink_recovered", None) && v["sink"] == "otlp" && v["dropped"] == 1
    });
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    drop(r.finish());
    // The first batch was not sent again.
    let requests = receiver.requests();
    let again = requests
        .iter()
        .skip(1)
        .filter(|q| q.body == requests[0].body)
        .count();
    assert_eq!(again, 0);
}

/// The receiver is away while a daemon writes a burst: stdout gets every
/// line, the handler's queue drops its oldest (counted), one `sink_error`;
/// once the receiver is there, one `sink_recovered` and what follows arrives.
#[test]
fn receiver_away_then_back() {
    let port = free_port();
    let dir = Dir::new("loki-away");
    let n = 5000;
    let go = dir.p("go");
    dir.daemons(&format!(
        r#"[{{"name":"burst","command":["/bin/sh","-c","seq -f 'burst %g' 1 {n}; while [ ! -e {go} ]; do sleep 0.05; done; echo after; exec sleep 1000"]}}]"#,
        go = go.display()
    ));
    dir.config(&format!(
        r#"{{"log":{{"loki":{{"url":"http://127.0.0.1:{port}/push","format":"line","buffer_records":100,"batch_records":10}}}}}}"#
    ));
    let socket = unique_socket_path();
    let mut r = pz().config_dir(&dir).env("PIDZERO_SOCKET", &socket).spawn();
    r.wait_record("the last burst line", secs(20.0), |v| {
        is_line(v, "burst", &format!("burst {n}"))
    });
    let outage = r.wait_record("loki's sink_error", DEADLINE, |v| {
        is_event(v, "sink_error", None) && v["sink"] == "loki"
    });
    assert!(
        outage["error"].as_str().unwrap().contains("cannot connect"),
        "{outage}"
    );
    let dropped_key = r#"pidzero_log_dropped_total{sink="loki"}"#;
    let dropped = wait_until(DEADLINE, || {
        metric(&socket, dropped_key).is_some_and(|d| d >= (n - 110) as f64)
    });
    assert!(dropped.is_some(), "{:?}", metric(&socket, dropped_key));
    let queued = metric(&socket, r#"pidzero_log_queued_records{sink="loki"}"#).unwrap();
    assert!(queued <= 100.0, "the queue's bound: {queued}");
    let receiver = Receiver::on(TcpListener::bind(("127.0.0.1", port)).unwrap(), &[]);
    std::fs::write(&go, "").unwrap();
    let back = r.wait_record("loki's sink_recovered", secs(20.0), |v| {
        is_event(v, "sink_recovered", None) && v["sink"] == "loki"
    });
    let lost = back["dropped"].as_u64().unwrap();
    assert!(lost >= (n - 110) as u64 && lost <= n as u64, "{back}");
    let lines = || -> Vec<String> {
        receiver
            .accepted()
            .iter()
            .flat_map(loki_entries)
            .filter(|e| e.labels["source"] == "burst")
            .map(|e| e.line)
            .collect()
    };
    assert!(
        wait_until(DEADLINE, || lines().last().is_some_and(|l| l == "after")).is_some(),
        "{:?}",
        lines()
    );
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    let finished = r.finish();
    let burst: Vec<&Value> = finished
        .records
        .iter()
        .filter(|v| v["source"] == "burst" && v["stream"] == "stdout")
        .collect();
    assert_eq!(burst.len(), n + 1, "stdout lost nothing");
    let count = |event: &str| {
        finished
            .records
            .iter()
            .filter(|v| is_event(v, event, None) && v["sink"] == "loki")
            .count()
    };
    assert_eq!((count("sink_error"), count("sink_recovered")), (1, 1));
    // What arrived: the newest burst lines, in order, then "after".
    let arrived = lines();
    assert!(arrived.len() <= 111, "{}", arrived.len());
    assert!(arrived.contains(&format!("burst {n}")), "{arrived:?}");
}

/// A receiver that takes the connection and never answers counts as away
/// once the request times out.
#[test]
fn a_receiver_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = Dir::new("otlp-silent");
    dir.daemons(r#"[{"name":"gen","command":["/bin/sh","-c","echo hi; exec sleep 1000"]}]"#);
    dir.config(&format!(
        r#"{{"log":{{"otlp":{{"url":"http://127.0.0.1:{port}","timeout":"500ms","batch_wait":0}}}}}}"#
    ));
    let mut r = pz().config_dir(&dir).spawn();
    let error = r.wait_record("otlp's sink_error", DEADLINE, |v| {
        is_event(v, "sink_error", None) && v["sink"] == "otlp"
    });
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("no answer within 500ms"),
        "{error}"
    );
    r.signal(libc::SIGTERM);
    let exit = r.wait_exit(DEADLINE);
    assert_eq!(exit.status(), 0);
    drop(listener);
}

// ---------------------------------------------------------------------------
// Batching and idle
// ---------------------------------------------------------------------------

/// The records of a Loki request.
fn entry_count(body: &Value) -> usize {
    loki_entries(body).len()
}

#[test]
fn batches_go_out_by_count_and_the_rest_waits_for_the_time_bound() {
    let receiver = Receiver::start(&[]);
    let dir = Dir::new("loki-count");
    // Only the daemon's lines go to Loki (events too, but the daemon waits
    // for `go` before writing, so they went out first, alone).
    let go = dir.p("go");
    dir.daemons(&format!(
        r#"[{{"name":"gen","command":["/bin/sh","-c","while [ ! -e {go} ]; do sleep 0.05; done; seq -f 'line %g' 1 12; exec sleep 1000"]}}]"#,
        go = go.display()
    ));
    dir.config(&format!(
        r#"{{"log":{{"loki":{{"url":"http://127.0.0.1:{}/push","format":"line","batch_records":5,"batch_wait":"1h"}}}}}}"#,
        receiver.port
    ));
    let mut r = pz().config_dir(&dir).spawn();
    r.wait_event("started", Some("gen"));
    // pidzero's start events wait in the queue too (for the hour): every
    // request holds 5 records, whatever they are.
    let gen_requests = || -> Vec<Vec<String>> {
        receiver
            .accepted()
            .iter()
            .map(|b| {
                loki_entries(b)
                    .into_iter()
                    .filter(|e| e.labels["source"] == "gen")
                    .map(|e| e.line)
                    .collect::<Vec<_>>()
            })
            .filter(|lines| !lines.is_empty())
            .collect()
    };
    std::fs::write(&go, "").unwrap();
    r.wait_line("gen", "line 12");
    assert!(wait_until(DEADLINE, || receiver.accepted().len() >= 2).is_some());
    let running = receiver.accepted();
    assert_eq!(running.len(), 2, "the last 4 records wait for the hour");
    for body in &running {
        assert_eq!(entry_count(body), 5, "{body}");
    }
    // At exit, what is queued goes at once.
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    drop(r.finish());
    let all = gen_requests();
    assert!(all.len() >= 3, "{all:?}");
    let lines: Vec<String> = all.concat();
    let want: Vec<String> = (1..=12).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, want);
    for body in receiver.accepted() {
        assert!(entry_count(&body) <= 5);
    }
}

#[test]
fn a_few_lines_wait_for_batch_wait_then_go_in_one_request() {
    let receiver = Receiver::start(&[]);
    let dir = Dir::new("loki-wait");
    let go = dir.p("go");
    dir.daemons(&format!(
        r#"[{{"name":"gen","command":["/bin/sh","-c","while [ ! -e {go} ]; do sleep 0.05; done; echo a; echo b; echo c; exec sleep 1000"]}}]"#,
        go = go.display()
    ));
    dir.config(&format!(
        r#"{{"log":{{"loki":{{"url":"http://127.0.0.1:{}/push","format":"line","batch_wait":"1500ms"}}}}}}"#,
        receiver.port
    ));
    let mut r = pz().config_dir(&dir).spawn();
    r.wait_event("started", Some("gen"));
    // The start events' batch first.
    assert!(wait_until(DEADLINE, || !receiver.accepted().is_empty()).is_some());
    let before = receiver.requests().len();
    std::fs::write(&go, "").unwrap();
    r.wait_line("gen", "a");
    let seen = Instant::now();
    assert!(wait_until(DEADLINE, || receiver.requests().len() > before).is_some());
    let requests = receiver.requests();
    let request = &requests[before];
    let lines: Vec<String> = loki_entries(&request.body)
        .into_iter()
        .map(|e| e.line)
        .collect();
    assert_eq!(lines, ["a", "b", "c"]);
    let waited = request.at.duration_since(seen);
    assert!(waited >= secs(1.0), "sent after {waited:?}");
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    drop(r.finish());
}

/// Connected and with nothing to send, an HTTP handler's thread sleeps:
/// not one wake-up in a 2-second window.
#[test]
fn idle_http_handlers_do_not_wake_up() {
    let receiver = Receiver::start(&[]);
    let dir = Dir::new("http-idle");
    dir.daemons(r#"[{"name":"idle","command":["/bin/sh","-c","echo ready; exec sleep 1000"]}]"#);
    dir.config(&format!(
        r#"{{"log":{{"loki":{{"url":"http://127.0.0.1:{port}/push","batch_wait":"10ms"}},"otlp":{{"url":"http://127.0.0.1:{port}","batch_wait":"10ms"}}}}}}"#,
        port = receiver.port
    ));
    let mut r = pz().config_dir(&dir).spawn();
    r.wait_line("idle", "ready");
    let arrived = |path: &str| {
        receiver
            .requests()
            .iter()
            .any(|q| q.path == path && q.body.to_string().contains("ready"))
    };
    assert!(wait_until(DEADLINE, || arrived("/push") && arrived("/v1/logs")).is_some());
    let pid = r.pid;
    let count = || {
        (
            thread_wakeups(pid, "pidzero-loki").unwrap(),
            thread_wakeups(pid, "pidzero-otlp").unwrap(),
        )
    };
    // Let the threads go back to sleep after the last answer.
    let mut last = count();
    let settled = wait_until(DEADLINE, || {
        thread::sleep(secs(0.2));
        let now = count();
        let still = now == last;
        last = now;
        still
    });
    assert!(settled.is_some());
    let before = count();
    // A measurement window, not a synchronisation.
    thread::sleep(secs(2.0));
    assert_eq!(before, count(), "(loki, otlp) context switches");
    r.signal(libc::SIGTERM);
    r.wait_exit(DEADLINE);
    drop(r.finish());
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

#[test]
fn bad_http_settings_name_their_place_and_key() {
    let dir = Dir::new("http-check");
    dir.daemons(r#"[{"name":"a","command":["/bin/true"]}]"#);
    dir.config(concat!(
        "{\"log\": {\n",
        "  \"loki\": {\"url\": \"https://loki:3100/loki/api/v1/push\",\n",
        "    \"labels\": {\"app-name\": \"x\"},\n",
        "    \"batch_records\": 0},\n",
        "  \"otlp\": {\"buffer_records\": 10, \"batch_records\": 20,\n",
        "    \"batch_wait\": \"soon\", \"headers\": {\"Content-Type\": \"text/plain\"}}}}\n",
    ));
    for args in [&["check"][..], &[][..]] {
        let finished = pz().config_dir(&dir).args(args).run(DEADLINE);
        assert_eq!(finished.status(), 2, "{}", finished.dump());
        let stderr = &finished.stderr;
        for (line, field) in [
            (2, "log.loki.url"),
            (3, "log.loki.labels.app-name"),
            (4, "log.loki.batch_records"),
            (5, "log.otlp.batch_records"),
            (6, "log.otlp.batch_wait"),
            (6, "log.otlp.headers.Content-Type"),
        ] {
            let place = format!("config.json:{line}:");
            assert!(
                stderr
                    .lines()
                    .any(|l| l.contains(&place) && l.contains(&format!(" field {field}: "))),
                "no {place}COL: field {field} in {stderr}"
            );
        }
        assert!(stderr.contains("https is not supported"), "{stderr}");
        assert!(stderr.contains("[a-zA-Z_][a-zA-Z0-9_]*"), "{stderr}");
        assert!(
            finished.records.iter().all(|r| r["event"] != "started"),
            "nothing started"
        );
    }
}

#[test]
fn a_daemon_routed_to_an_unconfigured_http_handler_is_refused() {
    let dir = Dir::new("http-route");
    dir.daemons(r#"[{"name":"a","sinks":["loki"],"command":["/bin/true"]}]"#);
    dir.config(r#"{"log":{"otlp":{}}}"#);
    let finished = pz().config_dir(&dir).arg("check").run(DEADLINE);
    assert_eq!(finished.status(), 2, "{}", finished.dump());
    assert!(
        finished.stderr.contains("no `log.loki` handler"),
        "{}",
        finished.stderr
    );
}

// ---------------------------------------------------------------------------
// The official OTLP schema
// ---------------------------------------------------------------------------

/// Parses each body with protobuf's JSON parser into the official
/// `ExportLogsServiceRequest` (the `opentelemetry-proto` Python package),
/// which refuses unknown fields and wrong types; prints the number of log
/// records and their severity numbers.
const PROTO_CHECK: &str = r#"
import json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
for line in sys.stdin:
    request = json_format.Parse(line, ExportLogsServiceRequest())
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                body = record.body.string_value or record.body.WhichOneof("value")
                print(record.time_unix_nano, record.severity_number, body)
"#;

#[test]
fn otlp_bodies_parse_as_the_official_protobuf_messages() {
    let have = std::process::Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("PIDZERO_REQUIRE_OTLP_PROTO").is_none(),
            "PIDZERO_REQUIRE_OTLP_PROTO is set but python3 cannot import opentelemetry-proto"
        );
        eprintln!(
            "\n*** SKIP otlp_bodies_parse_as_the_official_protobuf_messages: python3 with opentelemetry-proto is not installed (pip install opentelemetry-proto) ***\n"
        );
        return;
    }
    let receiver = Receiver::start(&[]);
    let dir = Dir::new("otlp-proto");
    dir.daemons(
        r#"[{"name":"gen","command":["/bin/sh","-c","echo hello; echo 'WARN: careful' >&2"]},
            {"name":"api","parse":"json","command":["/bin/echo","{\"level\":\"error\",\"n\":3,\"nested\":{\"a\":[1,2.5,null]}}"]}]"#,
    );
    dir.config(&format!(
        r#"{{"log":{{"otlp":{{"url":"http://127.0.0.1:{}"}}}}}}"#,
        receiver.port
    ));
    let finished = pz().config_dir(&dir).run(secs(30.0));
    assert_eq!(finished.status(), 0, "{}", finished.dump());
    let input: String = receiver
        .accepted()
        .iter()
        .map(|b| format!("{b}\n"))
        .collect();
    let mut child = std::process::Command::new("python3")
        .args(["-c", PROTO_CHECK])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{input}",
        String::from_utf8_lossy(&output.stderr)
    );
    let total: usize = receiver
        .accepted()
        .iter()
        .map(|b| otlp_records(b).len())
        .sum();
    assert_eq!(stdout.lines().count(), total, "{stdout}");
    assert!(stdout.lines().any(|l| l.ends_with(" 9 hello")), "{stdout}");
    assert!(
        stdout.lines().any(|l| l.ends_with(" 13 WARN: careful")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.ends_with(" 17 kvlist_value")),
        "{stdout}"
    );
}

//! `/metrics` parsed line by line as a Prometheus scraper would: every sample belongs
//! to a family announced by HELP and TYPE, every value is a number, label values are
//! escaped, and the counters follow the snapshot and the log counters.

mod api_support;
mod common;

use std::collections::{HashMap, HashSet};

use api_support::*;
use pidzero::api::{self, LogCounters};

#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// A small parser of the text format 0.0.4; panics on anything malformed.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut help = HashSet::new();
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    assert!(
        text.ends_with('\n'),
        "the last line must end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("HELP without text");
            assert!(!doc.is_empty());
            assert!(help.insert(name.to_owned()), "second HELP for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE without kind");
            assert!(["counter", "gauge"].contains(&kind), "{kind}");
            assert!(types.insert(name.to_owned(), kind.to_owned()).is_none());
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let sample = parse_sample(line);
            assert!(help.contains(&sample.name), "no HELP before {line:?}");
            assert!(types.contains_key(&sample.name), "no TYPE before {line:?}");
            if types[&sample.name] == "counter" {
                assert!(sample.name.ends_with("_total"), "{line}");
                assert!(sample.value >= 0.0);
            }
            samples.push(sample);
        }
    }
    samples
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .expect("no value");
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let (_, c) = chars.next().expect("unterminated labels");
            match c {
                '}' => break,
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'));
                    let mut value = String::new();
                    loop {
                        match chars.next().expect("unterminated label value").1 {
                            '"' => break,
                            '\\' => match chars.next().expect("dangling escape").1 {
                                'n' => value.push('\n'),
                                c @ ('\\' | '"') => value.push(c),
                                c => panic!("bad escape \\{c} in {line:?}"),
                            },
                            '\n' => panic!("raw newline in a label value"),
                            c => value.push(c),
                        }
                    }
                    labels.push((std::mem::take(&mut key), value));
                }
                c => key.push(c),
            }
        }
        let consumed = chars.next().map_or(inner.len(), |(i, _)| i);
        rest = &inner[consumed..];
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value in {line:?}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("value {value:?} is not a number in {line:?}"));
    Sample {
        name,
        labels,
        value,
    }
}

fn value(samples: &[Sample], name: &str, label: Option<(&str, &str)>) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && match label {
                    Some((k, v)) => s.labels == [(k.to_owned(), v.to_owned())],
                    None => s.labels.is_empty(),
                }
        })
        .unwrap_or_else(|| panic!("no {name} {label:?}"))
        .value
}

#[tokio::test]
async fn metrics_parse_and_follow_the_counters() {
    within(async {
        let dir = Dir::new("metrics");
        let socket = dir.p("api.sock");
        let mut logs = fake_logs();
        logs.counters = LogCounters {
            per_daemon: vec![
                ("web".into(), 5, 120),
                ("odd\"name\\with\nstuff".into(), 1, 2),
            ],
            sink_errors: vec![("stdout".into(), 0), ("file".into(), 4)],
        };
        let (fake, ctx) = FakeRuntime::start_with(None, logs, true);
        let _server = api::start(Some(socket.clone()), None, ctx).await.unwrap();

        let text = unix(&socket, "GET", "/metrics", "").await.body;
        let samples = parse_metrics(&text);
        let names: HashSet<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "pidzero_daemon_up",
            "pidzero_daemon_restarts_total",
            "pidzero_log_records_total",
            "pidzero_log_bytes_total",
            "pidzero_sink_errors_total",
            "pidzero_reaped_total",
        ] {
            assert!(names.contains(name), "{name} missing in\n{text}");
        }
        let web = Some(("daemon", "web"));
        assert_eq!(value(&samples, "pidzero_daemon_up", web), 1.0);
        assert_eq!(
            value(&samples, "pidzero_daemon_up", Some(("daemon", "worker"))),
            0.0
        );
        assert_eq!(value(&samples, "pidzero_daemon_restarts_total", web), 2.0);
        assert_eq!(value(&samples, "pidzero_log_records_total", web), 5.0);
        assert_eq!(value(&samples, "pidzero_log_bytes_total", web), 120.0);
        let odd = Some(("daemon", "odd\"name\\with\nstuff"));
        assert_eq!(value(&samples, "pidzero_log_records_total", odd), 1.0);
        assert_eq!(
            value(
                &samples,
                "pidzero_sink_errors_total",
                Some(("sink", "file"))
            ),
            4.0
        );
        assert_eq!(value(&samples, "pidzero_reaped_total", None), 3.0);

        // The counters move with what the runtime publishes.
        fake.snapshot.send_modify(|s| {
            s.daemons[0].restarts += 1;
            s.daemons[0].state = "backoff".into();
            s.reaped_total += 10;
        });
        let samples = parse_metrics(&unix(&socket, "GET", "/metrics", "").await.body);
        assert_eq!(value(&samples, "pidzero_daemon_restarts_total", web), 3.0);
        assert_eq!(value(&samples, "pidzero_daemon_up", web), 0.0);
        assert_eq!(value(&samples, "pidzero_reaped_total", None), 13.0);
    })
    .await;
}

#[test]
fn the_parser_rejects_what_it_should() {
    assert!(std::panic::catch_unwind(|| parse_sample("x{a=\"b\"} nope")).is_err());
    assert!(std::panic::catch_unwind(|| parse_metrics("x 1\n")).is_err());
    assert_eq!(
        parse_sample(r#"x{a="q\"\\"} 2"#),
        Sample {
            name: "x".into(),
            labels: vec![("a".into(), "q\"\\".into())],
            value: 2.0
        }
    );
}

//! `/metrics` parsed line by line as a Prometheus scraper would: every sample belongs
//! to a family announced by HELP and TYPE, every value is a number, label values are
//! escaped, and the counters follow the snapshot and the log counters.

mod api_support;
mod common;

use std::collections::HashSet;

use api_support::*;
use common::metrics::*;
use pidzero::api::{self, LogCounters};

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
        let samples = parse_metrics(&text).samples;
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
        let samples = parse_metrics(&unix(&socket, "GET", "/metrics", "").await.body).samples;
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

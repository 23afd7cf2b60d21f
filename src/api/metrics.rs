//! `GET /metrics` in the Prometheus text exposition format 0.0.4.

use std::fmt::Write;

use super::model::{JobInfo, Snapshot};
use super::state::LogCounters;
use crate::log::net::SinkCounts;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A job counter: its name, its help text, and how to read it.
type JobFamily = (&'static str, &'static str, fn(&JobInfo) -> u64);

/// Renders every metric family with its HELP and TYPE lines, even when it has no
/// samples yet, so dashboards and alerts can rely on the names.
///
/// `sinks`: the counters of every sink that has them, the writer's own
/// (`stdout` or `stderr`, `file`) and the network handlers. A sink's
/// errors come from `logs.sink_errors` when it is listed there, else from
/// `sinks`, so that no sink is sampled twice.
pub fn render(snapshot: &Snapshot, logs: &LogCounters, sinks: &[SinkCounts]) -> String {
    let mut out = String::with_capacity(256 + 160 * snapshot.daemons.len());
    family(
        &mut out,
        "pidzero_daemon_up",
        "gauge",
        "Whether the daemon is running (1) or not (0).",
    );
    for d in &snapshot.daemons {
        let up = u8::from(d.state == "running");
        sample(&mut out, "pidzero_daemon_up", "daemon", &d.name, up);
    }
    readiness(&mut out, snapshot);
    family(
        &mut out,
        "pidzero_daemon_restarts_total",
        "counter",
        "Times the daemon was restarted.",
    );
    for d in &snapshot.daemons {
        let name = "pidzero_daemon_restarts_total";
        sample(&mut out, name, "daemon", &d.name, d.restarts);
    }
    let jobs: Vec<_> = snapshot
        .daemons
        .iter()
        .filter_map(|d| d.job.as_ref().map(|job| (&d.name, job)))
        .collect();
    let job_families: [JobFamily; 3] = [
        ("pidzero_job_runs_total", "Runs of the job started.", |j| {
            j.runs
        }),
        (
            "pidzero_job_failures_total",
            "Runs of the job that ended with a non-zero status or a signal.",
            |j| j.failures,
        ),
        (
            "pidzero_job_skipped_total",
            "Due runs of the job not started because the previous run was still going.",
            |j| j.skipped,
        ),
    ];
    for (name, help, value) in job_families {
        family(&mut out, name, "counter", help);
        for (daemon, job) in &jobs {
            sample(&mut out, name, "daemon", daemon, value(job));
        }
    }
    family(
        &mut out,
        "pidzero_log_records_total",
        "counter",
        "Log records written for the daemon's output.",
    );
    for (daemon, records, _) in &logs.per_daemon {
        sample(
            &mut out,
            "pidzero_log_records_total",
            "daemon",
            daemon,
            records,
        );
    }
    family(
        &mut out,
        "pidzero_log_bytes_total",
        "counter",
        "Bytes of daemon output read into log records.",
    );
    for (daemon, _, bytes) in &logs.per_daemon {
        sample(&mut out, "pidzero_log_bytes_total", "daemon", daemon, bytes);
    }
    family(
        &mut out,
        "pidzero_sink_errors_total",
        "counter",
        "Write errors of a log sink.",
    );
    for (sink, errors) in &logs.sink_errors {
        sample(&mut out, "pidzero_sink_errors_total", "sink", sink, errors);
    }
    for s in sinks
        .iter()
        .filter(|s| !logs.sink_errors.iter().any(|(name, _)| name == s.sink))
    {
        sample(
            &mut out,
            "pidzero_sink_errors_total",
            "sink",
            s.sink,
            s.errors,
        );
    }
    sink_families(&mut out, sinks);
    family(
        &mut out,
        "pidzero_reaped_total",
        "counter",
        "Orphaned processes reaped by pidzero.",
    );
    let _ = writeln!(out, "pidzero_reaped_total {}", snapshot.reaped_total);
    out
}

/// The per-sink families (samples for the sinks that are on).
fn sink_families(out: &mut String, sinks: &[SinkCounts]) {
    type Pick = fn(&SinkCounts) -> u64;
    let families: [(&str, &str, &str, Pick); 3] = [
        (
            "pidzero_log_written_total",
            "counter",
            "Log records a sink wrote (stdout, file) or sent (network sinks).",
            |s| s.written,
        ),
        (
            "pidzero_log_dropped_total",
            "counter",
            "Log records a sink lost: failed writes of stdout or the file (disk full, closed stdout, given up at exit); for a network sink also a full queue while its receiver was away or slow.",
            |s| s.dropped,
        ),
        (
            "pidzero_log_queued_records",
            "gauge",
            "Log records sent towards a sink and not yet written or dropped (for stdout and the file: queued for the writer thread or in the round it is writing).",
            |s| s.queued,
        ),
    ];
    for (name, kind, help, pick) in families {
        family(out, name, kind, help);
        for s in sinks {
            sample(out, name, "sink", s.sink, pick(s));
        }
    }
}

/// `pidzero_daemon_ready` for every daemon, and how long the running
/// instance took to become ready for those that did.
fn readiness(out: &mut String, snapshot: &Snapshot) {
    family(
        out,
        "pidzero_daemon_ready",
        "gauge",
        "Whether the daemon is ready (1) or not (0), as its `ready` setting defines it.",
    );
    for d in &snapshot.daemons {
        let ready = u8::from(d.readiness.ready);
        sample(out, "pidzero_daemon_ready", "daemon", &d.name, ready);
    }
    family(
        out,
        "pidzero_daemon_ready_seconds",
        "gauge",
        "Seconds from the start of the running instance to its readiness.",
    );
    for d in &snapshot.daemons {
        if let Some(ms) = d.readiness.ready_after_ms {
            let name = "pidzero_daemon_ready_seconds";
            sample(out, name, "daemon", &d.name, ms as f64 / 1000.0);
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, label: &str, value: &str, n: impl std::fmt::Display) {
    let _ = write!(out, "{name}{{{label}=\"");
    escape_label(out, value);
    let _ = writeln!(out, "\"}} {n}");
}

/// Label values escape backslash, double quote and line feed.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::DaemonInfo;

    fn daemon(name: &str, state: &str, restarts: u32) -> DaemonInfo {
        DaemonInfo {
            name: name.into(),
            vital: false,
            state: state.into(),
            pid: None,
            started_at: None,
            uptime_seconds: None,
            restarts,
            health: None,
            last_exit: None,
            job: None,
            command: vec![],
            readiness: Default::default(),
        }
    }

    #[test]
    fn renders_every_family() {
        let snapshot = Snapshot {
            daemons: vec![daemon("web", "running", 0), daemon("cron", "backoff", 4)],
            shutting_down: false,
            reaped_total: 7,
        };
        let logs = LogCounters {
            per_daemon: vec![("web".into(), 10, 420)],
            sink_errors: vec![("file".into(), 2)],
        };
        let net = [
            SinkCounts {
                sink: "file",
                written: 12,
                dropped: 4,
                errors: 2,
                queued: 6,
            },
            SinkCounts {
                sink: "forward",
                written: 5,
                dropped: 3,
                errors: 1,
                queued: 9,
            },
        ];
        let text = render(&snapshot, &logs, &net);
        for line in [
            "# TYPE pidzero_daemon_up gauge",
            "pidzero_daemon_up{daemon=\"web\"} 1",
            "pidzero_daemon_up{daemon=\"cron\"} 0",
            "# TYPE pidzero_daemon_restarts_total counter",
            "pidzero_daemon_restarts_total{daemon=\"cron\"} 4",
            "pidzero_log_records_total{daemon=\"web\"} 10",
            "pidzero_log_bytes_total{daemon=\"web\"} 420",
            "pidzero_sink_errors_total{sink=\"file\"} 2",
            "pidzero_sink_errors_total{sink=\"forward\"} 1",
            "# TYPE pidzero_log_dropped_total counter",
            "pidzero_log_written_total{sink=\"forward\"} 5",
            "pidzero_log_dropped_total{sink=\"forward\"} 3",
            "# TYPE pidzero_log_queued_records gauge",
            "pidzero_log_queued_records{sink=\"forward\"} 9",
            "pidzero_log_written_total{sink=\"file\"} 12",
            "pidzero_log_dropped_total{sink=\"file\"} 4",
            "pidzero_log_queued_records{sink=\"file\"} 6",
            "# HELP pidzero_reaped_total Orphaned processes reaped by pidzero.",
            "pidzero_reaped_total 7",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
        let errors = text
            .lines()
            .filter(|l| l.starts_with("pidzero_sink_errors_total{sink=\"file\"}"))
            .count();
        assert_eq!(errors, 1, "one sample per sink:\n{text}");
    }

    #[test]
    fn readiness_and_time_to_ready() {
        let mut web = daemon("web", "running", 0);
        web.readiness.ready = true;
        web.readiness.ready_after_ms = Some(1500);
        let snapshot = Snapshot {
            daemons: vec![web, daemon("db", "running", 0)],
            ..Snapshot::default()
        };
        let logs = LogCounters {
            per_daemon: vec![],
            sink_errors: vec![],
        };
        let text = render(&snapshot, &logs, &[]);
        for line in [
            "# TYPE pidzero_daemon_ready gauge",
            "pidzero_daemon_ready{daemon=\"web\"} 1",
            "pidzero_daemon_ready{daemon=\"db\"} 0",
            "# TYPE pidzero_daemon_ready_seconds gauge",
            "pidzero_daemon_ready_seconds{daemon=\"web\"} 1.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(!text.contains("pidzero_daemon_ready_seconds{daemon=\"db\"}"));
    }

    #[test]
    fn escapes_label_values() {
        let mut out = String::new();
        escape_label(&mut out, "a\\b\"c\nd");
        assert_eq!(out, r#"a\\b\"c\nd"#);
    }
}

//! `schedule`, `timezone` and `overlap` in `daemons.json`, and the fields a
//! job cannot have.

use std::path::Path;

use super::daemons::parse;
use super::schedule::{Cadence, Overlap};
use super::{ConfigError, DaemonSpec};

fn parse_ok(text: &str) -> Vec<DaemonSpec> {
    match parse(Path::new("daemons.json"), text, false) {
        Ok(specs) => specs,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(Path::new("daemons.json"), text, false) {
        Ok(specs) => panic!("expected errors, parsed {specs:#?}"),
        Err(errors) => errors,
    }
}

/// The only error of `text`: its field and message.
fn only_error(text: &str) -> (Option<String>, String) {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "{all:#?}");
    let e = all.remove(0);
    (e.field, e.message)
}

#[test]
fn a_job_with_every_field() {
    let specs = parse_ok(
        r#"[{"name": "backup", "command": "backup.sh", "schedule": "30 2 * * *",
             "timezone": "Europe/Paris", "overlap": "queue", "vital": true}]"#,
    );
    let job = specs[0].job.clone().expect("a job");
    assert_eq!(job.schedule, "30 2 * * *");
    assert_eq!(job.timezone, "Europe/Paris");
    assert_eq!(job.overlap, Overlap::Queue);
    assert!(matches!(job.cadence, Cadence::Cron(_)));
}

#[test]
fn defaults_utc_and_skip() {
    let specs = parse_ok(r#"[{"name": "t", "command": "x", "schedule": "@every 15m"}]"#);
    let job = specs[0].job.clone().expect("a job");
    assert_eq!((job.timezone.as_str(), job.overlap), ("UTC", Overlap::Skip));
    assert!(parse_ok(r#"[{"name": "d", "command": "x"}]"#)[0]
        .job
        .is_none());
}

#[test]
fn each_problem_names_its_field() {
    let cases = [
        (r#"{"schedule": "every day"}"#, "schedule", "5 cron fields"),
        (r#"{"schedule": ""}"#, "schedule", ""),
        (r#"{"schedule": 5}"#, "schedule", ""),
        (
            r#"{"schedule": "@hourly", "overlap": "parallel"}"#,
            "overlap",
            "",
        ),
        (
            r#"{"schedule": "@hourly", "timezone": "Mars/Olympus"}"#,
            "timezone",
            "unknown time zone",
        ),
        (
            r#"{"schedule": "@every 1m", "timezone": "Europe/Paris"}"#,
            "timezone",
            "@every",
        ),
        (r#"{"timezone": "UTC"}"#, "timezone", "add `schedule`"),
        (r#"{"overlap": "skip"}"#, "overlap", "add `schedule`"),
        (
            r#"{"schedule": "@hourly", "restart": "always"}"#,
            "restart",
            "not restarted",
        ),
        (
            r#"{"schedule": "@hourly", "restart_delay": 2}"#,
            "restart_delay",
            "not restarted",
        ),
        (
            r#"{"schedule": "@hourly", "max_restarts": 2}"#,
            "max_restarts",
            "not restarted",
        ),
        (
            r#"{"schedule": "@hourly", "health": {"tcp": "127.0.0.1:1"}}"#,
            "health",
            "no steady process",
        ),
        (r#"{"cron": "@hourly"}"#, "cron", "schedule"),
    ];
    for (extra, field, needle) in cases {
        let text = format!(
            r#"[{{"name": "j", "command": "x", {}}}]"#,
            &extra[1..extra.len() - 1]
        );
        let (got_field, message) = only_error(&text);
        assert_eq!(got_field.as_deref(), Some(field), "{extra}: {message}");
        assert!(message.contains(needle), "{extra}: {message}");
    }
}

#[test]
fn nothing_can_depend_on_a_job() {
    let all = errors(
        r#"[{"name": "migrate", "command": "x", "schedule": "@daily"},
            {"name": "web", "command": "y", "depends_on": ["migrate"]}]"#,
    );
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].daemon.as_deref(), Some("web"));
    assert_eq!(all[0].field.as_deref(), Some("depends_on"));
    assert!(
        all[0].message.contains("`migrate` is a job"),
        "{}",
        all[0].message
    );
    // A job may depend on a daemon.
    parse_ok(
        r#"[{"name": "db", "command": "x"},
            {"name": "report", "command": "y", "schedule": "@daily", "depends_on": ["db"]}]"#,
    );
}

#[test]
fn a_date_that_never_comes_is_refused() {
    let (field, message) =
        only_error(r#"[{"name": "never", "command": "true", "schedule": "0 0 31 2 *"}]"#);
    assert_eq!(field.as_deref(), Some("schedule"));
    assert!(message.contains("never due"), "{message}");
}

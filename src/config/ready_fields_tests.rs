//! `ready`, `ready_timeout` and `watchdog` in `daemons.json`.

use std::path::Path;
use std::time::Duration;

use super::daemons::parse;
use super::ready::ReadyMode;
use super::{ConfigError, DaemonSpec};

fn parse_ok(text: &str) -> Vec<DaemonSpec> {
    match parse(Path::new("daemons.json"), text, false) {
        Ok(specs) => specs,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

/// The only error of `text`: its daemon, field and message.
fn only_error(text: &str) -> (Option<String>, Option<String>, String) {
    let mut all: Vec<ConfigError> = match parse(Path::new("daemons.json"), text, false) {
        Ok(specs) => panic!("expected an error, parsed {specs:#?}"),
        Err(errors) => errors,
    };
    assert_eq!(all.len(), 1, "{all:#?}");
    let e = all.remove(0);
    (e.daemon, e.field, e.message)
}

#[test]
fn every_form_of_ready() {
    let specs = parse_ok(
        r#"[{"name": "a", "command": "x", "ready": "started"},
            {"name": "b", "command": "x", "ready": "health", "health": {"tcp": "127.0.0.1:1"},
             "ready_timeout": 30},
            {"name": "c", "command": "x", "ready": {"notify": "systemd"}, "ready_timeout": 2.5,
             "watchdog": 10},
            {"name": "d", "command": "x", "ready": {"notify": "fd"}},
            {"name": "e", "command": "x", "ready": {"notify": "fd", "fd": 5}},
            {"name": "f", "command": "x"}]"#,
    );
    let modes: Vec<_> = specs.iter().map(|s| s.ready).collect();
    assert_eq!(
        modes,
        vec![
            Some(ReadyMode::Started),
            Some(ReadyMode::Health),
            Some(ReadyMode::Systemd),
            Some(ReadyMode::Fd(3)),
            Some(ReadyMode::Fd(5)),
            None,
        ]
    );
    assert_eq!(specs[1].ready_timeout, Some(Duration::from_secs(30)));
    assert_eq!(specs[2].ready_timeout, Some(Duration::from_millis(2500)));
    assert_eq!(specs[2].watchdog, Some(Duration::from_secs(10)));
}

#[test]
fn the_default_is_health_with_a_check_else_started() {
    assert_eq!(ReadyMode::default_for(true), ReadyMode::Health);
    assert_eq!(ReadyMode::default_for(false), ReadyMode::Started);
    // So a ready_timeout works with a check and no `ready`.
    let specs = parse_ok(
        r#"[{"name": "a", "command": "x", "health": {"tcp": "127.0.0.1:1"}, "ready_timeout": 5}]"#,
    );
    assert_eq!(specs[0].ready, None);
}

#[test]
fn health_readiness_needs_a_health_check() {
    let (daemon, field, message) =
        only_error(r#"[{"name": "a", "command": "x", "ready": "health"}]"#);
    assert_eq!(daemon.as_deref(), Some("a"));
    assert_eq!(field.as_deref(), Some("ready"));
    assert!(message.contains("needs a `health` check"), "{message}");
}

#[test]
fn bad_ready_values() {
    let cases = [
        (r#""notified""#, "ready", "found \"notified\""),
        ("true", "ready", "found a boolean"),
        (
            r#"{"notify": "dbus"}"#,
            "ready.notify",
            "expected \"systemd\" or \"fd\"",
        ),
        (r#"{"fd": 3}"#, "ready.notify", "missing"),
        (
            r#"{"notify": "fd", "fd": 1}"#,
            "ready.fd",
            "must be 3 or more",
        ),
        (r#"{"notify": "fd", "fd": 9999}"#, "ready.fd", "255"),
        (
            r#"{"notify": "systemd", "fd": 3}"#,
            "ready.fd",
            "applies only to",
        ),
        (
            r#"{"notify": "systemd", "sockett": "x"}"#,
            "ready.sockett",
            "unknown field",
        ),
    ];
    for (value, want_field, want) in cases {
        let text = format!(r#"[{{"name": "a", "command": "x", "ready": {value}}}]"#);
        let (_, field, message) = only_error(&text);
        assert_eq!(field.as_deref(), Some(want_field), "{value}: {message}");
        assert!(message.contains(want), "{value}: {message}");
    }
}

#[test]
fn ready_timeout_needs_something_to_wait_for() {
    let (_, field, message) = only_error(r#"[{"name": "a", "command": "x", "ready_timeout": 5}]"#);
    assert_eq!(field.as_deref(), Some("ready_timeout"));
    assert!(message.contains("ready once started"), "{message}");
    let (_, field, message) = only_error(
        r#"[{"name": "a", "command": "x", "ready": {"notify": "systemd"}, "ready_timeout": 0}]"#,
    );
    assert_eq!(field.as_deref(), Some("ready_timeout"));
    assert!(message.contains("greater than 0"), "{message}");
}

#[test]
fn watchdog_needs_systemd_notify() {
    for ready in [r#""started""#, r#"{"notify": "fd"}"#] {
        let text = format!(r#"[{{"name": "a", "command": "x", "ready": {ready}, "watchdog": 5}}]"#);
        let (_, field, message) = only_error(&text);
        assert_eq!(field.as_deref(), Some("watchdog"));
        assert!(message.contains(r#"{"notify": "systemd"}"#), "{message}");
    }
    let (_, field, message) = only_error(
        r#"[{"name": "a", "command": "x", "ready": {"notify": "systemd"}, "watchdog": 0.01}]"#,
    );
    assert_eq!(field.as_deref(), Some("watchdog"));
    assert!(message.contains("at least 0.1 s"), "{message}");
}

#[test]
fn a_bad_ready_is_one_message_not_three() {
    let (_, field, _) = only_error(
        r#"[{"name": "a", "command": "x", "ready": "soon", "ready_timeout": 5, "watchdog": 5}]"#,
    );
    assert_eq!(field.as_deref(), Some("ready"));
}

#[test]
fn jobs_refuse_readiness() {
    for field in [
        r#""ready": {"notify": "systemd"}"#,
        r#""ready_timeout": 5"#,
        r#""watchdog": 5"#,
    ] {
        let text =
            format!(r#"[{{"name": "j", "command": "x", "schedule": "@every 1m", {field}}}]"#);
        let all = match parse(Path::new("daemons.json"), &text, false) {
            Ok(_) => panic!("{field} accepted on a job"),
            Err(errors) => errors,
        };
        assert!(
            all.iter()
                .any(|e| e.message.contains("cannot be used with `schedule`")),
            "{field}: {all:#?}"
        );
    }
}

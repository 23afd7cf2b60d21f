//! §1 Invocation: where the configuration is found, options, env vars, `check`.

mod common;

use common::*;
use std::fs;

/// A daemons.json with one vital daemon that prints `text` and exits with 3.
fn one_shot(text: &str) -> String {
    format!(
        r#"[{{"name": "one", "vital": true, "command": ["/bin/sh", "-c", "echo {text}; exit 3"]}}]"#
    )
}

#[test]
fn finds_config_next_to_its_executable() {
    let d = Dir::new("nextto");
    let exe = d.p("pidzero");
    fs::copy(bin(), &exe).unwrap();
    d.daemons(&one_shot("next-to-exe"));
    d.config(r#"{"log": {"json": false}}"#);
    let elsewhere = Dir::new("cwd");
    let f = pz().program(&exe).cwd(&elsewhere.path).run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    let out = f.stdout_text();
    // config.json next to the executable was read too: map format.
    assert!(
        out.lines()
            .any(|l| l.starts_with("{timestamp => ") && l.contains("line => next-to-exe")),
        "expected a map record with the daemon's line\n{}",
        f.dump()
    );
}

#[test]
fn config_dir_option() {
    let d = Dir::new("cfgdir");
    d.daemons(&one_shot("via-config-dir"));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "one", "via-config-dir")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn daemons_and_config_options() {
    let d = Dir::new("files");
    let daemons = d.write("sub/my-daemons.json", &one_shot("via-daemons-option"));
    let config = d.write("other/my-config.json", r#"{"log": {"json": false}}"#);
    // A decoy config dir whose files must not be used.
    let decoy = Dir::new("decoy");
    decoy.daemons(&one_shot("decoy"));
    let f = pz()
        .config_dir(&decoy)
        .arg("--daemons")
        .arg(path_str(&daemons))
        .arg("--config")
        .arg(path_str(&config))
        .run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    let out = f.stdout_text();
    assert!(out.contains("line => via-daemons-option"), "{}", f.dump());
    assert!(!out.contains("decoy"), "{}", f.dump());
}

#[test]
fn environment_variables() {
    let d = Dir::new("envdir");
    d.daemons(&one_shot("via-env-dir"));
    let f = pz()
        .env("PIDZERO_CONFIG_DIR", path_str(&d.path))
        .run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "one", "via-env-dir")).is_some(),
        "{}",
        f.dump()
    );

    let e = Dir::new("envfiles");
    let daemons = e.write("x.json", &one_shot("via-env-files"));
    let config = e.write("y.json", r#"{"log": {"json": false}}"#);
    let f = pz()
        .env("PIDZERO_DAEMONS", path_str(&daemons))
        .env("PIDZERO_CONFIG", path_str(&config))
        .run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        f.stdout_text().contains("line => via-env-files"),
        "{}",
        f.dump()
    );
}

#[test]
fn log_format_env_overrides_config() {
    let d = Dir::new("fmtenv");
    d.daemons(&one_shot("fmt"));
    d.config(r#"{"log": {"json": true}}"#);
    let f = pz()
        .config_dir(&d)
        .env("PIDZERO_LOG_FORMAT", "map")
        .run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        f.stdout_text()
            .lines()
            .any(|l| l.starts_with("{timestamp => ") && l.contains("line => fmt")),
        "{}",
        f.dump()
    );
}

#[test]
fn bad_log_format_in_the_environment_is_a_usage_error() {
    let d = Dir::new("fmtbad");
    d.daemons(&one_shot("fmt"));
    let f = pz()
        .config_dir(&d)
        .env("PIDZERO_LOG_FORMAT", "xml")
        .run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(f.stderr.contains("PIDZERO_LOG_FORMAT"), "{}", f.dump());
    assert!(f.stderr.contains("xml"), "{}", f.dump());
    assert!(f.stdout.is_empty(), "nothing may start: {}", f.dump());
}

#[test]
fn options_win_over_environment() {
    let d = Dir::new("optwin");
    d.daemons(&one_shot("from-option"));
    let e = Dir::new("envlose");
    e.daemons(&one_shot("from-env"));
    let f = pz()
        .config_dir(&d)
        .env("PIDZERO_CONFIG_DIR", path_str(&e.path))
        .run(DEADLINE);
    assert_eq!(f.status(), 3, "{}", f.dump());
    assert!(
        f.find(|r| is_line(r, "one", "from-option")).is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn help_and_version() {
    let f = pz().arg("--help").run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let help = f.stdout_text();
    for word in ["--config-dir", "--daemons", "--config", "check"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let f = pz().arg("--version").run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(
        f.stdout_text().contains(env!("CARGO_PKG_VERSION")),
        "{}",
        f.dump()
    );
}

#[test]
fn unknown_option_is_a_usage_error() {
    let d = Dir::new("badopt");
    d.daemons(&one_shot("never"));
    let f = pz().config_dir(&d).arg("--no-such-option").run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(!f.stdout_text().contains("never"), "{}", f.dump());
}

#[test]
fn missing_daemons_json_is_an_error() {
    let d = Dir::new("nodaemons");
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert!(f.stderr.contains("daemons.json"), "{}", f.dump());
}

#[test]
fn check_reports_every_problem() {
    let d = Dir::new("checkbad");
    let marker = d.s("started");
    // Problems on lines 3, 4 and 6; the valid daemon on line 2 must not run.
    d.daemons(&format!(
        r#"[
  {{"name": "ok", "command": ["/bin/touch", {m}]}},
  {{"name": "a", "command": "true", "vitall": true}},
  {{"name": "b", "command": "true", "vital": "yes"}},
  {{"name": "c", "command": "true",
    "environment": ["NO_EQUALS_SIGN"]}}
]
"#,
        m = js(&marker)
    ));
    let f = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert_config_error(
        &f.stderr,
        "daemons.json",
        Some(3),
        Some("a"),
        Some("vitall"),
    );
    assert_config_error(&f.stderr, "daemons.json", Some(4), Some("b"), Some("vital"));
    assert_config_error(
        &f.stderr,
        "daemons.json",
        Some(6),
        Some("c"),
        Some("environment"),
    );
    assert!(!d.exists("started"), "check started a daemon");
}

#[test]
fn check_reports_problems_in_both_files() {
    let d = Dir::new("checkboth");
    d.daemons(
        r#"[
  {"name": "a", "command": "true", "vitall": true}
]"#,
    );
    d.config(
        r#"{
  "log": {"jsn": true}
}"#,
    );
    let f = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 2, "{}", f.dump());
    assert_config_error(
        &f.stderr,
        "daemons.json",
        Some(2),
        Some("a"),
        Some("vitall"),
    );
    assert!(
        f.stderr
            .lines()
            .any(|l| l.contains("config.json:2:") && l.contains("jsn")),
        "expected config.json:2:COL … jsn\n{}",
        f.dump()
    );
}

#[test]
fn check_ok() {
    let d = Dir::new("checkok");
    d.daemons(&format!(
        r#"[{{"name": "ok", "vital": true, "command": ["/bin/touch", {}],
             "environment": {{"A": "1"}}}}]"#,
        js(d.s("started"))
    ));
    d.config(r#"{"log": {"json": true}, "shutdown_timeout": 3}"#);
    let f = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(!d.exists("started"), "check started a daemon");
}

#[test]
fn check_without_config_json_uses_defaults() {
    let d = Dir::new("checknocfg");
    d.daemons(r#"[{"name": "ok", "command": "true"}]"#);
    let f = pz().arg("check").config_dir(&d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
}

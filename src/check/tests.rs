//! `check` as a whole on real files, with a fake filesystem for the paths
//! it probes (log file, socket, TCP address).

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::paths::tests::FakeFs;
use super::*;
use crate::test_support::Dir;

struct Case {
    dir: Dir,
    socket_option: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl Case {
    fn new(tag: &str, daemons: &str, config: Option<&str>) -> Case {
        let dir = Dir::new(tag);
        dir.write("daemons.json", daemons);
        if let Some(config) = config {
            dir.write("config.json", config);
        }
        Case {
            dir,
            socket_option: None,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        }
    }

    fn run(&self, fs: &FakeFs) -> Report {
        let daemons = self.dir.p("daemons.json");
        let config = self.dir.p("config.json");
        let inputs = Inputs {
            daemons_file: &daemons,
            config_file: &config,
            config_dir: &self.dir.path,
            format_override: None,
            socket_option: self.socket_option.as_deref(),
            default_socket: Path::new("/run/pidzero.sock"),
            base_env: &self.env,
            etc_dir: &self.dir.path,
        };
        run(&inputs, fs)
    }
}

fn run_dir() -> FakeFs {
    FakeFs::default().with("/run", Entry::Dir { writable: true })
}

fn summary(report: &Report) -> Vec<(Severity, Option<&str>, Option<usize>, String)> {
    report
        .problems
        .iter()
        .map(|p| (p.severity, p.field.as_deref(), p.line, p.message.clone()))
        .collect()
}

#[test]
fn clean_config_has_nothing_to_say() {
    let case = Case::new(
        "clean",
        r#"[{"name": "a", "command": "true"}]"#,
        Some(r#"{"shutdown_timeout": 3}"#),
    );
    let report = case.run(&run_dir());
    assert_eq!(summary(&report), []);
    assert_eq!(report.daemons_ok, 1);
    let shown = human(&report);
    assert_eq!(
        shown.stdout,
        format!(
            "{}: 1 daemon(s) OK; {}: OK\n",
            case.dir.p("daemons.json").display(),
            case.dir.p("config.json").display()
        )
    );
    assert_eq!(json(&report.problems).unwrap(), "[]\n");
}

#[test]
fn missing_config_is_a_note_not_an_ok() {
    let case = Case::new("noconfig", r#"[{"name": "a", "command": "true"}]"#, None);
    let report = case.run(&run_dir());
    assert_eq!(report.errors(), 0);
    let shown = human(&report).stdout;
    let config = case.dir.p("config.json");
    assert!(
        shown.ends_with(&format!(
            "1 daemon(s) OK\nnote: {}: not found: defaults used\n",
            config.display()
        )),
        "{shown}"
    );
    assert!(!shown.contains("OK;"), "{shown}");
}

#[test]
fn filesystem_problems_point_at_their_keys() {
    let case = Case::new(
        "fsprobs",
        r#"[{"name": "a", "command": "true"}]"#,
        Some(
            "{\"log\": {\"log_to_file\": true,\n  \"file_path\": \"/nope/p.log\"},\n \
             \"api\": {\"socket\": \"/ro/p.sock\", \"listen\": \"127.0.0.1:1\"}}",
        ),
    );
    let mut fs = run_dir().with("/ro", Entry::Dir { writable: false });
    fs.listen_error = Some((ErrorKind::AddrNotAvailable, "no".into()));
    let report = case.run(&fs);
    let found = summary(&report);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert_eq!(
        found[0],
        (
            Severity::Error,
            Some("log.file_path"),
            Some(2),
            "cannot open the log file /nope/p.log: directory /nope does not exist; \
             a run refuses to start"
                .to_owned()
        )
    );
    assert_eq!(
        found[1],
        (
            Severity::Error,
            Some("api.socket"),
            Some(3),
            "cannot listen on /ro/p.sock: directory /ro is not writable; a run refuses to start"
                .to_owned()
        )
    );
    assert_eq!(found[2].1, Some("api.listen"));
    assert!(human(&report)
        .stderr
        .ends_with("pidzero: 3 problem(s) found\n"));
}

#[test]
fn socket_choice_follows_the_run() {
    let daemons = r#"[{"name": "a", "command": "true"}]"#;
    // The default socket's directory is missing: only a warning.
    let case = Case::new("sockdefault", daemons, Some("{}"));
    let report = case.run(&FakeFs::default());
    assert_eq!(report.errors(), 0);
    assert_eq!(report.problems[0].severity, Severity::Warning);
    assert!(human(&report)
        .stdout
        .contains("warning: the default control socket"));
    // Off: nothing to check.
    let case = Case::new("sockoff", daemons, Some(r#"{"api": {"socket": null}}"#));
    assert_eq!(summary(&case.run(&FakeFs::default())), []);
    // --socket wins over api.socket, and is an error.
    let mut case = Case::new("sockopt", daemons, Some(r#"{"api": {"socket": "/run/x"}}"#));
    case.socket_option = Some(PathBuf::from("/nowhere/p.sock"));
    let report = case.run(&run_dir());
    assert_eq!(report.errors(), 1);
    assert_eq!(report.problems[0].file.as_deref(), Some("--socket"));
}

#[test]
fn file_plan_and_filesystem_problems_come_together() {
    let case = Case::new(
        "together",
        r#"[
  {"name": "a", "command": "no-such-program-pz", "vitall": true},
  {"name": "b", "command": "no-such-program-pz"},
  {"name": "c", "command": "true", "depends_on": ["zz"]}
]"#,
        Some(r#"{"log": {"log_to_file": true}}"#),
    );
    let dir = case.dir.path.to_str().unwrap();
    let report = case.run(&run_dir().with(dir, Entry::Dir { writable: true }));
    let fields: Vec<_> = report
        .problems
        .iter()
        .map(|p| (p.daemon.as_deref(), p.field.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            (Some("a"), Some("vitall")),
            (Some("b"), Some("command")),
            (Some("c"), Some("depends_on")),
        ]
    );
    // The log file in the (writable) config dir is fine.
    assert_eq!(report.errors(), 3);
}

#[test]
fn restart_delay_notes_name_their_daemon_once() {
    let case = Case::new(
        "notes",
        r#"[{"name": "a", "command": "true", "restart": "always", "restart_delay": 0.01}]"#,
        Some("{}"),
    );
    let report = case.run(&run_dir());
    assert_eq!(report.errors(), 0);
    let note = &report.problems[0];
    assert_eq!(note.severity, Severity::Note);
    assert_eq!(note.daemon.as_deref(), Some("a"));
    assert!(!note.message.starts_with("daemon a:"), "{}", note.message);
}

#[test]
fn stderr_holds_only_the_errors() {
    let case = Case::new(
        "streams",
        r#"[{"name": "a", "command": "no-such-program-pz", "restart": "always", "restart_delay": 0.01}]"#,
        None,
    );
    let report = case.run(&FakeFs::default());
    let shown = human(&report);
    let err: Vec<&str> = shown.stderr.lines().collect();
    assert_eq!(err.len(), 2, "{}", shown.stderr);
    assert!(
        err[0].contains("daemons.json:1:27: daemon a: field command:"),
        "{}",
        err[0]
    );
    assert_eq!(err[1], "pidzero: 1 problem(s) found");
    let out: Vec<&str> = shown.stdout.lines().collect();
    assert_eq!(out.len(), 3, "{}", shown.stdout);
    assert!(
        out[0].starts_with("warning: the default control socket"),
        "{}",
        out[0]
    );
    assert!(
        out[1].starts_with("note: ") && out[1].ends_with("config.json: not found: defaults used")
    );
    assert!(out[2].starts_with("note: ") && out[2].contains("field restart_delay:"));
}

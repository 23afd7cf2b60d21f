//! Tests of `build` and `add_main_command` as a whole.

use super::preflight::tests::write_file;
use super::*;
use crate::config::{LogFormat, LogSettings, RestartPolicy};
use crate::test_support::Dir;
use std::ffi::OsStr;
use std::fs;

fn settings() -> Settings {
    Settings {
        log: LogSettings {
            format: LogFormat::Json,
            format_chosen: false,
            file_path: PathBuf::from("pidzero.log"),
            log_to_file: false,
            log_to_stdout: true,
            max_file_size: 10 << 20,
            max_files: 5,
            compress: false,
            max_line_bytes: 16384,
            net: Default::default(),
        },
        api: Default::default(),
        shutdown_timeout: Duration::from_secs(10),
        positions: Vec::new(),
    }
}

fn spec(name: &str, command: &str) -> DaemonSpec {
    DaemonSpec {
        name: name.to_owned(),
        command: CommandSpec::Line(command.to_owned()),
        vital: false,
        environment: Vec::new(),
        restart: RestartPolicy::Never,
        restart_delay: Duration::from_secs(1),
        max_restarts: None,
        working_dir: None,
        user: None,
        stop_signal: libc::SIGTERM,
        stop_timeout: None,
        output: OutputMode::Log,
        depends_on: Vec::new(),
        health: None,
        job: None,
        ready: None,
        ready_timeout: None,
        watchdog: None,
        position: Position { line: 2, column: 3 },
        parse: Default::default(),
        sinks: None,
        field_positions: Vec::new(),
    }
}

fn depending(name: &str, deps: &[&str]) -> DaemonSpec {
    DaemonSpec {
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        ..spec(name, "true")
    }
}

fn os_env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

/// A config dir with `daemons.json` (not read) and an etc dir with passwd/group;
/// the directory lives as long as the returned `Dir`.
fn setup(tag: &str) -> (Dir, PathBuf, PathBuf) {
    let root = Dir::new(tag);
    let etc = root.p("etc");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(
        etc.join("group"),
        "root:x:0:\napp:x:1000:\nwheel:x:10:app\n",
    )
    .unwrap();
    let file = root.p("daemons.json");
    (root, file, etc)
}

fn build_ok(specs: &[DaemonSpec], base_env: &[(OsString, OsString)], tag: &str) -> Plan {
    let (_dir, file, etc) = setup(tag);
    build(specs, &settings(), &file, base_env, &etc).unwrap()
}

fn build_err(specs: &[DaemonSpec], tag: &str) -> (PathBuf, Vec<ConfigError>) {
    let (_dir, file, etc) = setup(tag);
    let errors = build(specs, &settings(), &file, &[], &etc).unwrap_err();
    (file, errors)
}

#[test]
fn resolves_command_program_and_timeouts() {
    let mut web = spec("web", "sh -c 'exit 0'");
    web.stop_timeout = Some(Duration::from_secs(3));
    let shell = spec("shell", "echo $HOME");
    let plan = build_ok(
        &[web, shell],
        &os_env(&[("PATH", "/usr/bin:/bin")]),
        "basic",
    );
    let [web, shell] = &plan.daemons[..] else {
        panic!("two daemons expected")
    };
    assert_eq!(web.launch.argv, vec!["sh", "-c", "exit 0"]);
    assert_eq!(web.rules.preflight_failure, None);
    assert!(web.launch.program.ends_with("sh") && web.launch.program.is_absolute());
    assert_eq!(web.rules.stop_timeout, Duration::from_secs(3));
    assert_eq!(shell.launch.argv, vec!["/bin/sh", "-c", "echo $HOME"]);
    assert_eq!(shell.launch.program, PathBuf::from("/bin/sh"));
    assert_eq!(shell.rules.stop_timeout, Duration::from_secs(10));
    assert!(!web.launch.inherit_stdin);
    assert_eq!(plan.start_order, vec![0, 1]);
}

#[test]
fn preflight_failure_is_recorded_not_an_error() {
    let plan = build_ok(
        &[spec("ghost", "no-such-program-here")],
        &os_env(&[("PATH", "/nonexistent")]),
        "pre",
    );
    assert_eq!(
        plan.daemons[0]
            .rules
            .preflight_failure
            .as_ref()
            .map(|(status, _)| *status),
        Some(127)
    );
}

#[test]
fn daemon_path_is_used_for_lookup() {
    let (_dir, file, etc) = setup("path");
    let bin = file.parent().unwrap().join("bin");
    fs::create_dir_all(&bin).unwrap();
    write_file(&bin.join("mytool"), 0o755);
    let mut d = spec("t", "mytool --flag");
    d.environment = vec![("PATH".into(), bin.to_str().unwrap().into())];
    let plan = build(
        &[d],
        &settings(),
        &file,
        &os_env(&[("PATH", "/usr/bin")]),
        &etc,
    )
    .unwrap();
    assert_eq!(plan.daemons[0].launch.program, bin.join("mytool"));
    assert_eq!(plan.daemons[0].rules.preflight_failure, None);
}

#[test]
fn environment_overrides_in_order() {
    let mut d = spec("env", "true");
    d.environment = vec![
        ("B".into(), "x".into()),
        ("NEW".into(), "1".into()),
        ("B".into(), "y".into()),
    ];
    let plan = build_ok(&[d], &os_env(&[("A", "a"), ("B", "b"), ("C", "c")]), "env");
    assert_eq!(
        plan.daemons[0].launch.env,
        os_env(&[("A", "a"), ("B", "y"), ("C", "c"), ("NEW", "1")])
    );
}

#[test]
fn user_sets_ids_and_home() {
    let mut d = spec("u", "true");
    d.user = Some("app".into());
    let plan = build_ok(&[d], &os_env(&[("HOME", "/root")]), "user");
    let daemon = &plan.daemons[0];
    let user = daemon.launch.user.as_ref().unwrap();
    assert_eq!(
        (user.uid, user.gid, user.groups.clone()),
        (1000, 1000, vec![1000, 10])
    );
    assert_eq!(
        env::get_var(&daemon.launch.env, "HOME"),
        Some(OsStr::new("/home/app"))
    );
    assert_eq!(
        env::get_var(&daemon.launch.env, "USER"),
        Some(OsStr::new("app"))
    );
}

#[test]
fn missing_passwd_allows_numeric_user_only() {
    let root = Dir::new("nopasswd");
    let file = root.p("daemons.json");
    let mut numeric = spec("n", "true");
    numeric.user = Some("1234:55".into());
    let plan = build(&[numeric.clone()], &settings(), &file, &[], &root.path).unwrap();
    assert_eq!(plan.daemons[0].launch.user.as_ref().unwrap().gid, 55);
    let mut named = spec("m", "true");
    named.user = Some("app".into());
    let errors = build(&[numeric, named], &settings(), &file, &[], &root.path).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("\"app\"") && errors[0].message.contains("does not exist"),
        "{}",
        errors[0]
    );
}

#[test]
fn working_dir_relative_to_daemons_file() {
    let (_dir, file, etc) = setup("wd");
    let config_dir = file.parent().unwrap();
    fs::create_dir_all(config_dir.join("data")).unwrap();
    write_file(&config_dir.join("data/run"), 0o755);
    let mut d = spec("wd", "./run");
    d.working_dir = Some("data".into());
    let plan = build(&[d], &settings(), &file, &[], &etc).unwrap();
    assert_eq!(
        plan.daemons[0].launch.working_dir,
        Some(config_dir.join("data"))
    );
    assert_eq!(plan.daemons[0].rules.preflight_failure, None);
}

#[test]
fn errors_carry_positions_and_are_all_collected() {
    let mut bad = spec("bad", "echo 'unbalanced");
    bad.field_positions = vec![
        (
            "command",
            Position {
                line: 7,
                column: 16,
            },
        ),
        (
            "user",
            Position {
                line: 8,
                column: 13,
            },
        ),
    ];
    bad.user = Some("ghost".into());
    bad.working_dir = Some("missing-dir".into());
    let (file, errors) = build_err(&[bad], "errs");
    let summary: Vec<_> = errors
        .iter()
        .map(|e| {
            (
                e.field.as_deref().unwrap(),
                e.line,
                e.column,
                e.daemon.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("command", 7, 16, "bad"),
            ("working_dir", 2, 3, "bad"),
            ("user", 8, 13, "bad")
        ]
    );
    assert!(errors.iter().all(|e| e.file == file));
    assert!(errors[2].message.contains("\"ghost\""));
}

#[test]
fn unknown_dependency_is_an_error() {
    let mut d = depending("a", &["nope"]);
    d.field_positions = vec![(
        "depends_on",
        Position {
            line: 4,
            column: 20,
        },
    )];
    let (_, errors) = build_err(&[d], "unknown");
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].line, errors[0].column), (4, 20));
    assert!(errors[0].message.contains("\"nope\""));
}

#[test]
fn start_order_is_stable_topological() {
    let specs = [
        depending("web", &["db", "cache"]),
        depending("db", &[]),
        depending("worker", &["db"]),
        depending("cache", &[]),
    ];
    let plan = build_ok(&specs, &[], "order");
    assert_eq!(plan.daemons[0].rules.depends_on, vec![1, 3]);
    assert_eq!(plan.start_order, vec![1, 2, 3, 0]);
}

#[test]
fn cycle_is_reported_by_name() {
    let specs = [
        depending("a", &["b"]),
        depending("b", &["c"]),
        depending("c", &["a"]),
        depending("d", &["a"]),
    ];
    let (_, errors) = build_err(&specs, "cycle");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].message, "dependency cycle: a -> b -> c -> a");
    assert_eq!(errors[0].daemon.as_deref(), Some("a"));
    assert_eq!(errors[0].field.as_deref(), Some("depends_on"));
}

#[test]
fn main_command_is_last_and_inherits() {
    let mut plan = build_ok(&[spec("side", "true")], &[], "main");
    let base = os_env(&[("PATH", "/usr/bin:/bin"), ("X", "1")]);
    add_main_command(
        &mut plan,
        vec!["sh".into(), "-c".into(), "exit $X".into()],
        &settings(),
        &base,
    );
    assert_eq!(plan.start_order, vec![0, 1]);
    let main = &plan.daemons[1];
    assert_eq!(main.rules.name, "main");
    assert!(main.rules.vital && main.launch.inherit_stdin);
    assert_eq!(main.launch.output, OutputMode::Inherit);
    assert_eq!(main.launch.argv, vec!["sh", "-c", "exit $X"]);
    assert_eq!(main.rules.preflight_failure, None);
    assert_eq!(main.launch.env, base);
    assert_eq!(main.rules.stop_signal, libc::SIGTERM);
    assert_eq!(main.rules.stop_timeout, Duration::from_secs(10));
}

#[test]
fn check_adds_preflight_failures_and_keeps_the_daemons_it_could_plan() {
    let (_dir, file, etc) = setup("check");
    let mut missing = spec("missing", "no-such-program-pidzero");
    missing.vital = true;
    missing.field_positions = vec![("command", Position { line: 3, column: 7 })];
    let mut own_path = spec("own", "also-missing");
    own_path.environment = vec![("PATH".into(), "/nonexistent-pz".into())];
    let mut bad_dir = spec("bad", "true");
    bad_dir.working_dir = Some(PathBuf::from("/nonexistent-pz-dir"));
    let specs = [spec("fine", "true"), missing, own_path, bad_dir];
    let base = os_env(&[("PATH", "/usr/bin:/bin")]);
    let checked = check(&specs, &settings(), &file, &base, &etc);
    assert_eq!(checked.daemons.len(), 3, "{checked:#?}");
    let problems: Vec<_> = checked
        .problems
        .iter()
        .map(|p| {
            (
                p.daemon.as_deref(),
                p.field.as_deref(),
                p.line,
                p.column,
                p.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (
                Some("missing"),
                Some("command"),
                3,
                7,
                "command not found: no-such-program-pidzero is in no directory of pidzero's PATH \
                 (/usr/bin:/bin); a run exits 127 before starting any daemon"
            ),
            (
                Some("own"),
                Some("command"),
                2,
                3,
                "command not found: also-missing is in no directory of the daemon's own PATH \
                 (/nonexistent-pz); a run logs spawn_failed and counts it as exit status 127"
            ),
            (
                Some("bad"),
                Some("working_dir"),
                2,
                3,
                "/nonexistent-pz-dir: No such file or directory (os error 2)"
            ),
        ]
    );
    // `build` still accepts a plan whose executables are missing: the run decides.
    assert!(build(&specs[..3], &settings(), &file, &base, &etc).is_ok());
}

//! `pidzero -- CMD` without daemons.json is a drop-in for tini: it adds
//! nothing to the container's output. In a non-root image the default
//! control socket (`/run/pidzero.sock`) usually cannot be created; that is no
//! news there, unless `-v` asks for it.

mod common;

use std::process::Command;

use common::*;

/// The binary copied where the user `nobody` may run it, in a directory
/// with no daemons.json (the default config dir is the binary's own).
fn nobody_can_run(d: &Dir) -> String {
    let copy = d.s("pidzero");
    std::fs::copy(bin(), &copy).unwrap();
    copy
}

fn as_nobody(program: &str, args: &[&str]) -> (Exit, String, String) {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--", program]).args(args);
    without_pidzero_env(&mut cmd);
    run_cmd(&mut cmd, DEADLINE)
}

fn can_switch_to_nobody(test: &str) -> bool {
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    if !root && std::env::var("PIDZERO_REQUIRE_NS").as_deref() == Ok("1") {
        panic!("{test}: needs root to run as nobody (PIDZERO_REQUIRE_NS=1)");
    }
    if !root {
        eprintln!("\n*** SKIP {test}: needs root to run as nobody ***\n");
    }
    root
}

#[test]
fn main_command_as_nobody_without_a_writable_run_prints_nothing() {
    if !can_switch_to_nobody("silent_main_command") {
        return;
    }
    let d = Dir::new("silent");
    let program = nobody_can_run(&d);
    let (exit, out, err) = as_nobody(&program, &["--", "true"]);
    assert_eq!(exit.code, Some(0), "stdout: {out}\nstderr: {err}");
    assert_eq!(out, "", "nothing on stdout");
    assert_eq!(err, "", "nothing on stderr");
    // The main command's own output and status pass through untouched.
    let (exit, out, err) = as_nobody(&program, &["--", "/bin/sh", "-c", "echo hi; exit 3"]);
    assert_eq!(exit.code, Some(3), "stderr: {err}");
    assert_eq!(out, "hi");
    assert_eq!(err, "");
}

#[test]
fn verbose_says_why_the_control_socket_is_not_served() {
    if !can_switch_to_nobody("silent_main_command_verbose") {
        return;
    }
    let d = Dir::new("silent-v");
    let program = nobody_can_run(&d);
    let (exit, out, err) = as_nobody(&program, &["-v", "--", "true"]);
    assert_eq!(exit.code, Some(0), "stderr: {err}");
    assert_eq!(out, "");
    assert!(
        err.contains("control socket not available") && err.contains("/run/pidzero.sock"),
        "stderr: {err}"
    );
}

/// pidzero's own errors in the silent mode are one plain line each, as
/// tini's are; a log format the user chose keeps them structured.
#[test]
fn its_own_errors_are_plain_lines_unless_a_format_was_chosen() {
    let d = Dir::new("plain-errors");
    let program = nobody_can_run(&d);
    let mut plain = Command::new(&program);
    plain
        .args(["--socket", &d.s("pz.sock"), "--", "/nonexistent/program"])
        .env_remove("PIDZERO_LOG_FORMAT")
        .env_remove("PIDZERO_CONFIG_DIR");
    let (exit, out, err) = run_cmd(&mut plain, DEADLINE);
    assert_eq!(exit.code, Some(127), "stderr: {err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "pidzero: cannot start main: command not found: /nonexistent/program"
    );

    let mut chosen = Command::new(&program);
    chosen
        .args(["--socket", &d.s("pz.sock"), "--", "/nonexistent/program"])
        .env("PIDZERO_LOG_FORMAT", "json")
        .env_remove("PIDZERO_CONFIG_DIR");
    let (exit, _, err) = run_cmd(&mut chosen, DEADLINE);
    assert_eq!(exit.code, Some(127), "stderr: {err}");
    let record = parse_record(err.as_bytes()).unwrap_or_else(|| panic!("not JSON: {err}"));
    assert!(is_event(&record, "spawn_failed", Some("main")), "{record}");
}

/// Without `/proc` (a scratch image whose runtime has not mounted it yet),
/// pidzero finds its config dir from `argv[0]`: the sidecar next to it runs
/// and the main command's status passes through.
#[test]
fn without_proc_the_config_dir_comes_from_argv0() {
    if !can_switch_to_nobody("without_proc") {
        return;
    }
    let d = Dir::new("no-proc");
    let program = nobody_can_run(&d);
    let mark = d.s("side-ran");
    d.daemons(&format!(
        r#"[{{"name": "side", "command": ["/bin/sh", "-c", "touch {mark}; sleep 100"]}}]"#
    ));
    // The main command ends once the sidecar has run (or after 5 s).
    let main = format!(
        "i=0; while [ ! -e {mark} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; exit 4"
    );
    let script = format!(
        "umount -l /proc && exec {program} --socket {} -- /bin/sh -c '{main}'",
        d.s("pz.sock")
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "/bin/sh", "-c", &script])
        .env_remove("PIDZERO_CONFIG_DIR")
        .env_remove("PIDZERO_LOG_FORMAT");
    let (exit, out, err) = run_cmd(&mut cmd, DEADLINE);
    assert_eq!(exit.code, Some(4), "stdout: {out}\nstderr: {err}");
    assert!(
        d.exists("side-ran"),
        "the sidecar of daemons.json beside the binary did not run\nstdout: {out}\nstderr: {err}"
    );
}

/// Where the silent mode ran without its socket, the client is where the
/// user learns why: the socket's directory is not writable for them.
#[test]
fn client_says_why_the_default_socket_is_missing() {
    if !can_switch_to_nobody("silent_main_command_client_hint") {
        return;
    }
    let d = Dir::new("silent-client");
    let program = nobody_can_run(&d);
    let locked = d.s("locked");
    std::fs::create_dir(&locked).unwrap();
    let socket = format!("{locked}/pidzero.sock");
    let (exit, out, err) = as_nobody(&program, &["--socket", &socket, "status"]);
    assert_eq!(exit.code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&format!(
            "no pidzero is listening on {socket} (no such socket; {locked} is not writable for this user"
        )),
        "{err}"
    );
    let gone = d.s("gone/pidzero.sock");
    let (exit, _, err) = as_nobody(&program, &["--socket", &gone, "health"]);
    assert_eq!(exit.code, Some(2), "{err}");
    assert!(err.contains("gone does not exist"), "{err}");
}

/// A main command needs no configuration: a config directory that does not
/// exist (a scratch image holding only the binary) is no error and no noise.
#[test]
fn main_command_with_a_missing_config_directory_is_silent() {
    let d = Dir::new("silent-no-dir");
    let mut cmd = Command::new(bin());
    cmd.args(["--config-dir", &d.s("absent"), "--socket", &d.s("pz.sock")])
        .args(["--", "/bin/sh", "-c", "echo main; exit 4"]);
    without_pidzero_env(&mut cmd);
    let (exit, out, err) = run_cmd(&mut cmd, DEADLINE);
    assert_eq!(exit.code, Some(4), "stderr: {err}");
    assert_eq!(out, "main");
    assert_eq!(err, "");
}

//! The options tini users reach for: `-e CODE` (exit 0 where pidzero would
//! exit CODE) and `-p SIGNAL` (a signal for pidzero when its parent dies).

mod common;

use std::process::Command;

use common::*;

fn pidzero(d: &Dir, args: &[&str]) -> (Exit, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["--config-dir", &d.s("."), "--socket", &d.s("pz.sock")])
        .args(args)
        .env_remove("PIDZERO_LOG_FORMAT");
    run_cmd(&mut cmd, DEADLINE)
}

#[test]
fn remap_exit_turns_the_named_codes_into_0() {
    let d = Dir::new("remap");
    let (exit, _, err) = pidzero(&d, &["-e", "3", "--", "/bin/sh", "-c", "exit 3"]);
    assert_eq!(exit.code, Some(0), "{err}");
    let (exit, _, err) = pidzero(
        &d,
        &["-e", "3", "-e", "143", "--", "/bin/sh", "-c", "exit 4"],
    );
    assert_eq!(exit.code, Some(4), "{err}");
    let (exit, _, err) = pidzero(
        &d,
        &[
            "-e",
            "3",
            "-e",
            "143",
            "--",
            "/bin/sh",
            "-c",
            "kill -TERM $$",
        ],
    );
    assert_eq!(
        exit.code,
        Some(0),
        "143 (killed by SIGTERM) is remapped too: {err}"
    );
}

#[test]
fn parent_death_signal_reaches_pidzero_when_its_parent_goes() {
    let d = Dir::new("pdeath");
    let ready = d.s("ready");
    let pid_file = d.s("pid");
    // The parent starts pidzero, waits until its main command runs (so the
    // death signal is armed), then exits.
    let script = format!(
        "{bin} --config-dir {dir} --socket {sock} -p TERM -- /bin/sh -c 'touch {ready}; exec sleep 100' & \
         echo $! > {pid_file}; \
         i=0; while [ ! -e {ready} ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done",
        bin = bin().display(),
        dir = d.s("."),
        sock = d.s("pz.sock"),
    );
    let (exit, _, err) = run_cmd(Command::new("/bin/sh").args(["-c", &script]), DEADLINE);
    assert_eq!(exit.code, Some(0), "{err}");
    assert!(d.exists("ready"), "the main command did not start");
    let pid: i32 = d.read("pid").trim().parse().unwrap();
    // SIGTERM, forwarded to the main command, ends pidzero.
    wait_until(DEADLINE, || !alive(pid))
        .unwrap_or_else(|| panic!("pidzero {pid} still runs after its parent exited"));
}

#[test]
fn an_unknown_parent_death_signal_is_a_usage_error() {
    let d = Dir::new("pdeath-bad");
    let (exit, _, err) = pidzero(&d, &["-p", "NOPE", "--", "true"]);
    assert_eq!(exit.code, Some(2));
    assert!(err.contains("-p: unknown signal `NOPE`"), "{err}");
}

/// A stop signal pidzero inherited as ignored stays ignored in its daemons
/// (as with tini): pidzero says so at start, and SIGKILL after
/// `stop_timeout` still ends the daemon.
#[test]
fn a_stop_signal_inherited_as_ignored_is_warned_about() {
    let d = Dir::new("ignored-term");
    d.daemons(
        r#"[{"name": "web", "vital": true, "command": ["sleep", "100"], "stop_timeout": 0.5},
            {"name": "quits", "command": ["sleep", "100"], "stop_signal": "USR1"}]"#,
    );
    let mut r = pz().config_dir(&d).shell_prefix("trap '' TERM").spawn();
    let warning = r.wait_record("config_warning about web", DEADLINE, |x| {
        is_event(x, "config_warning", None)
            && x["line"]
                .as_str()
                .is_some_and(|l| l.starts_with("daemon web: its stop_signal SIGTERM"))
    });
    assert!(
        warning["line"]
            .as_str()
            .unwrap()
            .contains("SIGKILL after its stop_timeout"),
        "{warning}"
    );
    r.wait_event("started", Some("web"));
    r.signal(libc::SIGTERM);
    r.wait_event("killed", Some("web"));
    assert_eq!(r.wait_exit(DEADLINE).status(), 0, "{}", r.dump());
    let warned_about_quits = r.records().iter().any(|x| {
        x["line"]
            .as_str()
            .is_some_and(|l| l.starts_with("daemon quits:"))
    });
    assert!(!warned_about_quits, "USR1 was not ignored");
}

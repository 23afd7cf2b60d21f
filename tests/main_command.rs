//! §1 main command mode: `pidzero -- CMD ARGS` as a drop-in for tini.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// pidzero with an empty config dir (no daemons.json) and a main command.
fn main_cmd(d: &Dir, argv: &[&str]) -> Pz {
    pz().config_dir(d).arg("--").args(argv)
}

#[test]
fn exit_status_passed_through() {
    let d = Dir::new("mainexit");
    for code in [0, 3, 42] {
        let f = main_cmd(&d, &["/bin/sh", "-c", &format!("exit {code}")]).run(DEADLINE);
        assert_eq!(f.status(), code, "{}", f.dump());
    }
}

#[test]
fn silent_success_prints_nothing() {
    let d = Dir::new("mainsilent");
    let f = main_cmd(&d, &["/bin/true"]).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert!(f.stdout.is_empty(), "stdout: {}", f.dump());
    assert!(f.stderr.is_empty(), "stderr: {}", f.dump());
    let f = main_cmd(&d, &["/bin/sh", "-c", "exit 5"]).run(DEADLINE);
    assert_eq!(f.status(), 5, "{}", f.dump());
    assert!(f.stdout.is_empty() && f.stderr.is_empty(), "{}", f.dump());
}

#[test]
fn output_is_inherited_raw() {
    let d = Dir::new("mainraw");
    let f = main_cmd(&d, &["/bin/sh", "-c", "echo to-out; echo to-err >&2"]).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert_eq!(f.stdout_text(), "to-out", "{}", f.dump());
    assert_eq!(f.stderr, "to-err", "{}", f.dump());
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let d = Dir::new("mainsig");
    let f = main_cmd(&d, &["/bin/sh", "-c", "kill -KILL $$"]).run(DEADLINE);
    assert_eq!(f.status(), 128 + 9, "{}", f.dump());
    let f = main_cmd(&d, &["/bin/sh", "-c", "kill -USR1 $$"]).run(DEADLINE);
    assert_eq!(f.status(), 128 + libc::SIGUSR1, "{}", f.dump());
    // pidzero itself exits normally with that status, it is not killed.
    assert_eq!(f.exit.signal, None, "{}", f.dump());
}

#[test]
fn not_found_is_127() {
    let d = Dir::new("main127");
    let f = main_cmd(&d, &["/nonexistent/program"]).run(DEADLINE);
    assert_eq!(f.status(), 127, "{}", f.dump());
    let f = main_cmd(&d, &["no-such-program-pidzero-test"]).run(DEADLINE);
    assert_eq!(f.status(), 127, "{}", f.dump());
}

#[test]
fn not_executable_is_126() {
    let d = Dir::new("main126");
    let p = d.write("plain.txt", "echo hi\n");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let f = main_cmd(&d, &[path_str(&p)]).run(DEADLINE);
    assert_eq!(f.status(), 126, "{}", f.dump());
    // A directory is not executable either.
    let f = main_cmd(&d, &[path_str(&d.path)]).run(DEADLINE);
    assert_eq!(f.status(), 126, "{}", f.dump());
}

#[test]
fn stdin_passes_through() {
    let d = Dir::new("mainstdin");
    let mut r = main_cmd(&d, &["/bin/sh", "-c", "read -r x; echo \"got:$x\"; exit 4"])
        .stdin_piped()
        .spawn();
    write_stdin(&mut r, b"hello stdin\n");
    r.close_stdin();
    let f = r.finish();
    assert_eq!(f.status(), 4, "{}", f.dump());
    assert_eq!(f.stdout_text(), "got:hello stdin", "{}", f.dump());
}

/// A main command that reports `ready`, then echoes the signals it traps.
fn trapper(d: &Dir) -> String {
    d.script(
        "trapper.sh",
        r#"trap 'echo got-USR1' USR1
trap 'echo got-HUP' HUP
trap 'echo got-TERM; exit 5' TERM
trap 'echo got-INT; exit 6' INT
echo ready
while :; do sleep 0.05; done"#,
    )
}

#[test]
fn signals_forwarded_to_main_command() {
    let d = Dir::new("mainsignals");
    let script = trapper(&d);
    let mut r = main_cmd(&d, &[&script]).spawn();
    r.wait_raw("ready", DEADLINE, |l| l == "ready");
    r.signal(libc::SIGUSR1);
    r.wait_raw("got-USR1", DEADLINE, |l| l == "got-USR1");
    r.signal(libc::SIGHUP);
    r.wait_raw("got-HUP", DEADLINE, |l| l == "got-HUP");
    r.assert_running();
    r.signal(libc::SIGTERM);
    let f = r.finish();
    assert_eq!(
        f.status(),
        5,
        "SIGTERM goes to the main command: {}",
        f.dump()
    );
    assert!(f.stdout_text().contains("got-TERM"), "{}", f.dump());
    // No output of pidzero's own (no daemons.json); the shell itself reports
    // its `sleep` killed by the forwarded signals ("Hangup"), which is fine.
    assert!(
        !f.stdout_text().contains("{\"") && !f.stderr.contains("{\""),
        "{}",
        f.dump()
    );
}

#[test]
fn sigint_forwarded_to_main_command() {
    let d = Dir::new("mainint");
    let script = trapper(&d);
    let r = main_cmd(&d, &[&script]).spawn();
    r.wait_raw("ready", DEADLINE, |l| l == "ready");
    r.signal(libc::SIGINT);
    let f = r.finish();
    assert_eq!(f.status(), 6, "{}", f.dump());
}

#[test]
fn sidecars_run_and_are_stopped_after_main_exits() {
    let d = Dir::new("mainsidecar");
    let side = d.script(
        "side.sh",
        &format!(
            r#"trap 'touch {stopped}; exit 0' TERM
echo sidecar-up
touch {up}
while :; do sleep 0.05; done"#,
            stopped = d.s("stopped"),
            up = d.s("up")
        ),
    );
    d.daemons(&format!(
        r#"[{{"name": "side", "command": [{}]}}]"#,
        js(&side)
    ));
    let main = format!(
        "while [ ! -e {} ]; do sleep 0.02; done; echo main-done; exit 4",
        d.s("up")
    );
    let mut r = main_cmd(&d, &["/bin/sh", "-c", &main]).spawn();
    let side_pid = r.daemon_pid("side");
    let f = r.finish();
    assert_eq!(f.status(), 4, "{}", f.dump());
    assert!(
        d.exists("stopped"),
        "sidecar did not get SIGTERM\n{}",
        f.dump()
    );
    assert!(!alive(side_pid), "sidecar still alive after pidzero exited");
    assert!(
        f.find(|r| is_line(r, "side", "sidecar-up")).is_some(),
        "sidecar output is logged as records\n{}",
        f.dump()
    );
    assert!(f.stdout_text().contains("main-done"), "{}", f.dump());
}

#[test]
fn leftover_of_main_command_group_is_stopped() {
    let d = Dir::new("mainleftover");
    let f = main_cmd(&d, &["/bin/sh", "-c", "sleep 300 & echo $!"]).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let pid: i32 = f
        .stdout_text()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", f.dump()));
    let gone = wait_until(secs(3.0), || !alive(pid));
    kill(pid, libc::SIGKILL);
    assert!(
        gone.is_some(),
        "sleep {pid} left behind by the main command"
    );
}

#[test]
fn no_inherited_fds_above_2() {
    let d = Dir::new("mainfds");
    // The shell opens fds 7 and 9 without close-on-exec, then execs pidzero.
    let f = main_cmd(&d, &["/bin/sh", "-c", "ls /proc/$$/fd"])
        .shell_prefix("exec 7</dev/null 9>/dev/null")
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let fds: Vec<String> = f.stdout_text().lines().map(String::from).collect();
    assert_eq!(fds, ["0", "1", "2"], "{}", f.dump());
}

#[test]
fn main_command_gets_the_terminal_foreground() {
    let d = Dir::new("maintty");
    let probe = d.script(
        "probe.sh",
        r#"read -r pid comm state ppid pgrp sid tty tpgid rest < /proc/self/stat
echo "PID=$pid PG=$pgrp TP=$tpgid TTY=$tty""#,
    );
    let cmd = format!("{} --config-dir {} -- {}", bin().display(), d.s(""), probe);
    let (exit, out, err) = run_cmd(
        Command::new("script").args(["-qec", &cmd, "/dev/null"]),
        DEADLINE,
    );
    assert_eq!(exit.status(), 0, "script: {out}\n{err}");
    let line = out
        .lines()
        .find(|l| l.contains("PG="))
        .unwrap_or_else(|| panic!("no probe output: {out}\n{err}"));
    let field = |k: &str| -> i64 {
        line.split_whitespace()
            .find_map(|w| w.trim().strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    assert_ne!(
        field("TTY="),
        0,
        "main command has no controlling terminal: {line}"
    );
    assert_eq!(
        field("PG="),
        field("TP="),
        "main command's process group is not the terminal's foreground group: {line}"
    );
    assert_eq!(
        field("PID="),
        field("PG="),
        "main command is not in its own process group: {line}"
    );
}

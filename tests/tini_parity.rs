//! The rows of the README's tini table that say "same", checked side by side:
//! each case runs under Debian's tini and under `pidzero --` and must give
//! the same exit status, stdout, stderr of the child and inherited ignores.
//! `.ci/run` installs tini; elsewhere the test skips without it unless
//! `PIDZERO_REQUIRE_NS=1` (CI) asks for every test to run.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn tini() -> Option<PathBuf> {
    let found = ["/usr/bin/tini", "/usr/local/bin/tini"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("PIDZERO_REQUIRE_NS").as_deref() == Ok("1") {
            panic!("tini_parity: /usr/bin/tini is missing (apt-get install tini)");
        }
        eprintln!("\n*** SKIP tini_parity: tini is not installed ***\n");
    }
    found
}

/// One run of `INIT [OPTIONS] -- ARGS`: status, stdout, and the lines of
/// stderr that are not the init's own (tini's `[FATAL tini ...]`, `pidzero:`).
fn under(init: &[String], options: &[&str], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(&init[0]);
    cmd.args(&init[1..]).args(options).arg("--").args(args);
    without_pidzero_env(&mut cmd);
    let (exit, out, err) = run_cmd(&mut cmd, DEADLINE);
    let child_err: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("[FATAL tini") && !l.starts_with("pidzero:"))
        .collect();
    (exit.status(), out, child_err.join("\n"))
}

fn pidzero(d: &Dir) -> Vec<String> {
    vec![
        bin().display().to_string(),
        "--config-dir".into(),
        d.s("."),
        "--socket".into(),
        d.s("pz.sock"),
    ]
}

fn same(tini: &[String], pz: &[String], options: &[&str], args: &[&str]) -> i32 {
    let theirs = under(tini, options, args);
    let ours = under(pz, options, args);
    assert_eq!(ours, theirs, "options {options:?}, command {args:?}");
    ours.0
}

#[test]
fn exit_statuses_output_and_remapping_match_tini() {
    let Some(tini) = tini() else { return };
    let tini = vec![tini.display().to_string(), "-s".into()];
    let d = Dir::new("parity");
    let pz = pidzero(&d);
    let sh = "/bin/sh";
    assert_eq!(same(&tini, &pz, &[], &[sh, "-c", "exit 3"]), 3);
    assert_eq!(same(&tini, &pz, &[], &[sh, "-c", "kill -TERM $$"]), 143);
    assert_eq!(same(&tini, &pz, &[], &[sh, "-c", "kill -KILL $$"]), 137);
    assert_eq!(same(&tini, &pz, &[], &["pidzero-no-such-command"]), 127);
    let not_executable = d.s("not-executable");
    std::fs::write(&not_executable, "plain text\n").unwrap();
    assert_eq!(same(&tini, &pz, &[], &[&not_executable]), 126);
    assert_eq!(
        same(
            &tini,
            &pz,
            &[],
            &[sh, "-c", "echo out; echo err >&2; exit 0"]
        ),
        0
    );
    assert_eq!(same(&tini, &pz, &["-e", "3"], &[sh, "-c", "exit 3"]), 0);
    assert_eq!(same(&tini, &pz, &["-e", "3"], &[sh, "-c", "exit 4"]), 4);
}

#[test]
fn inherited_ignores_reach_the_child_as_with_tini() {
    let Some(tini) = tini() else { return };
    let d = Dir::new("parity-ignores");
    // A parent that ignores USR2 and HUP execs the init; the child prints
    // its ignored-signal mask.
    let wrap = |init: &[String]| -> Vec<String> {
        let mut w = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "trap '' USR2 HUP; exec \"$@\"".into(),
            "sh".into(),
        ];
        w.extend(init.iter().cloned());
        w
    };
    let show = ["/bin/sh", "-c", "grep '^SigIgn' /proc/self/status"];
    let tini = [tini.display().to_string(), "-s".into()];
    let theirs = under(&wrap(&tini), &[], &show);
    let ours = under(&wrap(&pidzero(&d)), &[], &show);
    assert_eq!((ours.0, &ours.2), (0, &String::new()), "{ours:?}");
    assert_eq!((theirs.0, &theirs.2), (0, &String::new()), "{theirs:?}");
    // Signals 1 to 31; 32 and up are the C library's own and real-time ones.
    let standard = |text: &str| {
        let hex = text.trim().trim_start_matches("SigIgn:").trim();
        u64::from_str_radix(hex, 16).unwrap() & 0x7fff_ffff
    };
    assert_eq!(
        standard(&ours.1),
        standard(&theirs.1),
        "{ours:?} {theirs:?}"
    );
    // USR2 (12) and HUP (1) are in the mask: bits 11 and 0.
    assert_eq!(standard(&ours.1) & (1 << 11 | 1), 1 << 11 | 1, "{ours:?}");
}

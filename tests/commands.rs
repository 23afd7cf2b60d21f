//! §4 Commands: argv arrays, POSIX word splitting, `/bin/sh -c` for shell
//! syntax, PATH lookup, a process group per daemon, no leaked descriptors.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Runs `daemons.json` to completion (all non-vital, exit 0) and returns it.
fn run_all(d: &Dir) -> Finished {
    let f = pz().config_dir(d).run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    f
}

fn assert_line(f: &Finished, source: &str, line: &str) {
    assert!(
        f.find(|r| is_line(r, source, line)).is_some(),
        "expected {source}: {line:?}\n{}",
        f.dump()
    );
}

#[test]
fn array_is_argv() {
    let d = Dir::new("argv");
    d.daemons(r#"[{"name": "a", "command": ["/bin/echo", "a  b", "$HOME", "*", "c;d"]}]"#);
    let f = run_all(&d);
    assert_line(&f, "a", "a  b $HOME * c;d");
}

#[test]
fn plain_string_is_split_with_posix_quoting() {
    let d = Dir::new("split");
    d.daemons(
        r#"[
  {"name": "q", "command": "/bin/echo 'a  b' \"c  d\" e\\ f g"},
  {"name": "rel", "command": "echo relative"}
]"#,
    );
    let f = run_all(&d);
    assert_line(&f, "q", "a  b c  d e f g");
    assert_line(&f, "rel", "relative");
}

#[test]
fn shell_syntax_runs_through_sh() {
    let d = Dir::new("shell");
    d.daemons(
        r#"[
  {"name": "pipe", "command": "echo $WORD | tr a-z A-Z", "environment": ["WORD=abc"]},
  {"name": "seq", "command": "echo one; echo two"},
  {"name": "assign", "command": "GREETING=hi env"},
  {"name": "subst", "command": "echo `echo back`"},
  {"name": "redir", "command": "echo to-err >&2"}
]"#,
    );
    let f = run_all(&d);
    assert_line(&f, "pipe", "ABC");
    assert_line(&f, "seq", "one");
    assert_line(&f, "seq", "two");
    assert_line(&f, "assign", "GREETING=hi");
    assert_line(&f, "subst", "back");
    assert!(
        f.find(|r| is_line(r, "redir", "to-err") && r["stream"] == "stderr")
            .is_some(),
        "{}",
        f.dump()
    );
}

#[test]
fn path_lookup_uses_the_daemons_path() {
    let d = Dir::new("path");
    let bindir = Dir::new("path-bin");
    bindir.script("pz-test-tool", "echo from-tool \"$@\"");
    d.daemons(&format!(
        r#"[
  {{"name": "t", "command": "pz-test-tool x",
    "environment": ["PATH={}:/usr/bin:/bin"]}},
  {{"name": "arr", "command": ["pz-test-tool", "y"],
    "environment": {{"PATH": "{}:/usr/bin:/bin"}}}}
]"#,
        bindir.s(""),
        bindir.s("")
    ));
    let f = run_all(&d);
    assert_line(&f, "t", "from-tool x");
    assert_line(&f, "arr", "from-tool y");
}

#[test]
fn each_daemon_has_its_own_process_group() {
    let d = Dir::new("pgrp");
    let probe =
        r#"["/bin/sh", "-c", "read -r p c s pp pg rest < /proc/self/stat; echo pid=$p pgrp=$pg"]"#;
    d.daemons(&format!(
        r#"[{{"name": "a", "command": {probe}}}, {{"name": "b", "command": {probe}}}]"#
    ));
    let mut r = pz().config_dir(&d).spawn();
    let pidzero_pgrp = pgrp(r.pid).unwrap();
    let pa = r.daemon_pid("a");
    let pb = r.daemon_pid("b");
    let f = r.finish();
    assert_eq!(f.status(), 0, "{}", f.dump());
    assert_line(&f, "a", &format!("pid={pa} pgrp={pa}"));
    assert_line(&f, "b", &format!("pid={pb} pgrp={pb}"));
    assert_ne!(pa, pidzero_pgrp);
}

#[test]
fn no_inherited_fds_above_2() {
    let d = Dir::new("fds");
    d.daemons(
        r#"[
  {"name": "fds", "command": ["/bin/sh", "-c", "ls /proc/$$/fd"]},
  {"name": "shellfds", "command": "ls /proc/$$/fd"}
]"#,
    );
    // Fds 7 and 9 are open (no close-on-exec) when pidzero starts.
    let f = pz()
        .config_dir(&d)
        .shell_prefix("exec 7</dev/null 9>/dev/null")
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    for name in ["fds", "shellfds"] {
        let fds: Vec<&str> = f
            .records
            .iter()
            .filter(|r| r["source"] == name && r["stream"] == "stdout")
            .map(|r| r["line"].as_str().unwrap())
            .collect();
        assert_eq!(fds, ["0", "1", "2"], "{name}\n{}", f.dump());
    }
}

#[test]
fn stdin_of_a_daemon_is_not_pidzeros_terminal() {
    // Daemons read end-of-file (or /dev/null), they never compete for stdin.
    let d = Dir::new("stdin");
    d.daemons(r#"[{"name": "r", "command": ["/bin/sh", "-c", "cat; echo cat-done"]}]"#);
    let mut r = pz().config_dir(&d).stdin_piped().spawn();
    r.wait_line("r", "cat-done");
    r.close_stdin();
    let f = r.finish();
    assert_eq!(f.status(), 0, "{}", f.dump());
}

#[test]
fn signal_dispositions_are_reset_but_inherited_ignores_kept() {
    // pidzero started with SIGUSR2 ignored: daemons keep it ignored (as tini),
    // SIGPIPE is always default, and nothing is blocked.
    let d = Dir::new("sigmask");
    d.daemons(
        r#"[{"name": "s", "command": ["/bin/sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"]}]"#,
    );
    let f = pz()
        .config_dir(&d)
        .shell_prefix("trap '' USR2 PIPE")
        .run(DEADLINE);
    assert_eq!(f.status(), 0, "{}", f.dump());
    let get = |k: &str| -> u64 {
        let r = f
            .find(|r| r["source"] == "s" && r["line"].as_str().unwrap_or("").starts_with(k))
            .unwrap_or_else(|| panic!("no {k}\n{}", f.dump()));
        let hex = r["line"].as_str().unwrap()[k.len()..].trim();
        u64::from_str_radix(hex, 16).unwrap()
    };
    let bit = |sig: i32| 1u64 << (sig - 1);
    let blocked = get("SigBlk:");
    let ignored = get("SigIgn:");
    assert_eq!(
        blocked, 0,
        "daemon starts with signals blocked: {blocked:x}"
    );
    assert_ne!(
        ignored & bit(libc::SIGUSR2),
        0,
        "inherited ignore of USR2 lost"
    );
    assert_eq!(ignored & bit(libc::SIGPIPE), 0, "SIGPIPE must be default");
    // glibc's own signal 33 (its handler is reset by exec) must not arrive ignored.
    assert_eq!(ignored & bit(33), 0, "signal 33 left ignored: {ignored:x}");
}

/// An executable script without `#!` runs with /bin/sh, as with execvp.
#[test]
fn script_without_shebang_runs_with_sh() {
    let d = Dir::new("noshebang");
    let script = d.write("plain-script", "echo plain-script-ran\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    d.daemons(&format!(
        r#"[{{"name": "p", "vital": true, "command": [{}]}}]"#,
        js(script.to_str().unwrap())
    ));
    let f = pz().config_dir(&d).run(DEADLINE);
    assert_line(&f, "p", "plain-script-ran");
}

/// A daemon gets pidzero's environment with its own entries on top: a later
/// entry for a key wins, and an entry replaces an inherited value (§2).
#[test]
fn environment_entries_override_in_order() {
    let d = Dir::new("envorder");
    d.daemons(
        r#"[{"name": "e", "command": "echo $WORD $PIDZERO_TEST_INHERITED $PIDZERO_TEST_KEPT",
    "environment": ["WORD=first", "PIDZERO_TEST_INHERITED=replaced", "WORD=second"]}]"#,
    );
    let f = pz()
        .config_dir(&d)
        .env("PIDZERO_TEST_INHERITED", "from-pidzero")
        .env("PIDZERO_TEST_KEPT", "kept")
        .run(DEADLINE);
    assert_line(&f, "e", "second replaced kept");
}

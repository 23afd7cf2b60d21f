//! The state every child of pidzero starts with, whatever way it is started:
//! the signal mask pidzero inherited, default dispositions except the signals
//! pidzero inherited as ignored (SIGPIPE always back to default), fds 0-2 only,
//! a process group of its own.
//!
//! pidzero runs in a PID namespace behind a wrapper that gives it a known mask
//! (HUP and signal 40 blocked) and known ignored signals (USR2, and PIPE, which
//! must not reach the children). Every child is `/bin/sh`, replaced in the
//! test's mount namespace by a stand-in that records its own state before
//! running the real shell: dash clears the signal mask when it starts, and
//! Perl and Python change dispositions, so the stand-in is a small Rust program
//! built with `no_main` (no Rust runtime start-up either).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::*;
use serde_json::json;

/// Signals blocked on entry to pidzero: HUP (bit 0) and 40 (bit 39).
const BLOCKED: &str = "0000008000000001";
/// Signals children must find ignored: USR2 (bit 11) only. PIPE was ignored
/// too when pidzero started, and must be back to default.
const IGNORED: &str = "0000000000000800";

/// Records the state the process started with in `DIR/NAME.dump` when an
/// argument holds `dump=NAME`, then runs the real shell for `-c`, or sleeps.
/// Built with `no_main`: the Rust runtime's start-up (which ignores SIGPIPE)
/// never runs, so nothing is changed before it looks.
const STAND_IN: &str = r#"#![no_main]
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

const DIR: &str = "__DIR__";

fn dump(name: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or("")
            .to_string()
    };
    let names: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect();
    // The directory handle is closed by now: keep what is still open.
    let mut fds: Vec<i32> = names
        .iter()
        .filter(|n| std::fs::symlink_metadata(format!("/proc/self/fd/{n}")).is_ok())
        .filter_map(|n| n.parse().ok())
        .collect();
    fds.sort();
    let fds: Vec<String> = fds.iter().map(|fd| fd.to_string()).collect();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let pid = std::process::id().to_string();
    let yes = |b: bool| if b { "yes" } else { "no" };
    let own = yes(fields[2] == pid);
    // tpgid: the foreground group of the controlling terminal, -1 without one.
    let foreground = yes(fields[5] == pid);
    let line = format!(
        "blocked={} ignored={} fds={} own_group={own} foreground={foreground} sid={} uid={}\n",
        field("SigBlk:"),
        field("SigIgn:"),
        fds.join(","),
        fields[3],
        field("Uid:"),
    );
    std::fs::write(format!("{DIR}/{name}.tmp"), line).unwrap();
    std::fs::rename(format!("{DIR}/{name}.tmp"), format!("{DIR}/{name}.dump")).unwrap();
}

#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let joined: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let joined = joined.join(" ");
    if let Some((_, rest)) = joined.split_once("dump=") {
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        dump(&name);
    }
    let error = if args.first().is_some_and(|a| a == "-c") {
        Command::new(format!("{DIR}/realsh")).arg0("/bin/sh").args(&args).exec()
    } else {
        Command::new("sleep").arg("1000").exec()
    };
    eprintln!("stand-in: {error}");
    127
}
"#;

/// Sets every disposition to default but USR2 and PIPE (ignored), the mask to
/// HUP and 40, then becomes pidzero. Signals 32 and 33 are reset with the raw
/// syscall (glibc refuses them): the test harness starts processes with
/// `posix_spawn`, which leaves them ignored.
const WRAPPER: &str = "import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
default = ctypes.create_string_buffer(32)
for s in (32, 33):
    if libc.syscall(13, s, default, None, 8) != 0:
        raise OSError(ctypes.get_errno(), \"rt_sigaction\")
for s in signal.valid_signals():
    if s in (signal.SIGKILL, signal.SIGSTOP):
        continue
    try:
        signal.signal(s, signal.SIG_DFL)
    except (OSError, ValueError, RuntimeError):
        pass
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
signal.signal(signal.SIGPIPE, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGHUP, 40})
os.execv(sys.argv[1], sys.argv[1:])";

/// Every way pidzero starts a process, by the name its child dumps under.
const PATHS: [&str; 9] = [
    "log", "inherit", "discard", "workdir", "user", "shell", "path", "main", "probe",
];

fn sh(name: &str) -> serde_json::Value {
    json!(["/bin/sh", "-c", format!("exec sleep 1000 # dump={name}")])
}

#[test]
fn every_child_starts_with_the_inherited_mask_and_ignores_and_fds_0_to_2() {
    let dir = Dir::new("child-state");
    let Some(pz) = pz().config_dir(&dir).ns("child_state") else {
        return;
    };
    let stand_in = prepare(&dir);
    // A program found on the daemon's PATH, and a working directory.
    fs::create_dir(dir.p("bin")).unwrap();
    std::os::unix::fs::symlink(&stand_in, dir.p("bin/pzdump")).unwrap();
    dir.daemons_value(&json!([
        {"name": "log", "command": sh("log")},
        {"name": "inherit", "command": sh("inherit"), "output": "inherit"},
        {"name": "discard", "command": sh("discard"), "output": "discard"},
        {"name": "workdir", "command": sh("workdir"), "working_dir": dir.s("bin")},
        {"name": "user", "command": sh("user"), "user": "nobody"},
        {"name": "shell", "command": "exec sleep 1000 # dump=shell"},
        {"name": "path", "command": "pzdump dump=path",
         "environment": [format!("PATH={}:/usr/bin:/bin", dir.s("bin"))]},
        {"name": "probed", "command": ["sleep", "1000"],
         "health": {"command": "exit 0 # dump=probe", "interval": 1}},
    ]));
    // Only in this test's mount namespace (unshare makes it private).
    let prefix = format!(
        "mount --bind {} /bin/sh || exit 99\nexec /usr/bin/python3 -c '{WRAPPER}' \"$0\" \"$@\"",
        stand_in.display()
    );
    let mut r = pz
        .shell_prefix(&prefix)
        .args(["--", "/bin/sh", "-c", "exec sleep 1000 # dump=main"])
        .spawn();
    let dumps = wait_dumps(&dir, &PATHS);
    r.assert_running();
    let dumps = dumps.unwrap_or_else(|partial| panic!("missing dumps: {partial:#?}\n{}", r.dump()));

    let mut sessions = Vec::new();
    for (path, dump) in &dumps {
        let uid = if *path == "user" { "65534" } else { "0" };
        assert_state(path, dump, "no", uid, &dumps);
        sessions.push(field(dump, "sid"));
    }
    sessions.dedup();
    assert_eq!(
        sessions.len(),
        1,
        "children in different sessions: {dumps:#?}"
    );
}

/// The main command on a terminal is the terminal's foreground process group,
/// in the same state as every other child.
#[test]
fn the_main_command_on_a_terminal_is_its_foreground_group() {
    let dir = Dir::new("child-state-tty");
    if !ns_available("child_state on a terminal") {
        return;
    }
    let stand_in = prepare(&dir);
    dir.daemons_value(&json!([{"name": "side", "command": sh("side")}]));
    let realsh = dir.s("realsh");
    // `script` gives pidzero a terminal as its controlling terminal and runs
    // this (with $SHELL, the real shell).
    let run = dir.write(
        "run",
        &format!(
            "#!{realsh}\nexec /usr/bin/python3 -c '{WRAPPER}' {bin} --config-dir {dir} \
             --socket {socket} -- /bin/sh -c 'exec sleep 1000 # dump=tty'\n",
            bin = bin().display(),
            dir = dir.s(""),
            socket = unique_socket_path(),
        ),
    );
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let output = fs::File::create(dir.p("output")).unwrap();
    let child = std::process::Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--mount-proc", "--kill-child"])
        .args([&realsh, "-c"])
        .arg(format!(
            "mount --bind {} /bin/sh && SHELL={realsh} exec script -qec {} /dev/null",
            stand_in.display(),
            run.display()
        ))
        .stdin(std::process::Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap();
    // Killing unshare kills the namespace's PID 1 (`script`), and with it everything.
    let _kill = KillOnDrop(child);
    let dumps = wait_dumps(&dir, &["tty", "side"])
        .unwrap_or_else(|partial| panic!("missing dumps: {partial:#?}\n{}", dir.read("output")));
    assert_state("tty", &dumps["tty"], "yes", "0", &dumps);
    assert_state("side", &dumps["side"], "no", "0", &dumps);
}

/// Makes `dir` usable by any user, builds the stand-in there and copies the
/// real shell next to it; returns the stand-in's path.
fn prepare(dir: &Dir) -> PathBuf {
    // `user: nobody` must be able to run the stand-in and write its dump.
    fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o777)).unwrap();
    let stand_in = build_stand_in(dir);
    // The real shell, for the stand-in to run once /bin/sh is covered.
    fs::copy(fs::canonicalize("/bin/sh").unwrap(), dir.p("realsh")).unwrap();
    stand_in
}

/// Waits until every named child has dumped its state; the dumps, or what
/// there is of them at the deadline.
fn wait_dumps<'a>(
    dir: &Dir,
    names: &[&'a str],
) -> Result<BTreeMap<&'a str, String>, BTreeMap<&'a str, String>> {
    let done = wait_until(DEADLINE, || {
        names.iter().all(|p| dir.exists(&format!("{p}.dump")))
    });
    let dumps = names
        .iter()
        .map(|&p| (p, dir.read(&format!("{p}.dump")).trim().to_string()))
        .collect();
    match done {
        Some(()) => Ok(dumps),
        None => Err(dumps),
    }
}

fn field<'a>(dump: &'a str, key: &str) -> Option<&'a str> {
    dump.split(' ')
        .filter_map(|f| f.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn assert_state(path: &str, dump: &str, foreground: &str, uid: &str, all: &BTreeMap<&str, String>) {
    let got = [
        "blocked",
        "ignored",
        "fds",
        "own_group",
        "foreground",
        "uid",
    ]
    .map(|k| field(dump, k));
    let expected = [BLOCKED, IGNORED, "0,1,2", "yes", foreground, uid].map(Some);
    assert_eq!(
        got, expected,
        "child started as {path:?}: {dump}\nall: {all:#?}"
    );
}

/// Kills a process by pid (and reaps it) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Compiles the stand-in into `dir` and returns its path.
fn build_stand_in(dir: &Dir) -> PathBuf {
    let dir_text = dir.path.to_str().unwrap();
    let source = dir.write("fakesh.rs", &STAND_IN.replace("__DIR__", dir_text));
    let out = dir.p("fakesh");
    let (exit, _, stderr) = run_cmd(
        std::process::Command::new("rustc")
            .args(["--edition", "2021", "-o"])
            .arg(&out)
            .arg(&source),
        secs(120.0),
    );
    assert_eq!(exit.status(), 0, "cannot build the stand-in:\n{stderr}");
    out
}

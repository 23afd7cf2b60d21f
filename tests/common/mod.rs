//! Black-box test harness: runs the real `pidzero` binary with temporary config
//! directories, reads its stdout line by line, and lets tests wait for records
//! with a deadline. Every process a test starts is killed by pid on drop.
//!
//! Tests that need pidzero as PID 1 run it under `unshare --pid --fork
//! --mount-proc`; when that is impossible they print a loud SKIP, unless
//! `PIDZERO_REQUIRE_NS=1`, in which case they fail.
//!
//! The pieces every kind of test shares live in submodules, one job each:
//! `dir` (the temp-dir type) and `wait` (`wait_until`), which the unit tests
//! compile too (`src/test_support.rs`), `http` (the control API client) and
//! `metrics` (the `/metrics` parser).

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

mod dir;
pub mod fuzz;
pub mod http;
pub mod metrics;
mod wait;

pub use dir::Dir;
pub use wait::wait_until;

/// The default deadline for one wait.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_pidzero"))
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

pub fn kill(pid: i32, sig: i32) -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, sig) == 0 }
}

pub fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "SYS" => libc::SIGSYS,
        other => panic!("unknown signal {other}"),
    }
}

/// Fields of `/proc/PID/stat` after the command name: index 0 is the state
/// (field 3), 1 the ppid (field 4), 2 the pgrp (field 5), 3 the session,
/// 4 tty_nr, 5 tpgid (field 8).
pub fn proc_stat(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = text.rfind(')')?;
    Some(
        text[close + 1..]
            .split_whitespace()
            .map(String::from)
            .collect(),
    )
}

/// How many descriptors `pid` holds open (0 once it is gone).
pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// Context switches (voluntary and not) of every thread of `pid` so far:
/// how the idle tests count wake-ups.
pub fn wakeups(pid: i32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|task| thread_status_switches(&task.path()))
        .sum()
}

/// Wake-ups of `pid` in a 2 s window once it has gone idle (its count
/// still for 200 ms); `None` when it never does within [`DEADLINE`].
pub fn wakeups_once_idle(pid: i32) -> Option<u64> {
    let mut last = wakeups(pid);
    wait_until(DEADLINE, || {
        thread::sleep(secs(0.2));
        let now = wakeups(pid);
        let still = now == last;
        last = now;
        still
    })?;
    // A measurement window, not synchronisation.
    thread::sleep(secs(2.0));
    Some(wakeups(pid) - last)
}

/// Context switches of `pid`'s thread named `name` so far.
pub fn thread_wakeups(pid: i32, name: &str) -> Option<u64> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let task = task.ok()?.path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return Some(thread_status_switches(&task));
        }
    }
    None
}

fn thread_status_switches(task: &Path) -> u64 {
    std::fs::read_to_string(task.join("status"))
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// The user+system CPU time `pid` has used so far.
pub fn cpu_time(pid: i32) -> Duration {
    let stat = proc_stat(pid).expect("a /proc/PID/stat");
    // Fields from the state on: utime and stime (fields 14, 15) are 11, 12 here.
    let ticks: u64 = stat[11].parse::<u64>().unwrap() + stat[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// Makes a FIFO at `path` (mode 0600).
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// True when pidzero's log writer thread (`pidzero-log`) sleeps in a write
/// to a full pipe (its `wchan` names `pipe_write` or `anon_pipe_write`).
pub fn writer_blocked_on_pipe_write(pidzero: u32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pidzero}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let read = |name: &str| fs::read_to_string(task.path().join(name)).unwrap_or_default();
        read("comm").trim() == "pidzero-log" && read("wchan").contains("pipe_write")
    })
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match proc_stat(pid) {
        Some(f) => f[0] != "Z" && f[0] != "X",
        None => false,
    }
}

pub fn ppid(pid: i32) -> Option<i32> {
    proc_stat(pid).and_then(|f| f[1].parse().ok())
}

pub fn pgrp(pid: i32) -> Option<i32> {
    proc_stat(pid).and_then(|f| f[2].parse().ok())
}

/// Pids of zombies whose parent is `parent`.
pub fn zombie_children(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Some(f) = proc_stat(pid) {
                if f[0] == "Z" && f[1].parse::<i32>().ok() == Some(parent) {
                    out.push(pid);
                }
            }
        }
    }
    out
}

/// Children of `pid` (all threads), from `/proc/PID/task/*/children`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            if let Ok(text) = fs::read_to_string(e.path().join("children")) {
                out.extend(
                    text.split_whitespace()
                        .filter_map(|s| s.parse::<i32>().ok()),
                );
            }
        }
    }
    out
}

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Whether `unshare --pid --fork --mount-proc` works here. When it does not,
/// prints a loud SKIP and returns false, or panics with `PIDZERO_REQUIRE_NS=1`.
pub fn ns_available(test: &str) -> bool {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let ok = OK.get_or_init(|| {
        match Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "/bin/true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "unshare failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run unshare: {e}")),
        }
    });
    match ok {
        Ok(()) => true,
        Err(why) => {
            if std::env::var("PIDZERO_REQUIRE_NS").as_deref() == Ok("1") {
                panic!("{test}: PID namespace required (PIDZERO_REQUIRE_NS=1) but {why}");
            }
            eprintln!(
                "\n*** SKIP {test}: needs a PID namespace (run as root with unshare): {why} ***\n"
            );
            false
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl Exit {
    /// The shell's view: the code, or 128+N when killed by signal N.
    pub fn status(&self) -> i32 {
        self.code.unwrap_or_else(|| 128 + self.signal.unwrap_or(0))
    }
}

// ---------------------------------------------------------------------------
// Output collection
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Lines {
    lines: Vec<Vec<u8>>,
    closed: bool,
}

#[derive(Default)]
struct Collector {
    state: Mutex<Lines>,
    cond: Condvar,
}

impl Collector {
    fn start(r: impl Read + Send + 'static) -> Arc<Collector> {
        let c = Arc::new(Collector::default());
        let c2 = c.clone();
        thread::spawn(move || {
            let mut r = BufReader::new(r);
            loop {
                let mut buf = Vec::new();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&b'\n') {
                            buf.pop();
                        }
                        let mut s = c2.state.lock().unwrap();
                        s.lines.push(buf);
                        c2.cond.notify_all();
                    }
                }
            }
            c2.state.lock().unwrap().closed = true;
            c2.cond.notify_all();
        });
        c
    }

    fn snapshot(&self) -> Vec<Vec<u8>> {
        self.state.lock().unwrap().lines.clone()
    }

    /// The lines so far, as lossy UTF-8.
    fn text_lines(&self) -> Vec<String> {
        self.snapshot()
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// The lines so far joined by newlines, as lossy UTF-8.
    fn text(&self) -> String {
        self.text_lines().join("\n")
    }

    /// Waits until some line satisfies `f`; returns it, or None at the deadline or EOF.
    fn wait<T>(&self, timeout: Duration, mut f: impl FnMut(&[u8]) -> Option<T>) -> Option<T> {
        let end = Instant::now() + timeout;
        let mut seen = 0;
        let mut s = self.state.lock().unwrap();
        loop {
            while seen < s.lines.len() {
                if let Some(t) = f(&s.lines[seen]) {
                    return Some(t);
                }
                seen += 1;
            }
            if s.closed {
                return None;
            }
            let now = Instant::now();
            if now >= end {
                return None;
            }
            s = self.cond.wait_timeout(s, end - now).unwrap().0;
        }
    }

    fn wait_closed(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap();
        while !s.closed {
            let now = Instant::now();
            if now >= end {
                return false;
            }
            s = self.cond.wait_timeout(s, end - now).unwrap().0;
        }
        true
    }
}

/// Parses one output line as a JSON record (must be valid UTF-8 and a JSON object).
pub fn parse_record(line: &[u8]) -> Option<Value> {
    match serde_json::from_slice::<Value>(line) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// The top-level keys of a JSON object, in the order they are written.
pub fn keys_in_order(raw: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_str::<Keys>(raw)
        .unwrap_or_else(|e| panic!("not a JSON object ({e}): {raw}"))
        .0
}

/// `record` is a daemon line from `source` with exactly `line`.
pub fn is_line(r: &Value, source: &str, line: &str) -> bool {
    r["source"] == source && r["line"] == line && r["stream"] != "event"
}

/// `record` is event `event` (about `daemon`, when given).
pub fn is_event(r: &Value, event: &str, daemon: Option<&str>) -> bool {
    r["source"] == "pidzero"
        && r["stream"] == "event"
        && r["event"] == event
        && match daemon {
            Some(d) => r["daemon"] == d,
            None => true,
        }
}

// ---------------------------------------------------------------------------
// Running pidzero
// ---------------------------------------------------------------------------

/// Builds a pidzero invocation.
pub struct Pz {
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    stdin_piped: bool,
    ns: bool,
    /// Run through `/bin/sh -c 'PREFIX; exec "$0" "$@"'` (to open extra fds, etc.).
    shell_prefix: Option<String>,
}

/// Removes every `PIDZERO_*` variable the test runner may have, so a test
/// sees pidzero's own defaults unless it sets one.
pub fn without_pidzero_env(cmd: &mut Command) -> &mut Command {
    for k in [
        "PIDZERO_CONFIG_DIR",
        "PIDZERO_DAEMONS",
        "PIDZERO_CONFIG",
        "PIDZERO_LOG_FORMAT",
        "PIDZERO_SOCKET",
        "PIDZERO_URL",
        "PIDZERO_API_TOKEN",
    ] {
        cmd.env_remove(k);
    }
    cmd
}

/// A control socket path no other test uses (short: socket paths are limited to 107 bytes).
pub fn unique_socket_path() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/tmp/pz-{}-{n}.sock", std::process::id())
}

pub fn pz() -> Pz {
    Pz {
        program: bin(),
        args: Vec::new(),
        envs: Vec::new(),
        cwd: None,
        stdin_piped: false,
        ns: false,
        shell_prefix: None,
    }
}

impl Pz {
    pub fn program(mut self, p: impl Into<PathBuf>) -> Pz {
        self.program = p.into();
        self
    }

    pub fn arg(mut self, a: impl AsRef<str>) -> Pz {
        self.args.push(a.as_ref().to_string());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, a: I) -> Pz {
        self.args
            .extend(a.into_iter().map(|s| s.as_ref().to_string()));
        self
    }

    pub fn config_dir(self, d: &Dir) -> Pz {
        self.arg("--config-dir").arg(d.path.to_str().unwrap())
    }

    pub fn env(mut self, k: &str, v: impl AsRef<str>) -> Pz {
        self.envs.push((k.to_string(), v.as_ref().to_string()));
        self
    }

    pub fn cwd(mut self, p: impl Into<PathBuf>) -> Pz {
        self.cwd = Some(p.into());
        self
    }

    pub fn stdin_piped(mut self) -> Pz {
        self.stdin_piped = true;
        self
    }

    pub fn shell_prefix(mut self, prefix: &str) -> Pz {
        self.shell_prefix = Some(prefix.to_string());
        self
    }

    /// Runs under `unshare --pid --fork --mount-proc`, so pidzero is PID 1.
    /// None (after a loud SKIP) when that is impossible.
    pub fn ns(mut self, test: &str) -> Option<Pz> {
        if !ns_available(test) {
            return None;
        }
        self.ns = true;
        Some(self)
    }

    fn command(&self) -> Command {
        let mut argv: Vec<String> = Vec::new();
        if self.ns {
            argv.extend(
                ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        if let Some(prefix) = &self.shell_prefix {
            argv.push("/bin/sh".into());
            argv.push("-c".into());
            argv.push(format!("{prefix}\nexec \"$0\" \"$@\""));
        }
        argv.push(self.program.to_str().unwrap().to_string());
        argv.extend(self.args.iter().cloned());
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..]);
        without_pidzero_env(&mut c);
        // Tests run side by side: each pidzero gets its own control socket
        // unless the test chose one.
        if !self.envs.iter().any(|(k, _)| k == "PIDZERO_SOCKET") {
            c.env("PIDZERO_SOCKET", unique_socket_path());
        }
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c.stdin(if self.stdin_piped {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    pub fn describe(&self) -> String {
        format!(
            "{}{} {}",
            if self.ns { "[ns] " } else { "" },
            self.program.display(),
            self.args.join(" ")
        )
    }

    pub fn spawn(self) -> Running {
        let desc = self.describe();
        let mut cmd = self.command();
        // A freshly copied binary can be briefly busy (ETXTBSY) while another
        // test thread forks; retry a few times.
        let mut tries = 0;
        let mut child: Child = loop {
            match cmd.spawn() {
                Ok(c) => break c,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot start {desc}: {e}"),
            }
        };
        let out = Collector::start(child.stdout.take().unwrap());
        let err = Collector::start(child.stderr.take().unwrap());
        let stdin = child.stdin.take();
        let outer = child.id() as i32;
        let mut r = Running {
            child,
            desc,
            pid: outer,
            out,
            err,
            stdin,
            exit: None,
            started: Instant::now(),
            extra_pgroups: HashSet::new(),
            ns: self.ns,
        };
        if self.ns {
            // unshare --fork does not forward signals: find pidzero (its child) and
            // signal that directly.
            // A quick run may be over before we look: then there is nothing to signal.
            let found = wait_until(DEADLINE, || {
                children(outer)
                    .into_iter()
                    .find(|&c| comm(c) == "pidzero")
                    .map(|c| r.pid = c)
                    .is_some()
                    || r.try_exit().is_some()
            });
            if found.is_none() {
                panic!("{}: pidzero did not start under unshare", r.desc);
            }
        }
        r
    }

    /// Runs to completion within `timeout` (killed and failed loudly otherwise).
    pub fn run(self, timeout: Duration) -> Finished {
        let mut r = self.spawn();
        r.wait_exit(timeout);
        r.finish()
    }
}

/// A finished run: exit, raw output.
pub struct Finished {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub records: Vec<Value>,
}

impl Finished {
    pub fn status(&self) -> i32 {
        self.exit.status()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn find(&self, f: impl Fn(&Value) -> bool) -> Option<&Value> {
        self.records.iter().find(|r| f(r))
    }

    pub fn dump(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.exit,
            self.stdout_text(),
            self.stderr
        )
    }
}

/// A running pidzero. Dropping it kills pidzero and the process groups of the
/// daemons it reported, by pid.
pub struct Running {
    child: Child,
    desc: String,
    /// pidzero's pid as seen from here (inside unshare: the child of unshare).
    pub pid: i32,
    out: Arc<Collector>,
    err: Arc<Collector>,
    stdin: Option<ChildStdin>,
    exit: Option<Exit>,
    pub started: Instant,
    extra_pgroups: HashSet<i32>,
    /// Under unshare: daemon pids are the namespace's, never signal them from here.
    ns: bool,
}

impl Running {
    pub fn dump(&self) -> String {
        format!(
            "{}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.desc,
            self.exit,
            self.out.text(),
            self.err.text()
        )
    }

    pub fn records(&self) -> Vec<Value> {
        self.out
            .snapshot()
            .iter()
            .filter_map(|l| parse_record(l))
            .collect()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.out.text_lines()
    }

    pub fn stdout_raw(&self) -> Vec<Vec<u8>> {
        self.out.snapshot()
    }

    pub fn stderr_text(&self) -> String {
        self.err.text()
    }

    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("stdin not piped")
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for a JSON record satisfying `f`.
    pub fn wait_record(&self, what: &str, timeout: Duration, f: impl Fn(&Value) -> bool) -> Value {
        self.out
            .wait(timeout, |l| parse_record(l).filter(|r| f(r)))
            .unwrap_or_else(|| {
                panic!(
                    "no record {what} within {timeout:?} (or stdout closed)\n{}",
                    self.dump()
                )
            })
    }

    /// Waits for daemon `source` to log exactly `line`.
    pub fn wait_line(&self, source: &str, line: &str) -> Value {
        self.wait_record(&format!("{source}: {line:?}"), DEADLINE, |r| {
            is_line(r, source, line)
        })
    }

    pub fn wait_event(&self, event: &str, daemon: Option<&str>) -> Value {
        self.wait_record(&format!("event {event} {daemon:?}"), DEADLINE, |r| {
            is_event(r, event, daemon)
        })
    }

    /// Waits for a raw stdout line (e.g. from a main command, which is not captured).
    pub fn wait_raw(&self, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
        self.out
            .wait(timeout, |l| {
                let s = String::from_utf8_lossy(l);
                f(&s).then(|| s.into_owned())
            })
            .unwrap_or_else(|| panic!("no stdout line {what} within {timeout:?}\n{}", self.dump()))
    }

    /// The pid of daemon `name`, from its `started` event; its process group is
    /// killed on drop. Under unshare it is the pid inside the namespace.
    pub fn daemon_pid(&mut self, name: &str) -> i32 {
        let r = self.wait_event("started", Some(name));
        let pid = r["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("started event without an integer pid: {r}"))
            as i32;
        self.extra_pgroups.insert(pid);
        pid
    }

    pub fn signal(&self, sig: i32) {
        assert!(
            self.exit.is_none(),
            "pidzero already exited\n{}",
            self.dump()
        );
        kill(self.pid, sig);
    }

    pub fn try_exit(&mut self) -> Option<Exit> {
        if self.exit.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exit = Some(Exit {
                    code: st.code(),
                    signal: st.signal(),
                });
            }
        }
        self.exit
    }

    /// Waits for pidzero to exit; kills it and fails loudly at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> Exit {
        if wait_until(timeout, || self.try_exit().is_some()).is_none() {
            let dump = self.dump();
            self.kill_all();
            panic!("pidzero did not exit within {timeout:?}\n{dump}");
        }
        // Let the readers drain what is left in the pipes. Daemons that outlived
        // pidzero may hold them open: do not wait for them forever.
        self.out.wait_closed(Duration::from_secs(2));
        self.err.wait_closed(Duration::from_secs(2));
        self.exit.unwrap()
    }

    /// Asserts pidzero is still running after daemons had a chance to act.
    pub fn assert_running(&mut self) {
        assert!(
            self.try_exit().is_none(),
            "pidzero exited unexpectedly\n{}",
            self.dump()
        );
    }

    pub fn finish(mut self) -> Finished {
        let exit = self.wait_exit(DEADLINE);
        let stdout = self.out.snapshot().join(&b'\n');
        Finished {
            exit,
            records: self.records(),
            stderr: self.stderr_text(),
            stdout,
        }
    }

    fn kill_all(&mut self) {
        self.try_exit();
        if self.exit.is_none() {
            kill(self.pid, libc::SIGKILL);
            kill(self.child.id() as i32, libc::SIGKILL);
            let _ = self.child.wait();
        }
        if self.ns {
            // Killing PID 1 of the namespace killed everything in it.
            return;
        }
        for pid in self.out.snapshot().iter().filter_map(|l| parse_record(l)) {
            if is_event(&pid, "started", None) {
                if let Some(p) = pid["pid"].as_i64() {
                    self.extra_pgroups.insert(p as i32);
                }
            }
        }
        for &pg in &self.extra_pgroups {
            // Only groups whose leader still exists: a reused pid is seldom
            // a group leader.
            if pg > 1 && pgrp(pg) == Some(pg) {
                kill(-pg, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Writes to pidzero's stdin.
pub fn write_stdin(r: &mut Running, data: &[u8]) {
    r.stdin().write_all(data).unwrap();
}

/// Runs an arbitrary command with a deadline; returns (exit, stdout, stderr).
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> (Exit, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A binary a test has just copied can be busy for a moment (ETXTBSY)
    // while another test thread forks with it still open for writing.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(child) => break child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot start {cmd:?}: {e}"),
        }
    };
    let out = Collector::start(child.stdout.take().unwrap());
    let err = Collector::start(child.stderr.take().unwrap());
    let mut exit = None;
    let ok = wait_until(timeout, || {
        if let Ok(Some(st)) = child.try_wait() {
            exit = Some(Exit {
                code: st.code(),
                signal: st.signal(),
            });
        }
        exit.is_some()
    });
    if ok.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not exit within {timeout:?}");
    }
    out.wait_closed(Duration::from_secs(2));
    err.wait_closed(Duration::from_secs(2));
    (exit.unwrap(), out.text(), err.text())
}

/// Config-error lines (`FILE:LINE:COL: ...`) of stderr that mention `file_name`.
pub fn error_lines<'a>(stderr: &'a str, file_name: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.contains(file_name)).collect()
}

/// Asserts stderr has a line `…FILE:LINE:COL: daemon DAEMON: field FIELD: …`.
/// `line` None accepts any line number; `daemon` None accepts any daemon label.
pub fn assert_config_error(
    stderr: &str,
    file_name: &str,
    line: Option<usize>,
    daemon: Option<&str>,
    field: Option<&str>,
) {
    let ok = stderr.lines().any(|l| {
        let Some(at) = l.find(file_name) else {
            return false;
        };
        let rest = &l[at + file_name.len()..];
        // :LINE:COL:
        let mut parts = rest.splitn(4, ':');
        let (Some(""), Some(ln), Some(col), Some(tail)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(ln), Ok(_col)) = (ln.parse::<usize>(), col.parse::<usize>()) else {
            return false;
        };
        if line.is_some_and(|want| want != ln) {
            return false;
        }
        let daemon_ok = match daemon {
            Some(d) => tail.contains(&format!(" daemon {d}:")),
            None => tail.contains(" daemon "),
        };
        let field_ok = match field {
            Some(f) => tail.contains(&format!(" field {f}:")),
            None => true,
        };
        daemon_ok && field_ok
    });
    assert!(
        ok,
        "expected an error `{file_name}:{}:COL: daemon {}: field {}: …` in stderr:\n{stderr}",
        line.map(|l| l.to_string()).unwrap_or("LINE".into()),
        daemon.unwrap_or("*"),
        field.unwrap_or("*"),
    );
}

/// `path` as a JSON string literal (for building daemons.json text).
pub fn js(s: impl AsRef<str>) -> String {
    serde_json::to_string(s.as_ref()).unwrap()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

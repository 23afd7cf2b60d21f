//! Driver and workloads for bench/compare/run.sh (pidzero vs tini, tini-static,
//! dumb-init, catatonit, s6 and supervisord). Dependency-free:
//! `rustc -O --edition 2021 cmp.rs`.
//!
//! Driver modes (CMD is `unshare --pid --fork --mount-proc INIT ...`; its
//! stdout and stderr go to LOG; the init is the child of that unshare):
//!   cmp idle N SECS LOG -- CMD...        wait for N `sleep` descendants, settle 1 s,
//!                                        then VmRSS of the init and the context
//!                                        switches of all its threads over SECS
//!   cmp startstop N LOG -- CMD...        spawn -> N `sleep` descendants running;
//!                                        settle, memory of the init and of its
//!                                        supervision tree (every descendant but the
//!                                        `sleep`s); SIGTERM to the init -> unshare
//!                                        has exited
//!   cmp signal N FILE LOG -- CMD...      N × SIGUSR1 to the init, 20 ms apart; the
//!                                        child `cmp recv FILE` records receipt times
//!   cmp orphanrun FILE LOG -- CMD...     wait for `cmp orphans` to write FILE, stop
//! Workload modes (run under the init):
//!   cmp recv FILE                        sigwait(SIGUSR1) loop, CLOCK_MONOTONIC ns per line
//!   cmp orphans N stream|burst FILE      double-fork N orphans, time until none is left
//!
//! Every driver prints one line of `key=value` pairs on stdout. Memory figures:
//! `rss_kib` is the init's VmRSS, `pss_kib` its proportional share (shared
//! library pages divided among the processes that map them), `tree_kib` the
//! Pss summed over the init and its non-`sleep` descendants (s6-supervise
//! processes, the stand-in shell of tini and friends).
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
#[repr(C)]
struct SigSet([u64; 16]);

extern "C" {
    fn clock_gettime(clk: i32, ts: *mut Timespec) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn sigemptyset(set: *mut SigSet) -> i32;
    fn sigaddset(set: *mut SigSet, sig: i32) -> i32;
    fn pthread_sigmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigwait(set: *const SigSet, sig: *mut i32) -> i32;
    fn fork() -> i32;
    fn _exit(code: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn pipe(fds: *mut i32) -> i32;
    fn close(fd: i32) -> i32;
    fn read(fd: i32, buf: *mut u8, n: usize) -> isize;
}
const SIGKILL: i32 = 9;
const SIGUSR1: i32 = 10;
const SIGTERM: i32 = 15;
const SIG_BLOCK: i32 = 0;

fn mono_ns() -> u64 {
    let mut ts = Timespec { sec: 0, nsec: 0 };
    unsafe { clock_gettime(1, &mut ts) };
    ts.sec as u64 * 1_000_000_000 + ts.nsec as u64
}

fn die(msg: &str) -> ! {
    eprintln!("cmp: {msg}");
    std::process::exit(1)
}

/// (pid, ppid, comm) of every process on this /proc.
fn procs() -> Vec<(i32, i32, String)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else { continue };
        let comm = stat[a + 1..b].to_string();
        let ppid = stat[b + 2..].split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        out.push((pid, ppid, comm));
    }
    out
}

/// Live descendants of `root` as (pid, comm).
fn descendants(root: i32) -> Vec<(i32, String)> {
    let ps = procs();
    let mut set = vec![root];
    let mut out = Vec::new();
    let mut changed = true;
    let mut seen = std::collections::HashSet::new();
    while changed {
        changed = false;
        for (pid, ppid, c) in &ps {
            if set.contains(ppid) && seen.insert(*pid) {
                set.push(*pid);
                out.push((*pid, c.clone()));
                changed = true;
            }
        }
    }
    out
}

/// Pss of `init` plus that of each of its descendants that is not `comm`:
/// the memory of a whole supervision tree (s6-svscan and its s6-supervise
/// processes, say), shared pages counted once in all.
fn tree_pss(init: i32, comm: &str) -> u64 {
    pss(init)
        + descendants(init)
            .iter()
            .filter(|(_, c)| c != comm)
            .map(|&(pid, _)| pss(pid))
            .sum::<u64>()
}

/// Pss of a process (kB), from smaps_rollup.
fn pss(pid: i32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("Pss:").map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// Waits until `root` has `n` descendants named `comm`. The /proc scan costs
/// milliseconds with a thousand processes: the pause between scans is as long
/// as the last scan took (at least `poll`), so the measuring side never takes
/// more than about half a core from the init it measures.
fn wait_desc(root: i32, comm: &str, n: usize, timeout: Duration, poll: Duration) -> bool {
    let t = Instant::now();
    loop {
        let s = Instant::now();
        if count_desc(root, comm) >= n {
            return true;
        }
        if t.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(poll.max(s.elapsed()));
    }
}

/// Number of live descendants of `root` whose comm is `comm`.
fn count_desc(root: i32, comm: &str) -> usize {
    let ps = procs();
    let mut set = vec![root];
    let mut n = 0;
    let mut changed = true;
    let mut seen = std::collections::HashSet::new();
    while changed {
        changed = false;
        for (pid, ppid, c) in &ps {
            if set.contains(ppid) && seen.insert(*pid) {
                set.push(*pid);
                changed = true;
                if c == comm {
                    n += 1;
                }
            }
        }
    }
    n
}

fn numeric_proc_entries() -> usize {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_str().map_or(false, |s| s.bytes().all(|b| b.is_ascii_digit())))
                .count()
        })
        .unwrap_or(0)
}

fn spawn(cmd: &[String], log: &str) -> Child {
    let f = fs::File::create(log).unwrap_or_else(|e| die(&format!("{log}: {e}")));
    let g = f.try_clone().unwrap();
    Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(f)
        .stderr(g)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| die(&format!("spawn {}: {e}", cmd[0])))
}

/// The init: the (only) child of the unshare process.
fn init_pid(upid: i32) -> i32 {
    let t = Instant::now();
    loop {
        if let Some((pid, _, _)) = procs().into_iter().find(|(_, pp, _)| *pp == upid) {
            return pid;
        }
        if t.elapsed() > Duration::from_secs(10) {
            die("no init process under unshare");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn wait_until(timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while !f() {
        if t.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(poll);
    }
    true
}

/// SIGTERM to the init, then wait for unshare (so for the whole namespace).
/// Returns the seconds from the signal to unshare's exit, or None after 60 s
/// (then everything is killed). The wait blocks in waitpid (no polling), so
/// sub-millisecond exits are timed to the microsecond; a watchdog thread
/// SIGKILLs the init if it has not exited after 60 s.
fn stop(child: &mut Child, init: i32) -> Option<f64> {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let t = Instant::now();
    unsafe { kill(init, SIGTERM) };
    let watchdog = std::thread::spawn(move || {
        let t = Instant::now();
        while !flag.load(std::sync::atomic::Ordering::SeqCst) {
            if t.elapsed() > Duration::from_secs(60) {
                unsafe { kill(init, SIGKILL) };
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    let _ = child.wait();
    let s = t.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    if watchdog.join().unwrap_or(true) {
        None
    } else {
        Some(s)
    }
}

fn status_field(pid: i32, tid: &str, key: &str) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// (sum of voluntary + nonvoluntary context switches over all threads, thread count)
fn ctxt(pid: i32) -> (u64, usize) {
    let mut sum = 0;
    let mut n = 0;
    if let Ok(rd) = fs::read_dir(format!("/proc/{pid}/task")) {
        for e in rd.flatten() {
            let tid = e.file_name().to_string_lossy().to_string();
            sum += status_field(pid, &tid, "voluntary_ctxt_switches:")
                + status_field(pid, &tid, "nonvoluntary_ctxt_switches:");
            n += 1;
        }
    }
    (sum, n)
}

fn split_cmd(args: &[String]) -> (&[String], &[String]) {
    let i = args.iter().position(|a| a == "--").unwrap_or_else(|| die("missing --"));
    (&args[..i], &args[i + 1..])
}

fn idle(args: &[String]) {
    let (opts, cmd) = split_cmd(args);
    let n: usize = opts[0].parse().unwrap();
    let secs: u64 = opts[1].parse().unwrap();
    let mut child = spawn(cmd, &opts[2]);
    let upid = child.id() as i32;
    if !wait_until(Duration::from_secs(30), Duration::from_millis(5), || count_desc(upid, "sleep") >= n) {
        die("daemons did not start");
    }
    let init = init_pid(upid);
    std::thread::sleep(Duration::from_secs(1));
    let (c0, _) = ctxt(init);
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, threads) = ctxt(init);
    let rss = status_field(init, &init.to_string(), "VmRSS:");
    let (pss, tree) = (pss(init), tree_pss(init, "sleep"));
    let alive = count_desc(upid, "sleep");
    let _ = stop(&mut child, init);
    println!(
        "rss_kib={rss} pss_kib={pss} tree_kib={tree} wakeups={} threads={threads} sleeps={alive}",
        c1 - c0
    );
}

fn startstop(args: &[String]) {
    let (opts, cmd) = split_cmd(args);
    let n: usize = opts[0].parse().unwrap();
    let t = Instant::now();
    let mut child = spawn(cmd, &opts[1]);
    let upid = child.id() as i32;
    if !wait_desc(upid, "sleep", n, Duration::from_secs(60), Duration::from_millis(1)) {
        let _ = stop(&mut child, init_pid(upid));
        die("daemons did not start");
    }
    let start = t.elapsed().as_secs_f64();
    let init = init_pid(upid);
    std::thread::sleep(Duration::from_millis(500));
    let rss = status_field(init, &init.to_string(), "VmRSS:");
    let (pss, tree) = (pss(init), tree_pss(init, "sleep"));
    match stop(&mut child, init) {
        Some(s) => println!("start_s={start:.4} stop_s={s:.6} rss_kib={rss} pss_kib={pss} tree_kib={tree}"),
        None => println!("start_s={start:.4} rss_kib={rss} pss_kib={pss} tree_kib={tree}"),
    }
}

fn signal(args: &[String]) {
    let (opts, cmd) = split_cmd(args);
    let n: usize = opts[0].parse().unwrap();
    let file = &opts[1];
    let _ = fs::remove_file(file);
    let mut child = spawn(cmd, &opts[2]);
    let upid = child.id() as i32;
    if !wait_until(Duration::from_secs(30), Duration::from_millis(5), || {
        fs::read_to_string(file).map_or(false, |s| s.starts_with("ready\n"))
    }) {
        die("receiver not ready");
    }
    let init = init_pid(upid);
    std::thread::sleep(Duration::from_millis(300));
    let mut sent = Vec::with_capacity(n);
    for _ in 0..n {
        sent.push(mono_ns());
        unsafe { kill(init, SIGUSR1) };
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let got: Vec<u64> = fs::read_to_string(file)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| l.parse().ok())
        .collect();
    let _ = stop(&mut child, init);
    if got.len() != n {
        println!("median_us=nan max_us=nan received={}", got.len());
        return;
    }
    let mut lat: Vec<f64> = sent.iter().zip(&got).map(|(s, r)| (*r as f64 - *s as f64) / 1e3).collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("median_us={:.1} max_us={:.1} received={}", lat[n / 2], lat[n - 1], got.len());
}

fn orphanrun(args: &[String]) {
    let (opts, cmd) = split_cmd(args);
    let file = &opts[0];
    let _ = fs::remove_file(file);
    let mut child = spawn(cmd, &opts[1]);
    // Before the workload ends: tini, dumb-init and pidzero -- exit with it.
    let init = init_pid(child.id() as i32);
    let ok = wait_until(Duration::from_secs(120), Duration::from_millis(5), || {
        fs::read_to_string(file).map_or(false, |s| s.ends_with('\n'))
    });
    let result = fs::read_to_string(file).unwrap_or_default();
    // Give an init that exits with its child the time to do so; stop the others.
    wait_until(Duration::from_secs(1), Duration::from_millis(1), || child.try_wait().unwrap().is_some());
    if child.try_wait().unwrap().is_none() {
        let _ = stop(&mut child, init);
    }
    if !ok {
        die("orphan workload did not finish within 120 s");
    }
    print!("{result}");
}

fn recv(file: &str) {
    let mut set = SigSet([0; 16]);
    unsafe {
        sigemptyset(&mut set);
        sigaddset(&mut set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut f = fs::File::create(file).unwrap();
    f.write_all(b"ready\n").unwrap();
    loop {
        let mut sig = 0;
        unsafe { sigwait(&set, &mut sig) };
        let t = mono_ns();
        f.write_all(format!("{t}\n").as_bytes()).unwrap();
    }
}

/// Double-forks `n` orphans. `stream`: each exits as soon as it is forked; the
/// time runs from the first fork until no orphan (live or zombie) is left.
/// `burst`: all block on a pipe until every one of them is an orphan, then exit
/// at once; the time runs from the release until no orphan is left.
fn orphans(n: usize, mode: &str, file: &str) {
    let base = numeric_proc_entries();
    let mut fds = [0i32; 2];
    unsafe { pipe(fds.as_mut_ptr()) };
    let burst = mode == "burst";
    let t0 = mono_ns();
    let mid = unsafe { fork() };
    if mid == 0 {
        for _ in 0..n {
            let p = unsafe { fork() };
            if p == 0 {
                unsafe {
                    if burst {
                        close(fds[1]);
                        let mut b = 0u8;
                        read(fds[0], &mut b, 1);
                    }
                    _exit(0);
                }
            }
        }
        unsafe { _exit(0) };
    }
    let mut st = 0;
    unsafe { waitpid(mid, &mut st, 0) };
    let fork_s = (mono_ns() - t0) as f64 / 1e9;
    let t1 = if burst {
        unsafe { close(fds[0]) };
        if !wait_until(Duration::from_secs(60), Duration::from_millis(1), || numeric_proc_entries() >= base + n) {
            die("orphans did not all start");
        }
        let t = mono_ns();
        unsafe { close(fds[1]) };
        t
    } else {
        t0
    };
    let mut polls = 0u64;
    while numeric_proc_entries() > base {
        polls += 1;
        std::thread::sleep(Duration::from_micros(200));
        if mono_ns() - t1 > 100_000_000_000 {
            break;
        }
    }
    let s = (mono_ns() - t1) as f64 / 1e9;
    let left = numeric_proc_entries().saturating_sub(base);
    fs::write(file, format!("reap_s={s:.4} fork_s={fork_s:.4} left={left} polls={polls}\n")).unwrap();
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("idle") => idle(&a[2..]),
        Some("startstop") => startstop(&a[2..]),
        Some("signal") => signal(&a[2..]),
        Some("orphanrun") => orphanrun(&a[2..]),
        Some("recv") => recv(&a[2]),
        Some("orphans") => orphans(a[2].parse().unwrap(), &a[3], &a[4]),
        _ => die("usage: see the header of bench/compare/cmp.rs"),
    }
}

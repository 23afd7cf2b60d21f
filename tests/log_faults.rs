//! Black-box tests of the log pipeline under load and faults: huge lines and
//! raw binary with bounded memory, a full disk, a closed stdout, a stdout
//! nobody reads, many daemons at once, and flushing at shutdown.
//!
//! Memory bound: what pidzero's peak RSS (VmHWM) grows under load, over the
//! peak of the same binary up and idle ([`idle_hwm_kib`]), must stay under
//! [`PIPELINE_BOUND_KIB`] (4 MiB; these loads add 1–2 MiB). The release
//! build idles at 3.5 MiB, so that also keeps it well under the 10 MiB of the
//! target; the debug build these tests run idles at about 7.5 MiB, mostly
//! its larger code, which says nothing of the pipeline.
//! src/log/mod.rs bounds the pipeline with the defaults at under 4 MiB in
//! flight whatever the daemons write (4 batches of one read each, at most
//! 1,024 records each), 2.6 MiB of spare buffers, 96 KiB per pipe (more for
//! a moment when a pipe turns to very short lines) and 384 KiB of recent
//! records per daemon. Buffering a 10 MiB line or a 20 MiB stream whole,
//! formatting a read of empty lines in one piece, or queueing without
//! back-pressure, would break the bound at once.

mod common;
#[path = "log_support/mod.rs"]
mod support;

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

const DEADLINE: Duration = Duration::from_secs(60);
/// What these loads may add to the idle peak: they grow it by 1–2 MiB; a
/// read of empty lines formatted in one piece adds over 6 MiB.
const PIPELINE_BOUND_KIB: u64 = 4 * 1024;
const MAX_LINE: usize = 16384;

/// A pipe as (read end, write end), both close-on-exec.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn sigterm(child: &Child) {
    // SAFETY: kill with a valid signal number on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

fn file_records(path: &Path) -> Vec<serde_json::Value> {
    records(&std::fs::read(path).unwrap_or_default())
}

/// pidzero's peak RSS up and idle (one sleeping daemon, a file sink, its
/// `started` event written), measured once per test binary.
fn idle_hwm_kib() -> u64 {
    static IDLE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *IDLE.get_or_init(|| {
        let work = Dir::new("idle");
        let log = work.p("p.log");
        let dir = config_dir(
            "idle",
            &format!("[{}]", sh_daemon("rest", "exec sleep 120")),
            &format!(r#""log_to_file":true,"file_path":"{}""#, log.display()),
        );
        let mut child = pidzero(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn pidzero");
        wait_until(DEADLINE, || {
            file_records(&log)
                .iter()
                .any(|r| r["event"] == "started" && r["daemon"] == "rest")
        })
        .unwrap_or_else(|| panic!("timed out waiting for the idle daemon's started event"));
        let hwm = vm_hwm_kib(child.id()).expect("pidzero's VmHWM");
        sigterm(&child);
        assert!(wait_deadline(&mut child, DEADLINE, "idle pidzero").success());
        eprintln!("idle: pidzero peak RSS {hwm} KiB");
        hwm
    })
}

/// Fails unless pidzero's peak RSS `hwm` is within [`PIPELINE_BOUND_KIB`] of
/// its idle peak.
fn assert_bounded(tag: &str, hwm: u64) {
    let idle = idle_hwm_kib();
    assert!(
        hwm > 0 && hwm < idle + PIPELINE_BOUND_KIB,
        "{tag}: pidzero peak RSS {hwm} KiB, idle {idle} KiB: grew {} KiB (bound {PIPELINE_BOUND_KIB} KiB)",
        hwm.saturating_sub(idle)
    );
    eprintln!(
        "{tag}: pidzero peak RSS {hwm} KiB, {} KiB over idle",
        hwm.saturating_sub(idle)
    );
}

/// Does the log file hold a record of `source` with exactly `line`?
fn file_has_line(path: &Path, source: &str, line: &str) -> bool {
    let needle = format!(r#""source":"{source}","stream":"stdout","line":"{line}"}}"#);
    std::fs::read(path)
        .map(|data| memchr_find(&data, needle.as_bytes()))
        .unwrap_or(false)
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// What the pipeline must make of `data` followed by `\n`: lines without
/// `\n` (and a `\r` before it), cut into pieces of `MAX_LINE` where all but
/// the last are partial, each lossy UTF-8.
fn expected_records(data: &[u8]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut segments: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.ends_with(b"\n") {
        segments.pop();
    }
    for segment in segments {
        let line = segment.strip_suffix(b"\r").unwrap_or(segment);
        if line.is_empty() {
            out.push((String::new(), false));
            continue;
        }
        let pieces: Vec<&[u8]> = line.chunks(MAX_LINE).collect();
        for (i, piece) in pieces.iter().enumerate() {
            out.push((
                String::from_utf8_lossy(piece).into_owned(),
                i + 1 < pieces.len(),
            ));
        }
    }
    out
}

/// Runs pidzero with the daemon `big` writing `data` then `DONE`, and a
/// daemon that keeps pidzero alive; once `DONE` is in the file, reads the
/// peak RSS, stops pidzero and checks every record.
fn through_pidzero_with_bounded_memory(tag: &str, data: &[u8]) {
    let work = Dir::new(tag);
    let input = work.p("input");
    std::fs::write(&input, data).unwrap();
    let log = work.p("p.log");
    let script = format!("cat '{}'; printf '\\nDONE\\n'", input.display());
    let daemons = format!(
        "[{},{}]",
        sh_daemon("big", &script),
        sh_daemon("keep", "exec sleep 120")
    );
    let dir = config_dir(
        tag,
        &daemons,
        &format!(
            r#""log_to_file":true,"log_to_stdout":false,"file_path":"{}","max_file_size":0"#,
            log.display()
        ),
    );
    let mut child = pidzero(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn pidzero");
    let started = Instant::now();
    let mut hwm = 0;
    while !file_has_line(&log, "big", "DONE") {
        hwm = hwm.max(vm_hwm_kib(child.id()).unwrap_or(0));
        assert!(started.elapsed() < DEADLINE, "{tag}: DONE never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    hwm = hwm.max(vm_hwm_kib(child.id()).unwrap_or(0));
    sigterm(&child);
    let status = wait_deadline(&mut child, DEADLINE, tag);
    assert!(status.success(), "{tag}: {status}");
    assert_bounded(tag, hwm);
    let all = file_records(&log);
    let got: Vec<(String, bool)> = all
        .iter()
        .filter(|r| r["source"] == "big")
        .map(|r| {
            (
                r["line"].as_str().unwrap().to_string(),
                r.get("partial").is_some_and(|p| p == true),
            )
        })
        .collect();
    let mut data_nl = data.to_vec();
    data_nl.extend_from_slice(b"\nDONE\n");
    let expected = expected_records(&data_nl);
    assert_eq!(got.len(), expected.len(), "{tag}: record count");
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!(g == e, "{tag}: record {i} differs");
    }
}

#[test]
fn ten_mib_line_without_newline_passes_with_bounded_memory() {
    let data = vec![b'a'; 10 * 1024 * 1024];
    through_pidzero_with_bounded_memory("bigline", &data);
}

#[test]
fn twenty_mib_of_raw_binary_passes_with_bounded_memory() {
    let output = std::process::Command::new("head")
        .args(["-c", "20971520", "/dev/urandom"])
        .output()
        .unwrap();
    assert_eq!(output.stdout.len(), 20 * 1024 * 1024);
    through_pidzero_with_bounded_memory("binary", &output.stdout);
}

/// Every record adds its fields to its line: a read of 64 KiB of empty
/// lines is 65,536 records, over 5 MiB of JSON, so memory stays bounded only
/// if such a read is formatted and queued in pieces.
#[test]
fn a_million_empty_lines_pass_with_bounded_memory() {
    through_pidzero_with_bounded_memory("empty", &vec![b'\n'; 1_000_000]);
}

#[test]
fn full_disk_is_reported_once_and_stdout_and_daemons_go_on() {
    if !mount_namespaces_available("full_disk_is_reported_once_and_stdout_and_daemons_go_on") {
        return;
    }
    let mnt = Dir::new("enospc-mnt");
    let log = mnt.p("p.log");
    let daemons = format!(
        "[{},{}]",
        sh_daemon(
            "d",
            "i=0; while [ $i -lt 3000 ]; do echo \"line number $i of a daemon that goes on\"; i=$((i+1)); done"
        ),
        sh_daemon("late", "sleep 0.5; echo still here")
    );
    let dir = config_dir(
        "enospc",
        &daemons,
        &format!(r#""log_to_file":true,"file_path":"{}""#, log.display()),
    );
    let mut command = std::process::Command::new("unshare");
    command
        .args(["--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=64k tmpfs "$0" && exec "$1" --config-dir "$2""#)
        .arg(&mnt.path)
        .arg(PIDZERO)
        .arg(&dir.path);
    let output = run(command, DEADLINE);
    assert!(output.status.success(), "{output:?}");
    let all = records(&output.stdout);
    let errors = events(&all, "sink_error");
    assert_eq!(errors.len(), 1, "one sink_error: {errors:?}");
    assert_eq!(errors[0]["sink"], "file");
    assert_eq!(errors[0]["level"], "error");
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("No space left"),
        "{}",
        errors[0]
    );
    let expected: Vec<String> = (0..3000)
        .map(|i| format!("line number {i} of a daemon that goes on"))
        .collect();
    assert_eq!(lines_of(&all, "d"), expected, "stdout kept every line");
    assert_eq!(lines_of(&all, "late"), ["still here"]);
    for exited in events(&all, "exited") {
        assert_eq!(exited["status"], 0, "{exited}");
    }
    assert_eq!(events(&all, "exited").len(), 2);
}

#[test]
fn closed_stdout_never_kills_pidzero_and_the_file_goes_on() {
    let work = Dir::new("epipe");
    let log = work.p("p.log");
    let daemons = format!(
        "[{}]",
        sh_daemon(
            "d",
            "i=0; while [ $i -lt 500 ]; do echo \"l $i\"; i=$((i+1)); done; sleep 0.3; echo after"
        )
    );
    let dir = config_dir(
        "epipe",
        &daemons,
        &format!(r#""log_to_file":true,"file_path":"{}""#, log.display()),
    );
    let (read_end, write_end) = pipe();
    drop(read_end);
    let mut child = pidzero(&dir)
        .stdout(Stdio::from(write_end))
        .spawn()
        .unwrap();
    let status = wait_deadline(&mut child, DEADLINE, "pidzero");
    assert!(status.success(), "pidzero must survive EPIPE: {status}");
    let all = file_records(&log);
    let mut expected: Vec<String> = (0..500).map(|i| format!("l {i}")).collect();
    expected.push("after".into());
    assert_eq!(lines_of(&all, "d"), expected);
    let errors = events(&all, "sink_error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["sink"], "stdout");
    assert!(!events(&all, "exited").is_empty());
}

/// Kills the processes left when a test fails half-way: a pidzero still
/// running would hold the test's output open, and its daemons would run on.
struct KillOnDrop(Vec<i32>);

impl KillOnDrop {
    /// Everything stopped as it should: nothing to kill.
    fn disarm(mut self) {
        self.0.clear();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: kill with a valid signal. The guard holds this test's
            // child only until it is waited for, and the daemons only until
            // they are seen gone, so no pid here has been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// True when process `pid` sleeps in a write to a full pipe (its kernel wait
/// channel, e.g. `anon_pipe_write` or `pipe_write`).
fn blocked_on_pipe_write(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/wchan"))
        .is_ok_and(|wchan| wchan.contains("pipe_write"))
}

fn process_gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn blocked_stdout_keeps_memory_bounded_and_shutdown_working() {
    let work = Dir::new("blocked");
    let (flood_pid, calm_pid) = (work.p("flood.pid"), work.p("calm.pid"));
    // `flood` ignores SIGTERM (kept across exec): it must be killed after its stop_timeout.
    let flood = format!(
        "echo $$ > '{}'; trap '' TERM; exec yes 'a line to fill the pipe that nobody reads'",
        flood_pid.display()
    );
    let calm = format!("echo $$ > '{}'; exec sleep 120", calm_pid.display());
    let daemons = format!(
        r#"[{{"name":"flood","command":{},"stop_timeout":2}},{}]"#,
        serde_json::to_string(&["/bin/sh", "-c", &flood]).unwrap(),
        sh_daemon("calm", &calm)
    );
    let dir = config_dir("blocked", &daemons, "");
    let (read_end, write_end) = pipe();
    let mut child = pidzero(&dir)
        .stdout(Stdio::from(write_end))
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(vec![child.id() as i32]);
    wait_until(Duration::from_secs(10), || {
        read_pid(&flood_pid).is_some() && read_pid(&calm_pid).is_some()
    })
    .unwrap_or_else(|| panic!("timed out waiting for daemon pids"));
    let (flood, calm) = (read_pid(&flood_pid).unwrap(), read_pid(&calm_pid).unwrap());
    guard.0.extend([flood, calm]);
    // Backed up all the way: pidzero's writer is blocked on its stdout and
    // the daemon on its own pipe, at every poll for 40 ms in a row.
    let mut backed_up_since: Option<Instant> = None;
    wait_until(DEADLINE, || {
        if !(common::writer_blocked_on_pipe_write(child.id()) && blocked_on_pipe_write(flood)) {
            backed_up_since = None;
            return false;
        }
        backed_up_since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_millis(40)
    })
    .unwrap_or_else(|| panic!("timed out waiting for the pipeline to back up to the daemon"));
    assert_bounded("blocked", vm_hwm_kib(child.id()).unwrap());
    let asked = Instant::now();
    sigterm(&child);
    // calm stops on SIGTERM; flood is killed after its 2 s stop_timeout.
    wait_until(Duration::from_secs(5), || process_gone(calm))
        .unwrap_or_else(|| panic!("timed out waiting for calm to be stopped and reaped"));
    wait_until(Duration::from_secs(6), || process_gone(flood))
        .unwrap_or_else(|| panic!("timed out waiting for flood to be killed and reaped"));
    // Both reaped: their pids may be reused from here on.
    guard.0.retain(|&pid| pid != flood && pid != calm);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(4500),
        "daemons stopped after {took:?}"
    );
    assert!(
        took > Duration::from_millis(1500),
        "flood ignores TERM: it was killed after {took:?}, before its stop_timeout"
    );
    // Now read the pipe: pidzero writes what it holds and exits.
    let reader = std::thread::spawn(move || {
        let mut data = Vec::new();
        std::fs::File::from(read_end)
            .read_to_end(&mut data)
            .unwrap();
        data
    });
    // pidzero is waited for (and killed at the deadline) from here on.
    guard.disarm();
    let status = wait_deadline(&mut child, Duration::from_secs(20), "pidzero after drain");
    assert!(status.success(), "{status}");
    let data = reader.join().unwrap();
    let all = records(&data);
    assert!(all.len() > 1000, "{} records", all.len());
    assert_eq!(events(&all, "shutdown").len(), 1, "one shutdown event");
    assert!(
        all.iter()
            .any(|r| r["event"] == "killed" || r["event"] == "exited" && r["daemon"] == "flood"),
        "the flood daemon's end is logged"
    );
}

#[test]
fn four_daemons_of_250000_lines_arrive_whole_counted_and_in_order() {
    const N: usize = 250_000;
    let work = Dir::new("integrity");
    let log = work.p("p.log");
    let daemons: Vec<String> = (0..4)
        .map(|k| sh_daemon(&format!("d{k}"), &format!("seq -f 'd{k} %.0f' 0 {}", N - 1)))
        .collect();
    let dir = config_dir(
        "integrity",
        &format!("[{}]", daemons.join(",")),
        &format!(
            r#""log_to_file":true,"log_to_stdout":false,"file_path":"{}","max_file_size":0"#,
            log.display()
        ),
    );
    let output = run(pidzero(&dir), DEADLINE);
    assert!(output.status.success(), "{output:?}");
    let data = std::fs::read(&log).unwrap();
    let mut next = [0usize; 4];
    let mut count = 0usize;
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let record: serde_json::Value = serde_json::from_slice(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(line)));
        let source = record["source"].as_str().unwrap();
        if source == "pidzero" {
            continue;
        }
        let k: usize = source[1..].parse().unwrap();
        assert_eq!(record["stream"], "stdout");
        assert_eq!(
            record["line"].as_str().unwrap(),
            format!("d{k} {}", next[k]),
            "order of d{k}"
        );
        next[k] += 1;
        count += 1;
    }
    assert_eq!(next, [N; 4]);
    assert_eq!(count, 4 * N);
}

/// Both sinks hold every line and the final events, on a normal end and on SIGTERM.
#[test]
fn shutdown_flushes_every_sink() {
    let work = Dir::new("flush");
    let log = work.p("p.log");
    let marker = work.p("written");
    let lines =
        |name: &str| format!("i=0; while [ $i -lt 3000 ]; do echo \"{name} $i\"; i=$((i+1)); done");
    let quick_done = work.p("quick-written");
    let sleeper = format!(
        "{}; touch '{}'; exec sleep 120",
        lines("s"),
        marker.display()
    );
    // quick runs beside the sleeper, and may be the slower: it marks its end
    // too, or the SIGTERM below could cut it short.
    let quick = format!("{}; touch '{}'", lines("quick"), quick_done.display());
    let daemons = format!(
        "[{},{}]",
        sh_daemon("quick", &quick),
        sh_daemon("s", &sleeper)
    );
    let dir = config_dir(
        "flush",
        &daemons,
        &format!(r#""log_to_file":true,"file_path":"{}""#, log.display()),
    );
    let mut child = pidzero(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut data = Vec::new();
        stdout.read_to_end(&mut data).unwrap();
        data
    });
    wait_until(Duration::from_secs(20), || {
        marker.exists() && quick_done.exists()
    })
    .unwrap_or_else(|| panic!("timed out waiting for both daemons' lines"));
    // Right away: the last lines may still be in the pipe.
    sigterm(&child);
    let status = wait_deadline(&mut child, DEADLINE, "pidzero");
    assert!(status.success(), "{status}");
    let from_stdout = records(&reader.join().unwrap());
    let from_file = file_records(&log);
    for (sink, all) in [("stdout", &from_stdout), ("file", &from_file)] {
        for name in ["quick", "s"] {
            let expected: Vec<String> = (0..3000).map(|i| format!("{name} {i}")).collect();
            assert_eq!(lines_of(all, name), expected, "{sink}: lines of {name}");
        }
        assert_eq!(events(all, "shutdown").len(), 1, "{sink}: shutdown event");
        let last = all.last().unwrap();
        assert_eq!(last["source"], "pidzero", "{sink}: last record {last}");
        assert!(
            all.iter()
                .any(|r| r["source"] == "pidzero" && r["daemon"] == "s" && r["event"] == "exited"),
            "{sink}: the sleeper's exit"
        );
    }
    assert_eq!(from_stdout.len(), from_file.len());
}

//! `log.compress`: rotated log files are gzipped by a thread of their own.
//! With a daemon writing fast enough to force many rotations, the `.gz`
//! files (checked with `gzip -t` and read with `zcat`), oldest first, then
//! the live file hold every record once and in order; the compression
//! thread is gone once there is nothing left to compress; at exit no
//! half-written `.gz` is left under a final name; a disk that fills up
//! during a compression leaves the plain file and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const MAX_FILES: u32 = 60;

/// `path.n`.
fn rotated(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

fn gz(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.gz", path.display()))
}

/// The text of a gzip file, after `gzip -t` says it is whole; `None` if
/// it was renamed away meanwhile (a rotation).
fn zcat(path: &Path) -> Option<String> {
    let (exit, out, err) = run_cmd(Command::new("gzip").arg("-t").arg(path), DEADLINE);
    if exit.code != Some(0) && !path.exists() {
        return None;
    }
    assert_eq!(exit.code, Some(0), "gzip -t {}: {out}{err}", path.display());
    // Whole output, newlines included (a local file: zcat ends at once).
    let out = Command::new("zcat").arg(path).output().unwrap();
    if !out.status.success() && !path.exists() {
        return None;
    }
    assert!(out.status.success(), "zcat {}: {out:?}", path.display());
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The numbers logged by `source`, across the rotated files (oldest first,
/// each plain or gzipped) and then the live file; `None` when a file moved
/// while they were read (a rotation, a compression ending) or a rotated
/// file is there in both forms.
fn numbers_across_files(path: &Path, source: &str) -> Option<(Vec<u64>, usize)> {
    let mut text = String::new();
    let mut gzipped = 0;
    for n in (1..=MAX_FILES).rev() {
        let plain = rotated(path, n);
        match (plain.exists(), gz(&plain).exists()) {
            (false, false) => {}
            (true, false) => text.push_str(&std::fs::read_to_string(&plain).ok()?),
            (false, true) => {
                text.push_str(&zcat(&gz(&plain))?);
                gzipped += 1;
            }
            // Between a compression's rename and its unlink: look again.
            (true, true) => return None,
        }
    }
    text.push_str(&std::fs::read_to_string(path).ok()?);
    let numbers = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("torn ({e}): {l:?}")))
        .filter(|r| r["source"] == source)
        .map(|r| r["line"].as_str().unwrap().parse().unwrap())
        .collect();
    Some((numbers, gzipped))
}

/// Names of pidzero's threads.
fn threads(pid: i32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_string())
        .collect()
}

fn plain_rotated_files(path: &Path) -> Vec<u32> {
    (1..=MAX_FILES)
        .filter(|&n| rotated(path, n).exists())
        .collect()
}

fn flood_config(dir: &Dir, lines: u64, then: &str) -> PathBuf {
    let program = dir.script("flood.sh", &format!("seq 1 {lines}\n{then}"));
    dir.daemons_value(&json!([{ "name": "flood", "command": [program] }]));
    let file = dir.p("pidzero.log");
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "log_to_stdout": false, "max_file_size": 65536,
             "max_files": {MAX_FILES}, "compress": true, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    file
}

#[test]
fn rotated_files_are_gzipped_and_every_record_is_kept() {
    let dir = Dir::new("gz-flood");
    let lines = 30_000;
    let file = flood_config(&dir, lines, "exec sleep 600");
    let Some(pz) = pz().config_dir(&dir).ns("gz-flood") else {
        return;
    };
    let mut running = pz.spawn();
    // Everything written, every rotated file compressed, the thread gone.
    let done = wait_until(secs(120.0), || {
        // Cheap looks first; the files are read only once all is compressed.
        if !plain_rotated_files(&file).is_empty()
            || threads(running.pid).iter().any(|t| t == "pidzero-gzip")
        {
            return false;
        }
        let Some((numbers, gzipped)) = numbers_across_files(&file, "flood") else {
            return false;
        };
        numbers.len() as u64 == lines
            && gzipped > 10
            && plain_rotated_files(&file).is_empty()
            && !threads(running.pid).iter().any(|t| t == "pidzero-gzip")
    });
    assert!(
        done.is_some(),
        "not all compressed: plain {:?}, threads {:?}\n{}",
        plain_rotated_files(&file),
        threads(running.pid),
        running.dump()
    );
    assert!(!dir.p("pidzero.log.gz.tmp").exists());
    let (numbers, _) = numbers_across_files(&file, "flood").expect("each rotated file in one form");
    assert_eq!(numbers, (1..=lines).collect::<Vec<_>>());
    assert!(
        threads(running.pid).len() <= 3,
        "{:?}",
        threads(running.pid)
    );
    kill(running.pid, libc::SIGTERM);
    assert_eq!(
        running.wait_exit(DEADLINE).status(),
        0,
        "{}",
        running.dump()
    );
}

/// The daemon floods and ends, so pidzero exits while files are still
/// being compressed: what it leaves is whole (each rotated file plain or a
/// valid `.gz`), nothing is lost, and no temporary file stays.
#[test]
fn exit_during_compression_leaves_whole_files() {
    let dir = Dir::new("gz-exit");
    let lines = 30_000;
    let file = flood_config(&dir, lines, "");
    let Some(pz) = pz().config_dir(&dir).ns("gz-exit") else {
        return;
    };
    let mut running = pz.spawn();
    let exit = running.wait_exit(secs(60.0));
    assert_eq!(exit.status(), 0, "{}", running.dump());
    let (numbers, _) = numbers_across_files(&file, "flood").expect("each rotated file in one form");
    assert_eq!(numbers, (1..=lines).collect::<Vec<_>>());
    assert!(!dir.p("pidzero.log.gz.tmp").exists(), "temporary file left");
}

/// A tmpfs with room for the log files but not for a compressed copy of
/// the rotated one: the compression fails with ENOSPC, a `sink_error`
/// event says so, the plain file stays whole and no `.gz` or temporary
/// file is left.
#[test]
fn a_full_disk_during_compression_keeps_the_plain_file() {
    let mnt = Dir::new("gz-full-mnt");
    let dir = Dir::new("gz-full");
    let file = mnt.p("p.log");
    // 64 records of about 1,080 bytes of incompressible base64: 60 fill
    // the 64 KiB file, which rotates; the gzip of it needs ~45 KiB.
    let program = dir.script(
        "d.sh",
        "head -c 48000 /dev/urandom | base64 -w 1000\nexec sleep 600",
    );
    dir.daemons_value(&json!([{ "name": "d", "command": [program] }]));
    dir.config(&format!(
        r#"{{"log": {{"log_to_file": true, "log_to_stdout": true, "max_file_size": 65536,
             "max_files": 3, "compress": true, "file_path": {}}}}}"#,
        js(path_str(&file))
    ));
    let prefix = format!("mount -t tmpfs -o size=100k tmpfs {}", mnt.path.display());
    let Some(pz) = pz().config_dir(&dir).shell_prefix(&prefix).ns("gz-full") else {
        return;
    };
    let mut running = pz.spawn();
    let event = running.wait_event("sink_error", None);
    assert_eq!(event["sink"], "file", "{event}");
    assert!(
        event["error"].as_str().unwrap().contains("No space left"),
        "{event}"
    );
    let plain = rotated(&file, 1);
    assert_eq!(event["path"], path_str(&plain), "{event}");
    // The mount is in pidzero's namespace: look through its root.
    let inside = |p: &Path| PathBuf::from(format!("/proc/{}/root{}", running.pid, p.display()));
    let d_lines = |path: &Path| {
        let text = std::fs::read_to_string(inside(path)).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|r| r["source"] == "d")
            .count()
    };
    let (kept, live) = (d_lines(&plain), d_lines(&file));
    assert!(kept >= 55, "the rotated file is whole: {kept} lines");
    assert_eq!(kept + live, 64, "{kept} + {live}");
    assert!(!inside(&gz(&plain)).exists());
    assert!(!inside(&mnt.p("p.log.gz.tmp")).exists());
    kill(running.pid, libc::SIGTERM);
    assert_eq!(
        running.wait_exit(DEADLINE).status(),
        0,
        "{}",
        running.dump()
    );
}

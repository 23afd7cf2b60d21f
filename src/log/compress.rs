//! `log.compress`: gzip of rotated log files, off the writer's hot path.
//!
//! The writer thread only renames at rotation (as without compression) and
//! queues a job; one worker thread, started when a job comes and ended
//! when the queue is empty (no thread while idle), gzips `file.1` into
//! `file.gz.tmp`, fsyncs it, then renames it to `file.1.gz` and removes
//! `file.1`. A file of pidzero's never holds half a gzip stream under its
//! final name: until the rename the plain file stays, and a failure
//! (disk full) leaves it as it is, reported once per failed file through
//! the report callback (a `sink_error` event).
//!
//! Rotations go on while a file is being compressed: the file moves from
//! `.1` to `.2` and on. The worker finds it again by the number of
//! rotations since its job was queued, counted under [`Names`], a lock that
//! the writer holds while it renames rotated files and the worker holds
//! while it renames its result in place: the two never rename the same
//! names at once, and the worker's final step is a rename and an unlink,
//! so the writer never waits for a compression. A file the rotation
//! dropped meanwhile (past `max_files`) is not compressed.
//!
//! At exit the writer waits for queued and running jobs for at most
//! [`EXIT_WAIT`], then cancels the running one (its `.gz.tmp` is removed)
//! and leaves the files not yet compressed plain.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;

/// How long pidzero waits at exit for compressions under way or queued.
pub const EXIT_WAIT: Duration = Duration::from_secs(3);

/// Bytes read and compressed between two looks at the cancel flag.
const CHUNK: usize = 64 * 1024;

/// The name of the worker thread (seen in `/proc/PID/task/*/comm`).
pub const THREAD_NAME: &str = "pidzero-gzip";

/// Called with the plain file and the error when a compression fails.
pub type Report = Box<dyn Fn(&Path, &io::Error) + Send + Sync>;

/// The rotations done so far; the lock held while rotated files change
/// names. See the module docs.
#[derive(Debug, Default)]
pub struct Names {
    rotations: u64,
}

impl Names {
    /// Counts a rotation: what was `.1` is now `.2`, and a new `.1` exists.
    /// Returns the job for the new `.1`.
    pub fn rotated(&mut self) -> Job {
        self.rotations += 1;
        Job {
            rotation: self.rotations,
        }
    }
}

/// One file to compress: the one that became `.1` at this rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    rotation: u64,
}

impl Job {
    /// Where this job's file is now: `.1` at its rotation, one further for
    /// each rotation since; `None` once past `max_files` (dropped).
    fn index(self, names: &Names, max_files: u32) -> Option<u32> {
        let index = 1 + names.rotations.checked_sub(self.rotation)?;
        u32::try_from(index).ok().filter(|&n| n <= max_files)
    }
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The compressor of one log file: a job queue and its worker thread.
pub struct Compressor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

struct Shared {
    path: PathBuf,
    max_files: u32,
    names: Mutex<Names>,
    state: Mutex<State>,
    /// Signalled when the worker ends.
    ended: Condvar,
    cancel: AtomicBool,
    report: Report,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    running: bool,
}

impl Compressor {
    /// A compressor for the rotated files of `path` (`path.1` …
    /// `path.max_files`); no thread until the first job.
    pub fn new(path: &Path, max_files: u32, report: Report) -> Self {
        Compressor {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                max_files,
                names: Mutex::default(),
                state: Mutex::default(),
                ended: Condvar::new(),
                cancel: AtomicBool::new(false),
                report,
            }),
        }
    }

    /// Whether it compresses the rotated files of `path` kept up to
    /// `max_files` (a reload that keeps both keeps the compressor).
    pub fn serves(&self, path: &Path, max_files: u32) -> bool {
        self.shared.path == path && self.shared.max_files == max_files
    }

    /// The lock to hold while renaming rotated files.
    pub fn names(&self) -> MutexGuard<'_, Names> {
        lock(&self.shared.names)
    }

    /// Queues `job`, starting the worker if none runs. Never waits for a
    /// compression.
    pub fn submit(&self, job: Job) {
        let mut state = lock(&self.shared.state);
        state.queue.push_back(job);
        if state.running {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || work(&shared));
        match spawned {
            Ok(_) => state.running = true,
            Err(error) => {
                state.queue.clear();
                drop(state);
                let plain = with_suffix(&self.shared.path, ".1");
                (self.shared.report)(&plain, &error);
            }
        }
    }

    /// Whether the worker thread runs (tests: no thread while idle).
    pub fn running(&self) -> bool {
        lock(&self.shared.state).running
    }

    /// Waits up to `bound` for the queued jobs; then cancels the one under
    /// way (its temporary file is removed, its plain file stays), drops
    /// those not started, and waits briefly for the worker to stop.
    /// Returns true when every job was done.
    pub fn finish(&self, bound: Duration) -> bool {
        if self.wait_idle(bound) {
            return true;
        }
        self.shared.cancel.store(true, Ordering::Relaxed);
        lock(&self.shared.state).queue.clear();
        self.wait_idle(Duration::from_secs(1));
        false
    }

    /// Waits up to `bound` for the worker to end; true if it did.
    pub fn wait_idle(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        let mut state = lock(&self.shared.state);
        while state.running {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = match self.shared.ended.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.finish(EXIT_WAIT);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The worker: takes jobs until the queue is empty, then ends.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut state = lock(&shared.state);
            match state.queue.pop_front() {
                Some(job) => job,
                None => {
                    state.running = false;
                    shared.ended.notify_all();
                    return;
                }
            }
        };
        if shared.cancel.load(Ordering::Relaxed) {
            continue;
        }
        if let Err((plain, error)) = compress(shared, job) {
            (shared.report)(&plain, &error);
        }
    }
}

/// Compresses the file of `job`; an error comes with the plain file's path.
fn compress(shared: &Shared, job: Job) -> Result<(), (PathBuf, io::Error)> {
    let tmp = with_suffix(&shared.path, ".gz.tmp");
    // Opened under the lock: the name is right at that moment, and the open
    // file stays this file whatever renames follow.
    let (plain, source) = {
        let names = lock(&shared.names);
        let Some(index) = job.index(&names, shared.max_files) else {
            return Ok(());
        };
        let plain = with_suffix(&shared.path, &format!(".{index}"));
        match File::open(&plain) {
            Ok(file) => (plain, file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err((plain, e)),
        }
    };
    let inode = match source.metadata() {
        Ok(m) => (m.dev(), m.ino()),
        Err(e) => return Err((plain, e)),
    };
    match write_gzip(source, &tmp, &shared.cancel) {
        Ok(true) => {}
        Ok(false) => {
            let _ = std::fs::remove_file(&tmp);
            return Ok(());
        }
        Err(error) => {
            let _ = std::fs::remove_file(&tmp);
            return Err((plain, error));
        }
    }
    let names = lock(&shared.names);
    let place = job.index(&names, shared.max_files).and_then(|index| {
        let plain = with_suffix(&shared.path, &format!(".{index}"));
        let same = std::fs::symlink_metadata(&plain)
            .is_ok_and(|m| (m.dev(), m.ino()) == inode && m.file_type().is_file());
        same.then_some(plain)
    });
    let Some(plain) = place else {
        drop(names);
        let _ = std::fs::remove_file(&tmp);
        return Ok(());
    };
    let gz = with_suffix(&plain, ".gz");
    if let Err(error) = std::fs::rename(&tmp, &gz) {
        drop(names);
        let _ = std::fs::remove_file(&tmp);
        return Err((plain, error));
    }
    let removed = std::fs::remove_file(&plain);
    drop(names);
    sync_parent(&shared.path);
    removed.map_err(|e| (plain, e))
}

/// Writes `source` gzipped to `tmp` (created, or truncated if a crash left
/// one, with the source's own permission bits, so the `.gz` is readable by
/// whom the log file was) and fsyncs it. False when cancelled.
fn write_gzip(mut source: File, tmp: &Path, cancel: &AtomicBool) -> io::Result<bool> {
    let mode = std::os::unix::fs::PermissionsExt::mode(&source.metadata()?.permissions()) & 0o777;
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(tmp)?;
    let mut encoder = GzEncoder::new(out, Compression::default());
    let mut buf = vec![0; CHUNK];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let n = match source.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        encoder.write_all(&buf[..n])?;
    }
    let out = encoder.finish()?;
    out.sync_all()?;
    Ok(true)
}

/// Makes the renames in the log file's directory durable (best effort: a
/// failure here loses nothing that is not lost by a crash anyway).
fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Dir;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_job_follows_its_file_through_later_rotations() {
        let mut names = Names::default();
        let job = names.rotated();
        assert_eq!(job.index(&names, 3), Some(1));
        names.rotated();
        assert_eq!(job.index(&names, 3), Some(2));
        names.rotated();
        names.rotated();
        assert_eq!(job.index(&names, 3), None, "dropped past max_files");
    }

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn compresses_the_file_and_removes_the_plain_one() {
        let dir = Dir::new("gz-one");
        let path = dir.p("x.log");
        std::fs::write(dir.p("x.log.1"), "one\ntwo\n").unwrap();
        // The .gz is readable by whom the log file was, no more.
        std::fs::set_permissions(dir.p("x.log.1"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&errors);
        let compressor = Compressor::new(
            &path,
            5,
            Box::new(move |p, e| seen.lock().unwrap().push(format!("{}: {e}", p.display()))),
        );
        let job = compressor.names().rotated();
        compressor.submit(job);
        assert!(compressor.wait_idle(Duration::from_secs(10)));
        assert!(!compressor.running(), "no thread left while idle");
        assert_eq!(gunzip(&dir.p("x.log.1.gz")), "one\ntwo\n");
        let mode = std::fs::metadata(dir.p("x.log.1.gz"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.p("x.log.1").exists());
        assert!(!dir.p("x.log.gz.tmp").exists());
        assert!(errors.lock().unwrap().is_empty());
    }

    /// A temporary file that cannot be created (a directory is in the way)
    /// is reported, and the plain file stays.
    #[test]
    fn a_failure_leaves_the_plain_file_and_is_reported() {
        let dir = Dir::new("gz-fail");
        let path = dir.p("x.log");
        std::fs::write(dir.p("x.log.1"), "kept\n").unwrap();
        std::fs::create_dir(dir.p("x.log.gz.tmp")).unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&errors);
        let compressor = Compressor::new(
            &path,
            5,
            Box::new(move |p, _| seen.lock().unwrap().push(p.to_path_buf())),
        );
        let job = compressor.names().rotated();
        compressor.submit(job);
        assert!(compressor.wait_idle(Duration::from_secs(10)));
        assert_eq!(*errors.lock().unwrap(), [dir.p("x.log.1")]);
        assert_eq!(std::fs::read_to_string(dir.p("x.log.1")).unwrap(), "kept\n");
        assert!(!dir.p("x.log.1.gz").exists());
    }

    /// A file renamed further while it was compressed is found at its new
    /// place; one dropped meanwhile is not compressed.
    #[test]
    fn the_result_goes_where_the_file_is_now() {
        let dir = Dir::new("gz-moved");
        let path = dir.p("x.log");
        std::fs::write(dir.p("x.log.1"), "moved\n").unwrap();
        let compressor = Compressor::new(&path, 2, Box::new(|_, _| {}));
        // The names lock held: the worker waits for it to open the file.
        let mut names = compressor.names();
        let job = names.rotated();
        std::fs::rename(dir.p("x.log.1"), dir.p("x.log.2")).unwrap();
        names.rotated();
        compressor.submit(job);
        drop(names);
        assert!(compressor.wait_idle(Duration::from_secs(10)));
        assert_eq!(gunzip(&dir.p("x.log.2.gz")), "moved\n");
        assert!(!dir.p("x.log.2").exists());

        std::fs::write(dir.p("x.log.1"), "dropped\n").unwrap();
        let mut names = compressor.names();
        let job = names.rotated();
        names.rotated();
        names.rotated();
        compressor.submit(job);
        drop(names);
        assert!(compressor.wait_idle(Duration::from_secs(10)));
        assert!(dir.p("x.log.1").exists(), "not touched");
        assert!(!dir.p("x.log.1.gz").exists());
    }

    /// At exit, a compression still under way past the bound is cancelled:
    /// its temporary file goes, the plain file stays, no `.gz` appears.
    #[test]
    fn finish_cancels_a_long_compression_cleanly() {
        let dir = Dir::new("gz-cancel");
        let path = dir.p("x.log");
        // 32 MiB of varied text: far more than a moment of gzip.
        let mut text = Vec::with_capacity(32 << 20);
        let mut n: u64 = 1;
        while text.len() < 32 << 20 {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.extend_from_slice(format!("record {n:x} {}\n", n >> 7).as_bytes());
        }
        std::fs::write(dir.p("x.log.1"), &text).unwrap();
        let compressor = Compressor::new(&path, 5, Box::new(|_, _| {}));
        let job = compressor.names().rotated();
        compressor.submit(job);
        let started = Instant::now();
        assert!(!compressor.finish(Duration::from_millis(50)), "cancelled");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!compressor.running(), "the worker stopped");
        assert_eq!(std::fs::read(dir.p("x.log.1")).unwrap(), text);
        assert!(!dir.p("x.log.1.gz").exists());
        assert!(!dir.p("x.log.gz.tmp").exists());
    }
}

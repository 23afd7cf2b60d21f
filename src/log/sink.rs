//! Where formatted records go: a raw stdout/stderr fd, and an appended file
//! with size rotation.
//!
//! Both take buffers of whole records (each one line ending in `\n`, since
//! every format escapes newlines), one per formatted batch, and write them
//! with one `writev` where they can: the writer thread never copies records
//! into a buffer of its own. Errors are returned to the writer, which reports them once per
//! failure episode and retries with the next batch; the records of a failed
//! write are not written again (retrying them forever would stall the daemons).
//!
//! pidzero never dies from `SIGPIPE`: the Rust runtime ignores it at startup,
//! so a closed stdout shows up here as `EPIPE`.
//!
//! No sink blocks startup or hangs the exit: the file is opened with
//! `O_NONBLOCK` (a FIFO without a reader then fails with `ENXIO` instead of
//! waiting for one, and is opened again with a backoff, see [`Backoff`]); a
//! write that waits for room (a stdout pipe nobody reads) is given up once
//! the writer is told to give up (see `write_all`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memchr::{memchr, memrchr};

use super::compress::{with_suffix, Compressor};

/// Mode of a newly created log file (before the umask).
pub const FILE_MODE: u32 = 0o640;

/// The first delay before opening a log file again after it could not be
/// opened (a FIFO without a reader yet).
pub const RETRY_FIRST: Duration = Duration::from_millis(250);
/// The longest delay between two attempts to open the log file.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// Delays between attempts to open a sink that cannot be opened: from
/// [`RETRY_FIRST`], doubling up to [`RETRY_MAX`], back to the first after a
/// success. Attempts are only made when there is something to write, so a
/// sink that stays unavailable costs no wake-up of its own.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: RETRY_FIRST }
    }
}

impl Backoff {
    /// The delay before the next attempt, after a failed one.
    pub fn failed(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(RETRY_MAX);
        delay
    }

    pub fn succeeded(&mut self) {
        self.next = RETRY_FIRST;
    }
}

/// Set when pidzero gives up the pending writes at exit: a write that would
/// wait for room fails from then on instead (see `write_all`). Shared by
/// the sinks of one writer and whoever tells it to give up.
pub type GiveUpFlag = Arc<AtomicBool>;

/// The error of a write given up at exit; see [`gave_up`].
#[derive(Debug)]
struct GaveUp;

impl std::fmt::Display for GaveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("gave up: the sink did not take the records before pidzero exited")
    }
}

impl std::error::Error for GaveUp {}

/// True for the error of a write given up at exit.
pub fn gave_up(error: &io::Error) -> bool {
    error.get_ref().is_some_and(|e| e.is::<GaveUp>())
}

/// Writes to fd 1 (or 2) directly: no std lock, no line buffering, one
/// `write` per batch in the common case. The fd is borrowed, never closed.
#[derive(Debug)]
pub struct StdoutSink {
    fd: RawFd,
    /// A previous write failed in the middle of a record: start the next
    /// successful write on a fresh line so later records stay whole.
    torn: bool,
    /// The fd was closed when pidzero started (see [`was_closed_at_start`]):
    /// every write fails with `EBADF` instead of going to `/dev/null`.
    closed: bool,
    /// Once a write has been given up at exit, later ones are too.
    abandoned: bool,
    give_up: GiveUpFlag,
}

impl StdoutSink {
    pub fn new(fd: RawFd) -> Self {
        StdoutSink {
            fd,
            torn: false,
            closed: false,
            abandoned: false,
            give_up: GiveUpFlag::default(),
        }
    }

    /// This sink with `give_up` as the flag that ends a waiting write.
    pub fn with_give_up(mut self, give_up: GiveUpFlag) -> Self {
        self.give_up = give_up;
        self
    }

    /// Marks the fd as closed at start: writes report `EBADF`.
    pub fn closed(mut self) -> Self {
        self.closed = true;
        self
    }

    /// Writes a buffer of whole records.
    pub fn write_records(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_chunks(&[buf])
    }

    /// Writes buffers of whole records, in order.
    pub fn write_chunks(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        if chunks.iter().all(|c| c.is_empty()) {
            return Ok(());
        }
        if self.closed {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if self.abandoned {
            return Err(io::Error::other(GaveUp));
        }
        let result = self.write_unless_abandoned(chunks);
        if result.as_ref().is_err_and(gave_up) {
            self.abandoned = true;
        }
        result
    }

    fn write_unless_abandoned(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        if self.torn {
            write_all(self.fd, &[b"\n"], &self.give_up).map_err(|(_, e)| e)?;
            self.torn = false;
        }
        match write_all(self.fd, chunks, &self.give_up) {
            Ok(_) => Ok(()),
            Err((written, error)) => {
                self.torn = written > 0;
                Err(error)
            }
        }
    }
}

/// Which of fds 1 and 2 were closed when pidzero started.
static CLOSED_AT_START: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Notes which of fds 1 and 2 were closed when pidzero was started (`>&-`);
/// call it first thing in `main`, before anything opens a file.
///
/// The Rust runtime opens `/dev/null` on a closed fd 0, 1 or 2 before
/// `main` (so no file pidzero opens can take that number and receive
/// records by mistake), which would hide a closed stdout: records would go
/// to `/dev/null` without a word. The runtime opens it read-write, while a
/// shell's `>/dev/null` is write-only: that is how a closed fd is told from
/// a chosen `/dev/null`, and the stream sink then reports `EBADF` once.
pub fn note_closed_standard_fds() {
    for (slot, fd) in CLOSED_AT_START.iter().zip([1, 2]) {
        slot.store(opened_by_the_runtime(fd), Ordering::Relaxed);
    }
}

/// Whether `fd` (1 or 2) was found closed by [`note_closed_standard_fds`].
pub fn was_closed_at_start(fd: RawFd) -> bool {
    match fd {
        1 | 2 => CLOSED_AT_START[fd as usize - 1].load(Ordering::Relaxed),
        _ => false,
    }
}

/// True when `fd` is `/dev/null` opened read-write: what the Rust runtime
/// puts on a standard fd that was closed.
fn opened_by_the_runtime(fd: RawFd) -> bool {
    // SAFETY: fcntl and fstat on an fd number, with a zeroed stat to fill.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE != libc::O_RDWR {
        return false;
    }
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return false;
    }
    let null = std::fs::metadata("/dev/null");
    stat.st_mode & libc::S_IFMT == libc::S_IFCHR
        && null.is_ok_and(|m| std::os::unix::fs::MetadataExt::rdev(&m) == stat.st_rdev)
}

/// Appends to a log file (created mode 0640), rotating by size between whole
/// records: `pidzero.log` → `pidzero.log.1` … `.max_files`, the oldest dropped.
///
/// The path may also be a FIFO (a log shipper reads it) or a device: those
/// are never rotated (renaming a FIFO would leave its reader behind). The
/// open never waits: a FIFO without a reader fails with `ENXIO`, and the
/// sink tries again with the next records after a [`Backoff`] delay;
/// records written meanwhile are dropped for this sink (the writer counts
/// them), like those of any failed write.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    /// `None` after an error or during rotation: reopened on the next write.
    file: Option<File>,
    size: u64,
    max_file_size: u64,
    max_files: u32,
    /// The open file is a regular file (only those are rotated).
    regular: bool,
    /// While the path cannot be opened: when to try again, and why it failed.
    retry: Option<(Instant, io::ErrorKind, Option<i32>)>,
    backoff: Backoff,
    /// Once a write has been given up at exit, later ones are too.
    abandoned: bool,
    give_up: GiveUpFlag,
    /// `log.compress`: rotated files are gzipped by its thread.
    compressor: Option<Compressor>,
}

impl FileSink {
    /// Opens (creating) `path` for appending; `max_file_size == 0` never rotates.
    ///
    /// A FIFO without a reader (`ENXIO`) is no error here: the sink starts
    /// closed and opens it once a reader is there. Other errors (a missing
    /// directory, no permission) are returned: they are configuration
    /// mistakes, better reported before anything starts.
    pub fn open(path: &Path, max_file_size: u64, max_files: u32) -> io::Result<Self> {
        let mut sink = FileSink {
            path: path.to_path_buf(),
            file: None,
            size: 0,
            max_file_size,
            max_files,
            regular: true,
            retry: None,
            backoff: Backoff::default(),
            abandoned: false,
            give_up: GiveUpFlag::default(),
            compressor: None,
        };
        match sink.ensure_open() {
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                // The first write tries again at once, and reports it.
                sink.retry = None;
                Ok(sink)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(sink),
        }
    }

    /// This sink with `give_up` as the flag that ends a waiting write.
    pub fn with_give_up(mut self, give_up: GiveUpFlag) -> Self {
        self.give_up = give_up;
        self
    }

    /// Gzips the files rotated from now on with `compressor` (made for this
    /// sink's path and `max_files`); see [`super::compress`].
    pub fn compress_with(&mut self, compressor: Compressor) {
        self.compressor = Some(compressor);
    }

    /// Its compressor, for the sink a reload opens in its place.
    pub fn take_compressor(&mut self) -> Option<Compressor> {
        self.compressor.take()
    }

    /// At exit: waits up to `bound` for the compressions queued or under
    /// way, then cancels them (see [`Compressor::finish`]).
    pub fn finish_compression(&self, bound: Duration) {
        if let Some(compressor) = &self.compressor {
            compressor.finish(bound);
        }
    }

    /// Writes a buffer of whole records, rotating before a record that would
    /// push the file past `max_file_size`. A record larger than the limit is
    /// written whole into a fresh file.
    pub fn write_records(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.ensure_open()?;
            let n = self.fitting_prefix(buf);
            if n == 0 {
                self.rotate()?;
                continue;
            }
            self.append(&[&buf[..n]])?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Writes buffers of whole records, in order: all with one `writev` when
    /// they fit in the current file, else buffer by buffer, rotating between
    /// records.
    pub fn write_chunks(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        if total == 0 {
            return Ok(());
        }
        if self.abandoned {
            return Err(io::Error::other(GaveUp));
        }
        let result = self.write_unless_abandoned(chunks, total);
        if result.as_ref().is_err_and(gave_up) {
            self.abandoned = true;
        }
        result
    }

    fn write_unless_abandoned(&mut self, chunks: &[&[u8]], total: usize) -> io::Result<()> {
        self.ensure_open()?;
        if !self.rotates() || self.size + total as u64 <= self.max_file_size {
            return self.append(chunks);
        }
        chunks
            .iter()
            .try_for_each(|chunk| self.write_records(chunk))
    }

    /// Closes the file and opens its path again, now (creating it): after
    /// an outside tool (logrotate) renamed the file away, the next records
    /// go to a new file at the path. An open that fails is returned, and
    /// retried with the next records as after any failed open.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.file = None;
        self.retry = None;
        self.backoff.succeeded();
        self.ensure_open()
    }

    /// The path this sink writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rotation is on (`max_file_size` above 0) and applies to this file.
    fn rotates(&self) -> bool {
        self.max_file_size > 0 && self.regular
    }

    /// Length of the longest prefix of whole records that may go into the
    /// current file; 0 means rotate first.
    fn fitting_prefix(&self, buf: &[u8]) -> usize {
        if !self.rotates() {
            return buf.len();
        }
        let room = self.max_file_size.saturating_sub(self.size);
        if buf.len() as u64 <= room {
            return buf.len();
        }
        let room = room as usize; // < buf.len(), so it fits in usize
        if let Some(newline) = memrchr(b'\n', &buf[..room]) {
            return newline + 1;
        }
        if self.size > 0 {
            return 0;
        }
        memchr(b'\n', buf).map_or(buf.len(), |newline| newline + 1)
    }

    /// One append of `chunks` back to back; on a failure midway, cuts the
    /// file back so that no torn record stays in it, and drops the handle so
    /// the next write reopens it.
    fn append(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        let Some(file) = self.file.as_ref() else {
            return Err(io::Error::other("log file is not open"));
        };
        match write_all(file.as_raw_fd(), chunks, &self.give_up) {
            Ok(written) => {
                self.size += written as u64;
                Ok(())
            }
            Err((written, error)) => {
                if written > 0 && file.set_len(self.size).is_err() {
                    self.size += written as u64;
                }
                self.file = None;
                Err(error)
            }
        }
    }

    /// Opens the path if it is not open, unless an earlier attempt failed
    /// less than a backoff delay ago: then fails at once with that error.
    fn ensure_open(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some((at, kind, errno)) = self.retry {
            if now < at {
                return Err(match errno {
                    Some(errno) => io::Error::from_raw_os_error(errno),
                    None => io::Error::from(kind),
                });
            }
        }
        match self.open_now() {
            Ok(()) => {
                self.retry = None;
                self.backoff.succeeded();
                Ok(())
            }
            Err(e) => {
                self.retry = Some((now + self.backoff.failed(), e.kind(), e.raw_os_error()));
                Err(e)
            }
        }
    }

    /// One attempt to open the path, without waiting: `O_NONBLOCK` makes a
    /// FIFO without a reader fail with `ENXIO` (a blocking open would wait
    /// for one, deaf to signals). The flag stays on: a write that finds a
    /// FIFO full waits for room in `poll`, where giving up can end it.
    fn open_now(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)?;
        let metadata = file.metadata()?;
        self.regular = metadata.file_type().is_file();
        self.size = if self.regular { metadata.len() } else { 0 };
        self.file = Some(file);
        Ok(())
    }

    /// Shifts `path.N-1` → `path.N` … `path` → `path.1` (the rename over
    /// `path.max_files` drops the oldest), then opens a fresh `path`.
    ///
    /// Only the run of rotated files that exist is shifted (see
    /// [`rotation_renames`]): a rotation costs O(files that exist), never
    /// O(`max_files`), which a large `max_files` would turn into minutes
    /// with the writer (and so the daemons) blocked.
    ///
    /// With compression, `path.N.gz` files shift along with the plain ones
    /// (a file being compressed is plain until its `.gz` is complete), under
    /// the compressor's lock on the names, and the new `path.1` is queued
    /// for compression: the writer never waits for gzip.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.max_files == 0 {
            ignore_missing(std::fs::remove_file(&self.path))?;
        } else {
            let mut names = self.compressor.as_ref().map(Compressor::names);
            let gz = names.is_some();
            let renames = rotation_renames(self.max_files, |n| {
                std::fs::symlink_metadata(self.rotated(n)).is_ok()
                    || (gz && std::fs::symlink_metadata(self.rotated_gz(n)).is_ok())
            });
            for (from, to) in renames {
                if gz {
                    if to == self.max_files {
                        // Whichever form the oldest has, it goes.
                        ignore_missing(std::fs::remove_file(self.rotated(to)))?;
                        ignore_missing(std::fs::remove_file(self.rotated_gz(to)))?;
                    }
                    ignore_missing(std::fs::rename(self.rotated_gz(from), self.rotated_gz(to)))?;
                }
                ignore_missing(std::fs::rename(self.rotated(from), self.rotated(to)))?;
            }
            if gz && self.max_files == 1 {
                // Nothing shifts: the new `.1` replaces the old, in either form.
                ignore_missing(std::fs::remove_file(self.rotated_gz(1)))?;
            }
            ignore_missing(std::fs::rename(&self.path, self.rotated(1)))?;
            let job = names.as_mut().map(|names| names.rotated());
            drop(names);
            if let (Some(compressor), Some(job)) = (&self.compressor, job) {
                compressor.submit(job);
            }
        }
        self.ensure_open()
    }

    /// `path.n.gz`: the compressed form of `path.n`.
    fn rotated_gz(&self, n: u32) -> PathBuf {
        with_suffix(&self.path, &format!(".{n}.gz"))
    }

    /// `path` with `.n` appended to its file name.
    fn rotated(&self, n: u32) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }
}

/// The renames `(n, n + 1)` that make room for a new `path.1`, in the order
/// to do them: the run of rotated files `1, 2, …` that exist moves up by
/// one, up to `max_files` (whose file the last rename replaces, dropping
/// the oldest). Files past the first missing index stay where they are: the
/// gap takes the shift. Asks `exists` at most once per existing file plus
/// once, so the cost follows the files on disk, not `max_files`.
fn rotation_renames(max_files: u32, exists: impl Fn(u32) -> bool) -> Vec<(u32, u32)> {
    // The first index that is free, or `max_files` when all below it exist.
    let mut top = 1;
    while top < max_files && exists(top) {
        top += 1;
    }
    (1..top).rev().map(|n| (n, n + 1)).collect()
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Most buffers given to one `writev` (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// `writev(2)` until all of `chunks` is written, retrying on `EINTR` and
/// waiting with `poll` on `EAGAIN` (an inherited fd may be non-blocking).
/// Returns the bytes written; on error, how many did get written.
///
/// Once `give_up` is set, a write that cannot complete at once (`EAGAIN`,
/// or interrupted, or partial: the writer thread is interrupted by a signal
/// when pidzero gives up, see `writer::GiveUp`) fails with the [`GaveUp`]
/// error instead of waiting for room.
fn write_all(
    fd: RawFd,
    chunks: &[&[u8]],
    give_up: &AtomicBool,
) -> Result<usize, (usize, io::Error)> {
    let mut written = 0;
    let mut first = true;
    // The first chunk not yet written in full, and how much of it is.
    let (mut index, mut offset) = (0, 0);
    let mut iovecs = Vec::with_capacity(chunks.len().min(MAX_IOVECS));
    loop {
        while index < chunks.len() && offset == chunks[index].len() {
            index += 1;
            offset = 0;
        }
        if index == chunks.len() {
            return Ok(written);
        }
        if !first && give_up.load(Ordering::Relaxed) {
            return Err((written, io::Error::other(GaveUp)));
        }
        first = false;
        iovecs.clear();
        for (k, chunk) in chunks[index..].iter().take(MAX_IOVECS).enumerate() {
            let part = if k == 0 { &chunk[offset..] } else { chunk };
            iovecs.push(libc::iovec {
                iov_base: part.as_ptr().cast_mut().cast(),
                iov_len: part.len(),
            });
        }
        // SAFETY: every iovec points into a slice that outlives the call, and
        // `writev` only reads from them.
        let n = unsafe { libc::writev(fd, iovecs.as_ptr(), iovecs.len() as libc::c_int) };
        if n > 0 {
            let mut n = n as usize;
            written += n;
            while n > 0 {
                let step = n.min(chunks[index].len() - offset);
                offset += step;
                n -= step;
                if offset == chunks[index].len() {
                    index += 1;
                    offset = 0;
                }
            }
            continue;
        }
        let error = if n == 0 {
            io::Error::from(io::ErrorKind::WriteZero)
        } else {
            io::Error::last_os_error()
        };
        match error.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => wait_writable(fd),
            _ => return Err((written, error)),
        }
    }
}

/// Blocks until `fd` is writable (or in error, which the next write reports).
fn wait_writable(fd: RawFd) {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd; EINTR simply returns to the write loop.
    unsafe { libc::poll(&mut pollfd, 1, -1) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Dir;
    use std::os::unix::fs::PermissionsExt;

    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line[6..].trim(), 8).unwrap()
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn file_rotates_between_whole_records() {
        let dir = Dir::new("rotate");
        let path = dir.p("pidzero.log");
        let mut sink = FileSink::open(&path, 10, 2).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE & !umask());
        // Records of 4 bytes: two fit in 10 bytes, the third rotates.
        sink.write_records(b"r01\nr02\nr03\n").unwrap();
        assert_eq!(read(&path), "r03\n");
        assert_eq!(read(&dir.p("pidzero.log.1")), "r01\nr02\n");
        sink.write_records(b"r04\nr05\nr06\nr07\n").unwrap();
        assert_eq!(read(&path), "r07\n");
        assert_eq!(read(&dir.p("pidzero.log.1")), "r05\nr06\n");
        assert_eq!(read(&dir.p("pidzero.log.2")), "r03\nr04\n");
        assert!(!dir.p("pidzero.log.3").exists(), "oldest must be dropped");
        // A record larger than the limit goes whole into a fresh file.
        sink.write_records(b"a-very-long-record\nr08\n").unwrap();
        assert_eq!(read(&path), "r08\n");
        assert_eq!(read(&dir.p("pidzero.log.1")), "a-very-long-record\n");
        assert_eq!(read(&dir.p("pidzero.log.2")), "r07\n");
    }

    /// The text of `path` whether plain or gzipped, and whether it was
    /// gzipped; `None` if neither exists (both at once is a failure).
    fn rotated_text(path: &Path) -> Option<(String, bool)> {
        let gz = with_suffix(path, ".gz");
        match (path.exists(), gz.exists()) {
            (false, false) => None,
            (true, false) => Some((read(path), false)),
            (false, true) => {
                let mut text = String::new();
                let file = File::open(&gz).unwrap();
                std::io::Read::read_to_string(
                    &mut flate2::read::MultiGzDecoder::new(file),
                    &mut text,
                )
                .unwrap();
                Some((text, true))
            }
            (true, true) => panic!("both {} and its .gz exist", path.display()),
        }
    }

    /// Many rotations while the compressor works: each rotated file ends up
    /// gzipped once the worker is idle, and the rotated files, oldest
    /// first, then the live one hold every record once, in order.
    #[test]
    fn compressed_rotations_keep_every_record_in_order() {
        let dir = Dir::new("gz-rotate");
        let path = dir.p("pidzero.log");
        let max_files = 40;
        let mut sink = FileSink::open(&path, 2000, max_files).unwrap();
        sink.compress_with(Compressor::new(
            &path,
            max_files,
            Box::new(|p, e| panic!("compressing {}: {e}", p.display())),
        ));
        let records: Vec<String> = (0..3000).map(|i| format!("record {i:05}\n")).collect();
        for (k, batch) in records.chunks(7).enumerate() {
            let chunks: Vec<&[u8]> = batch.iter().map(|r| r.as_bytes()).collect();
            sink.write_chunks(&chunks).unwrap();
            if k % 50 == 0 {
                // Rotations both while the worker runs and after it is done.
                let compressor = sink.compressor.as_ref().unwrap();
                assert!(compressor.wait_idle(Duration::from_secs(10)));
            }
        }
        let compressor = sink.compressor.as_ref().unwrap();
        assert!(compressor.wait_idle(Duration::from_secs(20)));
        assert!(!compressor.running(), "no compression thread while idle");
        let mut text = String::new();
        for n in (1..=max_files).rev() {
            if let Some((rotated, gzipped)) = rotated_text(&sink.rotated(n)) {
                assert!(gzipped, "file {n} was left plain");
                text.push_str(&rotated);
            }
        }
        assert!(!dir.p("pidzero.log.gz.tmp").exists());
        text.push_str(&read(&path));
        assert_eq!(text, records.concat());
    }

    /// `max_files` counts compressed files: the oldest, plain or gzipped,
    /// is dropped, and no index holds both forms.
    #[test]
    fn compressed_rotations_keep_max_files() {
        let dir = Dir::new("gz-keep");
        let path = dir.p("pidzero.log");
        let mut sink = FileSink::open(&path, 8, 3).unwrap();
        sink.compress_with(Compressor::new(&path, 3, Box::new(|_, _| {})));
        for i in 0..30 {
            sink.write_records(format!("r{i:02}\n").as_bytes()).unwrap();
            if i % 4 == 0 {
                // Now and then let the worker catch up, so that both forms
                // get shifted and dropped.
                sink.compressor
                    .as_ref()
                    .unwrap()
                    .wait_idle(Duration::from_secs(10));
            }
        }
        let compressor = sink.compressor.as_ref().unwrap();
        assert!(compressor.wait_idle(Duration::from_secs(10)));
        let texts: Vec<String> = (1..=3)
            .map(|n| rotated_text(&sink.rotated(n)).expect("rotated file").0)
            .collect();
        assert_eq!(texts, ["r26\nr27\n", "r24\nr25\n", "r22\nr23\n"]);
        assert!(rotated_text(&sink.rotated(4)).is_none(), "oldest dropped");
        assert_eq!(read(&path), "r28\nr29\n");

        // With one file kept, the new `.1` replaces a gzipped old one.
        let path = dir.p("one.log");
        let mut sink = FileSink::open(&path, 4, 1).unwrap();
        sink.compress_with(Compressor::new(&path, 1, Box::new(|_, _| {})));
        sink.write_records(b"r1\nr2\n").unwrap();
        let compressor = sink.compressor.as_ref().unwrap();
        assert!(compressor.wait_idle(Duration::from_secs(10)));
        assert_eq!(rotated_text(&sink.rotated(1)), Some(("r1\n".into(), true)));
        sink.write_records(b"r3\n").unwrap();
        // Looked at with the names held: the worker cannot rename meanwhile.
        let names = sink.compressor.as_ref().unwrap().names();
        assert_eq!(rotated_text(&sink.rotated(1)).unwrap().0, "r2\n");
        drop(names);
    }

    #[test]
    fn rotation_shifts_only_the_files_that_exist() {
        let asked = std::cell::Cell::new(0u32);
        let present = |files: &'static [u32]| {
            let asked = &asked;
            move |n: u32| {
                asked.set(asked.get() + 1);
                files.contains(&n)
            }
        };
        // A huge maximum with two files: two renames, three questions.
        assert_eq!(
            rotation_renames(100_000_000, present(&[1, 2])),
            [(2, 3), (1, 2)]
        );
        assert_eq!(asked.get(), 3);
        // No rotated file yet: nothing to shift.
        assert_eq!(rotation_renames(u32::MAX, present(&[])), []);
        // A gap takes the shift; files past it stay.
        assert_eq!(rotation_renames(10, present(&[1, 3, 4])), [(1, 2)]);
        // All present: the last rename replaces (drops) the oldest.
        assert_eq!(rotation_renames(3, present(&[1, 2, 3])), [(2, 3), (1, 2)]);
        assert_eq!(rotation_renames(1, present(&[1])), []);
    }

    /// With the largest `max_files` the type allows, rotations on disk end
    /// at once and keep the files in order.
    #[test]
    fn rotation_with_a_huge_max_files_is_immediate() {
        let dir = Dir::new("huge-max");
        let path = dir.p("pidzero.log");
        let mut sink = FileSink::open(&path, 4, u32::MAX).unwrap();
        let started = std::time::Instant::now();
        sink.write_records(b"r01\nr02\nr03\nr04\n").unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(read(&path), "r04\n");
        assert_eq!(read(&dir.p("pidzero.log.1")), "r03\n");
        assert_eq!(read(&dir.p("pidzero.log.3")), "r01\n");
        assert!(!dir.p("pidzero.log.4").exists());
    }

    #[test]
    fn file_appends_to_existing_and_never_rotates_at_zero() {
        let dir = Dir::new("append");
        let path = dir.p("pidzero.log");
        std::fs::write(&path, "old\n").unwrap();
        let mut sink = FileSink::open(&path, 0, 5).unwrap();
        for _ in 0..100 {
            sink.write_records(b"0123456789\n").unwrap();
        }
        assert_eq!(read(&path).len(), 4 + 1100);
        assert!(!dir.p("pidzero.log.1").exists());
    }

    /// `reopen` opens the path again at once: a renamed-away file keeps
    /// what was written before, the new one gets what follows; a path that
    /// cannot be opened is an error now and retried by later writes.
    #[test]
    fn reopen_opens_the_path_again() {
        let dir = Dir::new("sink-reopen");
        let path = dir.p("out.log");
        let mut sink = FileSink::open(&path, 0, 1).unwrap();
        sink.write_records(b"one\n").unwrap();
        std::fs::rename(&path, dir.p("out.log.1")).unwrap();
        sink.write_records(b"two\n").unwrap();
        sink.reopen().unwrap();
        assert_eq!(read(&path), "");
        sink.write_records(b"three\n").unwrap();
        assert_eq!(read(&dir.p("out.log.1")), "one\ntwo\n");
        assert_eq!(read(&path), "three\n");
        assert_eq!(sink.path(), path);

        let gone = dir.p("gone");
        std::fs::create_dir(&gone).unwrap();
        let inner = gone.join("x.log");
        let mut sink = FileSink::open(&inner, 0, 1).unwrap();
        std::fs::remove_file(&inner).unwrap();
        std::fs::remove_dir(&gone).unwrap();
        assert!(sink.reopen().is_err());
        std::fs::create_dir(&gone).unwrap();
        // Retried after the backoff delay, by a later write.
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.write_records(b"back\n").is_err() {
            assert!(Instant::now() < deadline, "never reopened");
            std::thread::sleep(RETRY_FIRST / 5);
        }
        assert_eq!(read(&inner), "back\n");
    }

    #[test]
    fn file_reopens_after_removal() {
        let dir = Dir::new("reopen");
        let path = dir.p("pidzero.log");
        let mut sink = FileSink::open(&path, 100, 1).unwrap();
        sink.write_records(b"one\n").unwrap();
        // An error drops the handle; the next write opens the path again.
        sink.file = None;
        std::fs::remove_file(&path).unwrap();
        sink.write_records(b"two\n").unwrap();
        assert_eq!(read(&path), "two\n");
    }

    /// More buffers than one `writev` takes, and more bytes than the pipe
    /// holds (so writes are partial): everything arrives once, in order.
    #[test]
    fn chunks_are_written_whole_and_in_order() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut File::from(read_end), &mut got).unwrap();
            got
        });
        let texts: Vec<Vec<u8>> = (0..3000)
            .map(|i| format!("record {i} {}\n", "x".repeat(i % 700)).into_bytes())
            .collect();
        let chunks: Vec<&[u8]> = texts.iter().map(|t| &t[..]).collect();
        let mut sink = StdoutSink::new(write_end.as_raw_fd());
        sink.write_chunks(&chunks).unwrap();
        sink.write_chunks(&[b"", b"last\n", b""]).unwrap();
        drop(write_end);
        let mut expected = texts.concat();
        expected.extend_from_slice(b"last\n");
        assert_eq!(reader.join().unwrap(), expected);
    }

    #[test]
    fn file_chunks_rotate_between_chunks_when_they_do_not_fit() {
        let dir = Dir::new("chunks");
        let path = dir.p("pidzero.log");
        let mut sink = FileSink::open(&path, 12, 1).unwrap();
        sink.write_chunks(&[b"r01\n", b"r02\n"]).unwrap();
        assert_eq!(read(&path), "r01\nr02\n");
        sink.write_chunks(&[b"r03\nr04\n", b"r05\n"]).unwrap();
        assert_eq!(read(&path), "r04\nr05\n");
        assert_eq!(read(&dir.p("pidzero.log.1")), "r01\nr02\nr03\n");
    }

    #[test]
    fn stdout_sink_writes_to_fd_and_reports_epipe() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut sink = StdoutSink::new(write_end.as_raw_fd());
        sink.write_records(b"hello\n").unwrap();
        let mut buf = [0u8; 16];
        let n = nix::unistd::read(&read_end, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        drop(read_end);
        // SAFETY: ignoring SIGPIPE, as the Rust runtime does for pidzero.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let error = sink.write_records(b"lost\n").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EPIPE));
        assert!(
            sink.write_records(b"again\n").is_err(),
            "later writes are retried"
        );
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_starts_over_after_a_success() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..8).map(|_| backoff.failed()).collect();
        assert_eq!(delays[0], RETRY_FIRST);
        assert_eq!(delays[1], RETRY_FIRST * 2);
        assert_eq!(delays[2], RETRY_FIRST * 4);
        assert_eq!(delays[7], RETRY_MAX);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        backoff.succeeded();
        assert_eq!(backoff.failed(), RETRY_FIRST);
    }

    pub(crate) fn mkfifo(path: &Path) {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    /// A FIFO without a reader neither blocks the open nor fails it; writes
    /// fail with ENXIO until a reader is there (no new attempt before the
    /// backoff delay), then records flow; a FIFO is never rotated.
    #[test]
    fn fifo_without_reader_opens_once_a_reader_is_there() {
        let dir = Dir::new("fifo");
        let path = dir.p("pidzero.log");
        mkfifo(&path);
        let started = std::time::Instant::now();
        let mut sink = FileSink::open(&path, 4, 5).unwrap();
        let error = sink.write_records(b"lost\n").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENXIO));
        assert!(started.elapsed() < Duration::from_secs(2));
        let (retry_at, ..) = sink.retry.expect("a retry is planned");
        assert!(retry_at > std::time::Instant::now());
        // A reader comes; before the delay is over the sink does not look.
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let error = sink.write_records(b"early\n").unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENXIO));
        // Once the delay is over, the next write opens it.
        sink.retry = sink.retry.map(|(_, kind, errno)| (started, kind, errno));
        sink.write_records(b"r01\nr02\n").unwrap();
        sink.write_chunks(&[b"r03\n", b"r04\n"]).unwrap();
        let mut got = [0u8; 64];
        let n = nix::unistd::read(&reader, &mut got).unwrap();
        assert_eq!(&got[..n], b"r01\nr02\nr03\nr04\n");
        assert!(!dir.p("pidzero.log.1").exists(), "a FIFO is not rotated");
        let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
    }

    /// Other open errors are configuration mistakes: reported at once.
    #[test]
    fn a_missing_directory_is_still_an_open_error() {
        let dir = Dir::new("nodir");
        let error = FileSink::open(&dir.p("no/such/dir.log"), 0, 1).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    /// Once giving up is asked, a write that finds no room fails at once
    /// (here on a non-blocking pipe, so nothing has to interrupt it), and
    /// every later write to that sink too, without touching the fd.
    #[test]
    fn a_write_waiting_for_room_is_given_up() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        // SAFETY: fcntl on a pipe fd this test owns.
        unsafe { libc::fcntl(write_end.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        let flag = GiveUpFlag::default();
        let mut sink = StdoutSink::new(write_end.as_raw_fd()).with_give_up(Arc::clone(&flag));
        let record = [b'x'; 1023]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>();
        flag.store(true, Ordering::Relaxed);
        // Room for some records, then none: the rest is given up.
        let chunks: Vec<&[u8]> = (0..1000).map(|_| &record[..]).collect();
        let error = sink.write_chunks(&chunks).unwrap_err();
        assert!(gave_up(&error), "{error}");
        drop(read_end);
        let error = sink.write_records(b"later\n").unwrap_err();
        assert!(gave_up(&error), "no write after giving up: {error}");
    }
}

//! One task per daemon pipe: read, frame, send to the writer.
//!
//! The task waits in `send_lines` when the writer is behind; it then stops
//! reading, the pipe fills and the daemon blocks on its write. That is how
//! nothing is dropped with bounded memory.
//!
//! The runtime steers each pump through its [`PumpControl`]: it opens the
//! pump once the records that must come before the instance's output
//! (its `started`, a previous instance's `exited`) are on their way, asks it
//! to hand over what its pipe holds when the daemon is reaped (so the
//! `exited` record can follow the daemon's last lines), and tells it to
//! drain when pidzero exits.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{oneshot, watch, Notify};

use super::framer::Framer;
use super::handle::LogHandle;
use super::record::{timestamp_now, LineBatch, Stream};

/// Bytes read from a pipe at once (the default Linux pipe capacity).
pub const READ_BYTES: usize = 64 * 1024;

/// Lines sent in one batch at most: a read with more (short lines) is sent
/// as several batches, see [`LineBatch::into_pieces`], and the next reads of
/// that pipe are made smaller, down to [`MIN_READ_BYTES`], so that they hold
/// about this many. A read of 64 KiB of lines of 100 bytes is about 650
/// lines, one batch.
pub const BATCH_LINES: usize = 1024;

/// The smallest read a pipe of short lines is given (1,024 empty lines).
pub const MIN_READ_BYTES: usize = 1024;

/// How the runtime steers one pump; made with [`PumpControl::new`], which
/// also gives the runtime's ends.
pub struct PumpControl {
    /// Turns true when pidzero exits: read what the pipe holds and stop.
    drain: watch::Receiver<bool>,
    /// Requests to hand over what the pipe holds now ([`Flusher::flush`]).
    flushes: FlushRequests,
    /// Fired (or dropped) when this pump may send its first lines.
    open: oneshot::Receiver<()>,
}

/// The runtime's end of a pump's flush requests (see [`Flusher::flush`]).
pub struct Flusher(Arc<FlushQueue>);

/// The flush requests of one pump, shared by its [`Flusher`] and its
/// [`FlushRequests`]: a queue under a lock and a wake-up.
///
/// Why not a channel: every daemon has one per pipe for its whole life, and
/// an unbounded tokio channel costs about 800 bytes before its first
/// message (its cache-padded state and a first block of 32 slots), that is
/// 1.6 KiB of every idle daemon's memory; this costs about 100. Requests are
/// rare (one per pipe when its daemon is reaped).
struct FlushQueue {
    /// `None` once the pump has ended: a request is then dropped at once,
    /// which completes its receiver (with an error).
    requests: Mutex<Option<VecDeque<oneshot::Sender<()>>>>,
    /// Wakes the pump when a request is queued.
    queued: Notify,
}

impl FlushQueue {
    fn lock(&self) -> MutexGuard<'_, Option<VecDeque<oneshot::Sender<()>>>> {
        // The queue stays consistent whatever panicked while holding it.
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pump's end of its flush requests; dropping it (the pump has ended)
/// drops the requests not answered and refuses the next ones, as the
/// receiving end of a channel would.
struct FlushRequests(Arc<FlushQueue>);

impl FlushRequests {
    /// The next request, oldest first; waits until there is one (forever
    /// once the [`Flusher`] is gone). Cancel-safe: a request is taken only
    /// in the poll that returns it.
    async fn next(&self) -> oneshot::Sender<()> {
        loop {
            if let Some(done) = self.0.lock().as_mut().and_then(VecDeque::pop_front) {
                return done;
            }
            // A request queued since the check left a permit: no wake-up is lost.
            self.0.queued.notified().await;
        }
    }
}

impl Drop for FlushRequests {
    fn drop(&mut self) {
        let unanswered = self.0.lock().take();
        drop(unanswered);
    }
}

impl PumpControl {
    /// A control for a new pump, with the [`Flusher`] that asks it to hand
    /// over its pipe's contents and the sender that opens it.
    pub fn new(drain: watch::Receiver<bool>) -> (PumpControl, Flusher, oneshot::Sender<()>) {
        let queue = Arc::new(FlushQueue {
            requests: Mutex::new(Some(VecDeque::new())),
            queued: Notify::new(),
        });
        let (open_tx, open) = oneshot::channel();
        let control = PumpControl {
            drain,
            flushes: FlushRequests(Arc::clone(&queue)),
            open,
        };
        (control, Flusher(queue), open_tx)
    }
}

impl Flusher {
    /// Asks the pump to read the bytes its pipe holds now and hand their
    /// lines to the log channel; the receiver completes (with `Ok` or, when
    /// the pump has ended, with an error) once they are handed over.
    ///
    /// Called when the daemon's main process has been reaped: all it wrote is
    /// then in the pipe, so this covers its last lines whoever else (a
    /// grandchild) still holds the write end, and takes no longer than those
    /// bytes take to be read and accepted by the writer.
    pub fn flush(&self) -> oneshot::Receiver<()> {
        let (done, handed_over) = oneshot::channel();
        // A pump that has ended drops the request, which completes `handed_over`.
        if let Some(requests) = self.0.lock().as_mut() {
            requests.push_back(done);
            self.0.queued.notify_one();
        }
        handed_over
    }
}

/// Forwards the lines of one daemon stream to the writer until EOF, or until
/// the control's `drain` turns true (pidzero is exiting and something outside
/// the daemon may still hold the write end): then it reads what is already
/// in the pipe, emits the unterminated tail and returns.
///
/// It reads nothing before its control is opened: the daemon waits on a full
/// pipe meanwhile, which keeps memory bounded and its output after the
/// records of its start.
///
/// A pipe that cannot be made non-blocking or registered with the runtime is
/// dropped (closing it) rather than read with blocking calls that would stall
/// the control loop; neither happens with a real pipe.
///
/// The pump's state is built here, before the future: moved into it inside
/// an async fn, the arguments would be held twice (as arguments and as the
/// state) in a future that lives as long as its daemon.
pub fn pump(
    fd: OwnedFd,
    source: Arc<str>,
    stream: Stream,
    log: LogHandle,
    control: PumpControl,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let max_line_bytes = log.max_line_bytes();
    let mut pump = Pump {
        framer: Framer::new(max_line_bytes),
        batch: LineBatch::new(source, stream, [b'0'; 24]),
        buffer_size: max_line_bytes + 1 + READ_BYTES,
        read_bytes: READ_BYTES,
        log,
    };
    let mut control = control;
    // An async block, not an async fn: an async fn's arguments are copied
    // into locals, the block uses what it captured in place.
    async move {
        if set_nonblocking(fd.as_raw_fd()).is_err() {
            return;
        }
        // Dropped unfired (the runtime gave up on ordering at exit): open too.
        let _ = (&mut control.open).await;
        // SAFETY: an `OwnedFd` is a valid open fd, owned (so kept open and
        // unchanged) by the `AsyncFd` for its whole life.
        let Ok(pipe) = (unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }) else {
            return;
        };
        pump.batch = pump.fresh_batch();
        // Every await below that sends lines goes through a box: this future
        // lives for as long as its daemon, for each of its pipes, and sized for
        // the deepest of them (forward -> send -> the writer's permit) it was
        // 1.3 KiB, 2.6 KiB of every idle daemon. Boxed, those states take memory
        // only while lines are on their way (one small allocation per read,
        // nothing beside the per-line work).
        let mut watching = true;
        loop {
            if watching && *control.drain.borrow_and_update() {
                Box::pin(pump.drain(pipe.get_ref().as_raw_fd())).await;
                break;
            }
            let room = pump.clear();
            tokio::select! {
                // First: a flush asked for while a read was also ready must not
                // wait behind reads the pipe's other writers keep feeding.
                biased;
                done = control.flushes.next() => {
                    let ended = Box::pin(pump.flush(pipe.get_ref().as_raw_fd())).await;
                    if ended {
                        Box::pin(pump.finish()).await;
                    }
                    let _ = done.send(());
                    if ended {
                        return;
                    }
                }
                read = read_some(&pipe, &mut pump, room) => match read {
                    Some(n) => Box::pin(pump.forward(n)).await,
                    None => break,
                },
                changed = control.drain.changed(), if watching => {
                    // The sender is gone: nobody will ask to drain; read to EOF.
                    watching = changed.is_ok();
                }
            }
        }
        Box::pin(pump.finish()).await;
        // Flushes asked for meanwhile are answered when `flushes` drops here:
        // everything is handed over.
    }
}

/// The state of one pipe's pump, apart from the pipe itself.
struct Pump {
    framer: Framer,
    /// The batch being read into.
    batch: LineBatch,
    /// Room for the carry and one read, in every batch's buffer.
    buffer_size: usize,
    /// The size of the next read: [`READ_BYTES`], less while the daemon's
    /// lines are short (see [`BATCH_LINES`]).
    read_bytes: usize,
    log: LogHandle,
}

impl Pump {
    /// Frames the `n` bytes just read into the batch's buffer (after room for
    /// the carry) under one timestamp, and sends them.
    async fn forward(&mut self, n: usize) {
        self.batch.timestamp = timestamp_now();
        // SAFETY: `read_into` wrote `n` bytes after `carry_len()` bytes of room.
        unsafe { self.framer.frame_read(&mut self.batch, n) };
        self.read_bytes = next_read_bytes(self.read_bytes, n, self.batch.lines.len());
        let batch = self.next_batch();
        self.send(batch).await;
        // One read per turn: while a daemon floods its pipe, the other
        // pipes, the API's connections and the control loop (signals,
        // reaping) get the thread between two reads, not after tokio's
        // budget of up to 128 of them.
        tokio::task::yield_now().await;
    }

    /// Reads the bytes the pipe holds now, then once more to see whether
    /// the stream ended, without waiting for more; returns true at EOF (or
    /// on a read error: the stream is over either way).
    ///
    /// Counting bounds the work: after the first read that finds bytes,
    /// what is still in the pipe (`FIONREAD`) is all that is read, so a
    /// grandchild that keeps writing to the pipe cannot keep this going,
    /// and one that merely holds it open ends it at the first empty read.
    /// The count comes after that first read, not before it: the usual
    /// flush (a daemon reaped at a stop, its pipe empty and closed) is then
    /// one read that says EOF, not a count of nothing and that read. The
    /// unterminated tail of a pipe still held open stays in the framer: its
    /// writer may finish the line.
    async fn flush(&mut self, fd: RawFd) -> bool {
        let mut left: Option<usize> = None;
        loop {
            let room = self.clear();
            self.ensure_buffer();
            match read_into(fd, &mut self.batch.data, room, self.read_bytes) {
                Ok(0) => return true,
                Ok(n) => {
                    self.forward(n).await;
                    left = match left {
                        None => Some(pending_bytes(fd)),
                        Some(0) => return false,
                        Some(left) => Some(left.saturating_sub(n)),
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// Reads what the pipe holds now, without waiting for more.
    async fn drain(&mut self, fd: RawFd) {
        loop {
            let room = self.clear();
            self.ensure_buffer();
            match read_into(fd, &mut self.batch.data, room, self.read_bytes) {
                Ok(0) => return,
                Ok(n) => self.forward(n).await,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return, // EAGAIN: empty for now; or a read error
            }
        }
    }

    /// Emits the last, unterminated line.
    async fn finish(&mut self) {
        self.clear();
        self.batch.timestamp = timestamp_now();
        self.framer.finish(&mut self.batch);
        let batch = self.next_batch();
        self.send(batch).await;
    }

    /// Sends `batch`, in pieces of at most [`BATCH_LINES`] lines.
    async fn send(&self, batch: LineBatch) {
        if batch.lines.len() <= BATCH_LINES {
            return self.log.send_lines(batch).await;
        }
        for piece in batch.into_pieces(BATCH_LINES) {
            self.log.send_lines(piece).await;
        }
    }

    /// Empties the batch for the next read; returns the room the read must
    /// leave for the carry.
    fn clear(&mut self) -> usize {
        self.batch.data.clear();
        self.batch.lines.clear();
        self.framer.carry_len()
    }

    /// The batch just framed, to send; the next read goes into a fresh one
    /// whose buffer is recycled when possible (the one sent may stay in the
    /// recent-records ring for a while).
    fn next_batch(&mut self) -> LineBatch {
        let next = self.fresh_batch();
        std::mem::replace(&mut self.batch, next)
    }

    /// Gives the batch its read buffer (a recycled one when there is one)
    /// when it has none yet. Called once the pipe is readable, not when the
    /// batch is made: a pipe that stays silent (most daemons' stderr, an idle
    /// daemon's stdout) then holds no 80 KiB buffer, whose first page the
    /// allocator touches, so each idle daemon cost about 8 KiB of RSS.
    fn ensure_buffer(&mut self) {
        if self.batch.data.capacity() == 0 {
            self.batch.data = self.log.read_buffer();
            self.batch.data.reserve_exact(self.buffer_size);
        }
    }

    /// An empty batch with room for as many lines as the current batch
    /// holds: a daemon's reads tend to hold alike numbers of lines, and
    /// growing the list as lines come took about 7 % of the event loop's
    /// time at full speed (`perf`, 4 daemons; the recent-records ring trims a
    /// list left mostly empty). Its read buffer comes with the next read
    /// ([`Pump::ensure_buffer`]).
    fn fresh_batch(&self) -> LineBatch {
        let (source, stream) = (Arc::clone(&self.batch.source), self.batch.stream);
        let mut batch = LineBatch::new(source, stream, [b'0'; 24]);
        // A power of two, so that a read of many more lines grows the list
        // to no more than twice what they need.
        batch
            .lines
            .reserve_exact(self.batch.lines.len().min(BATCH_LINES).next_power_of_two());
        batch
    }
}

/// Waits until the pipe is readable and reads once into the spare capacity
/// of the pump's batch after `room` bytes; `None` at EOF or on a read error
/// (either way the stream is over).
async fn read_some(pipe: &AsyncFd<OwnedFd>, pump: &mut Pump, room: usize) -> Option<usize> {
    loop {
        let mut guard = pipe.readable().await.ok()?;
        pump.ensure_buffer();
        let (buf, limit) = (&mut pump.batch.data, pump.read_bytes);
        match guard.try_io(|inner| read_into(inner.get_ref().as_raw_fd(), buf, room, limit)) {
            Ok(Ok(0)) => return None,
            Ok(Ok(n)) => return Some(n),
            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Ok(Err(_)) => return None,
            Err(_would_block) => {}
        }
    }
}

/// One `read` of at most `limit` bytes into the spare capacity of the empty
/// `buf`, after `room` bytes left for the carry; `buf`'s length is unchanged.
fn read_into(fd: RawFd, buf: &mut Vec<u8>, room: usize, limit: usize) -> io::Result<usize> {
    debug_assert!(buf.is_empty());
    buf.reserve(room + limit);
    let spare = &mut buf.spare_capacity_mut()[room..room + limit];
    // SAFETY: `spare` is valid writable memory of `spare.len()` bytes.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The size of a pipe's next read, after a read of `n` bytes (of at most
/// `limit`) that held `lines` lines: the size that would hold about
/// [`BATCH_LINES`] such lines (between [`MIN_READ_BYTES`] and
/// [`READ_BYTES`]), when the read held more than that or filled its limit; a
/// shorter read (the pipe held less) says nothing of the lines to come.
fn next_read_bytes(limit: usize, n: usize, lines: usize) -> usize {
    if lines > BATCH_LINES || n >= limit {
        (n * BATCH_LINES / lines.max(1)).clamp(MIN_READ_BYTES, READ_BYTES)
    } else {
        limit
    }
}

/// The bytes waiting in the pipe (`FIONREAD`); 0 when that cannot be told,
/// which makes [`Pump::flush`] read once more.
fn pending_bytes(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer given, a valid local.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } < 0 {
        return 0;
    }
    usize::try_from(n).unwrap_or(0)
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LogFormat, LogSettings};
    use crate::log::writer::{start, WriterOptions};
    use crate::test_support::block_on;
    use crate::test_support::Dir;
    use std::io::Write;
    use std::path::Path;

    fn start_file_writer(path: &Path) -> (LogHandle, crate::log::writer::LogWriter) {
        let settings = LogSettings {
            format: LogFormat::Text,
            format_chosen: false,
            file_path: path.to_path_buf(),
            log_to_file: true,
            log_to_stdout: false,
            max_file_size: 0,
            max_files: 1,
            compress: false,
            max_line_bytes: 8,
            net: Default::default(),
        };
        start(WriterOptions {
            settings,
            quiet: false,
        })
        .unwrap()
    }

    /// A control already opened, and its flusher.
    fn opened(drain: watch::Receiver<bool>) -> (PumpControl, Flusher) {
        let (control, flusher, open) = PumpControl::new(drain);
        open.send(()).unwrap();
        (control, flusher)
    }

    /// The line texts of the file, without timestamps.
    fn lines(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().map(|l| l[25..].to_string()).collect()
    }

    #[test]
    fn pumps_until_eof_including_the_last_unterminated_line() {
        let dir = Dir::new("pump");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_file_writer(&path);
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let (_tx, drain) = watch::channel(false);
        let (control, _flusher) = opened(drain);
        let producer = std::thread::spawn(move || {
            let mut pipe = std::fs::File::from(write_end);
            for i in 0..1000 {
                writeln!(pipe, "n{i}").unwrap();
            }
            pipe.write_all(b"0123456789abc").unwrap();
        });
        block_on(pump(
            read_end,
            "d".into(),
            Stream::Stderr,
            log.clone(),
            control,
        ));
        producer.join().unwrap();
        writer.finish(&log);
        let got = lines(&path);
        let mut expected: Vec<String> = (0..1000).map(|i| format!("d stderr: n{i}")).collect();
        expected.push("d stderr partial: 01234567".into());
        expected.push("d stderr: 89abc".into());
        assert_eq!(got, expected);
    }

    /// The read size follows the length of the lines: smaller for short ones,
    /// back to full size for long ones, never outside its bounds.
    #[test]
    fn reads_shrink_for_short_lines_and_grow_back() {
        // 64 KiB of empty lines: the next read would hold BATCH_LINES of them.
        assert_eq!(next_read_bytes(READ_BYTES, 65536, 65536), 1024);
        assert_eq!(next_read_bytes(READ_BYTES, 65536, 2 * BATCH_LINES), 32768);
        assert_eq!(next_read_bytes(READ_BYTES, 1200, 1200), MIN_READ_BYTES);
        // Lines of 100 bytes: a full read holds about 650, it stays.
        assert_eq!(next_read_bytes(READ_BYTES, 65536, 655), READ_BYTES);
        // Longer lines again: a full read goes back to the size for them.
        assert_eq!(next_read_bytes(1024, 1024, 10), READ_BYTES);
        assert_eq!(next_read_bytes(1024, 1024, 0), READ_BYTES);
        assert_eq!(next_read_bytes(40960, 40960, 585), READ_BYTES);
        assert_eq!(next_read_bytes(1024, 1024, 512), 2048);
        // A short read (the pipe held less) changes nothing.
        assert_eq!(next_read_bytes(4096, 100, 1), 4096);
    }

    /// A read of thousands of empty lines, cut into pieces of at most
    /// BATCH_LINES lines, arrives whole and in order.
    #[test]
    fn reads_of_many_short_lines_go_in_pieces() {
        let dir = Dir::new("pump-short");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_file_writer(&path);
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let (_tx, drain) = watch::channel(false);
        let (control, _flusher) = opened(drain);
        let mut text = "\n".repeat(3 * BATCH_LINES + 5);
        text.push_str("end\n");
        // Written before the pump starts: it fits in the pipe and comes in
        // one read, which the pump must cut.
        std::fs::File::from(write_end)
            .write_all(text.as_bytes())
            .unwrap();
        block_on(pump(
            read_end,
            "d".into(),
            Stream::Stdout,
            log.clone(),
            control,
        ));
        writer.finish(&log);
        let got = lines(&path);
        assert_eq!(got.len(), 3 * BATCH_LINES + 6);
        assert!(got[..3 * BATCH_LINES + 5].iter().all(|l| l == "d stdout: "));
        assert_eq!(got.last().unwrap(), "d stdout: end");
    }

    #[test]
    fn drain_returns_without_eof() {
        let dir = Dir::new("drain");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_file_writer(&path);
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let (tx, drain) = watch::channel(false);
        let (control, _flusher) = opened(drain);
        let mut pipe = std::fs::File::from(write_end);
        pipe.write_all(b"first\n").unwrap();
        block_on(async {
            let task = tokio::spawn(pump(
                read_end,
                "d".into(),
                Stream::Stdout,
                log.clone(),
                control,
            ));
            // Let the pump read "first" and wait for more.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            pipe.write_all(b"second\ntail").unwrap();
            tx.send(true).unwrap();
            task.await.unwrap();
        });
        writer.finish(&log);
        // The write end is still open: the pump returned because of the drain.
        drop(pipe);
        assert_eq!(
            lines(&path),
            ["d stdout: first", "d stdout: second", "d stdout: tail"]
        );
    }

    /// A flush hands the pipe's lines to the channel while the write end is
    /// still held open (no EOF): an event sent once it completes comes after
    /// them. The unterminated tail waits for its line to end.
    #[test]
    fn flush_hands_over_what_the_pipe_holds_without_eof() {
        let dir = Dir::new("flush");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_file_writer(&path);
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let (_tx, drain) = watch::channel(false);
        let (control, flusher) = opened(drain);
        let mut pipe = std::fs::File::from(write_end);
        block_on(async {
            let task = tokio::spawn(pump(
                read_end,
                "d".into(),
                Stream::Stdout,
                log.clone(),
                control,
            ));
            // Lines in several reads' worth, and a tail without newline.
            for i in 0..3000 {
                writeln!(pipe, "{i}").unwrap();
            }
            pipe.write_all(b"tail").unwrap();
            flusher.flush().await.unwrap();
            log.event(crate::log::EventRecord {
                timestamp: timestamp_now(),
                level: crate::log::Level::Info,
                event: "exited",
                fields: vec![],
                line: "after".into(),
            });
            drop(pipe);
            task.await.unwrap();
        });
        writer.finish(&log);
        let got = lines(&path);
        let mut expected: Vec<String> = (0..3000).map(|i| format!("d stdout: {i}")).collect();
        expected.push("pidzero event: info exited: after".into());
        expected.push("d stdout: tail".into());
        assert_eq!(got, expected);
    }

    /// A pump reads nothing before it is opened, then everything; a flush
    /// asked for meanwhile is answered once that is handed over.
    #[test]
    fn nothing_is_read_before_the_pump_is_opened() {
        let dir = Dir::new("open");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_file_writer(&path);
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let (_tx, drain) = watch::channel(false);
        let (control, flusher, open) = PumpControl::new(drain);
        let mut pipe = std::fs::File::from(write_end);
        pipe.write_all(b"early\n").unwrap();
        let read_fd = read_end.as_raw_fd();
        block_on(async {
            let task = tokio::spawn(pump(
                read_end,
                "d".into(),
                Stream::Stdout,
                log.clone(),
                control,
            ));
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(pending_bytes(read_fd), 6, "not read before it is opened");
            let mut handed_over = flusher.flush();
            assert!(handed_over.try_recv().is_err(), "not answered while closed");
            open.send(()).unwrap();
            handed_over.await.unwrap();
            assert_eq!(pending_bytes(read_fd), 0);
            drop(pipe);
            task.await.unwrap();
            // The pump has ended: a flush is answered at once.
            assert!(flusher.flush().await.is_err());
        });
        writer.finish(&log);
        assert_eq!(lines(&path), ["d stdout: early"]);
    }

    /// A flush reads what the pipe held when it was asked, not what a
    /// writer that never stops (a grandchild) adds meanwhile: it ends even
    /// though the pipe is refilled between every two of its reads.
    #[test]
    fn flush_ends_while_the_pipe_keeps_filling() {
        let dir = Dir::new("flush-flood");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_file_writer(&path);
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        set_nonblocking(write_end.as_raw_fd()).unwrap();
        let (_tx, drain) = watch::channel(false);
        let (control, flusher) = opened(drain);
        let mut pipe = std::fs::File::from(write_end);
        // Fills the pipe without waiting (the pump runs on this thread).
        let mut fill = move || while pipe.write(b"1234567\n").is_ok_and(|n| n > 0) {};
        let ended = block_on(async {
            let task = tokio::spawn(pump(
                read_end,
                "d".into(),
                Stream::Stdout,
                log.clone(),
                control,
            ));
            fill();
            let mut handed_over = flusher.flush();
            // The pump yields after each read: the pipe is full again at
            // every one of them. A deadline, not a number of turns: the
            // pump also waits for the writer thread's permits, which a
            // loaded machine may keep from running for many turns.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut ended = false;
            while std::time::Instant::now() < deadline {
                if handed_over.try_recv().is_ok() {
                    ended = true;
                    break;
                }
                fill();
                tokio::task::yield_now().await;
            }
            task.abort();
            ended
        });
        writer.finish(&log);
        assert!(ended, "the flush did not end within 10 s of refilling");
    }

    /// An idle pipe costs its pump's future for as long as its daemon runs
    /// (twice per daemon); the await states that send lines are boxed and the
    /// state is not held twice, which keeps it under 1 KiB (it was 1.3 KiB).
    #[test]
    fn an_idle_pump_is_small() {
        let dir = Dir::new("pump-size");
        let (log, writer) = start_file_writer(&dir.p("pidzero.log"));
        let (read_end, _write_end) = nix::unistd::pipe().unwrap();
        let (_tx, drain) = watch::channel(false);
        let (control, _flusher) = opened(drain);
        let future = pump(read_end, "d".into(), Stream::Stdout, log.clone(), control);
        let size = std::mem::size_of_val(&future);
        drop(future);
        writer.finish(&log);
        assert!(size <= 1024, "the pump's future is {size} bytes");
    }
}

//! The writer thread: the one owner of the sinks.
//!
//! Readers and the supervisor send messages over one unbounded channel, so the
//! order of everything sent is kept. Line batches first take a permit from a
//! semaphore (at most [`BATCHES_IN_FLIGHT`] queued or being written); that is
//! the back-pressure. Events take none: the control loop must never wait.
//!
//! The thread blocks on the channel, then drains what else is ready (up to
//! [`DRAIN_BYTES`] of output), formats it all into one buffer per sink and
//! writes each buffer once: few syscalls, and records are never torn or
//! interleaved because nothing else writes to the sinks.

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use super::format::{format_event, format_spans};
use super::recent::{Recent, Update, RECENT_RECORDS};
use super::record::{timestamp_now, EventRecord, FieldValue, Level, LineBatch};
use super::sink::{FileSink, StdoutSink};
use crate::config::{LogFormat, LogSettings};

/// Line batches allowed in flight (queued or being written) at once.
pub const BATCHES_IN_FLIGHT: usize = 16;

/// Output gathered before one round of writes (a soft limit: a round stops
/// draining the channel once a sink's buffer holds this much).
pub const DRAIN_BYTES: usize = 256 * 1024;

/// A failing sink is reported again only after it has had no error for this
/// long: a disk that is nearly full makes writes fail and succeed in turn (a
/// failed write is cut back, freeing room for a smaller one), and that must
/// not become a stream of events.
pub const RECOVERY: Duration = Duration::from_secs(10);

enum Message {
    Lines(LineBatch),
    Event(EventRecord),
    Finish,
}

/// Sends records to the writer thread; cheap to clone, one per reader.
#[derive(Clone)]
pub struct LogHandle {
    tx: mpsc::UnboundedSender<Message>,
    permits: Arc<Semaphore>,
    recent: Arc<Recent>,
}

impl LogHandle {
    /// Queues one read's lines; waits (async) for room when the writer is behind — this is the back-pressure.
    pub async fn send_lines(&self, batch: LineBatch) {
        if batch.is_empty() {
            return;
        }
        // Closed only once the writer has stopped: the batch could not be written.
        let Ok(permit) = self.permits.acquire().await else {
            return;
        };
        // The writer gives the permit back after writing the batch.
        permit.forget();
        let _ = self.tx.send(Message::Lines(batch));
    }

    /// Queues an event record of pidzero's own; never blocks or waits.
    pub fn event(&self, record: EventRecord) {
        let _ = self.tx.send(Message::Event(record));
    }

    /// The last `n` records (at most [`RECENT_RECORDS`](super::recent::RECENT_RECORDS))
    /// of `daemon` as JSON, oldest first, whatever the configured format; `pidzero`
    /// gives pidzero's own events. Records still queued for the writer are not
    /// in it yet; unknown names give nothing.
    pub fn recent(&self, daemon: &str, n: usize) -> Vec<String> {
        self.recent.recent(daemon, n)
    }

    /// `(source, records, bytes of line text)` for every source written so far
    /// (daemons, and `pidzero` for its events), sorted by name.
    pub fn daemon_counters(&self) -> Vec<(String, u64, u64)> {
        self.recent.counters()
    }

    /// `(sink, failed writes)` for each sink: `stdout` (or `stderr` in quiet
    /// mode) and `file`, those enabled.
    pub fn sink_error_counts(&self) -> Vec<(String, u64)> {
        self.recent.sink_error_counts()
    }
}

pub struct WriterOptions {
    pub settings: LogSettings,
    /// true: main command without daemons.json: nothing of pidzero's own on stdout; only warn/error events, written to fd 2 (stderr) — and no stdout sink
    pub quiet: bool,
}

/// The running writer thread; see [`start`].
pub struct LogWriter {
    thread: JoinHandle<()>,
}

/// Opens the sinks (a file-open error is returned so the caller can report it) and starts the writer thread.
///
/// Sinks: the file when `log_to_file`; fd 1 when `log_to_stdout`; in quiet
/// mode fd 2 instead of fd 1, always present (warnings and errors must be
/// seen) and receiving only warn/error events.
pub fn start(options: WriterOptions) -> io::Result<(LogHandle, LogWriter)> {
    let stream_fd: Option<RawFd> = match (options.quiet, options.settings.log_to_stdout) {
        (true, _) => Some(libc::STDERR_FILENO),
        (false, true) => Some(libc::STDOUT_FILENO),
        (false, false) => None,
    };
    spawn(options, stream_fd)
}

impl LogWriter {
    /// Writes everything queued before this call, closes the sinks and joins the thread.
    ///
    /// Like any write, this waits while a sink blocks (a stdout pipe that
    /// nobody reads); sink errors do not make it wait.
    pub fn finish(self, handle: &LogHandle) {
        let _ = handle.tx.send(Message::Finish);
        // A panic in the writer has already been reported by the panic hook.
        let _ = self.thread.join();
    }
}

/// [`start`] with the stream sink's fd chosen by the caller (tests use a pipe).
fn spawn(options: WriterOptions, stream_fd: Option<RawFd>) -> io::Result<(LogHandle, LogWriter)> {
    let settings = &options.settings;
    let file = if settings.log_to_file {
        let sink = FileSink::open(
            &settings.file_path,
            settings.max_file_size,
            settings.max_files,
        )?;
        Some(Target::new(sink, "file"))
    } else {
        None
    };
    let stream_name = if options.quiet { "stderr" } else { "stdout" };
    let stream = stream_fd.map(|fd| Target::new(StdoutSink::new(fd), stream_name));
    let recent = Arc::new(Recent::default());
    for name in [
        stream.as_ref().map(|t| t.name),
        file.as_ref().map(|t| t.name),
    ]
    .into_iter()
    .flatten()
    {
        recent.register_sink(name);
    }
    let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = Writer {
        format: settings.format,
        quiet: options.quiet,
        stream,
        file,
        recent: Arc::clone(&recent),
        pidzero: "pidzero".into(),
        json: Vec::new(),
        ends: Vec::new(),
        permits: Arc::clone(&permits),
        taken_permits: 0,
    };
    let thread = std::thread::Builder::new()
        .name("pidzero-log".into())
        .spawn(move || writer.run(rx))?;
    let handle = LogHandle {
        tx,
        permits,
        recent,
    };
    Ok((handle, LogWriter { thread }))
}

/// What a sink must do for the writer.
trait Sink {
    fn write_records(&mut self, buf: &[u8]) -> io::Result<()>;
}

impl Sink for StdoutSink {
    fn write_records(&mut self, buf: &[u8]) -> io::Result<()> {
        StdoutSink::write_records(self, buf)
    }
}

impl Sink for FileSink {
    fn write_records(&mut self, buf: &[u8]) -> io::Result<()> {
        FileSink::write_records(self, buf)
    }
}

/// A sink with its pending output and its failure state.
struct Target<S> {
    sink: S,
    name: &'static str,
    buf: Vec<u8>,
    /// When the last write failed, in a failure episode that has been
    /// reported: no new report until writes succeed for [`RECOVERY`].
    failed_at: Option<Instant>,
}

impl<S: Sink> Target<S> {
    fn new(sink: S, name: &'static str) -> Self {
        Target {
            sink,
            name,
            buf: Vec::new(),
            failed_at: None,
        }
    }

    /// Writes and empties the buffer; returns the error when it starts a new
    /// failure episode (the only time it is reported).
    fn flush(&mut self, recent: &Recent) -> Option<io::Error> {
        if self.buf.is_empty() {
            return None;
        }
        let result = self.sink.write_records(&self.buf);
        self.buf.clear();
        if self.buf.capacity() > 4 * DRAIN_BYTES {
            self.buf.shrink_to(DRAIN_BYTES);
        }
        match result {
            Ok(()) => {
                if self.failed_at.is_some_and(|at| at.elapsed() >= RECOVERY) {
                    self.failed_at = None;
                }
                None
            }
            Err(error) => {
                recent.sink_error(self.name);
                let first = self.failed_at.is_none();
                self.failed_at = Some(Instant::now());
                first.then_some(error)
            }
        }
    }
}

struct Writer {
    format: LogFormat,
    quiet: bool,
    stream: Option<Target<StdoutSink>>,
    file: Option<Target<FileSink>>,
    recent: Arc<Recent>,
    /// The source name of pidzero's own events.
    pidzero: Arc<str>,
    /// Scratch: JSON records for `recent` when the output is not JSON.
    json: Vec<u8>,
    /// Scratch: the end offset of each record just formatted.
    ends: Vec<usize>,
    permits: Arc<Semaphore>,
    /// Line batches taken in this round, whose permits go back after writing.
    taken_permits: usize,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        while let Some(message) = rx.blocking_recv() {
            let mut finish = self.take(message);
            while !finish && self.pending_bytes() < DRAIN_BYTES {
                match rx.try_recv() {
                    Ok(message) => finish = self.take(message),
                    Err(_) => break,
                }
            }
            // The batches taken are formatted and dropped: their permits go
            // back before the write, so the readers keep reading (and the
            // daemons writing) while this thread is in the kernel.
            self.permits
                .add_permits(std::mem::take(&mut self.taken_permits));
            self.flush();
            if finish {
                break;
            }
        }
        // Wakes readers still waiting for room: nothing more will be written.
        self.permits.close();
    }

    /// Formats one message into the buffers; true on `Finish`.
    fn take(&mut self, message: Message) -> bool {
        match message {
            Message::Lines(batch) => {
                self.taken_permits += 1;
                self.lines(&batch);
            }
            Message::Event(event) => self.event(&event),
            Message::Finish => return true,
        }
        false
    }

    fn pending_bytes(&self) -> usize {
        let stream = self.stream.as_ref().map_or(0, |t| t.buf.len());
        let file = self.file.as_ref().map_or(0, |t| t.buf.len());
        stream.max(file)
    }

    /// Daemon lines go to the file, and to the stream sink unless quiet.
    fn lines(&mut self, batch: &LineBatch) {
        let bytes: usize = batch.lines.iter().map(|s| (s.end - s.start) as usize).sum();
        let format = self.format;
        let recent = Arc::clone(&self.recent);
        let mut json = std::mem::take(&mut self.json);
        let mut ends = std::mem::take(&mut self.ends);
        ends.clear();
        let written = self.deliver(!self.quiet, true, |out| {
            format_spans(out, format, batch, &batch.lines, Some(&mut ends));
        });
        // The JSON of the last records for `recent`: the bytes just written
        // when they are JSON, else formatted again (only those records).
        let kept = batch.lines.len().min(RECENT_RECORDS);
        let (json_kept, ends_kept): (&[u8], &[usize]) = match written {
            Some((buf, start)) if format == LogFormat::Json => {
                let first = batch.lines.len() - kept;
                let from = if first == 0 { start } else { ends[first - 1] };
                for end in &mut ends[first..] {
                    *end -= from;
                }
                (&buf[from..], &ends[first..])
            }
            _ => {
                ends.clear();
                json.clear();
                let spans = &batch.lines[batch.lines.len() - kept..];
                format_spans(&mut json, LogFormat::Json, batch, spans, Some(&mut ends));
                (&json, &ends)
            }
        };
        recent.add(Update {
            source: &batch.source,
            records: batch.lines.len() as u64,
            bytes: bytes as u64,
            json: json_kept,
            ends: ends_kept,
        });
        self.json = json;
        self.ends = ends;
    }

    /// Events go to the file, and to the stream sink unless quiet and below warn.
    fn event(&mut self, event: &EventRecord) {
        let to_stream = !self.quiet || event.level != Level::Info;
        let format = self.format;
        self.deliver(to_stream, true, |out| format_event(out, format, event));
        self.keep_event(event);
    }

    /// Counts an event of pidzero's own and keeps it in the `pidzero` ring.
    fn keep_event(&mut self, event: &EventRecord) {
        self.json.clear();
        format_event(&mut self.json, LogFormat::Json, event);
        self.recent.add(Update {
            source: &self.pidzero,
            records: 1,
            bytes: event.line.len() as u64,
            json: &self.json,
            ends: &[self.json.len()],
        });
    }

    /// Formats once into the first chosen sink's buffer and copies to the
    /// other; returns that buffer and where the new output starts in it.
    fn deliver(
        &mut self,
        to_stream: bool,
        to_file: bool,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Option<(&[u8], usize)> {
        let stream = self
            .stream
            .as_mut()
            .filter(|_| to_stream)
            .map(|t| &mut t.buf);
        let file = self.file.as_mut().filter(|_| to_file).map(|t| &mut t.buf);
        let (primary, copy) = match (file, stream) {
            (Some(file), stream) => (file, stream),
            (None, Some(stream)) => (stream, None),
            (None, None) => return None,
        };
        let start = primary.len();
        write(primary);
        if let Some(copy) = copy {
            copy.extend_from_slice(&primary[start..]);
        }
        Some((primary, start))
    }

    /// Writes both buffers; a new failure of one sink is reported on the other.
    fn flush(&mut self) {
        if let Some(error) = self.stream.as_mut().and_then(|t| t.flush(&self.recent)) {
            let name = self.stream.as_ref().map_or("stdout", |t| t.name);
            self.report(name, &error, false, true);
        }
        if let Some(error) = self.file.as_mut().and_then(|t| t.flush(&self.recent)) {
            self.report("file", &error, true, false);
            // Written now rather than with the next round, which may be far off.
            if let Some(stream) = self.stream.as_mut() {
                stream.flush(&self.recent);
            }
        }
    }

    fn report(&mut self, sink: &'static str, error: &io::Error, to_stream: bool, to_file: bool) {
        let record = sink_error(sink, error);
        let format = self.format;
        self.deliver(to_stream, to_file, |out| format_event(out, format, &record));
        self.keep_event(&record);
    }
}

/// The `sink_error` event for a sink that just started failing.
fn sink_error(sink: &'static str, error: &io::Error) -> EventRecord {
    EventRecord {
        timestamp: timestamp_now(),
        level: Level::Error,
        event: "sink_error",
        fields: vec![
            ("sink", FieldValue::Str(sink.to_string())),
            ("error", FieldValue::Str(error.to_string())),
        ],
        line: format!("cannot write logs to {sink}: {error}; retrying with the next records"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::framer::Framer;
    use crate::log::record::Stream;
    use crate::log::sink::tests::temp_dir;
    use crate::test_support::block_on;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    fn settings(path: &Path, format: LogFormat) -> LogSettings {
        LogSettings {
            format,
            file_path: path.to_path_buf(),
            log_to_file: true,
            log_to_stdout: false,
            max_file_size: 0,
            max_files: 1,
            max_line_bytes: 16384,
        }
    }

    fn batch_of(source: &str, text: &str) -> LineBatch {
        let mut batch = LineBatch::new(source.into(), Stream::Stdout, timestamp_now());
        let mut framer = Framer::new(65536);
        framer.push(text.as_bytes(), &mut batch);
        batch
    }

    fn info(event: &'static str, line: &str) -> EventRecord {
        EventRecord {
            timestamp: timestamp_now(),
            level: Level::Info,
            event,
            fields: vec![],
            line: line.into(),
        }
    }

    /// Runs `future` on a current-thread runtime; the test fails after 10 s.
    #[test]
    fn all_lines_reach_the_file_in_order_under_back_pressure() {
        let dir = temp_dir("writer");
        let path = dir.join("pidzero.log");
        let options = WriterOptions {
            settings: settings(&path, LogFormat::Text),
            quiet: false,
        };
        let (log, writer) = spawn(options, None).unwrap();
        let sources = ["a", "b", "c"];
        let per_source = 2000usize;
        block_on(async {
            let mut tasks = Vec::new();
            for source in sources {
                let log = log.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..per_source / 10 {
                        let text: String = (0..10)
                            .map(|j| format!("{source} {}\n", i * 10 + j))
                            .collect();
                        log.send_lines(batch_of(source, &text)).await;
                    }
                }));
            }
            log.event(info("starting", "before the end"));
            for task in tasks {
                task.await.unwrap();
            }
        });
        writer.finish(&log);
        let text = std::fs::read_to_string(&path).unwrap();
        for source in sources {
            let seen: Vec<usize> = text
                .lines()
                .filter_map(|l| l.split_once(&format!(" {source} stdout: {source} ")))
                .map(|(_, n)| n.parse().unwrap())
                .collect();
            assert_eq!(seen, (0..per_source).collect::<Vec<_>>(), "source {source}");
        }
        assert!(text.contains("pidzero event: info starting: before the end"));
        let records: u64 = log.daemon_counters().iter().map(|c| c.1).sum();
        assert_eq!(records, 3 * per_source as u64 + 1);
        assert!(log.sink_error_counts().iter().all(|c| c.1 == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A stdout nobody reads: the pipe fills, the writer blocks, and after
    /// `BATCHES_IN_FLIGHT` more batches `send_lines` waits instead of queuing.
    #[test]
    fn send_lines_waits_for_room() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut settings = settings(Path::new("/nonexistent"), LogFormat::Text);
        settings.log_to_file = false;
        settings.log_to_stdout = true;
        let options = WriterOptions {
            settings,
            quiet: false,
        };
        let (log, writer) = spawn(options, Some(write_end.as_raw_fd())).unwrap();
        let line = format!("{}\n", "x".repeat(8000));
        let sent = block_on(async {
            let mut sent = 0usize;
            for _ in 0..100 {
                let send = log.send_lines(batch_of("w", &line));
                if tokio::time::timeout(std::time::Duration::from_millis(300), send)
                    .await
                    .is_err()
                {
                    break;
                }
                sent += 1;
            }
            sent
        });
        assert!((BATCHES_IN_FLIGHT..100).contains(&sent), "sent {sent}");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(read_end), &mut text).unwrap();
            text
        });
        writer.finish(&log);
        drop(write_end);
        assert_eq!(reader.join().unwrap().lines().count(), sent);
        assert!(log.permits.is_closed());
        // After the writer stopped, sending returns at once instead of waiting forever.
        block_on(log.send_lines(batch_of("w", "after\n")));
    }

    #[test]
    fn closed_stdout_is_reported_once_in_the_file() {
        let dir = temp_dir("epipe");
        let path = dir.join("pidzero.log");
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        drop(read_end);
        // SAFETY: ignoring SIGPIPE, as the Rust runtime does for pidzero.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let mut settings = settings(&path, LogFormat::Json);
        settings.log_to_stdout = true;
        let options = WriterOptions {
            settings,
            quiet: false,
        };
        let (log, writer) = spawn(options, Some(write_end.as_raw_fd())).unwrap();
        block_on(async {
            for i in 0..50 {
                log.send_lines(batch_of("w", &format!("line {i}\n"))).await;
                tokio::task::yield_now().await;
            }
        });
        writer.finish(&log);
        drop(write_end);
        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let errors: Vec<_> = records
            .iter()
            .filter(|r| r["event"] == "sink_error")
            .collect();
        assert_eq!(errors.len(), 1, "{text}");
        assert_eq!(errors[0]["sink"], "stdout");
        assert_eq!(errors[0]["level"], "error");
        assert!(errors[0]["error"].as_str().unwrap().contains("Broken pipe"));
        assert_eq!(records.iter().filter(|r| r["source"] == "w").count(), 50);
        let counts = log.sink_error_counts();
        assert!(counts[0].1 >= 1, "{counts:?}");
        assert_eq!(counts[1], ("file".to_string(), 0));
        assert_eq!(counts[0].0, "stdout");
        assert!(counts[0].1 >= 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `recent` gives JSON whatever the format, oldest first, per source;
    /// the counters follow every batch and event.
    #[test]
    fn recent_records_and_counters_in_every_format() {
        for format in [LogFormat::Json, LogFormat::Text, LogFormat::Logfmt] {
            let dir = temp_dir("recent");
            let path = dir.join("pidzero.log");
            let options = WriterOptions {
                settings: settings(&path, format),
                quiet: false,
            };
            let (log, writer) = spawn(options, None).unwrap();
            block_on(async {
                for i in 0..30 {
                    let text: String = (0..100)
                        .map(|j| format!("a \"{}\"\n", i * 100 + j))
                        .collect();
                    log.send_lines(batch_of("a", &text)).await;
                }
                log.send_lines(batch_of("b", "only\n")).await;
            });
            log.event(info("started", "hello"));
            writer.finish(&log);
            let recent = log.recent("a", 5000);
            assert_eq!(recent.len(), RECENT_RECORDS, "{format:?}");
            for (k, record) in recent.iter().enumerate() {
                let value: serde_json::Value = serde_json::from_str(record).unwrap();
                assert_eq!(value["source"], "a");
                assert_eq!(value["line"], format!("a \"{}\"", 2000 + k), "{format:?}");
            }
            let b = log.recent("b", 3);
            assert_eq!(b.len(), 1);
            assert!(
                b[0].ends_with(r#""stream":"stdout","line":"only"}"#),
                "{}",
                b[0]
            );
            let events = log.recent("pidzero", 10);
            assert_eq!(events.len(), 1);
            assert!(events[0].contains(r#""event":"started""#), "{}", events[0]);
            let a_bytes: u64 = (0..3000)
                .map(|n: u64| format!("a \"{n}\"").len() as u64)
                .sum();
            assert_eq!(
                log.daemon_counters(),
                [
                    ("a".to_string(), 3000, a_bytes),
                    ("b".to_string(), 1, 4),
                    ("pidzero".to_string(), 1, 5)
                ]
            );
            assert_eq!(log.sink_error_counts(), [("file".to_string(), 0)]);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn quiet_mode_keeps_stdout_clean_and_stderr_to_warnings() {
        let dir = temp_dir("quiet");
        let path = dir.join("pidzero.log");
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut settings = settings(&path, LogFormat::Text);
        settings.log_to_stdout = true;
        let options = WriterOptions {
            settings,
            quiet: true,
        };
        let (log, writer) = spawn(options, Some(write_end.as_raw_fd())).unwrap();
        log.event(info("started", "quiet info"));
        let mut warning = info("config_warning", "loud warning");
        warning.level = Level::Warn;
        log.event(warning);
        block_on(log.send_lines(batch_of("main", "daemon line\n")));
        writer.finish(&log);
        drop(write_end);
        let mut stream = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(read_end), &mut stream).unwrap();
        assert!(
            stream.ends_with("pidzero event: warn config_warning: loud warning\n"),
            "{stream}"
        );
        assert_eq!(stream.lines().count(), 1, "{stream}");
        let file = std::fs::read_to_string(&path).unwrap();
        assert_eq!(file.lines().count(), 3, "{file}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The writer thread: the one owner of the sinks.
//!
//! Readers and the supervisor format their records themselves and send the
//! bytes over one unbounded channel, so the order of everything sent is
//! kept; a batch of lines sent while no other is queued comes unformatted
//! and is formatted here (see [`super::handle`]). Line batches first take a
//! permit from a semaphore (at most [`BATCHES_IN_FLIGHT`] queued or being
//! written); that is the back-pressure. Events take none: the control loop
//! must never wait.
//!
//! The thread blocks on the channel, then takes what else is ready (up to
//! [`DRAIN_BYTES`]) and writes it to each sink with one `writev`: few
//! syscalls, no copy of formatted records, and records are never torn or
//! interleaved because nothing else writes to the sinks.
//!
//! Counters for `/metrics`, per sink (`stdout` or `stderr`, `file`): the
//! records written and dropped move once per write, by the line counts of
//! the batches in it; the records queued are added by the senders, per
//! batch, before they send, and taken off here once written or dropped.
//!
//! With `log.compress`, a rotation only renames and queues the new `.1`
//! for the compressor's thread ([`super::compress`]); at exit the writer
//! waits for it up to [`super::compress::EXIT_WAIT`].
//!
//! At exit pidzero waits for the sinks to take what is queued, but not
//! forever: after a second stop signal, or `shutdown_timeout` after the last
//! daemon is gone, it gives up ([`GiveUp`]): a write waiting for room is
//! interrupted and fails, later writes to that sink fail at once, and the
//! records they held are counted, named in a last event on any sink that
//! still works, and returned by [`LogWriter::finish`] (with the records any
//! sink lost to failed writes) for a line on stderr.

use std::io;
use std::os::fd::RawFd;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use super::channel::{Applied, Chunk, Message, Reopened, SinkLoss, BATCHES_IN_FLIGHT};
use super::compress::{self, Compressor};
use super::format::format_spans;
use super::handle::{format_and_keep_event, LogHandle, Routing};
use super::net::{NetSinks, SinkStats};
use super::pool::BufferPool;
use super::recent::{self, Recent};
use super::record::{timestamp_now, EventRecord, FieldValue, Level};
use super::sink::{self as sinks, FileSink, GiveUpFlag, StdoutSink};
use crate::config::{LogFormat, LogSettings, NetSettings, SinkKind, SinkSet};

/// Bytes taken before one round of writes (a soft limit: a round stops
/// taking from the channel once it holds this much).
pub const DRAIN_BYTES: usize = 256 * 1024;

/// A failing sink is reported again only after it has had no error for this
/// long: a disk that is nearly full makes writes fail and succeed in turn (a
/// failed write is cut back, freeing room for a smaller one), and that must
/// not become a stream of events.
pub const RECOVERY: Duration = Duration::from_secs(10);

pub struct WriterOptions {
    pub settings: LogSettings,
    /// true: main command without daemons.json: nothing of pidzero's own on stdout; only warn/error events, written to fd 2 (stderr) — and no stdout sink
    pub quiet: bool,
}

/// How long [`LogWriter::finish`] waits for the queued records when nobody
/// set a deadline with [`GiveUp::set_deadline`] (the default `shutdown_timeout`).
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the writer may take, once told to give up, to count what is
/// left and write its last event before pidzero exits without it.
pub const GIVE_UP_GRACE: Duration = Duration::from_secs(2);

/// How often a writer told to give up is interrupted again, in case the
/// first interruption came just before it started to wait in a write.
const INTERRUPT_EVERY: Duration = Duration::from_millis(20);

/// The running writer thread; see [`start`].
pub struct LogWriter {
    thread: JoinHandle<()>,
    /// Told by the thread when it ends (so `finish` can wait with a timeout).
    done: std::sync::mpsc::Receiver<()>,
    give_up: GiveUp,
    /// What each sink lost so far, as the writer last published it.
    losses: Arc<Mutex<Vec<SinkLoss>>>,
}

/// The line pidzero prints on stderr at exit when a sink lost records, e.g.
/// `log records lost: stdout 8527 (8527 given up at exit), file 12`.
pub fn describe_losses(losses: &[SinkLoss]) -> Option<String> {
    let parts: Vec<String> = losses
        .iter()
        .filter(|l| l.dropped > 0)
        .map(|l| match l.given_up {
            0 => format!("{} {}", l.sink, l.dropped),
            n => format!("{} {} ({n} given up at exit)", l.sink, l.dropped),
        })
        .collect();
    (!parts.is_empty()).then(|| format!("log records lost: {}", parts.join(", ")))
}

/// Tells the writer to stop waiting for its sinks: see the module docs.
/// Cheap to clone; the runtime holds one to give up on a second stop signal.
#[derive(Clone)]
pub struct GiveUp {
    flag: GiveUpFlag,
    /// The writer thread, until it has been joined (a joined thread's id
    /// must not be signalled).
    thread: Arc<Mutex<Option<libc::pthread_t>>>,
    /// When to give up if the sinks have not taken everything by then.
    deadline: Arc<OnceLock<Instant>>,
}

impl GiveUp {
    /// Gives up the pending writes: sets the flag the sinks check and
    /// interrupts the writer thread in case it waits in a write.
    pub fn give_up(&self) {
        self.flag.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(thread) = *thread {
            // SAFETY: the thread has not been joined (the id is taken out
            // before joining, under this lock), so its id is valid.
            unsafe { libc::pthread_kill(thread, interrupt_signal()) };
        }
    }

    pub fn given_up(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Sets when [`LogWriter::finish`] gives up (the first call wins).
    pub fn set_deadline(&self, at: Instant) {
        let _ = self.deadline.set(at);
    }
}

/// The signal that interrupts the writer thread in a write (`SIGRTMIN`):
/// a thread-directed signal with a handler that does nothing, installed
/// without `SA_RESTART`, is the one way to end a blocking `writev` to a pipe
/// nobody reads without touching the fd, which other processes share. Only
/// the writer thread has it unblocked; every other signal is still read
/// from the signalfd.
fn interrupt_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

extern "C" fn interrupted(_: libc::c_int) {}

/// Installs the do-nothing handler of [`interrupt_signal`] and unblocks it
/// in the calling thread (the writer). Without it, giving up still ends
/// pidzero after [`GIVE_UP_GRACE`], just without the writer's last count.
fn accept_interruptions() {
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask; a
    // sigset built by sigemptyset/sigaddset; plain syscalls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = interrupted as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(interrupt_signal(), &action, std::ptr::null_mut()) != 0 {
            return;
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, interrupt_signal());
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// True when a stop signal (TERM, INT, QUIT) is pending for this thread,
/// which takes it: at exit, a stop signal means "stop waiting for the sinks".
fn stop_signal_pending() -> bool {
    // SAFETY: a sigset built by sigemptyset/sigaddset, a zero timeout.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            libc::sigaddset(&mut set, sig);
        }
        let zero = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) > 0
    }
}

/// Writes `line` and a newline to stderr if that can be done without
/// waiting (stderr may be the very pipe nobody reads); never fails or panics.
pub fn tell_stderr(line: &str) {
    let text = format!("pidzero: {line}\n");
    let mut pollfd = libc::pollfd {
        fd: libc::STDERR_FILENO,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout; a write from a live buffer.
    unsafe {
        if libc::poll(&mut pollfd, 1, 0) == 1 && pollfd.revents & libc::POLLOUT != 0 {
            libc::write(libc::STDERR_FILENO, text.as_ptr().cast(), text.len());
        }
    }
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
    /// Writes everything queued before this call, closes the sinks and joins
    /// the thread; returns what each sink lost (see [`SinkLoss`]).
    ///
    /// While a sink blocks (a stdout pipe that nobody reads) this waits, up
    /// to the deadline set with [`GiveUp::set_deadline`] (else
    /// [`FINISH_TIMEOUT`]), or until a stop signal arrives, or not at all if
    /// pidzero already gave up; then it gives up the pending writes and
    /// waits at most [`GIVE_UP_GRACE`] more.
    pub fn finish(self, handle: &LogHandle) -> Vec<SinkLoss> {
        let _ = handle.tx.send(Message::Finish);
        let deadline = *self
            .give_up
            .deadline
            .get_or_init(|| Instant::now() + FINISH_TIMEOUT);
        let mut gave_up_at = self.give_up.given_up().then(Instant::now);
        let still_running = || {
            matches!(
                self.done.recv_timeout(INTERRUPT_EVERY),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            )
        };
        while still_running() {
            match gave_up_at {
                Some(at) if at.elapsed() >= GIVE_UP_GRACE => {
                    // Stuck for good: exit without it (the process ends it).
                    return self.losses();
                }
                Some(_) => self.give_up.give_up(),
                None if Instant::now() >= deadline || stop_signal_pending() => {
                    self.give_up.give_up();
                    gave_up_at = Some(Instant::now());
                }
                None => {}
            }
        }
        self.give_up
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let losses = Arc::clone(&self.losses);
        // A panic in the writer has already been reported by the panic hook.
        let _ = self.thread.join();
        let losses = losses.lock().unwrap_or_else(|e| e.into_inner()).clone();
        losses
    }

    fn losses(&self) -> Vec<SinkLoss> {
        self.losses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What tells this writer to give up; see [`GiveUp`].
    pub fn give_up_handle(&self) -> GiveUp {
        self.give_up.clone()
    }
}

/// [`start`] with the stream sink's fd chosen by the caller (tests use a pipe).
fn spawn(options: WriterOptions, stream_fd: Option<RawFd>) -> io::Result<(LogHandle, LogWriter)> {
    let settings = &options.settings;
    let flag = GiveUpFlag::default();
    let mut file = if settings.log_to_file {
        let sink = FileSink::open(
            &settings.file_path,
            settings.max_file_size,
            settings.max_files,
        )?
        .with_give_up(Arc::clone(&flag));
        Some(Target::new(sink, "file"))
    } else {
        None
    };
    let stream_name = if options.quiet { "stderr" } else { "stdout" };
    let stream = stream_fd.map(|fd| {
        let sink = StdoutSink::new(fd).with_give_up(Arc::clone(&flag));
        let sink = if sinks::was_closed_at_start(fd) {
            sink.closed()
        } else {
            sink
        };
        Target::new(sink, stream_name)
    });
    // Read buffers go back to the readers from the recent-records ring,
    // formatted ones from the writer thread.
    let read_buffers = Arc::new(BufferPool::default());
    let recent = Arc::new(Recent::new(Arc::clone(&read_buffers)));
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
    let pool = Arc::new(BufferPool::default());
    let (tx, rx) = mpsc::unbounded_channel();
    // The silent main-command mode, unless the user asked for records.
    let plain_events = options.quiet && !settings.format_chosen && !settings.log_to_file;
    let routing = Routing {
        format: settings.format,
        quiet: options.quiet,
        plain_events,
        line_sinks: line_sinks(
            settings.log_to_file,
            stream_fd.is_some() && !options.quiet,
            &settings.net,
        ),
        net: settings.net.any(),
        local_on: [
            stream.as_ref().map(|_| SinkKind::Stdout),
            file.as_ref().map(|_| SinkKind::File),
        ]
        .into_iter()
        .flatten()
        .fold(SinkSet::NONE, SinkSet::with),
    };
    // Counters for both of the writer's sinks, on or not, so that a sink a
    // reload turns on counts from then on (see `Routing::local_on`).
    let stream_stats = stream
        .as_ref()
        .map_or_else(Arc::default, |t| Arc::clone(&t.stats));
    let file_stats = file
        .as_ref()
        .map_or_else(Arc::default, |t| Arc::clone(&t.stats));
    let local_stats = vec![
        (SinkKind::Stdout, stream_name, Arc::clone(&stream_stats)),
        (SinkKind::File, "file", Arc::clone(&file_stats)),
    ];
    let handle = LogHandle::new(
        tx,
        Arc::clone(&permits),
        Arc::clone(&recent),
        read_buffers,
        Arc::clone(&pool),
        routing,
        settings.max_line_bytes,
    );
    let handle = handle.with_local_stats(local_stats);
    if let Some(file) = file.as_mut().filter(|_| settings.compress) {
        file.sink.compress_with(Compressor::new(
            &settings.file_path,
            settings.max_files,
            compress_report(&handle, &recent),
        ));
    }
    // The handlers send their outage events through the handle, like any sender.
    let net = NetSinks::start(&settings.net, &handle)?;
    if let Some(net) = &net {
        handle.set_net_stats(net.stats());
    }
    let writer = Writer {
        handle: handle.clone(),
        net_settings: settings.net.clone(),
        stream_stats,
        file_stats,
        compress_report: compress_reporter(&handle, &recent),
        give_up: Arc::clone(&flag),
        pool: Arc::clone(&pool),
        format: settings.format,
        plain_events,
        stream,
        file,
        recent: Arc::clone(&recent),
        pidzero: "pidzero".into(),
        pending: Vec::new(),
        pending_bytes: 0,
        permits: Arc::clone(&permits),
        taken_permits: 0,
        losses: Arc::default(),
        published_drops: 0,
        net,
    };
    let losses = Arc::clone(&writer.losses);
    let (done_tx, done) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("pidzero-log".into())
        .spawn(move || {
            accept_interruptions();
            writer.run(rx);
            let _ = done_tx.send(());
        })?;
    let give_up = GiveUp {
        flag,
        thread: Arc::new(Mutex::new(Some(thread.as_pthread_t()))),
        deadline: Arc::default(),
    };
    Ok((
        handle,
        LogWriter {
            thread,
            done,
            give_up,
            losses,
        },
    ))
}

/// The sinks that take daemon lines: the file when on, the stream sink
/// when it takes them (not in quiet mode).
fn line_sinks(file: bool, stream: bool, net: &NetSettings) -> SinkSet {
    let mut sinks = SinkSet::NONE;
    if file {
        sinks = sinks.with(SinkKind::File);
    }
    if stream {
        sinks = sinks.with(SinkKind::Stdout);
    }
    if net.forward.is_some() {
        sinks = sinks.with(SinkKind::Forward);
    }
    if net.syslog.is_some() {
        sinks = sinks.with(SinkKind::Syslog);
    }
    if net.loki.is_some() {
        sinks = sinks.with(SinkKind::Loki);
    }
    if net.otlp.is_some() {
        sinks = sinks.with(SinkKind::Otlp);
    }
    sinks
}

/// What a sink must do for the writer.
trait Sink {
    fn write_chunks(&mut self, chunks: &[&[u8]]) -> io::Result<()>;
}

impl Sink for StdoutSink {
    fn write_chunks(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        StdoutSink::write_chunks(self, chunks)
    }
}

impl Sink for FileSink {
    fn write_chunks(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        FileSink::write_chunks(self, chunks)
    }
}

/// A sink with its failure state.
struct Target<S> {
    sink: S,
    name: &'static str,
    /// When the last write failed, in a failure episode that has been
    /// reported: no new report until writes succeed for [`RECOVERY`].
    failed_at: Option<Instant>,
    /// Records of failed writes (never written to this sink).
    dropped: u64,
    /// Of those, records of writes given up at exit.
    given_up: u64,
    /// Its counters for `/metrics`: written, dropped, queued.
    stats: Arc<SinkStats>,
}

impl<S: Sink> Target<S> {
    fn new(sink: S, name: &'static str) -> Self {
        Self::with_stats(sink, name, Arc::default())
    }

    fn with_stats(sink: S, name: &'static str, stats: Arc<SinkStats>) -> Self {
        Target {
            sink,
            name,
            failed_at: None,
            dropped: 0,
            given_up: 0,
            stats,
        }
    }

    /// Writes `chunks`, which hold `records` records; returns the error
    /// when it starts a new failure episode (the only time it is
    /// reported). A write given up at exit is counted, not reported: the
    /// writer's last event sums those up. The counters move once per call.
    fn write(&mut self, chunks: &[&[u8]], records: u64, recent: &Recent) -> Option<io::Error> {
        if chunks.is_empty() {
            return None;
        }
        match self.sink.write_chunks(chunks) {
            Ok(()) => {
                self.stats.written.fetch_add(records, Ordering::Relaxed);
                if self.failed_at.is_some_and(|at| at.elapsed() >= RECOVERY) {
                    self.failed_at = None;
                }
                None
            }
            Err(error) => {
                self.dropped += records;
                self.stats.dropped.store(self.dropped, Ordering::Relaxed);
                if sinks::gave_up(&error) {
                    self.given_up += records;
                    return None;
                }
                recent.sink_error(self.name);
                let first = self.failed_at.is_none();
                self.failed_at = Some(Instant::now());
                first.then_some(error)
            }
        }
    }
}

impl<S> Target<S> {
    fn loss(&self) -> SinkLoss {
        SinkLoss {
            sink: self.name,
            dropped: self.dropped,
            given_up: self.given_up,
        }
    }
}

struct Writer {
    /// The counters of the stream sink and the file, kept while a reload
    /// has them off, for the sinks a reload opens (see `Routing::local_on`).
    stream_stats: Arc<SinkStats>,
    file_stats: Arc<SinkStats>,
    /// Makes the failure report of a compressor a reload starts.
    compress_report: CompressReporter,
    /// The flag every sink gets, for sinks opened by a reload.
    give_up: GiveUpFlag,
    format: LogFormat,
    /// Its own events as `pidzero: ...` lines (see `Routing::plain_events`).
    plain_events: bool,
    stream: Option<Target<StdoutSink>>,
    file: Option<Target<FileSink>>,
    recent: Arc<Recent>,
    /// The source name of pidzero's own events.
    pidzero: Arc<str>,
    /// The chunks taken in this round, in order, with their record counts.
    pending: Vec<(Chunk, u64)>,
    pending_bytes: usize,
    /// Where the written batches' buffers go back to the readers.
    pool: Arc<BufferPool>,
    permits: Arc<Semaphore>,
    /// Line batches taken in this round, whose permits go back before writing.
    taken_permits: usize,
    /// What each sink lost, published for [`LogWriter::finish`] whenever
    /// it changes (only on failures: no cost while the sinks work).
    losses: Arc<Mutex<Vec<SinkLoss>>>,
    /// The drops of both sinks at the last publication.
    published_drops: u64,
    /// The network handlers, each fed from its own queue.
    net: Option<NetSinks>,
    /// Their settings, to tell whether a reload changes them.
    net_settings: NetSettings,
    /// For the network handlers a reload starts (they send their outage
    /// events through it) and the counters `/metrics` reads. The writer
    /// ends on `Message::Finish`, so this clone does not keep it alive.
    handle: LogHandle,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        // However this thread ends (a panic too, where panics unwind), the
        // readers waiting for room are woken: nothing more will be written.
        let _close = ClosePermits(Arc::clone(&self.permits));
        while let Some(message) = rx.blocking_recv() {
            let mut finish = self.take(message);
            while !finish && self.pending_bytes < DRAIN_BYTES {
                match rx.try_recv() {
                    Ok(message) => finish = self.take(message),
                    Err(_) => break,
                }
            }
            // Permits go back before the write, so the readers keep reading
            // (and the daemons writing) while this thread is in the kernel;
            // what this round holds is bounded by DRAIN_BYTES instead.
            self.permits
                .add_permits(std::mem::take(&mut self.taken_permits));
            self.flush();
            if finish {
                break;
            }
        }
        self.report_given_up();
        self.finish_net();
        if let Some(file) = &self.file {
            file.sink.finish_compression(compress::EXIT_WAIT);
        }
    }

    /// Lets the network handlers send what they hold (briefly) and adds
    /// what they lost to the losses reported at exit.
    fn finish_net(&mut self) {
        let Some(net) = self.net.take() else {
            return;
        };
        let mut losses = self.losses.lock().unwrap_or_else(|e| e.into_inner());
        if losses.is_empty() {
            losses.extend(
                [
                    self.stream.as_ref().map(Target::loss),
                    self.file.as_ref().map(Target::loss),
                ]
                .into_iter()
                .flatten(),
            );
        }
        losses.extend(net.finish());
    }

    /// After giving up at exit: the last event, on any sink still working,
    /// says how many records each given-up sink lost.
    fn report_given_up(&mut self) {
        let mut reports = Vec::new();
        for (name, given_up, dropped) in [
            self.stream
                .as_ref()
                .map(|t| (t.name, t.given_up, t.dropped)),
            self.file.as_ref().map(|t| (t.name, t.given_up, t.dropped)),
        ]
        .into_iter()
        .flatten()
        {
            if given_up > 0 {
                let event = gave_up_event(name, given_up, dropped);
                reports.push(format_and_keep_event(
                    &self.recent,
                    &self.pidzero,
                    self.format,
                    self.plain_events,
                    &event,
                ));
            }
        }
        if reports.is_empty() {
            return;
        }
        let chunks: Vec<&[u8]> = reports.iter().map(|r| &r[..]).collect();
        let records = chunks.len() as u64;
        if let Some(stream) = self.stream.as_mut().filter(|t| t.given_up == 0) {
            stream.write(&chunks, records, &self.recent);
        }
        if let Some(file) = self.file.as_mut().filter(|t| t.given_up == 0) {
            file.write(&chunks, records, &self.recent);
        }
    }

    /// Takes one message into this round (formatting the lines sent
    /// unformatted); true on `Finish`.
    fn take(&mut self, message: Message) -> bool {
        let mut chunk = match message {
            Message::Records(chunk) => chunk,
            Message::Lines { batch, sinks } => {
                let mut bytes = self.pool.take();
                if sinks.takes_formatted() {
                    format_spans(&mut bytes, self.format, &batch, &batch.lines, None);
                }
                Chunk {
                    bytes,
                    sinks,
                    permit: true,
                    batch: Some(batch),
                    event: None,
                }
            }
            Message::Reopen(reply) => {
                // What came before goes to the file being closed.
                self.permits
                    .add_permits(std::mem::take(&mut self.taken_permits));
                self.flush();
                let _ = reply.send(self.reopen());
                return false;
            }
            Message::Apply(applied) => {
                self.permits
                    .add_permits(std::mem::take(&mut self.taken_permits));
                self.flush();
                self.apply(*applied);
                return false;
            }
            Message::Finish => return true,
        };
        // A batch is one record per line; anything else is one event.
        let records = chunk.batch.as_ref().map_or(1, |b| b.lines.len() as u64);
        // One batch, kept for the API and shared with the network
        // handlers' queues: no copy of its bytes on this thread.
        let batch = chunk.batch.take().map(|mut batch| {
            recent::trim(&mut batch);
            Arc::new(batch)
        });
        if let Some(net) = &self.net {
            if let Some(batch) = &batch {
                net.lines(batch, chunk.sinks);
            }
            if let Some(event) = chunk.event.take() {
                net.event(&event, chunk.sinks);
            }
        }
        if let Some(batch) = batch {
            self.recent.add_lines(batch);
        }
        self.taken_permits += usize::from(chunk.permit);
        self.pending_bytes += chunk.bytes.len();
        self.pending.push((chunk, records));
        false
    }

    /// Writes this round to both sinks; a new failure of one sink is
    /// reported on the other.
    fn flush(&mut self) {
        let mut stream_report = None;
        if let Some(stream) = self.stream.as_mut() {
            let (chunks, records) = round_for(&self.pending, SinkKind::Stdout);
            if let Some(error) = stream.write(&chunks, records, &self.recent) {
                stream_report = Some(report(
                    (self.format, self.plain_events),
                    &self.recent,
                    &self.pidzero,
                    stream.name,
                    &error,
                ));
            }
            unqueue(&stream.stats, records);
        }
        if let Some(file) = self.file.as_mut() {
            let (mut chunks, records) = round_for(&self.pending, SinkKind::File);
            chunks.extend(stream_report.as_deref());
            let reports = u64::from(stream_report.is_some());
            if let Some(error) = file.write(&chunks, records + reports, &self.recent) {
                let report = report(
                    (self.format, self.plain_events),
                    &self.recent,
                    &self.pidzero,
                    file.name,
                    &error,
                );
                // Written now rather than with the next round, which may be far off.
                if let Some(stream) = self.stream.as_mut() {
                    stream.write(&[&report], 1, &self.recent);
                }
            }
            unqueue(&file.stats, records);
        }
        self.pool.give_back(
            self.pending
                .drain(..)
                .filter(|(c, _)| c.permit)
                .map(|(c, _)| c.bytes),
        );
        self.pending_bytes = 0;
        self.publish_losses();
    }

    /// Reopens the file sink, if there is one.
    fn reopen(&mut self) -> Reopened {
        let Some(file) = self.file.as_mut() else {
            return Reopened::NoFile;
        };
        let path = file.sink.path().to_path_buf();
        match file.sink.reopen() {
            Ok(()) => Reopened::File(path),
            Err(error) => Reopened::Failed {
                path,
                error: error.to_string(),
            },
        }
    }

    /// Takes new settings (see [`Applied`]). A file that cannot be opened
    /// leaves the old one in use (and the answer says why).
    fn apply(&mut self, applied: Applied) {
        let Applied {
            settings,
            plain_events,
            stream,
            reply,
        } = applied;
        self.format = settings.format;
        self.plain_events = plain_events;
        if settings.net != self.net_settings {
            self.replace_net(&settings.net);
        }
        match (stream, self.stream.is_some()) {
            (Some(true), false) => {
                let sink =
                    StdoutSink::new(libc::STDOUT_FILENO).with_give_up(Arc::clone(&self.give_up));
                self.recent.register_sink("stdout");
                self.stream = Some(Target::with_stats(
                    sink,
                    "stdout",
                    Arc::clone(&self.stream_stats),
                ));
            }
            (Some(false), true) => self.stream = None,
            _ => {}
        }
        if !settings.log_to_file {
            self.file = None;
            let _ = reply.send(Reopened::NoFile);
            return;
        }
        let path = settings.file_path.clone();
        let opened = FileSink::open(&path, settings.max_file_size, settings.max_files);
        let answer = match opened {
            Ok(sink) => {
                let mut sink = sink.with_give_up(Arc::clone(&self.give_up));
                // The old file's compressor carries on when it serves the
                // same names; otherwise it finishes on a thread of its own
                // (dropping it waits for its compressions).
                let old = self.file.as_mut().and_then(|f| f.sink.take_compressor());
                match old {
                    Some(c) if settings.compress && c.serves(&path, settings.max_files) => {
                        sink.compress_with(c)
                    }
                    old => {
                        if let Some(c) = old {
                            let _ = std::thread::Builder::new()
                                .name(compress::THREAD_NAME.into())
                                .spawn(move || drop(c));
                        }
                        if settings.compress {
                            sink.compress_with(Compressor::new(
                                &path,
                                settings.max_files,
                                (self.compress_report)(),
                            ));
                        }
                    }
                }
                match self.file.as_mut() {
                    // Its loss counters carry on.
                    Some(file) => file.sink = sink,
                    None => {
                        self.recent.register_sink("file");
                        self.file = Some(Target::with_stats(
                            sink,
                            "file",
                            Arc::clone(&self.file_stats),
                        ));
                    }
                }
                Reopened::File(path)
            }
            Err(error) => Reopened::Failed {
                path,
                error: error.to_string(),
            },
        };
        let _ = reply.send(answer);
    }

    /// A reload changed the network handlers: the new ones take the
    /// records from now on; the old ones send what they hold (bounded, as
    /// at exit) on a thread of their own, so the writer never waits for a
    /// receiver.
    fn replace_net(&mut self, settings: &NetSettings) {
        let old = self.net.take();
        let new = match NetSinks::start(settings, &self.handle) {
            Ok(new) => new,
            Err(error) => {
                self.handle.event(net_start_error(&error));
                None
            }
        };
        self.handle
            .set_net_stats(new.as_ref().map(NetSinks::stats).unwrap_or_default());
        self.net = new;
        self.net_settings = settings.clone();
        if let Some(old) = old {
            let handle = self.handle.clone();
            let spawned = std::thread::Builder::new()
                .name("pidzero-net-end".into())
                .spawn(move || {
                    for loss in old.finish().into_iter().filter(|l| l.given_up > 0) {
                        handle.event(net_replaced_loss(&loss));
                    }
                });
            if let Err(error) = spawned {
                self.handle.event(net_start_error(&error));
            }
        }
    }

    fn publish_losses(&mut self) {
        let losses: Vec<SinkLoss> = [
            self.stream.as_ref().map(Target::loss),
            self.file.as_ref().map(Target::loss),
        ]
        .into_iter()
        .flatten()
        .collect();
        let drops = losses.iter().map(|l| l.dropped).sum();
        if drops != self.published_drops {
            self.published_drops = drops;
            *self.losses.lock().unwrap_or_else(|e| e.into_inner()) = losses;
        }
    }
}

/// The bytes of this round's chunks that `kind` takes, and how many
/// records they hold.
fn round_for(pending: &[(Chunk, u64)], kind: SinkKind) -> (Vec<&[u8]>, u64) {
    let mut records = 0;
    let chunks = pending
        .iter()
        .filter(|(c, _)| c.sinks.contains(kind))
        .map(|(c, n)| {
            records += n;
            &c.bytes[..]
        })
        .collect();
    (chunks, records)
}

/// Closes the semaphore when dropped, so that no reader waits for a permit
/// from a writer that is gone.
struct ClosePermits(Arc<Semaphore>);

impl Drop for ClosePermits {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The `sink_error` event for `sink`, formatted, counted and kept.
fn report(
    (format, plain): (LogFormat, bool),
    recent: &Recent,
    pidzero: &Arc<str>,
    sink: &'static str,
    error: &io::Error,
) -> Vec<u8> {
    format_and_keep_event(recent, pidzero, format, plain, &sink_error(sink, error))
}

/// The `sink_error` event, at exit, for a sink whose writes were given up.
fn gave_up_event(sink: &'static str, given_up: u64, dropped: u64) -> EventRecord {
    EventRecord {
        timestamp: timestamp_now(),
        level: Level::Error,
        event: "sink_error",
        fields: vec![
            ("sink", FieldValue::Str(sink.to_string())),
            ("error", FieldValue::Str("gave up at exit".to_string())),
            ("given_up", FieldValue::Int(given_up as i64)),
            ("dropped", FieldValue::Int(dropped as i64)),
        ],
        line: format!(
            "gave up {given_up} log records that {sink} did not take before pidzero exited ({dropped} records never reached {sink} in all)"
        ),
    }
}

/// Takes `records` written (or dropped) off a sink's queued gauge. Never
/// below 0: records sent while a reload turned the sink on were not
/// counted as queued for it.
fn unqueue(stats: &SinkStats, records: u64) {
    let _ = stats
        .queued
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
            Some(q.saturating_sub(records))
        });
}

/// Makes the failure report of each compressor (one per file sink).
type CompressReporter = Box<dyn Fn() -> compress::Report + Send>;

fn compress_reporter(handle: &LogHandle, recent: &Arc<Recent>) -> CompressReporter {
    let handle = handle.clone();
    let recent = Arc::clone(recent);
    Box::new(move || compress_report(&handle, &recent))
}

/// What a failed compression does: a `sink_error` event for the file
/// sink (sent like any event, from the compressor's thread), counted with
/// the file's errors.
fn compress_report(handle: &LogHandle, recent: &Arc<Recent>) -> compress::Report {
    let handle = handle.clone();
    let recent = Arc::clone(recent);
    Box::new(move |plain, error| {
        recent.sink_error("file");
        handle.event(compress_error(plain, error));
    })
}

/// The `sink_error` event for a rotated file that could not be compressed.
fn compress_error(plain: &std::path::Path, error: &io::Error) -> EventRecord {
    EventRecord {
        timestamp: timestamp_now(),
        level: Level::Error,
        event: "sink_error",
        fields: vec![
            ("sink", FieldValue::Str("file".to_string())),
            ("error", FieldValue::Str(error.to_string())),
            ("path", FieldValue::Str(plain.display().to_string())),
        ],
        line: format!(
            "cannot compress the rotated log file {}: {error}; it stays uncompressed",
            plain.display()
        ),
    }
}

/// A network handler a reload asked for could not start.
fn net_start_error(error: &io::Error) -> EventRecord {
    EventRecord {
        timestamp: timestamp_now(),
        level: Level::Error,
        event: "sink_error",
        fields: vec![("error", FieldValue::Str(error.to_string()))],
        line: format!("cannot start the network log handlers of the new configuration: {error}"),
    }
}

/// What a network handler replaced by a reload could not send in its
/// last second.
fn net_replaced_loss(loss: &SinkLoss) -> EventRecord {
    EventRecord {
        timestamp: timestamp_now(),
        level: Level::Warn,
        event: "sink_error",
        fields: vec![
            ("sink", FieldValue::Str(loss.sink.to_string())),
            (
                "dropped",
                FieldValue::Int(i64::try_from(loss.given_up).unwrap_or(i64::MAX)),
            ),
        ],
        line: format!(
            "the {} handler replaced by a reload gave up {} records it could not send",
            loss.sink, loss.given_up
        ),
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
    use crate::log::recent::RECENT_RECORDS;
    use crate::log::record::{LineBatch, Stream};
    use crate::test_support::block_on;
    use crate::test_support::Dir;
    use std::os::fd::AsRawFd;
    use std::path::Path;

    fn settings(path: &Path, format: LogFormat) -> LogSettings {
        LogSettings {
            format,
            format_chosen: true,
            file_path: path.to_path_buf(),
            log_to_file: true,
            log_to_stdout: false,
            max_file_size: 0,
            max_files: 1,
            compress: false,
            max_line_bytes: 16384,
            net: Default::default(),
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

    /// A writer thread for `settings` (not quiet), with `stream` as its
    /// stream sink if given.
    fn start_writer(settings: LogSettings, stream: Option<RawFd>) -> (LogHandle, LogWriter) {
        spawn(
            WriterOptions {
                settings,
                quiet: false,
            },
            stream,
        )
        .unwrap()
    }

    #[test]
    fn all_lines_reach_the_file_in_order_under_back_pressure() {
        let dir = Dir::new("writer");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_writer(settings(&path, LogFormat::Text), None);
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
    }

    /// A stdout nobody reads: the pipe fills, the writer blocks, and after
    /// `BATCHES_IN_FLIGHT` more batches `send_lines` waits instead of queuing.
    #[test]
    fn send_lines_waits_for_room() {
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut settings = settings(Path::new("/nonexistent"), LogFormat::Text);
        settings.log_to_file = false;
        settings.log_to_stdout = true;
        let (log, writer) = start_writer(settings, Some(write_end.as_raw_fd()));
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
        // What the pipe did not take is queued (or in the write that waits).
        let stdout = log.local_sink_counts()[0];
        assert_eq!(stdout.sink, "stdout");
        assert_eq!(stdout.written + stdout.queued, sent as u64, "{stdout:?}");
        assert!(stdout.queued > BATCHES_IN_FLIGHT as u64, "{stdout:?}");
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(read_end), &mut text).unwrap();
            text
        });
        writer.finish(&log);
        drop(write_end);
        assert_eq!(reader.join().unwrap().lines().count(), sent);
        let stdout = log.local_sink_counts()[0];
        assert_eq!((stdout.written, stdout.queued), (sent as u64, 0));
        assert!(log.permits.is_closed());
        // After the writer stopped, sending returns at once instead of waiting forever.
        block_on(log.send_lines(batch_of("w", "after\n")));
    }

    /// Lines only network handlers take are never formatted in the
    /// pipeline (the handlers encode records in their own format), whether
    /// the reader or the writer would have formatted them.
    #[test]
    fn lines_only_for_network_handlers_are_not_formatted() {
        use crate::config::{LineRoute, SinkKind};
        let (tx, mut rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
        let read_buffers = Arc::new(BufferPool::default());
        let recent = Arc::new(Recent::new(Arc::clone(&read_buffers)));
        let routing = Routing {
            format: LogFormat::Json,
            quiet: false,
            plain_events: false,
            line_sinks: SinkSet::ALL,
            net: true,
            local_on: SinkSet::ALL,
        };
        let pool = Arc::new(BufferPool::default());
        let log = LogHandle::new(tx, permits, recent, read_buffers, pool, routing, 16384)
            .for_daemon(LineRoute {
                sinks: SinkSet::of([SinkKind::Forward]),
                ..LineRoute::default()
            });
        block_on(async {
            log.send_lines(batch_of("a", "first\n")).await;
            log.send_lines(batch_of("a", "second\n")).await;
        });
        // The second would have been formatted by its sender (the first
        // is queued): it goes unformatted too.
        for _ in 0..2 {
            let Ok(Message::Lines { sinks, .. }) = rx.try_recv() else {
                panic!("a batch for the forward handler only was formatted by its sender");
            };
            assert_eq!(sinks, SinkSet::of([SinkKind::Forward]));
        }
    }

    /// A batch goes unformatted only when no other batch is queued.
    #[test]
    fn lines_go_unformatted_only_to_a_writer_with_nothing_queued() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
        let read_buffers = Arc::new(BufferPool::default());
        let recent = Arc::new(Recent::new(Arc::clone(&read_buffers)));
        let routing = Routing {
            format: LogFormat::Json,
            quiet: false,
            plain_events: false,
            line_sinks: SinkSet::ALL,
            net: false,
            local_on: SinkSet::ALL,
        };
        let pool = Arc::new(BufferPool::default());
        let log = LogHandle::new(
            tx,
            permits,
            Arc::clone(&recent),
            read_buffers,
            pool,
            routing,
            16384,
        );
        block_on(async {
            log.send_lines(batch_of("a", "first\n")).await;
            log.send_lines(batch_of("a", "second\n")).await;
        });
        // Nothing was queued for the first; the first was for the second.
        assert!(matches!(rx.try_recv(), Ok(Message::Lines { .. })));
        let Ok(Message::Records(chunk)) = rx.try_recv() else {
            panic!("the second batch was not formatted by its sender");
        };
        assert!(String::from_utf8(chunk.bytes)
            .unwrap()
            .ends_with("\"line\":\"second\"}\n"));
        // Either way the batch goes to the writer, which keeps both in order.
        assert!(chunk.batch.is_some());
        assert!(recent.recent("a", 10).is_empty());
    }

    /// A batch the writer formats itself: the same records as a formatted
    /// one, in the order sent, counted and kept for the control API.
    #[test]
    fn the_writer_formats_lines_sent_unformatted() {
        let dir = Dir::new("writer-formats");
        let path = dir.p("pidzero.log");
        let (log, writer) = start_writer(settings(&path, LogFormat::Json), None);
        let texts = ["one\ntwo\n", "three \"quoted\"\n", "four\n"];
        let mut expected = Vec::new();
        block_on(async {
            for (i, text) in texts.iter().enumerate() {
                let batch = batch_of("a", text);
                crate::log::format::format_batch(&mut expected, LogFormat::Json, &batch);
                if i % 2 == 0 {
                    // As `send_lines` sends one to an idle writer.
                    log.permits.acquire().await.unwrap().forget();
                    let _ = log.tx.send(Message::Lines {
                        batch,
                        sinks: SinkSet::ALL,
                    });
                } else {
                    // With a permit held, as if a batch were queued: the
                    // sender formats this one itself.
                    log.permits.acquire().await.unwrap().forget();
                    log.send_lines(batch).await;
                    log.permits.add_permits(1);
                }
            }
        });
        writer.finish(&log);
        assert_eq!(
            String::from_utf8(std::fs::read(&path).unwrap()).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        let kept: Vec<String> = log
            .recent("a", 10)
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["line"].to_string())
            .collect();
        assert_eq!(
            kept,
            [r#""one""#, r#""two""#, r#""three \"quoted\"""#, r#""four""#]
        );
        assert_eq!(log.daemon_counters(), vec![("a".to_string(), 4, 24)]);
        assert_eq!(
            log.permits.available_permits(),
            BATCHES_IN_FLIGHT,
            "every permit back"
        );
    }

    /// A stream sink nobody reads (a blocking pipe, full): past the
    /// deadline, `finish` interrupts the blocked write and returns; the
    /// file got every line and a last event counting what stdout lost.
    #[test]
    fn finish_gives_up_a_blocked_stdout_and_counts_what_it_dropped() {
        let dir = Dir::new("give-up");
        let path = dir.p("pidzero.log");
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut settings = settings(&path, LogFormat::Json);
        settings.log_to_stdout = true;
        let (log, writer) = start_writer(settings, Some(write_end.as_raw_fd()));
        let lines = 3000;
        // Three batches: fewer than the permits, so sending never waits.
        block_on(async {
            for batch in 0..3 {
                let text: String = (0..lines / 3)
                    .map(|i| format!("line {batch} {i} {}\n", "x".repeat(100)))
                    .collect();
                log.send_lines(batch_of("w", &text)).await;
            }
        });
        writer.give_up_handle().set_deadline(Instant::now());
        let asked = Instant::now();
        let losses = writer.finish(&log);
        assert!(asked.elapsed() < GIVE_UP_GRACE, "{:?}", asked.elapsed());
        let file_loss = SinkLoss {
            sink: "file",
            dropped: 0,
            given_up: 0,
        };
        assert_eq!(losses[1], file_loss, "{losses:?}");
        let stdout = losses[0];
        assert_eq!(stdout.sink, "stdout");
        assert_eq!(stdout.dropped, stdout.given_up);
        let given_up = stdout.given_up;
        // The pipe holds 64 KiB: at most a few hundred records got through.
        assert!(given_up > 2000 && given_up <= lines, "{given_up}");
        drop(read_end);
        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            records.iter().filter(|r| r["source"] == "w").count() as u64,
            lines
        );
        let last = records.last().unwrap();
        assert_eq!(last["event"], "sink_error", "{text}");
        assert_eq!(last["sink"], "stdout");
        assert_eq!(last["given_up"], given_up);
        assert_eq!(last["dropped"], given_up);
        assert_eq!(
            describe_losses(&losses).unwrap(),
            format!("log records lost: stdout {given_up} ({given_up} given up at exit)")
        );
    }

    #[test]
    fn closed_stdout_is_reported_once_in_the_file() {
        let dir = Dir::new("epipe");
        let path = dir.p("pidzero.log");
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        drop(read_end);
        // SAFETY: ignoring SIGPIPE, as the Rust runtime does for pidzero.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let mut settings = settings(&path, LogFormat::Json);
        settings.log_to_stdout = true;
        let (log, writer) = start_writer(settings, Some(write_end.as_raw_fd()));
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
        let [stdout, file] = log.local_sink_counts()[..] else {
            panic!("two sinks");
        };
        assert_eq!(stdout.sink, "stdout");
        assert!(stdout.errors >= 1, "{stdout:?}");
        assert_eq!(stdout.written + stdout.dropped, 50, "{stdout:?}");
        assert!(stdout.dropped >= 1, "{stdout:?}");
        assert_eq!(stdout.queued, 0);
        assert_eq!(file.sink, "file");
        assert_eq!(
            (file.written, file.dropped, file.queued, file.errors),
            (records.len() as u64, 0, 0, 0),
            "{file:?}"
        );
        let counts = log.sink_error_counts();
        assert!(counts[0].1 >= 1, "{counts:?}");
        assert_eq!(counts[1], ("file".to_string(), 0));
        assert_eq!(counts[0].0, "stdout");
        assert!(counts[0].1 >= 1);
    }

    /// With JSON output, what `recent` gives for a daemon and for pidzero is
    /// byte for byte what the file got: same timestamps, `partial` pieces of a
    /// line cut at `max_line_bytes`, events.
    #[test]
    fn recent_records_are_the_records_written() {
        let dir = Dir::new("recent-same");
        let path = dir.p("pidzero.log");
        let mut settings = settings(&path, LogFormat::Json);
        settings.max_line_bytes = 4;
        let (log, writer) = start_writer(settings, None);
        let mut batch = LineBatch::new("d".into(), Stream::Stderr, timestamp_now());
        Framer::new(4).push(b"abcdefghij\nq\"r\n", &mut batch);
        block_on(log.send_lines(batch));
        log.event(info("started", "hello"));
        writer.finish(&log);
        let text = std::fs::read_to_string(&path).unwrap();
        let written: Vec<&str> = text.lines().collect();
        let daemon = log.recent("d", 10);
        assert_eq!(daemon.len(), 4, "{daemon:?}");
        assert_eq!(daemon, written[..4], "{text}");
        assert!(
            daemon[0].ends_with(r#""line":"abcd","partial":true}"#),
            "{}",
            daemon[0]
        );
        assert_eq!(log.recent("pidzero", 10), written[4..], "{text}");
    }

    /// `recent` gives JSON whatever the format, oldest first, per source;
    /// the counters follow every batch and event.
    #[test]
    fn recent_records_and_counters_in_every_format() {
        for format in [LogFormat::Json, LogFormat::Text, LogFormat::Logfmt] {
            let dir = Dir::new("recent");
            let path = dir.p("pidzero.log");
            let (log, writer) = start_writer(settings(&path, format), None);
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
        }
    }

    /// With both sinks off, lines are not formatted for nobody, but they are
    /// still counted and kept for the API.
    #[test]
    fn without_sinks_lines_are_counted_and_kept() {
        let mut settings = settings(Path::new("/nonexistent"), LogFormat::Json);
        settings.log_to_file = false;
        let (log, writer) = start_writer(settings, None);
        block_on(log.send_lines(batch_of("d", "one\ntwo\n")));
        writer.finish(&log);
        let kept = log.recent("d", 10);
        assert_eq!(kept.len(), 2);
        assert!(kept[1].ends_with(r#""line":"two"}"#), "{}", kept[1]);
        assert_eq!(log.daemon_counters(), [("d".to_string(), 2, 6)]);
        assert!(log.sink_error_counts().is_empty());
    }

    #[test]
    fn quiet_mode_keeps_stdout_clean_and_stderr_to_warnings() {
        let dir = Dir::new("quiet");
        let path = dir.p("pidzero.log");
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
    }

    /// A daemon's lines reach only the sinks of its `sinks`; events reach
    /// every sink; a daemon routed to no enabled sink is still kept.
    #[test]
    fn lines_reach_only_the_sinks_of_their_daemon() {
        use crate::config::{LineRoute, SinkKind, SinkSet};
        let dir = Dir::new("routed");
        let path = dir.p("pidzero.log");
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut settings = settings(&path, LogFormat::Text);
        settings.log_to_stdout = true;
        let (log, writer) = start_writer(settings, Some(write_end.as_raw_fd()));
        let route = |sinks: SinkSet| LineRoute {
            sinks,
            ..LineRoute::default()
        };
        let to_file = log.for_daemon(route(SinkSet::of([SinkKind::File])));
        let to_stdout = log.for_daemon(route(SinkSet::of([SinkKind::Stdout])));
        let to_syslog = log.for_daemon(route(SinkSet::of([SinkKind::Syslog])));
        block_on(async {
            for i in 0..50 {
                to_file
                    .send_lines(batch_of("debug", &format!("f{i}\n")))
                    .await;
                to_stdout
                    .send_lines(batch_of("app", &format!("s{i}\n")))
                    .await;
                log.send_lines(batch_of("all", &format!("a{i}\n"))).await;
                to_syslog
                    .send_lines(batch_of("net", &format!("n{i}\n")))
                    .await;
            }
        });
        log.event(info("started", "an event"));
        writer.finish(&log);
        drop(write_end);
        let mut stream = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(read_end), &mut stream).unwrap();
        let file = std::fs::read_to_string(&path).unwrap();
        let sources = |text: &str| {
            let mut seen: Vec<String> = text
                .lines()
                .map(|l| l.split(' ').nth(1).unwrap().to_string())
                .collect();
            seen.sort();
            seen.dedup();
            seen
        };
        assert_eq!(sources(&stream), ["all", "app", "pidzero"], "{stream}");
        assert_eq!(sources(&file), ["all", "debug", "pidzero"], "{file}");
        assert_eq!(stream.lines().count(), 101);
        assert_eq!(file.lines().count(), 101);
        // Lines routed to no enabled sink are still counted and kept.
        assert_eq!(log.recent("net", 100).len(), 50);
    }

    /// A reopen writes what came before to the file being closed and the
    /// records after it to a new file at the path (after a rename away, as
    /// logrotate does); without a file sink it says so.
    #[test]
    fn reopen_sends_the_next_records_to_a_new_file() {
        let dir = Dir::new("reopen");
        let path = dir.p("pidzero.log");
        let rotated = dir.p("pidzero.log.old");
        let (log, writer) = start_writer(settings(&path, LogFormat::Text), None);
        block_on(log.send_lines(batch_of("d", "before\n")));
        std::fs::rename(&path, &rotated).unwrap();
        block_on(log.send_lines(batch_of("d", "renamed\n")));
        let answer = block_on(log.reopen());
        assert_eq!(answer, Some(Reopened::File(path.clone())));
        block_on(log.send_lines(batch_of("d", "after\n")));
        writer.finish(&log);
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(old.ends_with(" d stdout: before\n") || old.contains(" d stdout: before\n"));
        assert!(old.ends_with(" d stdout: renamed\n"), "{old}");
        assert_eq!(old.lines().count(), 2, "{old}");
        assert!(new.ends_with(" d stdout: after\n"), "{new}");
        assert_eq!(new.lines().count(), 1, "{new}");

        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        let mut settings = settings(&path, LogFormat::Text);
        settings.log_to_file = false;
        settings.log_to_stdout = true;
        let (log, writer) = start_writer(settings, Some(write_end.as_raw_fd()));
        assert_eq!(block_on(log.reopen()), Some(Reopened::NoFile));
        writer.finish(&log);
        drop((read_end, write_end));
        assert_eq!(block_on(log.reopen()), None, "the writer has stopped");
    }

    /// New settings (a reload): the records before go to the old file in
    /// the old format, those after to the new path in the new format.
    #[test]
    fn apply_switches_the_format_and_the_file() {
        let dir = Dir::new("apply");
        let (old_path, new_path) = (dir.p("old.log"), dir.p("new.log"));
        let (log, writer) = start_writer(settings(&old_path, LogFormat::Text), None);
        block_on(log.send_lines(batch_of("d", "before\n")));
        let answer = block_on(log.apply(&settings(&new_path, LogFormat::Json)));
        assert_eq!(answer, Ok(Reopened::File(new_path.clone())));
        block_on(log.send_lines(batch_of("d", "after\n")));
        log.event(info("started", "an event"));
        writer.finish(&log);
        let old = std::fs::read_to_string(&old_path).unwrap();
        let new = std::fs::read_to_string(&new_path).unwrap();
        assert!(old.ends_with(" d stdout: before\n"), "{old}");
        assert_eq!(old.lines().count(), 1, "{old}");
        let lines: Vec<&str> = new.lines().collect();
        assert_eq!(lines.len(), 2, "{new}");
        assert!(
            lines[0].starts_with('{') && lines[0].contains(r#""line":"after""#),
            "{new}"
        );
        assert!(lines[1].contains(r#""event":"started""#), "{new}");
    }

    /// A file a reload turns on counts in `/metrics` (written, nothing
    /// left queued) and, with `compress`, its rotated files are gzipped.
    #[test]
    fn a_file_turned_on_by_apply_counts_and_compresses() {
        let dir = Dir::new("apply-on");
        let path = dir.p("late.log");
        let mut off = settings(&path, LogFormat::Text);
        off.log_to_file = false;
        let (log, writer) = start_writer(off, None);
        assert!(log.local_sink_counts().is_empty());
        block_on(log.send_lines(batch_of("d", "unseen\n")));
        let mut on = settings(&path, LogFormat::Text);
        on.max_file_size = 64;
        on.max_files = 2;
        on.compress = true;
        let answer = block_on(log.apply(&on));
        assert_eq!(answer, Ok(Reopened::File(path.clone())));
        for i in 0..6 {
            block_on(log.send_lines(batch_of("d", &format!("line number {i}\n"))));
        }
        writer.finish(&log);
        let counts = log.local_sink_counts();
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(
            (counts[0].sink, counts[0].written, counts[0].queued),
            ("file", 6, 0)
        );
        assert!(
            dir.p("late.log.1.gz").exists(),
            "rotated file not compressed"
        );
    }
}

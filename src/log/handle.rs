//! The sending side of the log pipeline: records are formatted by whoever
//! sends them (the pipe readers, the supervisor) and their bytes go to the
//! writer thread; except a batch of daemon lines sent while the writer has
//! no other batch queued, which goes unformatted for the writer to format.
//!
//! Why: the writer is the one serial stage (it alone writes every sink, in
//! order), so whatever it does per line caps the throughput of all daemons
//! together; while it is behind, the readers format beside it. But a writer
//! with nothing queued would wait for the next batch while the readers'
//! core, shared with the daemons that write, is the busy one. Such a batch
//! is formatted by the writer instead, into a buffer it writes at once
//! (still in its cache, which also makes that write cheaper). Who formats
//! thus follows who is behind, batch by batch; see BENCHMARKS.md.
//!
//! The counters and the recent records ([`Recent`]) of daemon lines are
//! updated by the writer as it takes each batch, in the order sent, before
//! writing it: they may run ahead of the sinks by a round of writes, never
//! behind; with no sink for daemon lines, the sender updates them. A batch
//! of lines ends up in [`Recent`], which keeps it as it is (see there)
//! instead of a copy of its records.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, Semaphore};

use super::channel::{Applied, Chunk, Message, Reopened, BATCHES_IN_FLIGHT};
use super::format::{format_event, format_spans};
use super::net::{SinkCounts, SinkStats};
use super::pool::BufferPool;
use super::recent::Recent;
use super::record::{EventRecord, Level, LineBatch};
use crate::config::{LineRoute, LogFormat, LogSettings, SinkKind, SinkSet};

/// Formats records and sends them to the writer thread; cheap to clone, one
/// per reader.
#[derive(Clone)]
pub struct LogHandle {
    pub(super) tx: mpsc::UnboundedSender<Message>,
    pub(super) permits: Arc<Semaphore>,
    recent: Arc<Recent>,
    /// Buffers for pipe reads, given back by `recent`.
    read_buffers: Arc<BufferPool>,
    /// Buffers for formatted batches, given back by the writer.
    pool: Arc<BufferPool>,
    /// Shared by every clone, so that a reload ([`LogHandle::apply`])
    /// reaches every reader at once.
    routing: Arc<RwLock<Routing>>,
    /// `log.max_line_bytes`: where the pipe readers cut long lines. It
    /// travels with the handle every reader gets, so nothing between the
    /// settings and the readers carries it; a reload changes it for the
    /// readers started after it.
    max_line_bytes: Arc<AtomicUsize>,
    /// The source name of pidzero's own events.
    pidzero: Arc<str>,
    /// The network handlers' counters, for `/metrics`.
    /// Shared by every clone: a reload that changes the handlers swaps it.
    net_stats: Arc<RwLock<NetStats>>,
    /// The writer's sinks (stdout or stderr, file), their names and
    /// counters: senders add what they queue for each.
    local_stats: Arc<[LocalStats]>,
    /// The `sinks` and `parse` of the daemon whose lines this handle sends
    /// (see [`LogHandle::for_daemon`]); all sinks and text otherwise.
    route: LineRoute,
}

/// The network handlers' kinds and counters.
pub(super) type NetStats = Arc<[(SinkKind, Arc<SinkStats>)]>;

/// One of the writer's sinks for `/metrics`: its kind, its name (`stdout`,
/// `stderr` in quiet mode, `file`) and its counters.
pub(super) type LocalStats = (SinkKind, &'static str, Arc<SinkStats>);

/// What the sinks take, so that records are formatted here as they need.
#[derive(Debug, Clone, Copy)]
pub(super) struct Routing {
    pub format: LogFormat,
    /// Main-command mode without daemons.json: daemon lines never go to the
    /// stream sink, and events only from warn up (see [`super::WriterOptions`]).
    pub quiet: bool,
    /// Quiet, with no file and no format the user chose: pidzero's own
    /// warnings and errors are plain `pidzero: ...` lines, as tini's are.
    pub plain_events: bool,
    /// The sinks that take daemon lines: the stream sink unless quiet,
    /// the file when on. A batch goes to those of them in its daemon's
    /// `sinks`; to none (only counted and kept) when that leaves none.
    pub line_sinks: SinkSet,
    /// Network handlers are on: events travel with their record too.
    pub net: bool,
    /// The writer's sinks that exist now (the stream sink, the file):
    /// only they count what is queued for them, and only they show in
    /// `/metrics`. A reload turns them on and off.
    pub local_on: SinkSet,
}

impl LogHandle {
    pub(super) fn new(
        tx: mpsc::UnboundedSender<Message>,
        permits: Arc<Semaphore>,
        recent: Arc<Recent>,
        read_buffers: Arc<BufferPool>,
        pool: Arc<BufferPool>,
        routing: Routing,
        max_line_bytes: usize,
    ) -> Self {
        LogHandle {
            tx,
            permits,
            recent,
            read_buffers,
            pool,
            routing: Arc::new(RwLock::new(routing)),
            max_line_bytes: Arc::new(AtomicUsize::new(max_line_bytes)),
            pidzero: "pidzero".into(),
            net_stats: Arc::new(RwLock::new(Arc::new([]))),
            local_stats: Arc::new([]),
            route: LineRoute::default(),
        }
    }

    /// A handle for the pipe readers of one daemon: its lines go to the
    /// sinks of `route` only, and are parsed as `route` says.
    pub fn for_daemon(&self, route: LineRoute) -> LogHandle {
        LogHandle {
            route,
            ..self.clone()
        }
    }

    /// The network handlers' counters, for `/metrics`, as every clone of
    /// this handle sees them (at the start, and after a reload changed the
    /// handlers).
    pub(super) fn set_net_stats(&self, stats: Vec<(SinkKind, Arc<SinkStats>)>) {
        *self.net_stats.write().unwrap_or_else(|e| e.into_inner()) = stats.into();
    }

    /// This handle with the writer's sinks' counters (see `local_stats`).
    pub(super) fn with_local_stats(mut self, stats: Vec<LocalStats>) -> Self {
        self.local_stats = stats.into();
        self
    }

    /// Records written, dropped and failed writes of the writer's own
    /// sinks (`stdout` or `stderr`, `file`), and the records queued for
    /// each: sent to the writer, not yet written (or dropped).
    pub fn local_sink_counts(&self) -> Vec<SinkCounts> {
        let errors = self.recent.sink_error_counts();
        let on = self.routing().local_on;
        self.local_stats
            .iter()
            .filter(|(kind, _, _)| on.contains(*kind))
            .map(|(_, name, stats)| SinkCounts {
                errors: errors
                    .iter()
                    .find(|(sink, _)| sink == name)
                    .map_or(0, |(_, n)| *n),
                ..stats.counts(name)
            })
            .collect()
    }

    /// Counts `records` as queued for each of the writer's sinks in
    /// `sinks`: one atomic add per sink and batch, before the send (the
    /// writer subtracts once it has written them).
    /// `routing` is the one the sender read for this batch (one read of the
    /// shared lock per batch).
    fn count_queued(&self, routing: &Routing, sinks: SinkSet, records: u64) {
        let sinks = sinks.and(routing.local_on);
        for (kind, _, stats) in self.local_stats.iter() {
            if sinks.contains(*kind) {
                stats.queued.fetch_add(records, Ordering::Relaxed);
            }
        }
    }

    /// Each network handler's records written, dropped, failed attempts
    /// and queued records.
    pub fn net_sink_counts(&self) -> Vec<SinkCounts> {
        let stats = Arc::clone(&self.net_stats.read().unwrap_or_else(|e| e.into_inner()));
        stats
            .iter()
            .map(|(kind, stats)| stats.counts(kind.name()))
            .collect()
    }

    /// Where the pipe readers cut long lines (`log.max_line_bytes`).
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes.load(Ordering::Relaxed)
    }

    /// The routing as of now (a reload may change it).
    fn routing(&self) -> Routing {
        *self.routing.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes new log settings (a reload of `config.json`): records
    /// formatted from now on use the new format and go to the sinks now
    /// on; the writer, after what was sent before, opens the file again
    /// (a new path, or the same path after logrotate moved it) and answers
    /// what it opened; network handlers whose settings changed are
    /// replaced (see the writer's `apply`).
    pub fn apply(&self, settings: &LogSettings) -> tokio::sync::oneshot::Receiver<Reopened> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let routing = {
            let mut routing = self.routing.write().unwrap_or_else(|e| e.into_inner());
            let mut sinks = routing
                .line_sinks
                .without(SinkKind::File)
                .without(SinkKind::Stdout);
            if settings.log_to_file {
                sinks = sinks.with(SinkKind::File);
            }
            if settings.log_to_stdout && !routing.quiet {
                sinks = sinks.with(SinkKind::Stdout);
            }
            routing.format = settings.format;
            routing.plain_events =
                routing.quiet && !settings.format_chosen && !settings.log_to_file;
            // The network handlers the writer starts for these settings.
            let sinks = sinks
                .and(SinkSet::of([SinkKind::Stdout, SinkKind::File]))
                .or(settings.net.kinds());
            routing.net = settings.net.any();
            routing.line_sinks = sinks;
            // What the writer will have once it took these settings (a file
            // that cannot be opened keeps the old one, if any).
            let mut on = routing.local_on;
            if settings.log_to_file {
                on = on.with(SinkKind::File);
            } else {
                on = on.without(SinkKind::File);
            }
            if !routing.quiet {
                on = if settings.log_to_stdout {
                    on.with(SinkKind::Stdout)
                } else {
                    on.without(SinkKind::Stdout)
                };
            }
            routing.local_on = on;
            *routing
        };
        self.max_line_bytes
            .store(settings.max_line_bytes, Ordering::Relaxed);
        let _ = self.tx.send(Message::Apply(Box::new(Applied {
            settings: settings.clone(),
            plain_events: routing.plain_events,
            stream: (!routing.quiet).then_some(settings.log_to_stdout),
            reply,
        })));
        answer
    }

    /// Formats and queues one read's lines (the writer then keeps the batch
    /// for the control API); first waits (async) for room when the writer
    /// is behind: this is the back-pressure, and it comes before formatting
    /// so that formatted bytes in flight stay bounded too. When no other
    /// batch is queued, the batch goes as it is, for the writer to format
    /// (see the module docs).
    pub async fn send_lines(&self, mut batch: LineBatch) {
        if batch.is_empty() {
            self.read_buffers.give_back(std::iter::once(batch.data));
            return;
        }
        batch.route = self.route;
        let routing = self.routing();
        let sinks = routing.line_sinks.and(self.route.sinks);
        if sinks.is_empty() {
            let mut batch = batch;
            super::recent::trim(&mut batch);
            self.recent.add_lines(Arc::new(batch));
            return;
        }
        // Closed only once the writer has stopped: the batch could not be written.
        let Ok(permit) = self.permits.acquire().await else {
            return;
        };
        // The writer gives the permit back once it has taken the batch.
        permit.forget();
        self.count_queued(&routing, sinks, batch.lines.len() as u64);
        // Every other permit free: no other batch is queued (this task's
        // thread runs every reader, so none is being sent either). Or only
        // network handlers take these lines: nothing to format here.
        if self.permits.available_permits() + 1 == BATCHES_IN_FLIGHT || !sinks.takes_formatted() {
            let _ = self.tx.send(Message::Lines { batch, sinks });
            return;
        }
        let mut bytes = self.pool.take();
        format_spans(&mut bytes, routing.format, &batch, &batch.lines, None);
        let _ = self.tx.send(Message::Records(Chunk {
            bytes,
            sinks,
            permit: true,
            batch: Some(batch),
            event: None,
        }));
    }

    /// Asks the writer thread to write what was sent before, then close the
    /// log file and open its path again (for logrotate). Only this task
    /// waits for the answer: the writer does the work between two rounds
    /// of writes, so no record is lost or torn. `None` when the writer has
    /// stopped.
    pub async fn reopen(&self) -> Option<Reopened> {
        self.request_reopen().await.ok()
    }

    /// [`LogHandle::reopen`] without waiting here: the answer comes on the
    /// receiver (an error when the writer has stopped).
    pub fn request_reopen(&self) -> tokio::sync::oneshot::Receiver<Reopened> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // Refused only once the writer has stopped: `reply` is then dropped,
        // which `answer` reports.
        let _ = self.tx.send(Message::Reopen(reply));
        answer
    }

    /// An empty buffer for a pipe read, recycled when possible.
    pub fn read_buffer(&self) -> Vec<u8> {
        self.read_buffers.take()
    }

    /// Formats and queues an event record of pidzero's own; never blocks or
    /// waits: the control loop must never wait for a sink. It goes after
    /// whatever was sent before, lines included, and nothing else: a record
    /// that must follow lines still in a pipe is held by the runtime until
    /// they are sent (see [`super::reader::Flusher`]).
    pub fn event(&self, record: EventRecord) {
        let routing = self.routing();
        let bytes = format_and_keep_event(
            &self.recent,
            &self.pidzero,
            routing.format,
            routing.plain_events,
            &record,
        );
        // Events go to every sink, but quiet mode keeps info off the stream.
        let sinks = if routing.quiet && record.level == Level::Info {
            SinkSet::ALL.without(SinkKind::Stdout)
        } else {
            SinkSet::ALL
        };
        self.count_queued(&routing, sinks, 1);
        let _ = self.tx.send(Message::Records(Chunk {
            bytes,
            sinks,
            permit: false,
            batch: None,
            event: routing.net.then(|| Arc::new(record)),
        }));
    }

    /// The last `n` records (at most
    /// [`RECENT_RECORDS`](super::recent::RECENT_RECORDS)) of `daemon` as
    /// JSON, oldest first, whatever the configured format; `pidzero` gives
    /// pidzero's own events. Unknown names give nothing.
    pub fn recent(&self, daemon: &str, n: usize) -> Vec<String> {
        self.recent.recent(daemon, n)
    }

    /// `(source, records, bytes of line text)` for every source logged so
    /// far (daemons, and `pidzero` for its events), sorted by name.
    pub fn daemon_counters(&self) -> Vec<(String, u64, u64)> {
        self.recent.counters()
    }

    /// `(sink, failed writes)` for each sink: `stdout` (or `stderr` in quiet
    /// mode) and `file`, those enabled.
    pub fn sink_error_counts(&self) -> Vec<(String, u64)> {
        self.recent.sink_error_counts()
    }
}

/// An event of pidzero's own in `format`, counted and kept (as JSON) in the
/// `pidzero` ring: what every sender of an event does before queuing it.
pub(super) fn format_and_keep_event(
    recent: &Recent,
    pidzero: &Arc<str>,
    format: LogFormat,
    plain: bool,
    event: &EventRecord,
) -> Vec<u8> {
    let mut formatted = Vec::new();
    format_event(&mut formatted, format, event);
    let mut json = Vec::new();
    let kept: &[u8] = if format == LogFormat::Json {
        &formatted
    } else {
        format_event(&mut json, LogFormat::Json, event);
        &json
    };
    recent.add_event(pidzero, event.line.len(), kept);
    if plain {
        return plain_line(&event.line);
    }
    formatted
}

/// `pidzero: LINE` and a newline, the line kept on one line.
fn plain_line(line: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 10);
    out.extend_from_slice(b"pidzero: ");
    for c in line.chars() {
        if c.is_control() {
            out.push(b' ');
        } else {
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
    out.push(b'\n');
    out
}

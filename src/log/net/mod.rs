//! Network log handlers: `log.forward` (newline-delimited records to a TCP
//! or Unix stream socket: Vector, Fluent Bit, Logstash), `log.syslog`
//! (RFC 5424 / RFC 3164 to `/dev/log`, UDP or TCP), and the HTTP handlers
//! `log.loki` (Loki's push API) and `log.otlp` (OTLP/HTTP JSON), which
//! send batches ([`http_worker`]) with the same queue, bounds and outage
//! events as the others.
//!
//! PID 1 must never wait for a network receiver, and stdout and the file
//! stay lossless whatever the network does. So the writer thread only hands
//! each handler the records it takes ([`NetSinks::lines`],
//! [`NetSinks::event`]: a copy of the read's bytes, shared by the
//! handlers, into a bounded queue under a short lock), and each handler has
//! its own thread that formats and sends ([`worker`]).
//!
//! Idle cost: a handler's thread sleeps on a condition variable while its
//! queue is empty, connected or not (it connects only when it has records
//! to send): no wake-up at all while nothing is logged. While records wait
//! and the receiver is away, it retries with a backoff of 0.1 s doubling to
//! 5 s ([`worker::MAX_BACKOFF`]); while a receiver accepts but does not
//! read, it looks at its queue every 0.5 s ([`conn::STALL_CHECK`]).
//!
//! Bounds, per handler: `buffer_records` records and `buffer_bytes` bytes of
//! queued lines (counted as the bytes of each read they come from, so
//! sparse reads count fully), plus one round being sent (up to
//! [`worker::ROUND_BYTES`] taken from the queue, and that formatted: up to
//! six times as much for JSON of control bytes). Past a bound the oldest
//! records are dropped and counted (`pidzero_log_dropped_total{sink=...}`);
//! an outage (receiver away, or not keeping up) is reported by one
//! `sink_error` event when it starts and one `sink_recovered` event, with
//! the number dropped, once the handler has caught up.

pub mod batch;
pub mod conn;
pub mod encode;
pub mod http;
pub mod http_worker;
pub mod loki;
pub mod otlp;
pub mod outage;
pub mod queue;
pub mod syslog;
pub mod worker;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use self::encode::{Encoder, Item, SyslogEncoder};
use self::http_worker::HttpEncoder;
use self::http_worker::{HttpTarget, HttpWorker};
use self::loki::LokiEncoder;
use self::otlp::OtlpEncoder;
use self::queue::Queue;
use crate::config::{NetAddress, NetSettings, SinkKind, SinkSet};
use crate::log::channel::SinkLoss;
use crate::log::record::{EventRecord, LineBatch};
use crate::log::LogHandle;

/// A handler's counters, read by `/metrics`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Records sent.
    pub written: AtomicU64,
    /// Records dropped: queue full, lost in a failed send, or left at exit.
    pub dropped: AtomicU64,
    /// Failed connection attempts and sends.
    pub errors: AtomicU64,
    /// Records in the queue now.
    pub queued: AtomicU64,
}

/// One handler's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounts {
    pub sink: &'static str,
    pub written: u64,
    pub dropped: u64,
    pub errors: u64,
    pub queued: u64,
}

impl SinkStats {
    pub fn counts(&self, sink: &'static str) -> SinkCounts {
        SinkCounts {
            sink,
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

/// What the writer thread and a handler's thread share.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    /// Signalled when records arrive in an empty queue, and at stop.
    pub wake: Condvar,
    pub stats: Arc<SinkStats>,
}

pub(crate) struct State {
    pub queue: Queue<Item>,
    /// Set by [`NetSinks::finish`]: send what is queued, briefly, then end.
    pub stop: bool,
    /// The handler is also woken when the queue reaches this many records
    /// (an HTTP handler's `batch_records`; 1 for the others).
    pub wake_at: usize,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps on the handler's wake-up until the writer queues records, a
    /// stop is asked for or `timeout` passes (`None`: no timeout, so no
    /// wake-up while idle); says whether the timeout passed.
    pub fn wait<'a>(
        &self,
        state: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> (MutexGuard<'a, State>, bool) {
        match timeout {
            None => (
                self.wake.wait(state).unwrap_or_else(|e| e.into_inner()),
                false,
            ),
            Some(timeout) => {
                let (state, result) = self
                    .wake
                    .wait_timeout(state, timeout)
                    .unwrap_or_else(|e| e.into_inner());
                (state, result.timed_out())
            }
        }
    }

    /// Waits `backoff` (a handler's thread, between attempts), unless asked
    /// to stop meanwhile; then doubles it, up to [`worker::MAX_BACKOFF`].
    pub fn wait_backoff(&self, backoff: &mut Duration) {
        let state = self.lock();
        let _unused = self
            .wake
            .wait_timeout_while(state, *backoff, |s| !s.stop)
            .unwrap_or_else(|e| e.into_inner());
        *backoff = (*backoff * 2).min(worker::MAX_BACKOFF);
    }

    /// Queues an item (the writer thread's side: a short lock, no I/O).
    fn push(&self, item: Item) {
        let mut state = self.lock();
        let was_empty = state.queue.is_empty();
        let before = state.queue.records();
        let dropped = state.queue.push(item);
        let reached = before < state.wake_at && state.queue.records() >= state.wake_at;
        if dropped > 0 {
            self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        self.stats
            .queued
            .store(state.queue.records() as u64, Ordering::Relaxed);
        drop(state);
        if was_empty || reached {
            self.wake.notify_one();
        }
    }
}

/// A running handler.
struct Handler {
    kind: SinkKind,
    shared: Arc<Shared>,
    /// The thread says here, when it ends, how many records it left at exit.
    done: std::sync::mpsc::Receiver<u64>,
    thread: std::thread::JoinHandle<()>,
}

/// The running network handlers (one per configured kind).
pub struct NetSinks {
    handlers: Vec<Handler>,
}

/// How long [`NetSinks::finish`] waits for a handler's thread beyond its
/// own grace ([`worker::FINISH_GRACE`]) and a connection attempt: a name
/// lookup that hangs must not keep pidzero from exiting.
const FINISH_WAIT: Duration = Duration::from_secs(4);

impl NetSinks {
    /// Starts a thread per configured handler; `None` when there is none.
    /// `log` is where handlers send their own events (outages).
    pub fn start(settings: &NetSettings, log: &LogHandle) -> io::Result<Option<NetSinks>> {
        let mut handlers = Vec::new();
        if let Some(forward) = &settings.forward {
            let encoder = Encoder::Forward(forward.format);
            let target = worker::Target {
                kind: SinkKind::Forward,
                address: forward.address.clone(),
                datagram: false,
                encoder,
                buffer_records: forward.buffer_records,
            };
            handlers.push(spawn(target, forward.buffer_bytes, log)?);
        }
        if let Some(syslog) = &settings.syslog {
            let octet_counting = matches!(syslog.address, NetAddress::Tcp { .. });
            let encoder = Encoder::Syslog(SyslogEncoder {
                protocol: syslog.protocol,
                origin: syslog::Origin {
                    hostname: syslog::hostname(),
                    local: matches!(syslog.address, NetAddress::Unix(_)),
                    pid: std::process::id(),
                    facility: syslog.facility,
                },
                app_name: syslog.app_name.clone(),
                format: syslog.format,
                octet_counting,
            });
            let target = worker::Target {
                kind: SinkKind::Syslog,
                address: syslog.address.clone(),
                datagram: !octet_counting,
                encoder,
                buffer_records: syslog.buffer_records,
            };
            handlers.push(spawn(target, syslog.buffer_bytes, log)?);
        }
        if let Some(loki) = &settings.loki {
            let encoder = HttpEncoder::Loki(LokiEncoder::new(&loki.labels, loki.format));
            handlers.push(spawn_http(SinkKind::Loki, &loki.http, encoder, log)?);
        }
        if let Some(otlp) = &settings.otlp {
            let encoder = HttpEncoder::Otlp(OtlpEncoder::new(
                &otlp.service_name,
                &otlp.resource,
                otlp.format,
            ));
            handlers.push(spawn_http(SinkKind::Otlp, &otlp.http, encoder, log)?);
        }
        Ok((!handlers.is_empty()).then_some(NetSinks { handlers }))
    }

    /// Every handler's counters, for `/metrics`.
    pub fn stats(&self) -> Vec<(SinkKind, Arc<SinkStats>)> {
        self.handlers
            .iter()
            .map(|h| (h.kind, Arc::clone(&h.shared.stats)))
            .collect()
    }

    /// Queues a read's lines for every handler in `sinks` (the daemon's
    /// `sinks`; one copy, shared).
    pub fn lines(&self, batch: &Arc<LineBatch>, sinks: SinkSet) {
        if batch.lines.is_empty() {
            return;
        }
        for handler in self.handlers.iter().filter(|h| sinks.contains(h.kind)) {
            handler.shared.push(Item::lines(Arc::clone(batch)));
        }
    }

    /// Queues an event of pidzero's own for every handler in `sinks`.
    pub fn event(&self, event: &Arc<EventRecord>, sinks: SinkSet) {
        for handler in self.handlers.iter().filter(|h| sinks.contains(h.kind)) {
            handler.shared.push(Item::event(Arc::clone(event)));
        }
    }

    /// Tells the handlers to send what they hold and stop, and waits for
    /// them (bounded); returns what each lost.
    pub fn finish(self) -> Vec<SinkLoss> {
        for handler in &self.handlers {
            handler.shared.lock().stop = true;
            handler.shared.wake.notify_all();
        }
        let deadline = std::time::Instant::now() + worker::FINISH_GRACE + FINISH_WAIT;
        let mut losses = Vec::new();
        for handler in self.handlers {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let given_up = match handler.done.recv_timeout(left) {
                Ok(given_up) => {
                    let _ = handler.thread.join();
                    given_up
                }
                // Still stuck (a name lookup): what it holds is lost.
                Err(_) => handler.shared.lock().queue.records() as u64,
            };
            losses.push(SinkLoss {
                sink: handler.kind.name(),
                dropped: handler
                    .shared
                    .stats
                    .dropped
                    .load(Ordering::Relaxed)
                    .max(given_up),
                given_up,
            });
        }
        losses
    }
}

fn spawn(target: worker::Target, buffer_bytes: usize, log: &LogHandle) -> io::Result<Handler> {
    let kind = target.kind;
    let shared = new_shared(target.buffer_records, buffer_bytes);
    let worker = worker::Worker::new(target, Arc::clone(&shared), log.clone());
    run_handler(kind, shared, move || worker.run())
}

/// Starts an HTTP handler (`loki`, `otlp`).
fn spawn_http(
    kind: SinkKind,
    settings: &crate::config::HttpSettings,
    encoder: HttpEncoder,
    log: &LogHandle,
) -> io::Result<Handler> {
    let shared = new_shared(settings.buffer_records, settings.buffer_bytes);
    let target = HttpTarget {
        kind,
        settings: settings.clone(),
        encoder,
    };
    let worker = HttpWorker::new(target, Arc::clone(&shared), log.clone());
    run_handler(kind, shared, move || worker.run())
}

fn new_shared(buffer_records: usize, buffer_bytes: usize) -> Arc<Shared> {
    Arc::new(Shared {
        state: Mutex::new(State {
            queue: Queue::new(buffer_records, buffer_bytes),
            stop: false,
            wake_at: 1,
        }),
        wake: Condvar::new(),
        stats: Arc::default(),
    })
}

/// Runs a handler's loop (which returns the records it left at exit) on
/// a thread of its own, named after its kind.
fn run_handler(
    kind: SinkKind,
    shared: Arc<Shared>,
    run: impl FnOnce() -> u64 + Send + 'static,
) -> io::Result<Handler> {
    let (done_tx, done) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("pidzero-{}", kind.name()))
        .spawn(move || {
            let given_up = run();
            let _ = done_tx.send(given_up);
        })?;
    Ok(Handler {
        kind,
        shared,
        done,
        thread,
    })
}

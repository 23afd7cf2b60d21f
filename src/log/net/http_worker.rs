//! One HTTP handler's thread (`log.loki`, `log.otlp`): waits for records,
//! gathers them into a batch, POSTs it, and reports outages.
//!
//! Batching: a batch goes out when `batch_records` records are queued, or
//! `batch_wait` after the first of them was queued, whichever comes first;
//! at once at exit. While the queue is empty the thread sleeps with no
//! timeout (no timer runs: no wake-up while nothing is logged); the writer
//! wakes it when the queue stops being empty and when it reaches
//! `batch_records`.
//!
//! Answers: 2xx, the batch is sent. 408, 429, 5xx, a lost connection or a
//! timeout: the same batch is sent again after a backoff (0.1 s doubling to
//! 5 s), while new records wait in the queue, which keeps dropping its
//! oldest past its bounds: memory stays bounded by the queue plus the
//! batch. Any other answer (400 and the like): the receiver will never take
//! the batch as it is, so it is dropped and counted; so are the records an
//! OTLP receiver says it rejected in a 2xx answer (`partialSuccess`).
//! Either starts an outage (one `sink_error`); a batch taken whole, with
//! nothing dropped for a second, ends it (one `sink_recovered`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::batch::Taken;
use super::encode::Item;
use super::http::{Client, Outcome};
use super::loki::LokiEncoder;
use super::otlp::OtlpEncoder;
use super::outage::Outages;
use super::queue::Entry;
use super::worker::{FINISH_GRACE, FIRST_BACKOFF, ROUND_BYTES};
use super::Shared;
use crate::config::{HttpSettings, SinkKind};
use crate::log::LogHandle;

/// What an HTTP handler sends to, and how.
pub struct HttpTarget {
    pub kind: SinkKind,
    pub settings: HttpSettings,
    pub encoder: HttpEncoder,
}

/// A batch encoded and not yet taken by the receiver.
struct Pending {
    body: Bytes,
    records: u64,
}

/// What [`HttpWorker::wait_for_batch`] found.
enum Wake {
    /// A batch is due (or the handler is stopping with records left).
    Batch,
    /// Stopping, nothing left to send.
    Stop,
    /// Idle past an outage's settling time.
    Settle,
}

pub struct HttpWorker {
    shared: Arc<Shared>,
    settings: HttpSettings,
    /// Made in the handler's own thread at its first request: its tokio
    /// runtime must never be built or dropped on another runtime's thread.
    client: Option<Client>,
    encoder: HttpEncoder,
    outages: Outages,
    batch_records: usize,
    batch_wait: Duration,
    pending: Option<Pending>,
    /// The last request was answered 2xx: the receiver is there.
    reachable: bool,
    backoff: Duration,
    /// When the oldest record not yet in a batch was first seen queued.
    since: Option<Instant>,
    /// When to stop sending at exit, once asked to stop.
    finish_by: Option<Instant>,
    /// A failed attempt since the stop: no more tries then.
    failed_since_stop: bool,
    out: Vec<u8>,
}

impl HttpWorker {
    pub(crate) fn new(target: HttpTarget, shared: Arc<Shared>, log: LogHandle) -> Self {
        let settings = target.settings;
        let outages = Outages::new(
            target.kind,
            settings.url.to_string(),
            settings.buffer_records,
            log,
            Arc::clone(&shared.stats),
        );
        shared.lock().wake_at = settings.batch_records;
        HttpWorker {
            shared,
            client: None,
            encoder: target.encoder,
            outages,
            batch_records: settings.batch_records.max(1),
            batch_wait: settings.batch_wait,
            pending: None,
            reachable: false,
            backoff: FIRST_BACKOFF,
            since: None,
            finish_by: None,
            failed_since_stop: false,
            out: Vec::new(),
            settings,
        }
    }

    /// Runs until told to stop; returns the records left unsent at exit.
    pub fn run(mut self) -> u64 {
        loop {
            if self.pending.is_none() {
                match self.wait_for_batch() {
                    Wake::Settle => {
                        self.outages.settle(self.reachable);
                        continue;
                    }
                    Wake::Stop => return 0,
                    Wake::Batch => self.take_batch(),
                }
            }
            if self.stopping() && self.should_end() {
                return self.give_up();
            }
            self.send();
        }
    }

    /// Sleeps until a batch is due, a stop, or (idle during an outage with
    /// the receiver reachable) the outage's settling time.
    fn wait_for_batch(&mut self) -> Wake {
        let mut state = self.shared.lock();
        loop {
            if state.queue.is_empty() {
                self.since = None;
                if state.stop {
                    return Wake::Stop;
                }
                let settling = self.outages.active() && self.reachable;
                let timed_out;
                (state, timed_out) = self
                    .shared
                    .wait(state, settling.then(|| self.outages.settle_in()));
                if timed_out && state.queue.is_empty() && !state.stop {
                    return Wake::Settle;
                }
                continue;
            }
            if state.stop || state.queue.records() >= self.batch_records {
                return Wake::Batch;
            }
            let since = *self.since.get_or_insert_with(Instant::now);
            let left = (since + self.batch_wait).saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Wake::Batch;
            }
            state = self.shared.wait(state, Some(left)).0;
        }
    }

    /// Takes up to `batch_records` records (and about [`ROUND_BYTES`] of
    /// their text) from the queue and encodes them as the pending batch.
    fn take_batch(&mut self) {
        let mut items: Vec<(Item, usize)> = Vec::new();
        {
            let mut state = self.shared.lock();
            let (mut records, mut bytes) = (0, 0);
            while records < self.batch_records && bytes < ROUND_BYTES {
                let Some((item, n)) = state.queue.take(self.batch_records - records) else {
                    break;
                };
                records += n;
                bytes += item.bytes();
                items.push((item, n));
            }
            if state.queue.is_empty() {
                self.since = None;
            }
            // Records left stay due when their batch was: they were queued
            // before its deadline, so `since` is kept.
        }
        let records = self.encoder.encode(&items, &mut self.out);
        drop(items);
        if records > 0 {
            self.pending = Some(Pending {
                body: Bytes::copy_from_slice(&self.out),
                records,
            });
        }
        self.out.clear();
        self.publish_queued();
    }

    /// Sends the pending batch once.
    fn send(&mut self) {
        let Some(pending) = self.pending.as_ref() else {
            return;
        };
        let body = pending.body.clone();
        let records = pending.records;
        let shared = Arc::clone(&self.shared);
        let mut finish_by = self.finish_by;
        let outcome = match self.client() {
            Ok(client) => client.post(&body, &mut || {
                if !shared.lock().stop {
                    return false;
                }
                let by = *finish_by.get_or_insert_with(|| Instant::now() + FINISH_GRACE);
                Instant::now() >= by
            }),
            Err(error) => Outcome::Failed(format!("cannot start the HTTP client: {error}")),
        };
        self.finish_by = finish_by;
        let stats = &self.shared.stats;
        match outcome {
            Outcome::Accepted(answer) => {
                self.pending = None;
                self.backoff = FIRST_BACKOFF;
                if let Some((rejected, why)) = self.encoder.rejected(&answer) {
                    // Taken, but not all: the rest would be rejected again.
                    let rejected = rejected.min(records);
                    stats
                        .written
                        .fetch_add(records - rejected, Ordering::Relaxed);
                    stats.dropped.fetch_add(rejected, Ordering::Relaxed);
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.reachable = false;
                    self.outages.down(&format!(
                        "the receiver rejected {rejected} of {records} records: {why}"
                    ));
                    self.publish_queued();
                    return;
                }
                stats.written.fetch_add(records, Ordering::Relaxed);
                // Drops while the receiver takes batches: it does not keep
                // up (drops while it is away go to that outage, started by
                // the failure that came first).
                self.outages.check_overflow();
                self.reachable = true;
                self.outages.note_drops();
                if self.shared.lock().queue.is_empty() {
                    self.outages.settle(true);
                }
            }
            Outcome::Refused(reason) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                stats.dropped.fetch_add(records, Ordering::Relaxed);
                self.pending = None;
                self.reachable = false;
                self.outages
                    .down(&format!("{reason} (batch of {records} records dropped)"));
            }
            Outcome::Failed(reason) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                self.reachable = false;
                if self.stopping() {
                    self.failed_since_stop = true;
                }
                self.outages.down(&reason);
                self.wait_backoff();
            }
            Outcome::GaveUp => {}
        }
        self.publish_queued();
    }

    fn client(&mut self) -> std::io::Result<&mut Client> {
        if self.client.is_none() {
            let client = Client::new(
                self.settings.url.clone(),
                &self.settings.headers,
                self.encoder.content_type(),
                self.settings.timeout,
            )?;
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no client"))
    }

    fn stopping(&self) -> bool {
        self.shared.lock().stop
    }

    /// At exit: end once nothing is left, the grace is over, or a try
    /// since the stop failed (the receiver is away: no more waiting).
    fn should_end(&mut self) -> bool {
        let by = *self
            .finish_by
            .get_or_insert_with(|| Instant::now() + FINISH_GRACE);
        let nothing_left = self.pending.is_none() && self.shared.lock().queue.is_empty();
        nothing_left || self.failed_since_stop || Instant::now() >= by
    }

    /// Drops what is left (counted); returns how many records that was.
    fn give_up(&mut self) -> u64 {
        let pending = self.pending.take().map_or(0, |p| p.records);
        let queued = self.shared.lock().queue.clear();
        let left = pending + queued;
        if left > 0 {
            self.shared.stats.dropped.fetch_add(left, Ordering::Relaxed);
        }
        self.publish_queued();
        left
    }

    /// Waits the backoff, unless asked to stop meanwhile.
    fn wait_backoff(&mut self) {
        self.shared.wait_backoff(&mut self.backoff);
    }

    /// Records in the queue (as for every handler, the batch being sent
    /// is not counted: it is one batch at most).
    fn publish_queued(&self) {
        let queued = self.shared.lock().queue.records() as u64;
        self.shared.stats.queued.store(queued, Ordering::Relaxed);
    }
}

/// Turns a batch into one request body.
#[derive(Debug)]
pub enum HttpEncoder {
    Loki(LokiEncoder),
    Otlp(OtlpEncoder),
}

impl HttpEncoder {
    /// Writes the body of one request for `items` into `out` (cleared
    /// first); returns the number of records in it.
    pub fn encode(&mut self, items: &Taken, out: &mut Vec<u8>) -> u64 {
        out.clear();
        match self {
            HttpEncoder::Loki(encoder) => encoder.encode(items, out),
            HttpEncoder::Otlp(encoder) => encoder.encode(items, out),
        }
    }

    pub fn content_type(&self) -> &'static str {
        "application/json"
    }

    /// The records a receiver says, in a 2xx answer, that it rejected, and
    /// why (OTLP's partial success); `None` when it took them all.
    pub fn rejected(&self, answer: &[u8]) -> Option<(u64, String)> {
        match self {
            HttpEncoder::Loki(_) => None,
            HttpEncoder::Otlp(_) => super::otlp::partial_success(answer),
        }
    }
}

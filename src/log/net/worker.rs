//! One network handler's thread: waits for records, connects when it has
//! some to send, formats a round of them and sends it; reports outages.
//!
//! An outage starts when the receiver cannot be reached (connection
//! refused, closed, a failed send) or when records are dropped because it
//! does not keep up (it accepts but does not read: its socket buffer fills
//! and the queue overflows). It is reported once, by a `sink_error` event,
//! and ends once the handler has caught up (its queue sent, the receiver
//! connected) and nothing has been dropped for [`SETTLE`], reported by a
//! `sink_recovered` event that says how many records the outage cost.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{Conn, SendError};
use super::encode::Encoder;
use super::outage::Outages;
use super::queue::Entry;
use super::Shared;
use crate::config::NetAddress;
use crate::config::SinkKind;
use crate::log::LogHandle;

/// First wait before connecting again after a failure; doubled after each
/// failure up to [`MAX_BACKOFF`], back to this after a success.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Bytes of queued records (as [`Entry::bytes`] counts them: their text
/// before formatting) taken from the queue for one round of sends (soft: a
/// round stops taking once it holds this much).
pub const ROUND_BYTES: usize = 256 * 1024;

/// At exit, how long a handler keeps sending what is queued to a receiver
/// that is there; one that is away gets one more connection attempt (it
/// may be back while the handler waits out its backoff), no more.
pub const FINISH_GRACE: Duration = Duration::from_secs(1);

pub use super::outage::SETTLE;

/// What a handler sends to, and how.
pub struct Target {
    pub kind: SinkKind,
    pub address: NetAddress,
    /// A Unix address is a datagram socket (`/dev/log`), not a stream.
    pub datagram: bool,
    pub encoder: Encoder,
    /// For the outage event's text.
    pub buffer_records: usize,
}

pub struct Worker {
    target: Target,
    shared: Arc<Shared>,
    conn: Option<Conn>,
    backoff: Duration,
    outages: Outages,
    /// When to stop sending at exit, once asked to stop.
    finish_by: Option<Instant>,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Worker {
    pub(crate) fn new(target: Target, shared: Arc<Shared>, log: LogHandle) -> Self {
        let outages = Outages::new(
            target.kind,
            target.address.to_string(),
            target.buffer_records,
            log,
            Arc::clone(&shared.stats),
        );
        Worker {
            target,
            shared,
            conn: None,
            backoff: FIRST_BACKOFF,
            outages,
            finish_by: None,
            out: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Runs until told to stop; returns the records left unsent at exit.
    pub fn run(mut self) -> u64 {
        loop {
            let Some(stopping) = self.wait_for_work() else {
                // Idle past an outage's settling time: it is over.
                self.settle();
                continue;
            };
            if stopping && self.should_end() {
                let left = self.shared.lock().queue.clear();
                self.stats_dropped(left);
                self.publish_queued();
                return left;
            }
            // Connected first, so that records dropped while the receiver
            // is away are put down to its absence, not to its slowness.
            let Some(conn) = self.connected() else {
                continue;
            };
            self.check_overflow();
            self.round(conn);
        }
    }

    /// Sleeps until there are records or a stop (then says whether it is
    /// a stop); `None` when, during an outage with the receiver connected
    /// and nothing to send, the outage has settled ([`SETTLE`]). Without
    /// an outage to settle, no timeout: no wake-up while idle.
    fn wait_for_work(&self) -> Option<bool> {
        let mut state = self.shared.lock();
        while state.queue.is_empty() && !state.stop {
            let settling = self.outages.active() && self.conn.is_some();
            let timed_out;
            (state, timed_out) = self
                .shared
                .wait(state, settling.then(|| self.outages.settle_in()));
            if timed_out && state.queue.is_empty() && !state.stop {
                return None;
            }
        }
        Some(state.stop)
    }

    /// At exit: end now unless there are records, the grace is not over,
    /// and the handler is connected (or has not tried once since the stop:
    /// the receiver may be back while the handler waits out its backoff).
    fn should_end(&mut self) -> bool {
        let first = self.finish_by.is_none();
        let by = *self
            .finish_by
            .get_or_insert_with(|| Instant::now() + FINISH_GRACE);
        (self.conn.is_none() && !first)
            || self.shared.lock().queue.is_empty()
            || Instant::now() >= by
    }

    /// The connection, made if need be; `None` after a failure (the
    /// backoff has then been waited, or cut short by stop).
    fn connected(&mut self) -> Option<Conn> {
        if let Some(conn) = self.conn.take() {
            if !conn.peer_closed() {
                return Some(conn);
            }
            self.down("the receiver closed the connection");
        }
        match Conn::connect(&self.target.address, self.target.datagram) {
            Ok(conn) => {
                self.backoff = FIRST_BACKOFF;
                Some(conn)
            }
            Err(error) => {
                self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                self.down(&error.to_string());
                self.wait_backoff();
                None
            }
        }
    }

    /// Waits the backoff, unless asked to stop meanwhile.
    fn wait_backoff(&mut self) {
        self.shared.wait_backoff(&mut self.backoff);
    }

    /// Takes a round of records from the queue and sends it on `conn`.
    fn round(&mut self, conn: Conn) {
        self.out.clear();
        self.ends.clear();
        // Items are taken under the lock, formatted after it: the writer
        // thread pushes under that lock and must not wait for formatting.
        let mut items = Vec::new();
        let (dropped_at_take, caught_up) = {
            let mut state = self.shared.lock();
            let mut taken = 0;
            while taken < ROUND_BYTES {
                let Some(item) = state.queue.pop() else {
                    break;
                };
                taken += item.bytes();
                items.push(item);
            }
            self.shared
                .stats
                .queued
                .store(state.queue.records() as u64, Ordering::Relaxed);
            (
                self.shared.stats.dropped.load(Ordering::Relaxed),
                state.queue.is_empty(),
            )
        };
        for item in &items {
            self.target
                .encoder
                .encode(&mut self.out, item, &mut self.ends);
        }
        drop(items);
        let records = self.ends.len() as u64;
        let out = std::mem::take(&mut self.out);
        let ends = std::mem::take(&mut self.ends);
        let result = if conn.is_datagram() {
            let mut start = 0;
            let mut result = Ok(());
            for &end in &ends {
                if let Err((_, error)) = conn.send(&out[start..end], &mut || self.stalled()) {
                    result = Err((start, error));
                    break;
                }
                start = end;
            }
            result
        } else {
            conn.send(&out, &mut || self.stalled())
        };
        match result {
            Ok(()) => {
                self.shared
                    .stats
                    .written
                    .fetch_add(records, Ordering::Relaxed);
                self.conn = Some(conn);
                self.outages.note_drops();
                if caught_up && self.shared.stats.dropped.load(Ordering::Relaxed) == dropped_at_take
                {
                    self.settle();
                }
            }
            Err((sent, error)) => {
                // Records not wholly sent are lost; a stream cut in the
                // middle of one cannot go on, so the connection goes too.
                let whole = ends.iter().take_while(|&&end| end <= sent).count() as u64;
                self.shared
                    .stats
                    .written
                    .fetch_add(whole, Ordering::Relaxed);
                if let SendError::Io(error) = error {
                    self.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.down(&error.to_string());
                }
                self.stats_dropped(records - whole);
            }
        }
        self.out = out;
        self.ends = ends;
    }

    /// While a send waits for room: notes drops, and says whether to give
    /// up (at exit, past the grace).
    fn stalled(&mut self) -> bool {
        self.check_overflow();
        let stop = self.shared.lock().stop;
        if !stop {
            return false;
        }
        let by = *self
            .finish_by
            .get_or_insert_with(|| Instant::now() + FINISH_GRACE);
        Instant::now() >= by
    }

    fn stats_dropped(&self, n: u64) {
        if n > 0 {
            self.shared.stats.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn publish_queued(&self) {
        let queued = self.shared.lock().queue.records() as u64;
        self.shared.stats.queued.store(queued, Ordering::Relaxed);
    }

    fn check_overflow(&mut self) {
        self.outages.check_overflow();
    }

    fn down(&mut self, reason: &str) {
        self.outages.down(reason);
    }

    fn settle(&mut self) {
        self.outages.settle(self.conn.is_some());
    }
}

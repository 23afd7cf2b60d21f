//! A handler's outages, as events: one `sink_error` when an outage starts,
//! one `sink_recovered` (with the records it cost) when it is over.
//!
//! Shared by the stream handlers ([`super::worker`]) and the HTTP handlers
//! ([`super::http_worker`]), which differ in how they send but must report
//! the same way. An outage starts when the receiver cannot be reached (or
//! refuses), or when records are dropped because it does not keep up; it
//! ends once the handler has caught up, its receiver is reachable, and
//! nothing has been dropped for [`SETTLE`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::SinkStats;
use crate::config::SinkKind;
use crate::log::record::{timestamp_now, EventRecord, FieldValue, Level};
use crate::log::LogHandle;

/// An outage ends once the handler has caught up and nothing has been
/// dropped for this long: one timed wake-up at the end of an outage.
pub const SETTLE: Duration = Duration::from_secs(1);

struct Outage {
    since: Instant,
    /// Records dropped before it started.
    dropped_before: u64,
}

pub(crate) struct Outages {
    kind: SinkKind,
    /// The receiver, as the events name it.
    address: String,
    /// For the outage event's text.
    buffer_records: usize,
    log: LogHandle,
    stats: Arc<SinkStats>,
    outage: Option<Outage>,
    /// Drops already reported (by the end of an outage): more than this,
    /// outside an outage, starts one.
    accounted: u64,
    /// The drops counted when last looked at, and when that count last grew.
    seen_dropped: u64,
    last_drop: Instant,
}

impl Outages {
    pub fn new(
        kind: SinkKind,
        address: String,
        buffer_records: usize,
        log: LogHandle,
        stats: Arc<SinkStats>,
    ) -> Self {
        Outages {
            kind,
            address,
            buffer_records,
            log,
            stats,
            outage: None,
            accounted: 0,
            seen_dropped: 0,
            last_drop: Instant::now(),
        }
    }

    /// Whether an outage is under way.
    pub fn active(&self) -> bool {
        self.outage.is_some()
    }

    /// How long until an outage may settle, drops permitting.
    pub fn settle_in(&self) -> Duration {
        SETTLE.saturating_sub(self.last_drop.elapsed())
    }

    /// Records dropped outside an outage start one: the receiver does not keep up.
    pub fn check_overflow(&mut self) {
        if self.outage.is_none() && self.stats.dropped.load(Ordering::Relaxed) > self.accounted {
            self.start(
                "records come faster than they can be sent (the receiver is slow or not reading)",
            );
        }
    }

    /// The receiver is away (or refuses): starts an outage unless one is under way.
    pub fn down(&mut self, reason: &str) {
        if self.outage.is_none() {
            self.start(reason);
        }
    }

    fn start(&mut self, reason: &str) {
        self.outage = Some(Outage {
            since: Instant::now(),
            dropped_before: self.accounted,
        });
        let kind = self.kind.name();
        let address = &self.address;
        self.log.event(EventRecord {
            timestamp: timestamp_now(),
            level: Level::Warn,
            event: "sink_error",
            fields: vec![
                ("sink", FieldValue::Str(kind.to_string())),
                ("address", FieldValue::Str(address.clone())),
                ("error", FieldValue::Str(reason.to_string())),
            ],
            line: format!(
                "log sink {kind} ({address}) is unavailable: {reason}; up to {} records wait for it, then the oldest are dropped",
                self.buffer_records
            ),
        });
    }

    /// Notes when records were last seen dropped.
    pub fn note_drops(&mut self) {
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        if dropped != self.seen_dropped {
            self.seen_dropped = dropped;
            self.last_drop = Instant::now();
        }
    }

    /// Ends the outage once the handler has caught up (its queue empty,
    /// the receiver `reachable`) and nothing has been dropped for [`SETTLE`].
    /// Settling keeps a receiver that hovers at the edge of keeping up
    /// (drops, a round without, drops...) to one outage instead of a
    /// stream of events.
    pub fn settle(&mut self, reachable: bool) {
        self.note_drops();
        if !reachable || self.last_drop.elapsed() < SETTLE {
            return;
        }
        let dropped = self.seen_dropped;
        let Some(outage) = self.outage.as_ref() else {
            return;
        };
        let lost = dropped - outage.dropped_before;
        let seconds = outage.since.elapsed().as_secs_f64();
        self.outage = None;
        self.accounted = dropped;
        let kind = self.kind.name();
        let address = &self.address;
        self.log.event(EventRecord {
            timestamp: timestamp_now(),
            level: if lost > 0 { Level::Warn } else { Level::Info },
            event: "sink_recovered",
            fields: vec![
                ("sink", FieldValue::Str(kind.to_string())),
                ("address", FieldValue::Str(address.clone())),
                ("dropped", FieldValue::Int(i64::try_from(lost).unwrap_or(i64::MAX))),
                ("seconds", FieldValue::Int((seconds.round()) as i64)),
            ],
            line: format!(
                "log sink {kind} ({address}) is back after {seconds:.1} s; {lost} records were dropped meanwhile"
            ),
        });
    }
}

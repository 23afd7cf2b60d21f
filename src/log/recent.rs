//! Per-source counters and the recent records, for the control API
//! (`pidzero logs NAME`, `/metrics`).
//!
//! For every source (each daemon, and `pidzero` for its own events) this
//! keeps the number of records and of line bytes logged, and the last
//! [`RECENT_RECORDS`] records, rendered as JSON (whatever the configured
//! format) only when they are asked for:
//! - a daemon's lines stay in the batches they were read into, without a
//!   copy: at full speed that copy cost as much as a tenth of the pipeline's
//!   CPU. A batch is kept while any of its lines is among the last ones, and
//!   its buffer then goes back to the readers' [`BufferPool`];
//! - pidzero's events, few and small, are kept as JSON.
//!
//! Bounds, per source: at most [`RECENT_RECORDS`] records, and for a
//! daemon at most [`RECENT_BYTES`] of memory held by its batches (buffers
//! and spans, counted by capacity), or its newest batch alone when that is
//! larger (one read: an 80 KiB buffer and at most 1,024 spans with the
//! defaults, so never), whatever the daemon writes. A read buffer less than
//! half full is cut to its content first (in place), so sparse reads do not
//! crowd the records out; a daemon flooding its pipe keeps the two to four
//! reads that hold its last 1,000 lines. pidzero's own events are kept as at
//! most [`RECENT_BYTES`] of JSON; an event larger than that is counted but
//! not kept.
//!
//! Readers take the lock once per batch; API readers take it for as long as
//! formatting their answer takes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::format::format_spans;
use super::pool::BufferPool;
use super::record::{LineBatch, LineSpan};
use crate::config::LogFormat;

/// Records kept per source.
pub const RECENT_RECORDS: usize = 1000;

/// Memory for a source's recent records: the buffers of a daemon's batches
/// (besides the newest), or the JSON of pidzero's events.
pub const RECENT_BYTES: usize = 384 * 1024;

/// The state shared by the log senders, the writer thread and the API.
#[derive(Debug, Default)]
pub struct Recent {
    state: Mutex<State>,
    /// Where the buffers of batches that drop out go, for the readers.
    pool: Arc<BufferPool>,
}

#[derive(Debug, Default)]
struct State {
    sources: BTreeMap<Arc<str>, SourceLog>,
    /// Failed writes per sink, in the order the sinks were registered.
    sink_errors: Vec<(&'static str, u64)>,
}

#[derive(Debug, Default)]
struct SourceLog {
    records: u64,
    bytes: u64,
    lines: LineRing,
    events: EventRing,
}

/// The last lines of one daemon, in the batches they came in, oldest first.
#[derive(Debug, Default)]
struct LineRing {
    /// Shared with the network handlers' queues (no copy per handler).
    batches: VecDeque<Arc<LineBatch>>,
    /// Lines of the front batch that dropped out.
    skip: usize,
    /// Lines kept.
    count: usize,
    /// Memory the batches hold (buffers and spans): at most [`RECENT_BYTES`],
    /// or the newest batch alone.
    held: usize,
}

/// The last events of pidzero: their JSON back to back, and their lengths.
#[derive(Debug, Default)]
struct EventRing {
    data: VecDeque<u8>,
    lens: VecDeque<u32>,
}

impl Recent {
    /// Keeps the buffers of dropped batches in `pool`, for the readers.
    pub fn new(pool: Arc<BufferPool>) -> Self {
        Recent {
            state: Mutex::default(),
            pool,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent counters behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a batch of daemon lines and keeps it (see the module docs).
    pub fn add_lines(&self, batch: Arc<LineBatch>) {
        let bytes: usize = batch.lines.iter().map(span_len).sum();
        let mut state = self.lock();
        let log = source_log(&mut state, &batch.source);
        log.records += batch.lines.len() as u64;
        log.bytes += bytes as u64;
        log.lines.push(batch, &self.pool);
    }

    /// Counts one event of pidzero's own (`line_bytes` of its line) and keeps
    /// its `json` (one record ending in `\n`).
    pub fn add_event(&self, source: &Arc<str>, line_bytes: usize, json: &[u8]) {
        let mut state = self.lock();
        let log = source_log(&mut state, source);
        log.records += 1;
        log.bytes += line_bytes as u64;
        log.events.push(json);
    }

    /// Makes `sink` appear in [`Recent::sink_error_counts`] (with 0 errors).
    pub fn register_sink(&self, sink: &'static str) {
        let mut state = self.lock();
        if !state.sink_errors.iter().any(|(name, _)| *name == sink) {
            state.sink_errors.push((sink, 0));
        }
    }

    /// Counts one failed write to `sink`.
    pub fn sink_error(&self, sink: &'static str) {
        let mut state = self.lock();
        match state.sink_errors.iter_mut().find(|(name, _)| *name == sink) {
            Some((_, count)) => *count += 1,
            None => state.sink_errors.push((sink, 1)),
        }
    }

    /// The last `n` records of `source` as JSON (without newline), oldest first.
    pub fn recent(&self, source: &str, n: usize) -> Vec<String> {
        let (bytes, lens) = {
            let state = self.lock();
            match state.sources.get(source) {
                Some(log) if log.lines.count > 0 => log.lines.tail(n),
                Some(log) => log.events.tail(n),
                None => return Vec::new(),
            }
        };
        let mut start = 0;
        lens.iter()
            .map(|&len| {
                let end = start + len;
                // Without the record's `\n`; the formatter only writes UTF-8.
                let record = String::from_utf8_lossy(&bytes[start..end - 1]).into_owned();
                start = end;
                record
            })
            .collect()
    }

    /// `(source, records, bytes)` for every source seen, by name.
    pub fn counters(&self) -> Vec<(String, u64, u64)> {
        let state = self.lock();
        state
            .sources
            .iter()
            .map(|(name, log)| (name.to_string(), log.records, log.bytes))
            .collect()
    }

    /// `(sink, failed writes)` for every sink.
    pub fn sink_error_counts(&self) -> Vec<(String, u64)> {
        let state = self.lock();
        state
            .sink_errors
            .iter()
            .map(|(name, count)| (name.to_string(), *count))
            .collect()
    }
}

fn source_log<'s>(state: &'s mut State, source: &Arc<str>) -> &'s mut SourceLog {
    if !state.sources.contains_key(&**source) {
        state
            .sources
            .insert(Arc::clone(source), SourceLog::default());
    }
    state
        .sources
        .get_mut(&**source)
        .unwrap_or_else(|| unreachable!("inserted above"))
}

fn span_len(span: &LineSpan) -> usize {
    (span.end - span.start) as usize
}

/// The memory a kept batch holds: its buffer and its spans.
/// Cuts a mostly empty read buffer to its content (in place: the
/// allocator gives the rest back without copying), before the batch is
/// kept here (and shared with the network handlers).
pub fn trim(batch: &mut LineBatch) {
    if batch.data.len() * 2 < batch.data.capacity() {
        batch.data.shrink_to_fit();
    }
    if batch.lines.len() * 2 < batch.lines.capacity() {
        batch.lines.shrink_to_fit();
    }
}

fn held_by(batch: &LineBatch) -> usize {
    batch.data.capacity() + batch.lines.capacity() * std::mem::size_of::<LineSpan>()
}

impl LineRing {
    /// Appends `batch`, then drops the oldest lines beyond
    /// [`RECENT_RECORDS`], and the oldest batches while all of them hold more
    /// than [`RECENT_BYTES`] (the newest batch stays whatever its size).
    fn push(&mut self, batch: Arc<LineBatch>, pool: &BufferPool) {
        self.count += batch.lines.len();
        self.held += held_by(&batch);
        self.batches.push_back(batch);
        while self.count > RECENT_RECORDS || (self.held > RECENT_BYTES && self.batches.len() > 1) {
            let Some(front) = self.batches.front() else {
                break;
            };
            let left = front.lines.len() - self.skip;
            if self.count > RECENT_RECORDS && self.count - RECENT_RECORDS < left {
                // Only some of the oldest batch's lines drop out.
                self.skip += self.count - RECENT_RECORDS;
                self.count = RECENT_RECORDS;
                continue;
            }
            self.count -= left;
            self.skip = 0;
            if let Some(dropped) = self.batches.pop_front() {
                self.held -= held_by(&dropped);
                // Its buffer goes back to the readers unless a network
                // handler's queue still holds the batch (then it is freed
                // when that lets go).
                if let Ok(dropped) = Arc::try_unwrap(dropped) {
                    pool.give_back(std::iter::once(dropped.data));
                }
            }
        }
        // The oldest batch's spans: those that dropped out go once they are
        // the most (its bytes stay, at most one read's worth).
        // (Not while a network handler's queue shares the batch.)
        if let Some(front) = self.batches.front_mut().and_then(Arc::get_mut) {
            if self.skip > 0 && 2 * self.skip > front.lines.len() {
                self.held -= held_by(front);
                front.lines.drain(..self.skip);
                front.lines.shrink_to_fit();
                self.held += held_by(front);
                self.skip = 0;
            }
        }
    }

    /// The last `n` lines as JSON records (each with its `\n`), and their lengths.
    fn tail(&self, n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut wanted = n.min(self.count);
        // Walk back to the batch where the wanted lines start.
        let mut from = self.batches.len();
        let mut first = 0;
        while wanted > 0 && from > 0 {
            from -= 1;
            let batch = &self.batches[from];
            let start = if from == 0 { self.skip } else { 0 };
            let available = batch.lines.len() - start;
            if available >= wanted {
                first = batch.lines.len() - wanted;
                wanted = 0;
            } else {
                wanted -= available;
                first = start;
            }
        }
        let mut json = Vec::new();
        let mut ends = Vec::new();
        for (k, batch) in self.batches.range(from..).enumerate() {
            let start = if k == 0 { first } else { 0 };
            format_spans(
                &mut json,
                LogFormat::Json,
                batch,
                &batch.lines[start..],
                Some(&mut ends),
            );
        }
        let mut previous = 0;
        let lens = ends
            .iter()
            .map(|&end| {
                let len = end - previous;
                previous = end;
                len
            })
            .collect();
        (json, lens)
    }
}

impl EventRing {
    /// Appends one record, dropping the oldest beyond the bounds first.
    fn push(&mut self, json: &[u8]) {
        if json.len() > RECENT_BYTES {
            return;
        }
        while self.lens.len() >= RECENT_RECORDS || self.data.len() + json.len() > RECENT_BYTES {
            let Some(len) = self.lens.pop_front() else {
                break;
            };
            self.data.drain(..len as usize);
        }
        self.data.extend(json);
        self.lens.push_back(json.len() as u32);
    }

    /// The bytes of the last `n` records (each with its `\n`) and their lengths.
    fn tail(&self, n: usize) -> (Vec<u8>, Vec<usize>) {
        let n = n.min(self.lens.len());
        let lens: Vec<usize> = self
            .lens
            .range(self.lens.len() - n..)
            .map(|&l| l as usize)
            .collect();
        let size: usize = lens.iter().sum();
        let from = self.data.len() - size;
        let mut bytes = Vec::with_capacity(size);
        let (front, back) = self.data.as_slices();
        if from < front.len() {
            bytes.extend_from_slice(&front[from..]);
            bytes.extend_from_slice(back);
        } else {
            bytes.extend_from_slice(&back[from - front.len()..]);
        }
        (bytes, lens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch as the writer keeps it: trimmed, shared.
    fn shared(mut batch: LineBatch) -> Arc<LineBatch> {
        trim(&mut batch);
        Arc::new(batch)
    }
    use crate::log::framer::Framer;
    use crate::log::record::{timestamp_now, Stream};

    /// A batch of `texts`, one line each, in a buffer of `capacity` bytes.
    fn batch(source: &Arc<str>, texts: &[String], capacity: usize) -> LineBatch {
        let mut batch = LineBatch::new(Arc::clone(source), Stream::Stdout, timestamp_now());
        batch.data = Vec::with_capacity(capacity);
        let mut framer = Framer::new(1 << 20);
        let text: String = texts.iter().map(|t| format!("{t}\n")).collect();
        framer.push(text.as_bytes(), &mut batch);
        batch
    }

    fn lines(records: &[String]) -> Vec<String> {
        records
            .iter()
            .map(|r| {
                let value: serde_json::Value = serde_json::from_str(r).unwrap();
                value["line"].as_str().unwrap().to_string()
            })
            .collect()
    }

    /// The memory the ring's batches hold for `source`, counted afresh.
    fn held(recent: &Recent, source: &str) -> usize {
        let state = recent.lock();
        held_in(&state.sources[source].lines)
    }

    fn held_in(ring: &LineRing) -> usize {
        ring.batches.iter().map(|b| held_by(b)).sum()
    }

    #[test]
    fn keeps_the_last_thousand_oldest_first() {
        let recent = Recent::default();
        let web: Arc<str> = "web".into();
        let texts: Vec<String> = (0..2500).map(|i| format!("r{i}")).collect();
        for chunk in texts.chunks(700) {
            recent.add_lines(shared(batch(&web, chunk, 0)));
        }
        let all = recent.recent("web", 5000);
        assert_eq!(all.len(), RECENT_RECORDS);
        assert_eq!(lines(&all)[0], "r1500");
        assert_eq!(lines(&all)[999], "r2499");
        assert!(all[0].contains(r#""source":"web","stream":"stdout","line":"r1500"}"#));
        assert_eq!(lines(&recent.recent("web", 2)), ["r2498", "r2499"]);
        assert_eq!(lines(&recent.recent("web", 701)).len(), 701);
        assert!(recent.recent("other", 10).is_empty());
        let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
        assert_eq!(recent.counters(), [("web".to_string(), 2500, bytes)]);
    }

    #[test]
    fn bounds_the_memory_held() {
        let recent = Recent::default();
        let web: Arc<str> = "web".into();
        let big: Vec<String> = (0..100)
            .map(|i| format!("{i:05}{}", "x".repeat(9995)))
            .collect();
        // Reads of 8 lines, 80,008 bytes: about what one pipe read holds.
        for lines in big.chunks(8) {
            recent.add_lines(shared(batch(&web, lines, 0)));
        }
        let kept = lines(&recent.recent("web", 1000));
        // The newest read (4 lines) and as many reads of 8 as fit beside it;
        // a read holds its text, newlines and spans (12 bytes each).
        let (newest, read) = (4 * 10_001 + 4 * 12, 8 * 10_001 + 8 * 12);
        assert_eq!(kept.len(), 4 + 8 * ((RECENT_BYTES - newest) / read));
        assert!(kept.last().unwrap().starts_with("00099"));
        let state = recent.lock();
        let ring = &state.sources["web"].lines;
        assert_eq!(ring.held, held_in(ring));
        assert!(ring.held <= RECENT_BYTES);
        drop(state);
        // A read larger than the bound on its own is kept, alone.
        let huge: Vec<String> = (0..50).map(|i| format!("{i:010000}")).collect();
        recent.add_lines(shared(batch(&web, &huge, 0)));
        assert_eq!(recent.recent("web", 1000).len(), 50);
        assert_eq!(recent.lock().sources["web"].lines.batches.len(), 1);
        // Half-full reads of 255-byte lines: what is held stays near what is kept.
        let texts: Vec<String> = (0..161).map(|i| format!("{i:0255}")).collect();
        for _ in 0..100 {
            recent.add_lines(shared(batch(&web, &texts, 80 * 1024 + 1)));
        }
        assert!(held(&recent, "web") <= RECENT_BYTES);
    }

    /// Mostly empty buffers are cut to their content: what the ring holds
    /// stays near what it keeps; full buffers are kept as they are.
    #[test]
    fn keeps_full_buffers_and_cuts_sparse_ones() {
        let recent = Recent::default();
        let web: Arc<str> = "web".into();
        for i in 0..5000 {
            recent.add_lines(shared(batch(&web, &[format!("line {i}")], 80 * 1024)));
        }
        assert_eq!(lines(&recent.recent("web", 1)), ["line 4999"]);
        assert!(held(&recent, "web") < 32 * 1000, "{}", held(&recent, "web"));
        let texts: Vec<String> = (0..700).map(|i| format!("{i:099}")).collect();
        let full = batch(&web, &texts, 80 * 1024);
        let buffer = full.data.as_ptr();
        recent.add_lines(shared(full));
        let state = recent.lock();
        let ring = &state.sources["web"].lines;
        assert_eq!(ring.batches.back().unwrap().data.as_ptr(), buffer);
        assert_eq!(ring.count, RECENT_RECORDS);
    }

    #[test]
    fn events_keep_their_json() {
        let recent = Recent::default();
        let pidzero: Arc<str> = "pidzero".into();
        for i in 0..1500 {
            recent.add_event(&pidzero, 3, format!("{{\"n\":{i}}}\n").as_bytes());
        }
        let kept = recent.recent("pidzero", 5000);
        assert_eq!(kept.len(), RECENT_RECORDS);
        assert_eq!(kept[0], r#"{"n":500}"#);
        assert_eq!(recent.recent("pidzero", 1), [r#"{"n":1499}"#]);
        assert_eq!(recent.counters(), [("pidzero".to_string(), 1500, 4500)]);
    }

    #[test]
    fn sink_errors_are_counted_per_sink() {
        let recent = Recent::default();
        recent.register_sink("stdout");
        recent.register_sink("file");
        recent.sink_error("file");
        recent.sink_error("file");
        assert_eq!(
            recent.sink_error_counts(),
            [("stdout".to_string(), 0), ("file".to_string(), 2)]
        );
    }
}

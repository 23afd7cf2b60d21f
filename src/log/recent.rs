//! Per-source counters and the recent records, for the control API
//! (`pidzero logs NAME`, `/metrics`).
//!
//! The writer thread keeps, for every source (each daemon, and `pidzero` for
//! its own events), the number of records and of line bytes it wrote, and the
//! last [`RECENT_RECORDS`] records rendered as JSON whatever the configured
//! format. A ring never holds more than [`RECENT_BYTES`] of records, so the
//! memory is bounded by `RECENT_BYTES + 4 × RECENT_RECORDS` bytes per source
//! (about 260 KiB); a record larger than `RECENT_BYTES` on its own (possible
//! only with `max_line_bytes` raised above about 40 KiB) is counted but not
//! kept.
//!
//! The writer takes the lock once per batch of lines (one pipe read), and
//! adds the batch's records with one copy; readers of the API take it for as
//! long as copying their answer takes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Records kept per source.
pub const RECENT_RECORDS: usize = 1000;

/// Bytes of records (JSON, each with its `\n`) kept per source at most.
pub const RECENT_BYTES: usize = 256 * 1024;

/// The state shared by the writer thread and the API.
#[derive(Debug, Default)]
pub struct Recent {
    state: Mutex<State>,
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
    ring: Ring,
}

/// The last records of one source: their bytes back to back, and their lengths.
#[derive(Debug, Default)]
struct Ring {
    data: VecDeque<u8>,
    lens: VecDeque<u32>,
}

/// What the writer adds for one batch of lines or one event.
pub struct Update<'a> {
    pub source: &'a Arc<str>,
    /// Records written.
    pub records: u64,
    /// Bytes of line text written (before formatting).
    pub bytes: u64,
    /// The last (at most) [`RECENT_RECORDS`] of these records as JSON, back to back.
    pub json: &'a [u8],
    /// The end offset in `json` of each record in it (after its `\n`).
    pub ends: &'a [usize],
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent counters behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one batch (or event) of `update.source` and keeps its records.
    pub fn add(&self, update: Update<'_>) {
        let mut state = self.lock();
        let log = match state.sources.get_mut(&**update.source) {
            Some(log) => log,
            None => state.sources.entry(Arc::clone(update.source)).or_default(),
        };
        log.records += update.records;
        log.bytes += update.bytes;
        log.ring.extend(update.json, update.ends);
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
    /// The lock is held only to copy the bytes out: the writer takes the same
    /// lock once per batch.
    pub fn recent(&self, source: &str, n: usize) -> Vec<String> {
        let (bytes, lens) = {
            let state = self.lock();
            match state.sources.get(source) {
                Some(log) => log.ring.tail(n),
                None => return Vec::new(),
            }
        };
        let mut start = 0;
        lens.iter()
            .map(|&len| {
                let end = start + len as usize;
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

impl Ring {
    /// Appends the records of `json` (ending at `ends`), dropping the oldest
    /// beyond the bounds first so the buffer never grows past them.
    fn extend(&mut self, json: &[u8], ends: &[usize]) {
        // Only the newest records that fit can stay.
        let mut first = ends.len().saturating_sub(RECENT_RECORDS);
        let start_of = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
        while first < ends.len() && json.len() - start_of(first) > RECENT_BYTES {
            first += 1;
        }
        if first == ends.len() {
            return;
        }
        let start = start_of(first);
        let incoming = json.len() - start;
        let count = ends.len() - first;
        let mut evict = 0usize;
        while self.lens.len() + count > RECENT_RECORDS
            || self.data.len() - evict + incoming > RECENT_BYTES
        {
            let Some(len) = self.lens.pop_front() else {
                break;
            };
            evict += len as usize;
        }
        self.data.drain(..evict);
        let needed = self.data.len() + incoming;
        if needed > self.data.capacity() {
            // Grow by doubling, but never past the bound.
            let target = needed.max(2 * self.data.capacity()).min(RECENT_BYTES);
            self.data.reserve_exact(target - self.data.len());
        }
        self.data.extend(&json[start..]);
        let mut previous = start;
        for &end in &ends[first..] {
            self.lens.push_back((end - previous) as u32);
            previous = end;
        }
    }

    /// The bytes of the last `n` records (each with its `\n`) and their lengths.
    fn tail(&self, n: usize) -> (Vec<u8>, Vec<u32>) {
        let n = n.min(self.lens.len());
        let lens: Vec<u32> = self.lens.range(self.lens.len() - n..).copied().collect();
        let size: usize = lens.iter().map(|&l| l as usize).sum();
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

    fn records(texts: &[String]) -> (Vec<u8>, Vec<usize>) {
        let mut json = Vec::new();
        let mut ends = Vec::new();
        for text in texts {
            json.extend_from_slice(text.as_bytes());
            json.push(b'\n');
            ends.push(json.len());
        }
        (json, ends)
    }

    fn add(recent: &Recent, source: &Arc<str>, texts: &[String]) {
        let (json, ends) = records(texts);
        recent.add(Update {
            source,
            records: texts.len() as u64,
            bytes: 1,
            json: &json,
            ends: &ends,
        });
    }

    #[test]
    fn keeps_the_last_thousand_oldest_first() {
        let recent = Recent::default();
        let web: Arc<str> = "web".into();
        let texts: Vec<String> = (0..2500).map(|i| format!("r{i}")).collect();
        for chunk in texts.chunks(700) {
            add(&recent, &web, chunk);
        }
        let all = recent.recent("web", 5000);
        assert_eq!(all.len(), RECENT_RECORDS);
        assert_eq!(all[0], "r1500");
        assert_eq!(all[999], "r2499");
        assert_eq!(recent.recent("web", 2), ["r2498", "r2499"]);
        assert!(recent.recent("other", 10).is_empty());
        assert_eq!(recent.counters(), [("web".to_string(), 2500, 4)]);
    }

    #[test]
    fn bounds_the_bytes() {
        let recent = Recent::default();
        let web: Arc<str> = "web".into();
        let big: Vec<String> = (0..100)
            .map(|i| format!("{i:05}{}", "x".repeat(9994)))
            .collect();
        add(&recent, &web, &big[..10]);
        add(&recent, &web, &big[10..]);
        let kept = recent.recent("web", 1000);
        // 10,001 bytes each with the newline: 26 fit in 256 KiB.
        assert_eq!(kept.len(), RECENT_BYTES / 10_001);
        assert!(kept.last().unwrap().starts_with("00099"));
        let state = recent.lock();
        let ring = &state.sources["web"].ring;
        assert!(ring.data.len() <= RECENT_BYTES);
        assert!(ring.data.capacity() <= RECENT_BYTES);
        drop(state);
        // A record larger than the whole ring is counted, not kept.
        add(&recent, &web, &["y".repeat(RECENT_BYTES)]);
        assert_eq!(recent.recent("web", 1).len(), 1);
        assert!(recent.recent("web", 1)[0].starts_with("00099"));
        assert_eq!(recent.counters()[0].1, 101);
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

//! A ready [`LogSource`]: the last 1,000 records of each daemon and the log counters,
//! in memory, filled by the log pipeline and read by the API.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::routes::MAX_LOG_LINES;
use super::server::{LogCounters, LogSource};

/// Thread-safe (the log writer thread fills it, the runtime thread reads it); each
/// call holds the lock for a few pointer moves only.
#[derive(Debug, Default)]
pub struct RecentLogs {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// In first-seen order, so `/metrics` lists daemons stably.
    daemons: Vec<DaemonLogs>,
    index: HashMap<String, usize>,
    sinks: Vec<(String, u64)>,
}

#[derive(Debug)]
struct DaemonLogs {
    name: String,
    ring: VecDeque<String>,
    records: u64,
    bytes: u64,
}

impl RecentLogs {
    pub fn new() -> RecentLogs {
        RecentLogs::default()
    }

    /// Adds one record of `daemon`: its JSON text, and the bytes of output it carried
    /// (the line's length). The oldest record beyond 1,000 is dropped from the ring;
    /// the counters keep counting.
    pub fn push(&self, daemon: &str, json: String, bytes: u64) {
        let mut inner = self.lock();
        let i = inner.daemon(daemon);
        let d = &mut inner.daemons[i];
        if d.ring.len() == MAX_LOG_LINES {
            d.ring.pop_front();
        }
        d.ring.push_back(json);
        d.records += 1;
        d.bytes += bytes;
    }

    /// Makes a daemon appear in `/metrics` with zero counts before it logs anything.
    pub fn register(&self, daemon: &str) {
        self.lock().daemon(daemon);
    }

    /// Counts one write error of `sink` (`stdout`, `file`).
    pub fn sink_error(&self, sink: &str) {
        let mut inner = self.lock();
        match inner.sinks.iter_mut().find(|(name, _)| name == sink) {
            Some((_, n)) => *n += 1,
            None => inner.sinks.push((sink.to_owned(), 1)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    fn daemon(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.daemons.push(DaemonLogs {
            name: name.to_owned(),
            ring: VecDeque::new(),
            records: 0,
            bytes: 0,
        });
        self.index.insert(name.to_owned(), self.daemons.len() - 1);
        self.daemons.len() - 1
    }
}

impl LogSource for RecentLogs {
    fn recent(&self, daemon: &str, n: usize) -> Vec<String> {
        let inner = self.lock();
        match inner.index.get(daemon) {
            Some(&i) => {
                let ring = &inner.daemons[i].ring;
                ring.iter()
                    .skip(ring.len().saturating_sub(n))
                    .cloned()
                    .collect()
            }
            None => Vec::new(),
        }
    }

    fn counters(&self) -> LogCounters {
        let inner = self.lock();
        LogCounters {
            per_daemon: inner
                .daemons
                .iter()
                .map(|d| (d.name.clone(), d.records, d.bytes))
                .collect(),
            sink_errors: inner.sinks.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_thousand_and_counts_all() {
        let logs = RecentLogs::new();
        logs.register("idle");
        for i in 0..1005 {
            logs.push("web", format!("{{\"n\":{i}}}"), 10);
        }
        logs.push("db", "{}".into(), 3);
        let recent = logs.recent("web", 2000);
        assert_eq!(recent.len(), 1000);
        assert_eq!(recent[0], "{\"n\":5}");
        assert_eq!(logs.recent("web", 2), ["{\"n\":1003}", "{\"n\":1004}"]);
        assert!(logs.recent("nope", 5).is_empty());
        logs.sink_error("file");
        logs.sink_error("file");
        assert_eq!(
            logs.counters(),
            LogCounters {
                per_daemon: vec![
                    ("idle".into(), 0, 0),
                    ("web".into(), 1005, 10050),
                    ("db".into(), 1, 3)
                ],
                sink_errors: vec![("file".into(), 2)],
            }
        );
    }
}

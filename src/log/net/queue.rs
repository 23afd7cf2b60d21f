//! A bounded queue that drops its oldest records when full.
//!
//! A network handler's receiver may be away or slow; the writer thread must
//! never wait for it (stdout and the file are lossless and must stay fast),
//! so each handler queues what the writer hands it, bounded both in records
//! and in bytes, and drops the oldest records past either bound: the newest
//! records are the ones worth having when the receiver comes back. Pure
//! logic: no lock, no clock (the caller holds it in a mutex).

use std::collections::VecDeque;

/// What the queue holds: a group of records (a read's lines, an event)
/// whose oldest records can be skipped one by one.
pub trait Entry {
    /// Records not yet skipped.
    fn records(&self) -> usize;
    /// Memory the entry holds; fixed for the entry's life (skipping records
    /// frees nothing until the whole entry goes).
    fn bytes(&self) -> usize;
    /// Skips the `n` oldest records (`n <= records()`).
    fn skip(&mut self, n: usize);
}

#[derive(Debug)]
pub struct Queue<E> {
    entries: VecDeque<(E, usize)>,
    records: usize,
    bytes: usize,
    max_records: usize,
    max_bytes: usize,
    dropped: u64,
}

impl<E: Entry> Queue<E> {
    /// A queue of at most `max_records` records (at least 1) and
    /// `max_bytes` bytes (the newest entry is always kept, even alone above
    /// that bound, so that one long line is never dropped for its size alone).
    pub fn new(max_records: usize, max_bytes: usize) -> Self {
        Queue {
            entries: VecDeque::new(),
            records: 0,
            bytes: 0,
            max_records: max_records.max(1),
            max_bytes,
            dropped: 0,
        }
    }

    /// Queues `entry`, dropping the oldest records past the bounds; returns
    /// how many were dropped.
    pub fn push(&mut self, entry: E) -> u64 {
        let records = entry.records();
        if records == 0 {
            return 0;
        }
        let bytes = entry.bytes();
        self.records += records;
        self.bytes += bytes;
        self.entries.push_back((entry, bytes));
        let before = self.dropped;
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            if let Some((oldest, bytes)) = self.entries.pop_front() {
                self.forget(oldest.records(), bytes);
            }
        }
        while self.records > self.max_records {
            let Some((oldest, bytes)) = self.entries.front_mut() else {
                break;
            };
            let n = (self.records - self.max_records).min(oldest.records());
            oldest.skip(n);
            let (left, bytes) = (oldest.records(), *bytes);
            self.records -= n;
            self.dropped += n as u64;
            if left == 0 {
                self.entries.pop_front();
                self.bytes -= bytes;
            }
        }
        self.dropped - before
    }

    /// Counts a whole entry as dropped.
    fn forget(&mut self, records: usize, bytes: usize) {
        self.records -= records;
        self.bytes -= bytes;
        self.dropped += records as u64;
    }

    /// Takes the oldest entry.
    pub fn pop(&mut self) -> Option<E> {
        let (entry, bytes) = self.entries.pop_front()?;
        self.records -= entry.records();
        self.bytes -= bytes;
        Some(entry)
    }

    /// Takes at most `max` (at least 1) of the oldest records: the oldest
    /// entry whole when it holds no more, else a copy of it of which the
    /// caller uses only the first `max` records, the entry staying queued
    /// with those skipped. Returns the entry and the records taken from it.
    pub fn take(&mut self, max: usize) -> Option<(E, usize)>
    where
        E: Clone,
    {
        let max = max.max(1);
        let (front, _) = self.entries.front_mut()?;
        let records = front.records();
        if records <= max {
            let entry = self.pop()?;
            return Some((entry, records));
        }
        let copy = front.clone();
        front.skip(max);
        self.records -= max;
        Some((copy, max))
    }

    /// Drops everything queued (counted); returns how many records that was.
    pub fn clear(&mut self) -> u64 {
        let n = self.records as u64;
        self.dropped += n;
        self.entries.clear();
        self.records = 0;
        self.bytes = 0;
        n
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn records(&self) -> usize {
        self.records
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records dropped so far, for the bounds or by [`Queue::clear`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Records numbered `next..end`, holding `size` bytes.
    #[derive(Debug, Clone)]
    struct Run {
        next: usize,
        end: usize,
        size: usize,
    }

    impl Entry for Run {
        fn records(&self) -> usize {
            self.end - self.next
        }
        fn bytes(&self) -> usize {
            self.size
        }
        fn skip(&mut self, n: usize) {
            self.next += n;
        }
    }

    fn run(first: usize, n: usize, size: usize) -> Run {
        Run {
            next: first,
            end: first + n,
            size,
        }
    }

    fn drain(queue: &mut Queue<Run>) -> Vec<usize> {
        let mut out = Vec::new();
        while let Some(r) = queue.pop() {
            out.extend(r.next..r.end);
        }
        out
    }

    #[test]
    fn keeps_the_newest_records_and_counts_the_rest() {
        let mut queue = Queue::new(5, 1 << 20);
        assert_eq!(queue.push(run(0, 3, 10)), 0);
        assert_eq!(queue.push(run(3, 4, 10)), 2);
        assert_eq!((queue.records(), queue.dropped()), (5, 2));
        assert_eq!(queue.push(run(7, 1, 10)), 1);
        assert_eq!(drain(&mut queue), [3, 4, 5, 6, 7]);
        assert_eq!((queue.records(), queue.bytes()), (0, 0));
        assert_eq!(queue.dropped(), 3);
    }

    #[test]
    fn a_push_larger_than_the_queue_keeps_its_own_newest() {
        let mut queue = Queue::new(3, 1 << 20);
        queue.push(run(0, 2, 10));
        assert_eq!(queue.push(run(2, 10, 10)), 9);
        assert_eq!(drain(&mut queue), [9, 10, 11]);
    }

    #[test]
    fn the_byte_bound_drops_whole_old_entries_but_never_the_newest() {
        let mut queue = Queue::new(1000, 100);
        queue.push(run(0, 2, 60));
        assert_eq!(queue.push(run(2, 2, 60)), 2);
        assert_eq!(queue.bytes(), 60);
        assert_eq!(
            queue.push(run(4, 1, 500)),
            2,
            "alone above the bound, still kept"
        );
        assert_eq!(drain(&mut queue), [4]);
        assert_eq!(queue.dropped(), 4);
    }

    #[test]
    fn take_splits_an_entry_at_the_count_asked() {
        let mut queue = Queue::new(100, 1000);
        queue.push(run(0, 5, 10));
        queue.push(run(5, 2, 10));
        let (first, n) = queue.take(3).unwrap();
        assert_eq!((first.next, n), (0, 3), "a copy: the caller takes 3");
        assert_eq!(queue.records(), 4);
        assert_eq!(queue.bytes(), 20, "bytes go with the whole entry");
        let (rest, n) = queue.take(3).unwrap();
        assert_eq!((rest.next, rest.end, n), (3, 5, 2));
        let (last, n) = queue.take(0).unwrap();
        assert_eq!((last.next, n), (5, 1), "at least one record");
        assert_eq!(queue.records(), 1);
        assert_eq!(drain(&mut queue), [6]);
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn clear_counts_what_it_drops() {
        let mut queue = Queue::new(10, 1000);
        queue.push(run(0, 4, 10));
        assert_eq!(queue.clear(), 4);
        assert!(queue.is_empty());
        assert_eq!(queue.dropped(), 4);
        assert_eq!(queue.push(run(0, 0, 10)), 0);
        assert!(queue.is_empty(), "an empty entry is not queued");
    }

    proptest! {
        /// Whatever is pushed: the bounds hold, what comes out is the
        /// newest records in order, and kept + dropped = pushed.
        #[test]
        fn bounded_in_order_and_all_counted(
            pushes in proptest::collection::vec((0usize..20, 1usize..50), 1..60),
            max_records in 1usize..40,
            max_bytes in 1usize..200,
        ) {
            let mut queue = Queue::new(max_records, max_bytes);
            let mut next = 0;
            let mut newest = 0;
            for &(n, size) in &pushes {
                queue.push(run(next, n, size));
                next += n;
                if n > 0 {
                    newest = size;
                }
                prop_assert!(queue.records() <= max_records);
                prop_assert!(queue.bytes() <= max_bytes.max(newest));
            }
            let kept = drain(&mut queue);
            prop_assert_eq!(kept.len() as u64 + queue.dropped(), next as u64);
            prop_assert!(kept.windows(2).all(|w| w[0] < w[1]));
            if let Some(&last) = kept.last() {
                prop_assert_eq!(last + 1, next);
            }
        }
    }
}

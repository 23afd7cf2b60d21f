//! pidzero's own records on their way to the log, kept in the order the
//! supervisor produced them and held back, when they must be, until daemon
//! output that has to come first is handed to the log channel.
//!
//! Why: a daemon's lines reach the log through its pipe readers, which wait
//! for the writer (back-pressure) and may not even have read them yet when
//! the daemon is reaped; pidzero's records go straight to the channel (the
//! control loop never waits for a sink). Sent at once, an `exited` record
//! overtakes the daemon's last lines. So when a daemon is reaped, the
//! runtime asks its readers to hand over what their pipes hold and puts a
//! [`barrier`](Outbox::barrier) here: the records after it (its `exited`,
//! then whatever follows, such as `restarting`, `vital_exit`, `shutdown`)
//! wait until those readers answer. Only the records wait: the supervisor
//! has already acted (restart timer, stop signals, fail-fast).
//!
//! The readers of a new instance wait for an [`open`](Outbox::open) placed
//! after its `started` record, so its output also comes after the previous
//! instance's `exited`.
//!
//! The wait is bounded by what the pipes held when the daemon was reaped
//! (see [`Flusher::flush`](crate::log::reader::Flusher::flush)), not by
//! their end of file: a grandchild that keeps the pipe open does not hold
//! the records back. Only a sink that takes nothing holds them, and then
//! nothing would reach it anyway; at exit, [`release_all`](Outbox::release_all)
//! lets them go whatever is left.

use std::collections::VecDeque;

use tokio::sync::oneshot;

use crate::log::record::timestamp_now;
use crate::log::EventRecord;

enum Entry {
    Record(EventRecord),
    /// Records after this wait for these readers to answer their flush.
    Barrier(Vec<oneshot::Receiver<()>>),
    /// Lets the readers of a new instance start.
    Open(Vec<oneshot::Sender<()>>),
}

/// The queue of held records; empty (and costing nothing) when nothing waits.
#[derive(Default)]
pub struct Outbox {
    held: VecDeque<Entry>,
}

impl Outbox {
    /// Sends `record` to `emit` now, or keeps it behind what waits.
    pub fn record(&mut self, record: EventRecord, mut emit: impl FnMut(EventRecord)) {
        if self.held.is_empty() {
            return emit(record);
        }
        self.held.push_back(Entry::Record(record));
        self.release(emit);
    }

    /// Holds the records that come next until every one of `flushes` has
    /// answered (with a value, or by being dropped).
    pub fn barrier(&mut self, flushes: Vec<oneshot::Receiver<()>>) {
        if !flushes.is_empty() {
            self.held.push_back(Entry::Barrier(flushes));
        }
    }

    /// Opens readers once the records queued before now are sent.
    pub fn open(&mut self, readers: Vec<oneshot::Sender<()>>, emit: impl FnMut(EventRecord)) {
        if !readers.is_empty() {
            self.held.push_back(Entry::Open(readers));
            self.release(emit);
        }
    }

    /// True while a barrier holds records back: then the loop waits on
    /// [`front_answered`](Outbox::front_answered).
    pub fn is_waiting(&self) -> bool {
        matches!(self.held.front(), Some(Entry::Barrier(_)))
    }

    /// Completes once the first barrier's readers have all answered (never,
    /// when there is none). Cancel-safe: an answer taken is forgotten at once.
    pub async fn front_answered(&mut self) {
        let Some(Entry::Barrier(flushes)) = self.held.front_mut() else {
            return std::future::pending().await;
        };
        while let Some(answer) = flushes.last_mut() {
            let _ = answer.await;
            flushes.pop();
        }
    }

    /// Sends what no barrier holds back any more, in order.
    pub fn release(&mut self, mut emit: impl FnMut(EventRecord)) {
        while let Some(entry) = self.held.front_mut() {
            match entry {
                Entry::Barrier(flushes) => {
                    flushes.retain_mut(|answer| {
                        matches!(answer.try_recv(), Err(oneshot::error::TryRecvError::Empty))
                    });
                    if !flushes.is_empty() {
                        return;
                    }
                    self.held.pop_front();
                }
                Entry::Record(_) | Entry::Open(_) => {
                    if let Some(entry) = self.held.pop_front() {
                        send(entry, &mut emit);
                    }
                }
            }
        }
    }

    /// Waits for each barrier in turn and sends everything, in order.
    pub async fn release_all(&mut self, mut emit: impl FnMut(EventRecord)) {
        loop {
            self.release(&mut emit);
            if self.held.is_empty() {
                return;
            }
            self.front_answered().await;
        }
    }

    /// Sends everything held at once, barriers or not (pidzero is exiting
    /// and gave up waiting for the readers).
    pub fn release_now(&mut self, mut emit: impl FnMut(EventRecord)) {
        for entry in self.held.drain(..) {
            send(entry, &mut emit);
        }
    }
}

/// Sends a record that was held with the time it is sent: the lines before
/// it carry the time they were read, and a record stamped earlier than the
/// lines it follows would be put back before them by whatever sorts logs by
/// time. The wait is short (what a pipe held, read and taken by the writer).
fn send(entry: Entry, emit: &mut impl FnMut(EventRecord)) {
    match entry {
        Entry::Record(mut record) => {
            record.timestamp = timestamp_now();
            emit(record)
        }
        Entry::Open(readers) => {
            for reader in readers {
                let _ = reader.send(());
            }
        }
        Entry::Barrier(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::record::Level;
    use crate::test_support::block_on;

    fn record(line: &str) -> EventRecord {
        EventRecord {
            timestamp: timestamp_now(),
            level: Level::Info,
            event: "exited",
            fields: vec![],
            line: line.to_string(),
        }
    }

    #[test]
    fn records_pass_at_once_when_nothing_waits() {
        let mut outbox = Outbox::default();
        let mut sent = Vec::new();
        outbox.record(record("a"), |r| sent.push(r.line));
        outbox.barrier(vec![]);
        outbox.record(record("b"), |r| sent.push(r.line));
        assert_eq!(sent, ["a", "b"]);
        assert!(!outbox.is_waiting());
    }

    /// Records and opens after a barrier wait for every reader of it, in
    /// order; an answer by drop counts (the reader ended).
    #[test]
    fn a_barrier_holds_what_follows_until_its_readers_answer() {
        let mut outbox = Outbox::default();
        let mut sent = Vec::new();
        let (stdout_done, stdout_answer) = oneshot::channel();
        let (stderr_done, stderr_answer) = oneshot::channel::<()>();
        let (open, mut opened) = oneshot::channel();
        outbox.record(record("before"), |r| sent.push(r.line));
        outbox.barrier(vec![stdout_answer, stderr_answer]);
        outbox.record(record("exited"), |r| sent.push(r.line));
        outbox.open(vec![open], |r| sent.push(r.line));
        outbox.record(record("started"), |r| sent.push(r.line));
        assert_eq!(sent, ["before"]);
        assert!(outbox.is_waiting());
        stdout_done.send(()).unwrap();
        outbox.release(|r| sent.push(r.line));
        assert_eq!(sent, ["before"], "one reader has not answered");
        assert!(opened.try_recv().is_err());
        drop(stderr_done);
        block_on(outbox.front_answered());
        outbox.release(|r| sent.push(r.line));
        assert_eq!(sent, ["before", "exited", "started"]);
        assert!(opened.try_recv().is_ok(), "opened in its turn");
        assert!(!outbox.is_waiting());
    }

    #[test]
    fn release_all_waits_barrier_by_barrier_and_release_now_does_not() {
        let mut outbox = Outbox::default();
        let mut sent = Vec::new();
        let (first_done, first) = oneshot::channel();
        let (second_done, second) = oneshot::channel();
        outbox.barrier(vec![first]);
        outbox.record(record("one"), |r| sent.push(r.line));
        outbox.barrier(vec![second]);
        outbox.record(record("two"), |r| sent.push(r.line));
        first_done.send(()).unwrap();
        second_done.send(()).unwrap();
        block_on(outbox.release_all(|r| sent.push(r.line)));
        assert_eq!(sent, ["one", "two"]);

        // A held record is stamped when it is sent, not when it was made.
        let (done, answer) = oneshot::channel();
        outbox.barrier(vec![answer]);
        let mut stale = record("stale");
        stale.timestamp = [b'0'; 24];
        outbox.record(stale, |r| sent.push(r.line));
        done.send(()).unwrap();
        let mut stamps = Vec::new();
        outbox.release(|r| stamps.push(r.timestamp));
        assert_eq!(stamps.len(), 1);
        assert_ne!(stamps[0], [b'0'; 24]);

        let (_never_done, never) = oneshot::channel::<()>();
        outbox.barrier(vec![never]);
        outbox.record(record("three"), |r| sent.push(r.line));
        assert_eq!(sent.len(), 2);
        outbox.release_now(|r| sent.push(r.line));
        assert_eq!(sent, ["one", "two", "three"]);
        assert!(!outbox.is_waiting());
    }
}

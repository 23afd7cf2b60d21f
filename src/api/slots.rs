//! The connection slots of one listener (SPEC §8: at most 64 connections at once, and
//! slow or idle clients never keep a newcomer's `/health` waiting).
//!
//! A newcomer is always admitted at once. At the limit it takes the slot of the
//! connection that has waited on its client the longest: one whose request head or
//! body is still trickling in, an idle keep-alive connection, one whose client does
//! not read its answer, or one being closed. Connections the server is working for
//! (a request taken, its answer not yet handed over) go only when no other is left,
//! oldest first. So a flood of slow clients only ever evicts itself, and the kernel's
//! listen backlog is never where a probe waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

/// What a connection is doing, for choosing whom to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Waiting on the client: for its request, its body, its reading, its close.
    Waiting,
    /// The server is working on a request (its handler runs).
    Working,
}

/// The connections of one listener.
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    entries: HashMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    phase: Phase,
    since: Instant,
    evicted: Arc<Notify>,
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Slots> {
        Arc::new(Slots {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// A slot for a new connection, evicting another one when all are taken.
    pub fn admit(self: &Arc<Self>) -> Slot {
        let now = Instant::now();
        let mut inner = self.lock();
        while inner.entries.len() >= self.capacity {
            let candidates = inner.entries.iter().map(|(&id, e)| (id, e.phase, e.since));
            let Some(id) = victim(candidates) else { break };
            if let Some(entry) = inner.entries.remove(&id) {
                entry.evicted.notify_one();
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evicted = Arc::new(Notify::new());
        inner.entries.insert(
            id,
            Entry {
                phase: Phase::Waiting,
                since: now,
                evicted: evicted.clone(),
            },
        );
        Slot {
            slots: self.clone(),
            id,
            evicted,
        }
    }

    /// Connections holding a slot.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent whatever panicked while holding the lock.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection to evict: the longest waiting on its client, else the oldest at work.
pub fn victim(candidates: impl Iterator<Item = (u64, Phase, Instant)>) -> Option<u64> {
    candidates
        .min_by_key(|&(id, phase, since)| (phase, since, id))
        .map(|(id, ..)| id)
}

/// One connection's slot, freed when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    evicted: Arc<Notify>,
}

impl Slot {
    /// The server takes a request; returns when the connection began waiting for it,
    /// which is when the request's time to arrive started.
    pub fn start_work(&self) -> Instant {
        self.set(Phase::Working)
    }

    /// The answer is handed over: from now on the connection waits on its client.
    pub fn finish_work(&self) {
        self.set(Phase::Waiting);
    }

    /// Completes when a newcomer took this slot: the connection must close.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Sets the phase and returns when the previous one began.
    fn set(&self, phase: Phase) -> Instant {
        let now = Instant::now();
        let mut inner = self.slots.lock();
        match inner.entries.get_mut(&self.id) {
            Some(entry) => {
                entry.phase = phase;
                std::mem::replace(&mut entry.since, now)
            }
            // Already evicted; the connection is closing.
            None => now,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().entries.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::block_on;
    use std::time::Duration;

    #[test]
    fn the_victim_waits_longest_and_work_is_spared() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let pick = |c: &[(u64, Phase, Instant)]| victim(c.iter().copied());
        assert_eq!(pick(&[]), None);
        assert_eq!(
            pick(&[(1, Phase::Working, at(0)), (2, Phase::Waiting, at(5))]),
            Some(2)
        );
        assert_eq!(
            pick(&[
                (1, Phase::Waiting, at(9)),
                (2, Phase::Waiting, at(3)),
                (3, Phase::Working, at(1)),
            ]),
            Some(2)
        );
        assert_eq!(
            pick(&[(1, Phase::Working, at(9)), (2, Phase::Working, at(3))]),
            Some(2)
        );
    }

    #[test]
    fn a_newcomer_at_the_limit_evicts_and_never_waits() {
        block_on(async {
            let slots = Slots::new(2);
            let first = slots.admit();
            let second = slots.admit();
            first.start_work();
            // Both taken: the second (waiting on its client) goes, the first works on.
            let third = slots.admit();
            assert_eq!(slots.len(), 2);
            tokio::time::timeout(Duration::from_secs(5), second.evicted())
                .await
                .unwrap();
            // Its answer handed over, the first waits on its client, but for less
            // time than the third: the third goes next.
            first.finish_work();
            let fourth = slots.admit();
            tokio::time::timeout(Duration::from_secs(5), third.evicted())
                .await
                .unwrap();
            drop(third);
            assert_eq!(slots.len(), 2);
            drop((first, fourth));
            assert_eq!(slots.len(), 0);
        });
    }

    #[test]
    fn a_dropped_slot_frees_its_place() {
        let slots = Slots::new(1);
        let a = slots.admit();
        drop(a);
        assert_eq!(slots.len(), 0);
        let _b = slots.admit();
        assert_eq!(slots.len(), 1);
    }
}

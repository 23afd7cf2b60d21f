//! Buffers handed back for the readers to reuse: the writer thread gives
//! back the formatted batches it wrote, the recent-records ring the read
//! buffers of batches that dropped out of it.
//!
//! A read buffer is 80 KiB and a formatted batch about 120 KiB of JSON;
//! allocating them per pipe read in a reader and freeing them in another
//! thread makes the allocator hand memory back to the kernel and fault it in
//! again, thousands of times a second. Recycling a few keeps them mapped and
//! warm.

use std::sync::Mutex;

/// Buffers kept at most (a little more than the batches in flight).
const KEPT: usize = 8;

/// A buffer smaller than this is not worth keeping: allocating one is cheap.
const MIN_KEPT_BYTES: usize = 16 * 1024;

/// A buffer larger than this (a batch of escaped binary output, say) is
/// freed rather than kept, so the pool holds at most `KEPT × MAX_KEPT_BYTES`.
const MAX_KEPT_BYTES: usize = 256 * 1024;

#[derive(Debug, Default)]
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer, with the capacity of a recycled one when there is one.
    pub fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `buffers` (emptied) for reuse, up to the pool's bounds.
    pub fn give_back(&self, buffers: impl Iterator<Item = Vec<u8>>) {
        let mut free = self.lock();
        for mut buffer in buffers {
            let size = buffer.capacity();
            if free.len() < KEPT && (MIN_KEPT_BYTES..=MAX_KEPT_BYTES).contains(&size) {
                buffer.clear();
                free.push(buffer);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // The list stays consistent whatever panicked while holding it.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_emptied_buffers_within_bounds() {
        let pool = BufferPool::default();
        assert_eq!(pool.take().capacity(), 0);
        let mut used = Vec::with_capacity(MIN_KEPT_BYTES);
        used.extend_from_slice(b"old records");
        let huge = Vec::with_capacity(MAX_KEPT_BYTES + 1);
        let tiny = Vec::with_capacity(100);
        pool.give_back([used, huge, tiny].into_iter());
        let again = pool.take();
        assert!(again.is_empty() && again.capacity() >= MIN_KEPT_BYTES);
        assert_eq!(
            pool.take().capacity(),
            0,
            "neither the huge nor the tiny one was kept"
        );
        pool.give_back((0..KEPT + 5).map(|_| Vec::with_capacity(MIN_KEPT_BYTES)));
        assert_eq!(pool.lock().len(), KEPT);
    }
}

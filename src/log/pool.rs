//! Buffers handed back for the readers to reuse: the writer thread gives
//! back the formatted batches it wrote, the recent-records ring the read
//! buffers of batches that dropped out of it.
//!
//! A read buffer is 80 KiB and a formatted batch about 120 KiB of JSON;
//! allocating them per pipe read in a reader and freeing them in another
//! thread makes the allocator hand memory back to the kernel and fault it in
//! again, thousands of times a second. Recycling a few keeps them mapped and
//! warm.

use std::sync::{Arc, Mutex};

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

    /// Keeps `buffers` (emptied) for reuse, up to the pool's bounds. The
    /// pool is locked while `buffers` runs: what it drops must not give
    /// back to this pool (a [`SharedBytes`] does).
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

/// A formatted batch shared between the writer (which writes it to the
/// file and stdout) and network handlers whose format is the same (which
/// copy it to their receivers instead of formatting the records again).
/// Whoever drops it last gives it back to the pool, so that sharing costs
/// the writer thread no copy and the readers no fresh allocation.
#[derive(Debug)]
pub struct SharedBytes {
    bytes: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl SharedBytes {
    pub fn new(bytes: Vec<u8>, pool: Arc<BufferPool>) -> Self {
        SharedBytes { bytes, pool }
    }
}

impl std::ops::Deref for SharedBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for SharedBytes {
    fn drop(&mut self) {
        self.pool
            .give_back(std::iter::once(std::mem::take(&mut self.bytes)));
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

    #[test]
    fn shared_bytes_go_back_when_the_last_holder_drops_them() {
        let pool = Arc::new(BufferPool::default());
        let mut bytes = Vec::with_capacity(MIN_KEPT_BYTES);
        bytes.extend_from_slice(b"records\n");
        let shared = Arc::new(SharedBytes::new(bytes, Arc::clone(&pool)));
        let other = Arc::clone(&shared);
        assert_eq!(&other[..], b"records\n");
        drop(shared);
        assert!(pool.lock().is_empty(), "still held");
        drop(other);
        assert_eq!(pool.lock().len(), 1);
        assert!(pool.take().capacity() >= MIN_KEPT_BYTES);
    }
}

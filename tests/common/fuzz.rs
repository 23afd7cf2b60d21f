//! What the seeded fuzz drivers share: a small generator whose inputs are
//! the same for the same seed, and the two knobs of a long run
//! (`PIDZERO_FUZZ_ITERS`, `PIDZERO_FUZZ_SEED`, decimal or `0x` hex).

/// splitmix64: tiny, fast, and any seed (0 included) gives a good stream.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0..n (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// An environment variable as a number, decimal or `0x` hex.
pub fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

/// How many inputs to try: `PIDZERO_FUZZ_ITERS`, else `default` (the smoke).
pub fn iterations(default: usize) -> usize {
    env_u64("PIDZERO_FUZZ_ITERS").map_or(default, |n| n as usize)
}

/// The seed: `PIDZERO_FUZZ_SEED`, else `default`.
pub fn seed(default: u64) -> u64 {
    env_u64("PIDZERO_FUZZ_SEED").unwrap_or(default)
}

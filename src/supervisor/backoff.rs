//! Restart delays: start at `restart_delay`, double on each quick failure up to
//! 30 s, and start over once an instance has run for 30 s.
//!
//! A delay below [`MIN_DELAY`] (`restart_delay: 0` included) is raised to it:
//! a daemon that exits at once would otherwise be restarted in a busy loop
//! (over a thousand times a second), and a crash loop must cost pidzero under
//! 1 % of a core whatever the configuration. With the doubling, a daemon that
//! exits at once is started 5 times in its first 2 s, then every 30 s.

use std::time::Duration;

/// The longest wait between two restarts, and the run time after which an
/// instance counts as healthy enough to reset the delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

/// The shortest wait between two automatic restarts.
pub const MIN_DELAY: Duration = Duration::from_millis(100);

/// The first delay actually used for a configured `restart_delay`; `Some` only
/// when it differs (the configuration then deserves a warning).
pub fn raised(restart_delay: Duration) -> Option<Duration> {
    (restart_delay < MIN_DELAY).then_some(MIN_DELAY)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration) -> Self {
        let initial = initial.clamp(MIN_DELAY, MAX_DELAY);
        Backoff {
            initial,
            next: initial,
        }
    }

    /// The delay before the next restart of an instance that ran for `ran_for`.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= MAX_DELAY {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_DELAY);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubles_up_to_thirty_seconds() {
        let mut b = Backoff::new(secs(1));
        let seq: Vec<u64> = (0..8).map(|_| b.next_delay(secs(0)).as_secs()).collect();
        assert_eq!(seq, vec![1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn resets_after_thirty_seconds_of_running() {
        let mut b = Backoff::new(secs(2));
        assert_eq!(b.next_delay(secs(1)), secs(2));
        assert_eq!(b.next_delay(secs(1)), secs(4));
        assert_eq!(b.next_delay(secs(30)), secs(2));
        assert_eq!(b.next_delay(secs(29)), secs(4));
    }

    #[test]
    fn zero_delay_is_raised_to_the_minimum_and_doubles() {
        let mut b = Backoff::new(Duration::ZERO);
        let seq: Vec<u128> = (0..4).map(|_| b.next_delay(secs(0)).as_millis()).collect();
        assert_eq!(seq, vec![100, 200, 400, 800]);
        assert_eq!(b.next_delay(secs(30)), MIN_DELAY, "back to the floor");
        assert_eq!(raised(Duration::ZERO), Some(MIN_DELAY));
        assert_eq!(raised(Duration::from_millis(50)), Some(MIN_DELAY));
        assert_eq!(raised(MIN_DELAY), None);
    }
}

//! Restart delays: start at `restart_delay`, double on each quick failure up to
//! 30 s, and start over once an instance has run for 30 s.

use std::time::Duration;

/// The longest wait between two restarts, and the run time after which an
/// instance counts as healthy enough to reset the delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration) -> Self {
        Backoff {
            initial,
            next: initial.min(MAX_DELAY),
        }
    }

    /// The delay before the next restart of an instance that ran for `ran_for`.
    pub fn next_delay(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= MAX_DELAY {
            self.next = self.initial.min(MAX_DELAY);
        }
        let delay = self.next;
        self.next = (self.next * 2)
            .min(MAX_DELAY)
            .max(self.initial.min(MAX_DELAY));
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
    fn zero_delay_stays_zero() {
        let mut b = Backoff::new(Duration::ZERO);
        assert_eq!(b.next_delay(secs(0)), Duration::ZERO);
        assert_eq!(b.next_delay(secs(0)), Duration::ZERO);
    }
}

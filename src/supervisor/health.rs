//! Health verdicts: how probe results turn into `healthy` / `unhealthy`.
//!
//! Failures during `start_period` do not count while the daemon has never
//! passed a probe (it is still starting up); after that, `retries`
//! consecutive failures make it unhealthy and one success makes it healthy.

use std::time::Duration;

use crate::plan::HealthRules;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Has a check and has not passed it yet.
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// The health of one daemon instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    pub health: Health,
    pub consecutive_failures: u32,
    ever_passed: bool,
}

impl Default for HealthTracker {
    fn default() -> Self {
        HealthTracker {
            health: Health::Starting,
            consecutive_failures: 0,
            ever_passed: false,
        }
    }
}

impl HealthTracker {
    /// Records one probe result `since_start` after the instance started;
    /// returns the new health when it changed.
    pub fn record(
        &mut self,
        passed: bool,
        since_start: Duration,
        spec: &HealthRules,
    ) -> Option<Health> {
        let before = self.health;
        if passed {
            self.consecutive_failures = 0;
            self.ever_passed = true;
            self.health = Health::Healthy;
        } else if self.ever_passed || since_start >= spec.start_period {
            self.consecutive_failures += 1;
            if self.consecutive_failures >= spec.retries {
                self.health = Health::Unhealthy;
            }
        }
        (self.health != before).then_some(self.health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(retries: u32, start_period: u64) -> HealthRules {
        HealthRules {
            interval: Duration::from_secs(1),
            retries,
            start_period: Duration::from_secs(start_period),
        }
    }

    #[test]
    fn unhealthy_after_retries_consecutive_failures() {
        let s = spec(3, 0);
        let mut t = HealthTracker::default();
        let t1 = Duration::from_secs(1);
        assert_eq!(t.record(false, t1, &s), None);
        assert_eq!(t.record(false, t1, &s), None);
        assert_eq!(t.record(false, t1, &s), Some(Health::Unhealthy));
        assert_eq!(t.record(false, t1, &s), None, "no repeated change");
        assert_eq!(t.record(true, t1, &s), Some(Health::Healthy));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let s = spec(2, 0);
        let mut t = HealthTracker::default();
        let t1 = Duration::from_secs(1);
        assert_eq!(t.record(true, t1, &s), Some(Health::Healthy));
        assert_eq!(t.record(false, t1, &s), None);
        assert_eq!(t.record(true, t1, &s), None);
        assert_eq!(t.record(false, t1, &s), None);
        assert_eq!(t.record(false, t1, &s), Some(Health::Unhealthy));
    }

    #[test]
    fn failures_in_start_period_do_not_count_until_first_pass() {
        let s = spec(1, 10);
        let mut t = HealthTracker::default();
        assert_eq!(t.record(false, Duration::from_secs(2), &s), None);
        assert_eq!(t.record(false, Duration::from_secs(9), &s), None);
        assert_eq!(t.health, Health::Starting);
        assert_eq!(
            t.record(false, Duration::from_secs(10), &s),
            Some(Health::Unhealthy)
        );

        let mut t = HealthTracker::default();
        t.record(true, Duration::from_secs(1), &s);
        assert_eq!(
            t.record(false, Duration::from_secs(2), &s),
            Some(Health::Unhealthy),
            "after a pass, the start period is over"
        );
    }
}

//! The one way tests wait for a condition: poll it with a deadline instead of
//! sleeping a guessed time. Shared by the black-box tests (`tests/common`) and
//! the unit tests (`src/test_support.rs` includes this file), so both wait
//! the same way.

use std::thread;
use std::time::{Duration, Instant};

/// How long to rest between two polls: short, so a wait ends soon after its
/// condition holds, yet long enough not to spin a core.
pub const POLL: Duration = Duration::from_millis(5);

/// Polls `cond` every [`POLL`] until it holds (`Some(())`) or `timeout` passes
/// (`None`). `cond` is asked once more at the deadline, so a condition that
/// holds by then is never reported as timed out.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<()> {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return Some(());
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(POLL);
    }
}

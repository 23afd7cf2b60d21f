//! Helpers shared by the unit tests.

use std::future::Future;
use std::time::Duration;

/// Runs `future` on a current-thread runtime like pidzero's own; the test
/// fails after 10 s instead of hanging.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the test");
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), future).await })
        .expect("test deadline")
}

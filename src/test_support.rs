//! Helpers shared by the unit tests.
//!
//! The temp-dir type and the polling wait are the very files the black-box
//! tests use (`tests/common/`), included here by path, so that unit and
//! black-box tests create, clean up and wait in one way.

use std::future::Future;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../tests/common/wait.rs"]
mod wait;

#[allow(dead_code)]
#[path = "../tests/common/dir.rs"]
mod dir;

pub use dir::Dir;

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

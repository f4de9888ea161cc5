//! The tokio runtime remote reads run on, and the time limit of each remote operation.
//!
//! One small runtime for the process, started on first use: the reads are I/O-bound and
//! many are in flight at once, so two worker threads drive them all. Callers block on it
//! from ordinary threads (Python's, rayon's), never from a runtime thread.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Runtime;

/// The limit of one remote operation (a base's index and all its shard headers, or one
/// adapter's reads) unless `PEFTFIX_TIMEOUT` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

fn runtime() -> std::result::Result<&'static Runtime, String> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("peftfix-io")
                .enable_all()
                .build()
                .map_err(|err| format!("cannot start the network runtime: {err}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The limit of one remote operation: `PEFTFIX_TIMEOUT` seconds (a positive number), else
/// two minutes. Read on every call, so a long-lived process sees a change.
pub fn timeout() -> Duration {
    std::env::var("PEFTFIX_TIMEOUT")
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// Runs `future` to completion within [`timeout`]; `Err` with a readable reason when the
/// limit passes first (the future is dropped, its connections closed).
pub fn block_on<F: Future>(future: F) -> std::result::Result<F::Output, String> {
    let limit = timeout();
    let runtime = runtime()?;
    runtime
        .block_on(async { tokio::time::timeout(limit, future).await })
        .map_err(|_| format!("timed out after {}", seconds(limit)))
}

fn seconds(limit: Duration) -> String {
    let secs = limit.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs} s")
    }
}

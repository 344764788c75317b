//! Bounded waits: every wait of the tests ends, with a clear message when
//! what it waits for never happens.

use std::time::{Duration, Instant};

/// How often [`poll_until`] looks.
const POLL: Duration = Duration::from_millis(5);

/// How often [`retry_until_ok`] retries.
const RETRY: Duration = Duration::from_millis(50);

/// Checks `cond` every few milliseconds until it holds or `timeout` passes;
/// returns how long it took, or `None` on timeout.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// let took = borrowstore_testkit::poll_until(Duration::from_secs(5), || {
///     n += 1;
///     n == 3
/// });
/// assert!(took.is_some());
/// ```
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Waits (up to `timeout`) until `cond` holds; panics with `what` if it
/// never does.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// borrowstore_testkit::wait_until("the third look", Duration::from_secs(5), || {
///     n += 1;
///     n == 3
/// });
/// ```
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, cond).is_some(),
        "timed out waiting for {what}"
    );
}

/// Calls `f` until it succeeds or `limit` passes (every 50 ms: for a server
/// that is coming back); returns its value, or panics with the last error.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// let v = borrowstore_testkit::retry_until_ok(Duration::from_secs(5), || {
///     n += 1;
///     if n < 3 { Err("not yet") } else { Ok(n) }
/// });
/// assert_eq!(v, 3);
/// ```
#[track_caller]
pub fn retry_until_ok<T, E: std::fmt::Display>(
    limit: Duration,
    mut f: impl FnMut() -> Result<T, E>,
) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(_) if start.elapsed() < limit => std::thread::sleep(RETRY),
            Err(e) => panic!("still failing after {limit:?}: {e}"),
        }
    }
}

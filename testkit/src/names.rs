//! Names no other test uses.

use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other test, in this or any other process, uses: `prefix`, the
/// process id, a per-process counter and the time in nanoseconds.
///
/// ```
/// let a = borrowstore_testkit::unique_name("store");
/// let b = borrowstore_testkit::unique_name("store");
/// assert!(a.starts_with("store-") && a != b);
/// ```
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

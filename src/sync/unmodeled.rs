//! The locks of state that loom never models: std's, in every build.
//!
//! Some shared state lives outside what the loom models drive, and keeps
//! std's `Mutex` (and `Condvar`) even under `cfg(borrowstore_loom)`:
//!
//! - the file connector's shard locks, held across file-system calls and
//!   `File::lock`, which loom cannot interleave;
//! - the claims a process holds on a file or Redis store, read by the lease
//!   renewal thread;
//! - the lease lifetime timer's queue and each lease's times, on a
//!   process-wide timer thread that sleeps on a `Condvar` with a timeout;
//! - the re-check timer of waiting borrows (`connector/timer.rs`), the same
//!   kind of thread, which only stores that re-check (file, Redis) use;
//! - the failures of a dropped writer's publish kept for the next flush (a
//!   store's, and the Redis I/O thread's), held for a push or a take only.
//!
//! Those threads are plain std threads that outlive any one model
//! iteration, and loom has no clock: a loom lock there would be touched
//! outside the model, which loom refuses. What the models do check — the
//! transitions, slots, scopes and lifetimes — never waits on these locks.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a std mutex, recovering the data of a poisoned lock: every
/// critical section in this crate leaves its data consistent before it can
/// panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

//! The std / loom switch, in the shape of tokio's `loom` module.
//!
//! Everything in this crate that two threads may touch at once, and that
//! the loom models in `loom-tests/` drive, goes through this module, so that
//! the models check the real code. Two halves export the same names, and
//! `cfg(borrowstore_loom)` picks one:
//!
//! - `std` — what every normal build uses: std's locks and atomics, and a
//!   [`DashMap`](dashmap::DashMap) (hashed with foldhash) under the
//!   concurrent [`Map`].
//! - `loom` — loom's locks and atomics, loom's `thread_local!` and
//!   `yield_now`, and a loom `Mutex<HashMap>` under [`Map`]: loom cannot see
//!   into a DashMap (a model that uses one hangs).
//!
//! Code outside this module never names the cfg. It takes, from here:
//!
//! - [`Mutex`], [`RwLock`], [`AtomicU64`], [`Ordering`], and [`lock`],
//!   [`read`], [`write`], which lock and recover the data of a poisoned
//!   lock;
//! - [`Map`], the concurrent map, whose methods take closures and never
//!   hand out map guards, so no caller can hold a shard lock across a call
//!   into other code;
//! - [`thread_local!`](thread_local) and [`yield_now`];
//! - [`Word`], the atomic word that shared-memory protocols (the file
//!   store's table) are written against: std's `AtomicU64` over a mapping,
//!   loom's in the models;
//! - [`unmodeled`], the std locks of state that loom never models (file
//!   locks, lease threads), std in both builds.
//!
//! `Arc` is std's in both builds: loom's `Arc` cannot hold a `dyn Trait`,
//! and reference counts are not what the models check.

// Some names are used by only one build, or only by the loom models.
#![allow(dead_code)]

#[cfg(not(borrowstore_loom))]
mod std;
#[cfg(not(borrowstore_loom))]
use self::std as imp;

#[cfg(borrowstore_loom)]
mod loom;
#[cfg(borrowstore_loom)]
use self::loom as imp;

mod map;
#[cfg(all(test, borrowstore_loom))]
mod models;
mod raw_map;
#[cfg(all(test, borrowstore_loom))]
mod table_models;
pub(crate) mod unmodeled;
mod word;

pub(crate) use ::std::sync::Arc;

/// Whether this is the loom build (`cfg(borrowstore_loom)`): the few unit
/// tests that run a real store (its threads, std locks) return at once
/// there, since loom can model neither.
#[cfg(test)]
pub(crate) const LOOM: bool = cfg!(borrowstore_loom);

pub(crate) use imp::thread_local;
pub(crate) use imp::{
    AtomicU64, Mutex, MutexGuard, Ordering, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
pub(crate) use map::Map;
pub(crate) use word::Word;

use ::std::sync::PoisonError;

/// Locks a mutex, recovering the data of a poisoned lock: every critical
/// section in this crate leaves its data consistent before it can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l`, recovering the data of a poisoned lock (see [`lock`]).
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, recovering the data of a poisoned lock (see [`lock`]).
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Lets other threads run before this one goes on: a spin loop's back-off.
/// Under loom it is where the model may switch threads, so a loop that waits
/// for another thread's progress terminates in the model too.
#[inline]
pub(crate) fn yield_now() {
    imp::yield_now();
}

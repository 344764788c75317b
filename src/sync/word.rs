//! [`Word`]: the atomic 64-bit word that shared-memory protocols are
//! written against, so that one protocol runs on std's atomics (over a
//! memory mapping shared by processes, in every build) and on loom's (in
//! the models, under `cfg(borrowstore_loom)`).

use ::std::sync::atomic::Ordering;

/// An atomic 64-bit word: the operations the file store's table protocol
/// uses. Implemented by std's `AtomicU64` in every build and by loom's under
/// the loom switch.
pub(crate) trait Word: Sync {
    /// An atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// An atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// A strong compare-and-swap.
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    /// An atomic add; returns the previous value.
    fn fetch_add(&self, value: u64, order: Ordering) -> u64;
}

impl Word for ::std::sync::atomic::AtomicU64 {
    #[inline]
    fn load(&self, order: Ordering) -> u64 {
        ::std::sync::atomic::AtomicU64::load(self, order)
    }
    #[inline]
    fn store(&self, value: u64, order: Ordering) {
        ::std::sync::atomic::AtomicU64::store(self, value, order);
    }
    #[inline]
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        ::std::sync::atomic::AtomicU64::compare_exchange(self, current, new, success, failure)
    }
    #[inline]
    fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
        ::std::sync::atomic::AtomicU64::fetch_add(self, value, order)
    }
}

#[cfg(borrowstore_loom)]
impl Word for ::loom::sync::atomic::AtomicU64 {
    fn load(&self, order: Ordering) -> u64 {
        ::loom::sync::atomic::AtomicU64::load(self, order)
    }
    fn store(&self, value: u64, order: Ordering) {
        ::loom::sync::atomic::AtomicU64::store(self, value, order);
    }
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64> {
        ::loom::sync::atomic::AtomicU64::compare_exchange(self, current, new, success, failure)
    }
    fn fetch_add(&self, value: u64, order: Ordering) -> u64 {
        ::loom::sync::atomic::AtomicU64::fetch_add(self, value, order)
    }
}

//! The per-process cache of decoded values.
//!
//! Values that arrive as bytes are decoded once per version and shared as
//! `Arc<T>` by every reader in this process. An entry is valid while the
//! store-side version matches; a resolve sends the version it holds and the
//! connector moves no value when it is current.
//!
//! A version can also be *vouched for*: a job attempt whose reader claim
//! the store has just confirmed held, at that version, vouches for it
//! until a time well inside the claim's lease. While a reader claim is
//! held no writer can publish, so a version check of a vouched version is
//! answered here, without a round trip (see [`Cache::vouch`]).

use std::any::Any;
use std::time::Instant;

#[cfg(feature = "apalis")]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::key::Key;
use crate::sync::{Arc, Map};

#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) version: u64,
    pub(crate) type_name: &'static str,
    pub(crate) value: Arc<dyn Any + Send + Sync>,
}

/// The cache. Memory stores keep values undecoded and never fill it, so
/// every operation first checks an entry count and skips the map (a hash
/// and a shard lock) while it is empty.
#[derive(Default)]
pub(crate) struct Cache {
    map: Map<Key, Cached>,
    entries: AtomicUsize,
    /// Per key: who vouches for which version until when (see
    /// [`Cache::vouch`]); skipped while `vouches` is zero.
    vouched: Map<Key, Vec<Vouch>>,
    vouches: AtomicUsize,
    #[cfg(feature = "apalis")]
    next_vouch: AtomicU64,
}

#[derive(Clone, Copy)]
struct Vouch {
    #[cfg(feature = "apalis")]
    id: u64,
    version: u64,
    until: Instant,
}

impl Cache {
    fn is_empty(&self) -> bool {
        self.entries.load(Ordering::Acquire) == 0
    }

    pub(crate) fn version(&self, key: &Key) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        self.map.with(key, |c| c.version)
    }

    pub(crate) fn get(&self, key: &Key) -> Option<Cached> {
        if self.is_empty() {
            return None;
        }
        self.map.get(key)
    }

    /// Keeps `cached` unless a newer version is already there.
    pub(crate) fn insert(&self, key: Key, cached: Cached) {
        let newer = self
            .map
            .with_mut(&key, |c| {
                if c.version <= cached.version {
                    *c = cached.clone();
                }
            })
            .is_some();
        if !newer {
            // Count first: a reader that sees the entry must not skip the map.
            self.entries.fetch_add(1, Ordering::AcqRel);
            if self.map.insert(key, cached).is_some() {
                self.entries.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    pub(crate) fn remove(&self, key: &Key) {
        if self.is_empty() {
            return;
        }
        if self.map.remove(key).is_some() {
            self.entries.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }
}

impl Cache {
    #[cfg(feature = "apalis")]
    /// Records that `version` of `key` is current until `until`: the
    /// caller holds a reader claim of the object, confirmed at that
    /// version, that lasts past `until`. Returns the id to withdraw it
    /// with ([`unvouch`](Cache::unvouch)).
    pub(crate) fn vouch(&self, key: Key, version: u64, until: Instant) -> u64 {
        let id = self.next_vouch.fetch_add(1, Ordering::Relaxed);
        let v = Vouch { id, version, until };
        // Count first: a reader that sees the vouch must not skip the map.
        self.vouches.fetch_add(1, Ordering::AcqRel);
        // Appended to the key's list, or the key's first (a vouch that
        // comes in between makes the list first: append to it then).
        while self.vouched.with_mut(&key, |vs| vs.push(v)).is_none()
            && !self.vouched.insert_new(key, vec![v])
        {}
        id
    }

    #[cfg(feature = "apalis")]
    /// Withdraws vouch `id` of `key`.
    pub(crate) fn unvouch(&self, key: &Key, id: u64) {
        let removed = self
            .vouched
            .with_mut(key, |vs| {
                let before = vs.len();
                vs.retain(|v| v.id != id);
                before - vs.len()
            })
            .unwrap_or(0);
        if removed > 0 {
            self.vouched.remove_if(key, Vec::is_empty);
            self.vouches.fetch_sub(removed, Ordering::AcqRel);
        }
    }

    /// Whether a live vouch says `version` of `key` is current.
    pub(crate) fn vouched(&self, key: &Key, version: u64) -> bool {
        if self.vouches.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = Instant::now();
        self.vouched
            .with(key, |vs| {
                vs.iter().any(|v| v.version == version && now < v.until)
            })
            .unwrap_or(false)
    }
}

#[cfg(all(test, feature = "apalis"))]
mod tests {
    use std::time::{Duration, Instant};

    use crate::key::Key;
    use crate::store::cache::Cache;

    #[test]
    fn a_vouch_covers_its_version_until_it_is_withdrawn() {
        let cache = Cache::default();
        let (key, other) = (Key::random(), Key::random());
        let until = Instant::now() + Duration::from_secs(60);
        assert!(!cache.vouched(&key, 3), "nothing is vouched for at first");
        let a = cache.vouch(key, 3, until);
        let b = cache.vouch(key, 3, until);
        assert!(cache.vouched(&key, 3));
        assert!(!cache.vouched(&key, 2), "only the version vouched for");
        assert!(!cache.vouched(&key, 4), "only the version vouched for");
        assert!(!cache.vouched(&other, 3), "only the key vouched for");
        cache.unvouch(&key, a);
        assert!(cache.vouched(&key, 3), "the other vouch still holds");
        cache.unvouch(&key, a);
        assert!(cache.vouched(&key, 3), "withdrawing twice withdraws one");
        cache.unvouch(&key, b);
        assert!(!cache.vouched(&key, 3), "every vouch withdrawn");
        assert_eq!(cache.vouches.load(std::sync::atomic::Ordering::Acquire), 0);
    }

    #[test]
    fn a_vouch_ends_at_its_time() {
        let cache = Cache::default();
        let key = Key::random();
        let id = cache.vouch(key, 1, Instant::now() + Duration::from_millis(30));
        assert!(cache.vouched(&key, 1));
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            !cache.vouched(&key, 1),
            "a vouch past its time covers nothing"
        );
        cache.unvouch(&key, id);
    }
}

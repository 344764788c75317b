//! Leases: the default lease, the lease clock, and the claims this process
//! holds on a shared store ([`Held`], which the Redis connector keeps).
//! Both shared stores lease per process: the Redis connector in its
//! `liveness` module, the file store with a heartbeat in its state table
//! (`connector/file/keeper.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::key::Key;
use crate::state::{Claim, Deadline};

/// The default lease: how long a dead process's claims survive it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// Milliseconds since the Unix epoch: the lease clock of one host.
pub(crate) fn now_ms() -> Deadline {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The claims this process holds, by key (kept by the Redis connector:
/// unused in a build without it).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[derive(Default)]
pub(crate) struct Held {
    claims: Mutex<HashMap<Key, HashSet<Claim>>>,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Held {
    pub(crate) fn add(&self, key: Key, claim: Claim) {
        crate::sync::unmodeled::lock(&self.claims)
            .entry(key)
            .or_default()
            .insert(claim);
    }

    pub(crate) fn remove(&self, key: &Key, claim: &Claim) {
        let mut map = crate::sync::unmodeled::lock(&self.claims);
        if let Some(set) = map.get_mut(key) {
            set.remove(claim);
            if set.is_empty() {
                map.remove(key);
            }
        }
    }

    pub(crate) fn forget_key(&self, key: &Key) {
        crate::sync::unmodeled::lock(&self.claims).remove(key);
    }

    pub(crate) fn snapshot(&self) -> Vec<(Key, Vec<Claim>)> {
        crate::sync::unmodeled::lock(&self.claims)
            .iter()
            .map(|(k, s)| (*k, s.iter().copied().collect()))
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        crate::sync::unmodeled::lock(&self.claims)
            .values()
            .map(HashSet::len)
            .sum()
    }
}

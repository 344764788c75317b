//! [`ClaimCache`]: where this process's claims that are not at their home
//! entry are in the state table, by claim, in an open-addressed array of
//! atomic words — so that a release finds its claim's entry with a few
//! loads and one store, without a lock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::Claim;

/// Words of the cache: about this many claims at once (more go to the
/// process's map of claims).
const WORDS: usize = 1 << 15;

/// Words a claim may be in, from its first.
const PROBES: usize = 64;

/// The bits of a cached word that hold the claim's entry (plus one).
const ENTRY_BITS: u32 = 21;

/// See the module docs. A word is 0 (empty) or the low 43 bits of a claim
/// id above its entry plus one. A match is only a candidate: the table
/// entry's recorded claim id is checked before it is used.
pub(super) struct ClaimCache(Box<[AtomicU64]>);

fn tag(claim: &Claim) -> u64 {
    (claim.id().as_u128() as u64) << ENTRY_BITS
}

const MASK: u64 = !((1u64 << ENTRY_BITS) - 1);

/// The words in the order `claim` looks at them.
#[inline]
fn order(claim: &Claim) -> impl Iterator<Item = usize> {
    let id = claim.id().as_u128() as u64;
    // Ids come in per-thread runs: a multiplicative hash spreads a run
    // over the whole array (runs of neighbours would make long clusters).
    let at = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - WORDS.trailing_zeros())) as usize;
    (0..PROBES).map(move |i| (at + i) % WORDS)
}

impl ClaimCache {
    pub(super) fn new() -> ClaimCache {
        ClaimCache((0..WORDS).map(|_| AtomicU64::new(0)).collect())
    }

    /// Records that `claim` is held in entry `e`; false if the cache is
    /// full where it would go. A full cache first drops the words there
    /// for which `stale(entry, claim-id bits)` says the claim is no longer
    /// held there (a claim that left through a ticket, or was reclaimed).
    pub(super) fn put(&self, claim: &Claim, e: u32, stale: impl Fn(u32, u64) -> bool) -> bool {
        let word = tag(claim) | (u64::from(e) + 1);
        let free = |w: &AtomicU64| {
            w.load(Ordering::Relaxed) == 0
                && w.compare_exchange(0, word, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        };
        if order(claim).any(|i| free(&self.0[i])) {
            return true;
        }
        let low = (1u64 << ENTRY_BITS) - 1;
        for i in order(claim) {
            let w = &self.0[i];
            let cur = w.load(Ordering::Acquire);
            if cur != 0 && stale(((cur & low) - 1) as u32, cur >> ENTRY_BITS) {
                let _ = w.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        order(claim).any(|i| free(&self.0[i]))
    }

    /// The entry `claim` was recorded with, leaving it recorded.
    pub(super) fn find(&self, claim: &Claim) -> Option<u32> {
        let t = tag(claim);
        order(claim).find_map(|i| {
            let cur = self.0[i].load(Ordering::Acquire);
            (cur != 0 && cur & MASK == t).then(|| ((cur & !MASK) - 1) as u32)
        })
    }

    /// Takes `claim` out of the cache: the entry it was recorded with.
    ///
    /// Only the claim's holder takes it, once, and nobody else changes a
    /// word that records a claim still held (a full cache drops only the
    /// words of claims the table no longer has there), so emptying the
    /// word is a plain store. (A claim that left through a ticket and comes
    /// back here races a full cache's sweep of its word; if the sweep wins
    /// and the word is refilled, the store empties the new claim's word,
    /// and that claim's release finds it in the table instead: a scan.)
    #[inline]
    pub(super) fn take(&self, claim: &Claim) -> Option<u32> {
        let t = tag(claim);
        order(claim).find_map(|i| {
            let w = &self.0[i];
            let cur = w.load(Ordering::Acquire);
            (cur != 0 && cur & MASK == t).then(|| {
                w.store(0, Ordering::Release);
                ((cur & !MASK) - 1) as u32
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ClaimKind;

    #[test]
    #[cfg_attr(
        miri,
        ignore = "fills 32 k words: hours under Miri, and no unsafe code"
    )]
    fn claims_are_found_until_taken_and_a_full_cache_sweeps_the_stale() {
        let cache = ClaimCache::new();
        let a = Claim::new(ClaimKind::Reader);
        assert!(cache.put(&a, 3, |_, _| false));
        assert_eq!(cache.find(&a), Some(3));
        assert_eq!(cache.take(&a), Some(3));
        assert_eq!((cache.take(&a), cache.find(&a)), (None, None));
        // Fill it: a claim finds no word until the stale ones are swept.
        let mut n = 0;
        let last = loop {
            let c = Claim::new(ClaimKind::Reader);
            if !cache.put(&c, n, |_, _| false) {
                break c;
            }
            n += 1;
        };
        assert!(n as usize >= WORDS / 2, "{n}");
        assert!(cache.put(&last, 7, |_, _| true));
        assert_eq!(cache.take(&last), Some(7));
    }
}

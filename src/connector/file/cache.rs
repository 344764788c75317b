//! [`ClaimCache`]: the claims an entry's borrows took, by claim, in a few
//! atomic words of the entry itself — so that a borrow's release finds its
//! claim's place in the state table without a lookup in a shared map.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::Claim;

/// Words of one cache: this many claims of one object at once; more go to
/// the process's map of claims.
const WORDS: usize = 16;

/// The bits of a cached word that hold the claim's entry (plus one).
const ENTRY_BITS: u32 = 21;

/// See the module docs. A word is 0 (empty) or the low 43 bits of a claim
/// id above its entry plus one. A match is only a candidate: the table
/// entry's recorded claim id is checked before it is used.
pub(super) struct ClaimCache([AtomicU64; WORDS]);

fn tag(claim: &Claim) -> u64 {
    (claim.id().as_u128() as u64) << ENTRY_BITS
}

/// The word a claim is looked for first: claims a thread takes one after
/// the other (ids in sequence) go to different words.
#[inline]
fn first(claim: &Claim) -> usize {
    (claim.id().as_u128() as usize) % WORDS
}

/// The words in the order `claim` looks at them.
#[inline]
fn order(claim: &Claim) -> impl Iterator<Item = usize> {
    let at = first(claim);
    (0..WORDS).map(move |i| (at + i) % WORDS)
}

impl ClaimCache {
    pub(super) fn new() -> ClaimCache {
        ClaimCache(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    /// Records that `claim` is held in entry `e`; false if the cache is
    /// full. A full cache first drops the words for which `stale(entry,
    /// claim-id bits)` says the claim is no longer held there (a claim that
    /// left through a ticket, or was reclaimed).
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
        for w in &self.0 {
            let cur = w.load(Ordering::Acquire);
            if cur != 0 && stale(((cur & low) - 1) as u32, cur >> ENTRY_BITS) {
                let _ = w.compare_exchange(cur, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        order(claim).any(|i| free(&self.0[i]))
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
        let mask = !((1u64 << ENTRY_BITS) - 1);
        order(claim).find_map(|i| {
            let w = &self.0[i];
            let cur = w.load(Ordering::Acquire);
            (cur != 0 && cur & mask == t).then(|| {
                w.store(0, Ordering::Release);
                ((cur & !mask) - 1) as u32
            })
        })
    }
}

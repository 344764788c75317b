//! Reads of the state table that change nothing: a slot's version and
//! borrow state, and which entries hold which claims.

use std::sync::atomic::Ordering::{AcqRel, Acquire};

use super::layout::*;
use super::table::{Fail, Table, id_words};
use crate::state::{Claim, State};
use crate::sync::Word;

impl<W: Word> Table<'_, W> {
    /// The version of slot `o`'s value.
    pub(crate) fn version(&self, o: u32) -> Result<u64, Fail> {
        Ok(self.slot(o, S_VERSION)?.load(Acquire))
    }

    /// Moves slot `o`'s version from `from` to `to`; false if it was not
    /// `from`.
    pub(crate) fn set_version(&self, o: u32, from: u64, to: u64) -> Result<bool, Fail> {
        Ok(self
            .slot(o, S_VERSION)?
            .compare_exchange(from, to, AcqRel, Acquire)
            .is_ok())
    }

    /// The borrow state of slot `o` if it holds generation `epoch`.
    pub(crate) fn state(&self, o: u32, epoch: u64) -> Result<Option<State>, Fail> {
        let w = self.slot(o, S_WORD)?.load(Acquire);
        let current =
            self.slot(o, S_GEN)?.load(Acquire) == epoch && epoch_of(w) == epoch & EPOCH_MASK;
        Ok(current.then(|| state_of(w)))
    }

    /// Whether entry `e` still has head `head` (the claim was not reclaimed).
    pub(crate) fn has_head(&self, e: u32, head: u64) -> bool {
        self.entry(e, E_HEAD).is_ok_and(|w| w.load(Acquire) == head)
    }

    /// The entry that holds `claim` on slot `o` (generation `epoch`), by
    /// whichever process: a scan, for claims another process took and sent
    /// here (a task's borrow).
    pub(crate) fn find_held(&self, o: u32, epoch: u64, claim: Claim) -> Option<(u32, Head)> {
        let (hi, lo) = id_words(claim.id.as_u128());
        (0..self.entry_hwm()).find_map(|e| {
            let h = self.head(e).ok()?;
            let same = |f, v| self.entry(e, f).is_ok_and(|w| w.load(Acquire) == v);
            (h.status == Status::Held
                && h.slot == o
                && h.kind == claim.kind
                && same(E_ID_HI, hi)
                && same(E_ID_LO, lo)
                && same(E_EPOCH, epoch))
            .then_some((e, h))
        })
    }

    /// How many claims process record `p` holds.
    pub(crate) fn held_by(&self, p: u32) -> usize {
        (0..self.entry_hwm())
            .filter(|e| {
                self.head(*e)
                    .is_ok_and(|h| h.proc == p && h.status == Status::Held)
            })
            .count()
    }
}

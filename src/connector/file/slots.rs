//! The life of an object slot in the state table: taken for a new object
//! (`Creating`), made visible (`Live`), removed once (`Evicting`, by the one
//! process whose compare-and-swap wins) and freed.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::layout::*;
use super::table::{Created, Fail, Table, id_words};
use crate::key::Key;
use crate::state::{Init, Refusal, State};
use crate::sync::Word;

impl<W: Word> Table<'_, W> {
    /// Takes a free slot for a new object `key` created by process `proc`,
    /// with its first state and (for [`Init::Claimed`]) the claim's entry.
    /// The slot stays `Creating` until [`publish_slot`](Self::publish_slot).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        &self,
        key: Key,
        init: Init,
        proc: u32,
        now: u64,
        hint: u32,
        entry_hint: u32,
    ) -> Result<Created, Fail> {
        let creating = phase(CREATING, proc);
        let o = self
            .find_free(hint, H_SLOT_HWM, self.l.slots, |o| {
                self.slot(o, S_PHASE).is_ok_and(|p| {
                    let cur = p.load(Acquire);
                    phase_of(cur) == FREE
                        && p.compare_exchange(cur, creating, AcqRel, Acquire).is_ok()
                })
            })
            .ok_or(Fail::Full("objects"))?;
        let word = self.slot(o, S_WORD)?;
        let epoch = self.slot(o, S_GEN)?.load(Acquire).wrapping_add(1);
        self.slot(o, S_GEN)?.store(epoch, Release);
        let (hi, lo) = id_words(key.as_u128());
        self.slot(o, S_KEY_HI)?.store(hi, Relaxed);
        self.slot(o, S_KEY_LO)?.store(lo, Relaxed);
        self.slot(o, S_VERSION)?.store(1, Relaxed);
        self.slot(o, S_CREATED)?.store(now, Relaxed);
        self.slot(o, S_FLAGS)?.store(0, Relaxed);
        let entry = match init {
            Init::Plain => None,
            Init::Claimed(c) => {
                let want = Head {
                    status: Status::Acquiring,
                    kind: c.kind,
                    proc,
                    slot: o,
                    epoch: 0,
                };
                Some(
                    self.take_entry(entry_hint, want, c.id, epoch)
                        .inspect_err(|_| {
                            word.store(gone_word(epoch), Release);
                            self.free_slot(o);
                        })?,
                )
            }
        };
        let first = pack(State::new(init), epoch, 0).ok_or(Fail::Refused(Refusal::Overflow))?;
        word.store(first, Release);
        if let Some((e, h)) = entry {
            let held = h.with(Status::Held);
            self.entry(e, E_HEAD)?.store(held.encode(), Release);
            return Ok((o, epoch, Some((e, held))));
        }
        Ok((o, epoch, None))
    }

    /// Records that the value's first version of slot `o` (being created)
    /// is in its side file.
    pub(crate) fn set_inline_first(&self, o: u32) -> Result<(), Fail> {
        self.slot(o, S_FLAGS)?.store(INLINE_FIRST, Release);
        Ok(())
    }

    /// Whether the value's first version of slot `o` is in its side file.
    pub(crate) fn inline_first(&self, o: u32) -> Result<bool, Fail> {
        Ok(self.slot(o, S_FLAGS)?.load(Acquire) & INLINE_FIRST != 0)
    }

    /// Makes a created slot visible: its files are in place.
    pub(crate) fn publish_slot(&self, o: u32, proc: u32) -> Result<(), Fail> {
        self.slot(o, S_PHASE)?.store(phase(LIVE, proc), Release);
        Ok(())
    }

    /// Gives up a slot being created (its key exists already): its claim
    /// entry is freed, the slot too.
    pub(crate) fn abandon(
        &self,
        o: u32,
        epoch: u64,
        entry: Option<(u32, Head)>,
    ) -> Result<(), Fail> {
        self.slot(o, S_WORD)?.store(gone_word(epoch), Release);
        if let Some((e, h)) = entry {
            self.entry(e, E_HEAD)?
                .store(h.with(Status::Free).encode(), Release);
        }
        self.free_slot(o);
        Ok(())
    }

    /// The key, generation and version of slot `o` if it holds a live
    /// object.
    pub(crate) fn live(&self, o: u32) -> Result<Option<(Key, u64, u64)>, Fail> {
        if phase_of(self.slot(o, S_PHASE)?.load(Acquire)) != LIVE {
            return Ok(None);
        }
        let word = self.slot(o, S_WORD)?.load(Acquire);
        let hi = self.slot(o, S_KEY_HI)?.load(Acquire);
        let lo = self.slot(o, S_KEY_LO)?.load(Acquire);
        let version = self.slot(o, S_VERSION)?.load(Acquire);
        let key = Key::from_u128((u128::from(hi) << 64) | u128::from(lo));
        let epoch = self.slot(o, S_GEN)?.load(Acquire);
        Ok(
            (!state_of(word).gone() && epoch_of(word) == epoch & EPOCH_MASK)
                .then_some((key, epoch, version)),
        )
    }

    /// Starts removing the evicted object in slot `o`: its key and version,
    /// if this process is the one to remove it (a compare-and-swap from
    /// `Live` to `Evicting`, so exactly one does).
    pub(crate) fn begin_evict(&self, o: u32, proc: u32) -> Result<Option<(Key, u64)>, Fail> {
        let p = self.slot(o, S_PHASE)?;
        let cur = p.load(Acquire);
        if phase_of(cur) != LIVE
            || !state_of(self.slot(o, S_WORD)?.load(Acquire)).gone()
            || p.compare_exchange(cur, phase(EVICTING, proc), AcqRel, Acquire)
                .is_err()
        {
            return Ok(None);
        }
        Ok(Some(self.key_version(o)?))
    }

    /// The key and version words of slot `o`.
    pub(crate) fn key_version(&self, o: u32) -> Result<(Key, u64), Fail> {
        let hi = self.slot(o, S_KEY_HI)?.load(Acquire);
        let lo = self.slot(o, S_KEY_LO)?.load(Acquire);
        let version = self.slot(o, S_VERSION)?.load(Acquire);
        Ok((
            Key::from_u128((u128::from(hi) << 64) | u128::from(lo)),
            version,
        ))
    }

    /// Frees slot `o` once its files are gone.
    pub(crate) fn free_slot(&self, o: u32) {
        if let Ok(p) = self.slot(o, S_PHASE) {
            p.store(FREE, Release);
        }
    }
}

//! The state table's protocol: every change of an object's borrow state, of
//! a claim entry and of a slot, as atomic operations on the table's words.
//! Written against [`Word`], so the same code runs on the mapped table (std
//! atomics) and in the loom models.
//!
//! # The protocol
//!
//! An object's borrow state is one word (see [`layout`](super::layout)):
//! the counts and flags of [`State`], the slot's generation, and a *tag*.
//! Each claim a process holds is a claim entry whose head names the claim's
//! kind, the holding process and the object slot. A transition that takes
//! or gives back a claim changes the state word and the entry in steps:
//!
//! 1. the entry is marked `Acquiring` (taken from the free ones) or
//!    `Releasing` (from `Held`, by compare-and-swap, so a claim someone
//!    reclaimed cannot be released twice);
//! 2. one compare-and-swap applies [`State::apply`] to the state word and
//!    sets the tag to the entry;
//! 3. the entry is marked `Held` (or `Released`);
//! 4. the tag is cleared (and a released entry marked `Free`).
//!
//! A tagged word is changed by nobody but the tag's process: others wait
//! (bounded, then [`Fail::Busy`]) — the tag is held for the three stores of
//! steps 3 and 4, no system call. So when a process dies, whatever
//! instruction it was at, the survivor that reclaims it can tell from the
//! word's tag whether step 2 happened: a pending entry whose tag is on its
//! word was applied, one whose tag is not was not. [`Table::repair_dead`]
//! finishes or undoes each pending entry accordingly and then releases the
//! dead process's held claims one by one, exactly as its handles would
//! have: exact (its three readers, not all readers) and idempotent (a
//! reclaimer that dies half way leaves entries that the next one repairs).

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::layout::*;
use crate::key::ClaimId;
use crate::state::{Claim, ClaimKind, Effect, Op, Refusal};
use crate::sync::Word;

/// Why a table operation did not happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The state machine refused it.
    Refused(Refusal),
    /// The object is gone (evicted, or its slot holds another object now).
    Gone,
    /// The object's word stayed tagged by another process's transition for
    /// longer than the wait allows (a process stopped inside a transition).
    Busy,
    /// The claim is no longer this process's (it was reclaimed).
    Lost,
    /// The table has no free slot or entry of this kind.
    Full(&'static str),
    /// The table holds something no borrowstore writes.
    Damaged(String),
}

/// How a transition waits for another process's tag to clear: `pause`
/// returns false when the wait is over.
pub(crate) trait Pause {
    fn pause(&mut self) -> bool;
}

/// What redeeming a ticket found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Redeemed {
    /// The ticket's claim, now held by the redeemer in this entry.
    Claim(u32, Head, ClaimId),
    /// Redeemed, cancelled, expired or never issued.
    Spent,
    /// It carries a claim of this other kind; nothing was changed.
    WrongKind(ClaimKind),
}

/// A slot being created: its index, its generation and, for an object born
/// with a claim, the claim's entry and head.
pub(crate) type Created = (u32, u64, Option<(u32, Head)>);

/// The table: the words, and their layout.
pub(crate) struct Table<'a, W> {
    w: &'a [W],
    pub(crate) l: Layout,
}

/// The two words of a 128-bit id, high first.
pub(crate) fn id_words(id: u128) -> (u64, u64) {
    ((id >> 64) as u64, id as u64)
}

impl<'a, W: Word> Table<'a, W> {
    /// The table in `words`, which must be `l.words()` long.
    #[inline]
    pub(crate) fn new(w: &'a [W], l: Layout) -> Result<Self, Fail> {
        if w.len() != l.words() {
            return Err(Fail::Damaged(format!(
                "{} words, not {}",
                w.len(),
                l.words()
            )));
        }
        Ok(Table { w, l })
    }

    #[inline]
    fn at(&self, i: usize) -> &W {
        &self.w[i]
    }

    /// A slot's word `field`, if `o` is a slot of this table.
    #[inline]
    pub(crate) fn slot(&self, o: u32, field: usize) -> Result<&W, Fail> {
        Ok(&self.slot_words(o)?[field])
    }

    /// An entry's word `field`, if `e` is an entry of this table.
    #[inline]
    pub(crate) fn entry(&self, e: u32, field: usize) -> Result<&W, Fail> {
        Ok(&self.entry_words(e)?[field])
    }

    /// The `N` words from `at`, if `inside` (the item is in the table).
    #[inline(always)]
    fn words<const N: usize>(&self, at: usize, inside: bool) -> Option<&[W; N]> {
        if !inside {
            return None;
        }
        self.w.get(at..at + N)?.try_into().ok()
    }

    /// The words of slot `o`, if it is a slot of this table (one bounds
    /// check for all of them).
    #[inline]
    fn slot_words(&self, o: u32) -> Result<&[W; SLOT_WORDS], Fail> {
        self.words(self.l.slot(o, 0), o < self.l.slots)
            .ok_or_else(|| Fail::Damaged(format!("object slot {o} is out of range")))
    }

    /// The words of entry `e`, if it is an entry of this table.
    #[inline]
    fn entry_words(&self, e: u32) -> Result<&[W; ENTRY_WORDS], Fail> {
        self.words(self.l.entry(e, 0), e < self.l.entries)
            .ok_or_else(|| Fail::Damaged(format!("claim entry {e} is out of range")))
    }

    /// A process record's word `field`.
    pub(crate) fn proc(&self, i: u32, field: usize) -> &W {
        self.at(self.l.proc(i.min(self.l.procs - 1), field))
    }

    #[inline]
    fn hwm(&self, which: usize, cap: u32) -> u32 {
        (self.at(which).load(Acquire).min(u64::from(cap))) as u32
    }

    /// How many slots were ever used (scans stop there).
    pub(crate) fn slot_hwm(&self) -> u32 {
        self.hwm(H_SLOT_HWM, self.l.slots)
    }

    /// How many entries were ever used.
    #[inline]
    pub(crate) fn entry_hwm(&self) -> u32 {
        self.hwm(H_ENTRY_HWM, self.l.entries)
    }

    /// The head of entry `e`.
    #[inline]
    pub(crate) fn head(&self, e: u32) -> Result<Head, Fail> {
        let w = self.entry(e, E_HEAD)?.load(Acquire);
        Head::decode(w).ok_or_else(|| Fail::Damaged(format!("claim entry {e} has head {w:#x}")))
    }

    /// Finds something free among `cap` items, `hwm_word` of them ever used:
    /// a few probes from `hint`, then a never-used one, then a full scan.
    pub(crate) fn find_free(
        &self,
        hint: u32,
        hwm_word: usize,
        cap: u32,
        mut take: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        let hwm = self.hwm(hwm_word, cap);
        // `hint` is below `hwm` but for a stale or damaged one: one
        // division, then none per probe.
        let start = if hint < hwm { hint } else { hint % hwm.max(1) };
        for i in 0..hwm.min(32) {
            let at = match start + i {
                at if at >= hwm => at - hwm,
                at => at,
            };
            if take(at) {
                return Some(at);
            }
        }
        loop {
            let n = self.at(hwm_word).load(Acquire);
            if n >= u64::from(cap) {
                break;
            }
            if self
                .at(hwm_word)
                .compare_exchange(n, n + 1, AcqRel, Acquire)
                .is_ok()
                && take(n as u32)
            {
                return Some(n as u32);
            }
        }
        (0..self.hwm(hwm_word, cap)).find(|at| take(*at))
    }

    /// Takes entry `e` for `head` if it is free (by compare-and-swap): the
    /// head it has now, with the entry's next generation.
    #[inline]
    fn try_take(&self, e: u32, head: Head) -> Option<Head> {
        Head::decode(self.try_take_word(self.entry_words(e).ok()?, head)?)
    }

    /// [`try_take`](Self::try_take) on entry words `ew`: the head's word.
    #[inline(always)]
    fn try_take_word(&self, ew: &[W; ENTRY_WORDS], head: Head) -> Option<u64> {
        let cur = ew[E_HEAD].load(Acquire);
        if Head::status_code(cur) != Status::Free as u64 {
            return None;
        }
        let new = head.next_after(cur);
        ew[E_HEAD]
            .compare_exchange(cur, new, AcqRel, Acquire)
            .is_ok()
            .then_some(new)
    }

    /// Records the claim id and the object's generation in entry `e`,
    /// just taken.
    #[inline]
    fn fill(&self, e: u32, id: ClaimId, epoch: u64) -> Result<(), Fail> {
        Self::fill_words(self.entry_words(e)?, id, epoch);
        Ok(())
    }

    /// [`fill`](Self::fill) on entry words `ew`.
    #[inline(always)]
    fn fill_words(ew: &[W; ENTRY_WORDS], id: ClaimId, epoch: u64) {
        let (hi, lo) = id_words(id.as_u128());
        ew[E_ID_HI].store(hi, Relaxed);
        ew[E_ID_LO].store(lo, Relaxed);
        ew[E_EPOCH].store(epoch, Release);
    }

    /// Takes a free entry for `head` (its generation is the entry's next),
    /// recording the claim id and the object's generation.
    pub(crate) fn take_entry(
        &self,
        hint: u32,
        head: Head,
        id: ClaimId,
        epoch: u64,
    ) -> Result<(u32, Head), Fail> {
        let mut got = None;
        let found = self.find_free(hint, H_ENTRY_HWM, self.l.entries, |e| {
            got = self.try_take(e, head);
            got.is_some()
        });
        let (Some(e), Some(h)) = (found, got) else {
            return Err(Fail::Full("claims"));
        };
        self.fill(e, id, epoch)?;
        Ok((e, h))
    }

    /// The hot path of a borrow: [`acquire`](Self::acquire) of `claim`
    /// on slot `o` (generation `epoch`) for process `proc` in entry `e`
    /// (the claim's home), recording `note`; the held head's word.
    /// `None`, with nothing changed, if entry `e` is not free: the caller
    /// takes [`acquire`](Self::acquire). The same steps as `acquire`, on
    /// words.
    #[inline]
    pub(crate) fn acquire_home(
        &self,
        e: u32,
        (o, epoch): (u32, u64),
        claim: &Claim,
        proc: u32,
        note: u64,
        pause: &mut impl Pause,
    ) -> Option<Result<u64, Fail>> {
        let ew = self.entry_words(e).ok()?;
        if e >= self.entry_hwm() {
            return None;
        }
        let want = Head {
            status: Status::Acquiring,
            kind: claim.kind,
            proc,
            slot: o,
            epoch: 0,
        };
        let acquiring = self.try_take_word(ew, want)?;
        Self::fill_words(ew, claim.id, epoch);
        ew[E_NOTE].store(note, Relaxed);
        Some(self.acquire_words(e, ew, acquiring, *claim, epoch, pause))
    }

    /// Makes the entries below `n` part of every scan (so that they may be
    /// taken without one: the homes of a process's claims).
    pub(crate) fn cover_entries(&self, n: u32) {
        let n = u64::from(n.min(self.l.entries));
        let w = self.at(H_ENTRY_HWM);
        let mut cur = w.load(Acquire);
        while cur < n {
            match w.compare_exchange(cur, n, AcqRel, Acquire) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// The word of entry `e`'s head if the entry holds `claim` for process
    /// `proc` (entry `e` is the claim's home).
    #[inline]
    pub(crate) fn held_word_at(&self, e: u32, claim: &Claim, proc: u32) -> Option<u64> {
        let ew = self.entry_words(e).ok()?;
        let h = ew[E_HEAD].load(Acquire);
        if h & HOLDER_BITS != Head::held_by_word(claim.kind, proc) || proc > 0xFFFF {
            return None;
        }
        let (hi, lo) = id_words(claim.id.as_u128());
        (ew[E_ID_HI].load(Acquire) == hi && ew[E_ID_LO].load(Acquire) == lo).then_some(h)
    }

    /// Records what inspection shows of the claim in entry `e`: its
    /// [`note_word`].
    #[inline]
    pub(crate) fn set_note(&self, e: u32, note: u64) {
        if let Ok(w) = self.entry(e, E_NOTE) {
            w.store(note, Relaxed);
        }
    }

    /// The [`note_word`] of entry `e`.
    pub(crate) fn note(&self, e: u32) -> u64 {
        self.entry(e, E_NOTE).map_or(0, |w| w.load(Relaxed))
    }

    /// The claim entry `e` records, as a claim of `kind`.
    pub(crate) fn claim_of(&self, e: u32, kind: ClaimKind) -> Result<Claim, Fail> {
        let hi = self.entry(e, E_ID_HI)?.load(Acquire);
        let lo = self.entry(e, E_ID_LO)?.load(Acquire);
        Ok(Claim::rebuilt(
            kind,
            ClaimId::from_u128((u128::from(hi) << 64) | u128::from(lo)),
        ))
    }

    /// Applies `op` to slot `o` of generation `epoch`, setting the word's tag
    /// to `tag`: the compare-and-swap of step 2. Returns the effect and the
    /// word it wrote.
    pub(crate) fn transition(
        &self,
        o: u32,
        epoch: u64,
        op: Op,
        tag: u64,
        pause: &mut impl Pause,
    ) -> Result<(Effect, u64), Fail> {
        Self::transition_in(self.slot_words(o)?, epoch, op, tag, pause)
    }

    /// [`transition`](Self::transition) on slot words `sw`.
    #[inline(always)]
    fn transition_in(
        sw: &[W; SLOT_WORDS],
        epoch: u64,
        op: Op,
        tag: u64,
        pause: &mut impl Pause,
    ) -> Result<(Effect, u64), Fail> {
        let word = &sw[S_WORD];
        if sw[S_GEN].load(Acquire) != epoch {
            return Err(Fail::Gone);
        }
        loop {
            let cur = word.load(Acquire);
            if epoch_of(cur) != epoch & EPOCH_MASK || state_of(cur).gone() {
                return Err(Fail::Gone);
            }
            if tag_of(cur) != 0 {
                if !pause.pause() {
                    return Err(Fail::Busy);
                }
                continue;
            }
            let (effect, new) = match borrow_after(cur, &op) {
                // A borrow taken or given back with no effect: the counts
                // change in place.
                Some(next) => (Effect::None, with_tag(next, tag)),
                None => {
                    let (state, effect) = state_of(cur).apply(op).map_err(|r| match r {
                        Refusal::Gone => Fail::Gone,
                        r => Fail::Refused(r),
                    })?;
                    let new = pack(state, epoch, tag).ok_or(Fail::Refused(Refusal::Overflow))?;
                    (effect, new)
                }
            };
            if word.compare_exchange(cur, new, AcqRel, Acquire).is_ok() {
                return Ok((effect, new));
            }
        }
    }

    /// Acquires `claim` on slot `o` (generation `epoch`) for process `proc`:
    /// the claim's entry and its head, now held.
    pub(crate) fn acquire(
        &self,
        o: u32,
        epoch: u64,
        claim: Claim,
        proc: u32,
        hint: u32,
        pause: &mut impl Pause,
    ) -> Result<(u32, Head), Fail> {
        let (e, head) = self.acquire_entry(o, epoch, claim, proc, hint)?;
        self.acquire_with(e, head, claim, epoch, pause)
    }

    /// Step 1 of [`acquire`](Self::acquire): a free entry, taken for
    /// `proc` and marked `Acquiring` `claim` on slot `o`.
    pub(crate) fn acquire_entry(
        &self,
        o: u32,
        epoch: u64,
        claim: Claim,
        proc: u32,
        hint: u32,
    ) -> Result<(u32, Head), Fail> {
        let want = Head {
            status: Status::Acquiring,
            kind: claim.kind,
            proc,
            slot: o,
            epoch: 0,
        };
        self.take_entry(hint, want, claim.id, epoch)
    }

    /// Steps 2 to 4 of [`acquire`](Self::acquire), with the entry of step 1.
    pub(crate) fn acquire_with(
        &self,
        e: u32,
        head: Head,
        claim: Claim,
        epoch: u64,
        pause: &mut impl Pause,
    ) -> Result<(u32, Head), Fail> {
        self.acquire_words(e, self.entry_words(e)?, head.encode(), claim, epoch, pause)?;
        Ok((e, head.with(Status::Held)))
    }

    /// Steps 2 to 4 of an acquire of `claim` in entry `e` (words `ew`),
    /// whose head is `acquiring`: the held head's word.
    #[inline(always)]
    fn acquire_words(
        &self,
        e: u32,
        ew: &[W; ENTRY_WORDS],
        acquiring: u64,
        claim: Claim,
        epoch: u64,
        pause: &mut impl Pause,
    ) -> Result<u64, Fail> {
        let sw = match self.slot_words(Head::slot_of(acquiring)) {
            Ok(sw) => sw,
            Err(f) => {
                ew[E_HEAD].store(Head::word_with(acquiring, Status::Free), Release);
                return Err(f);
            }
        };
        match Self::transition_in(sw, epoch, Op::Acquire(claim), u64::from(e) + 1, pause) {
            Ok((_, new)) => {
                let held = Head::word_with(acquiring, Status::Held);
                ew[E_HEAD].store(held, Release);
                sw[S_WORD].store(untagged(new), Release);
                Ok(held)
            }
            Err(f) => {
                ew[E_HEAD].store(Head::word_with(acquiring, Status::Free), Release);
                Err(f)
            }
        }
    }

    /// Releases (or, with `disown`, disowns) the claim held in entry `e`,
    /// whose head is `held`. [`Fail::Lost`] if the entry is not `held` any
    /// more (reclaimed); [`Fail::Gone`] (and the entry freed) if its object is
    /// gone.
    pub(crate) fn release(
        &self,
        e: u32,
        held: Head,
        claim: Claim,
        disown: bool,
        pause: &mut impl Pause,
    ) -> Result<Effect, Fail> {
        self.release_word(e, held.encode(), claim, disown, pause)
    }

    /// [`release`](Self::release) of the claim held in entry `e` whose
    /// head's word is `held`.
    #[inline]
    pub(crate) fn release_word(
        &self,
        e: u32,
        held: u64,
        claim: Claim,
        disown: bool,
        pause: &mut impl Pause,
    ) -> Result<Effect, Fail> {
        let ew = self.entry_words(e)?;
        let hw = &ew[E_HEAD];
        let releasing = Head::word_with(held, Status::Releasing);
        if hw
            .compare_exchange(held, releasing, AcqRel, Acquire)
            .is_err()
        {
            return Err(Fail::Lost);
        }
        let epoch = ew[E_EPOCH].load(Acquire);
        let op = if disown {
            Op::Disown(claim)
        } else {
            Op::Release(claim)
        };
        let done = match self.slot_words(Head::slot_of(held)) {
            Ok(sw) => Self::transition_in(sw, epoch, op, u64::from(e) + 1, pause)
                .map(|(effect, new)| (effect, new, sw)),
            Err(f) => Err(f),
        };
        match done {
            Ok((effect, new, sw)) => {
                hw.store(Head::word_with(held, Status::Released), Release);
                sw[S_WORD].store(untagged(new), Release);
                hw.store(Head::word_with(held, Status::Free), Release);
                Ok(effect)
            }
            Err(f @ (Fail::Gone | Fail::Refused(Refusal::NotHeld))) => {
                // The claim went with its object (or the word lacks it:
                // damage): nothing is held any more.
                hw.store(Head::word_with(held, Status::Free), Release);
                Err(if f == Fail::Gone {
                    Fail::Gone
                } else {
                    Fail::Lost
                })
            }
            Err(f) => {
                hw.store(held, Release);
                Err(f)
            }
        }
    }

    /// Evicts slot `o` (generation `epoch`) if nothing borrows it.
    pub(crate) fn evict(&self, o: u32, epoch: u64, pause: &mut impl Pause) -> Result<(), Fail> {
        self.transition(o, epoch, Op::Evict, 0, pause).map(|_| ())
    }
}

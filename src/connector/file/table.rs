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
use crate::state::{Claim, ClaimKind, Effect, Op, Refusal, State};
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

fn id_words(id: u128) -> (u64, u64) {
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
        if o >= self.l.slots {
            return Err(Fail::Damaged(format!("object slot {o} is out of range")));
        }
        Ok(self.at(self.l.slot(o, field)))
    }

    /// An entry's word `field`, if `e` is an entry of this table.
    #[inline]
    pub(crate) fn entry(&self, e: u32, field: usize) -> Result<&W, Fail> {
        if e >= self.l.entries {
            return Err(Fail::Damaged(format!("claim entry {e} is out of range")));
        }
        Ok(self.at(self.l.entry(e, field)))
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
        let w = self.entry(e, E_HEAD).ok()?;
        let cur = w.load(Acquire);
        match Head::decode(cur) {
            Some(h) if h.status == Status::Free => {
                let new = Head {
                    epoch: h.epoch.wrapping_add(1),
                    ..head
                };
                w.compare_exchange(cur, new.encode(), AcqRel, Acquire)
                    .is_ok()
                    .then_some(new)
            }
            _ => None,
        }
    }

    /// Records the claim id and the object's generation in entry `e`,
    /// just taken.
    #[inline]
    fn fill(&self, e: u32, id: ClaimId, epoch: u64) -> Result<(), Fail> {
        let (hi, lo) = id_words(id.as_u128());
        self.entry(e, E_ID_HI)?.store(hi, Relaxed);
        self.entry(e, E_ID_LO)?.store(lo, Relaxed);
        self.entry(e, E_EPOCH)?.store(epoch, Release);
        Ok(())
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

    /// [`take_entry`](Self::take_entry), of entry `e` only (a claim's home,
    /// which a scan covers): `None` if it is not free.
    #[inline]
    pub(crate) fn take_entry_at(
        &self,
        e: u32,
        head: Head,
        id: ClaimId,
        epoch: u64,
    ) -> Option<(u32, Head)> {
        if e >= self.entry_hwm() {
            return None;
        }
        let h = self.try_take(e, head)?;
        self.fill(e, id, epoch).ok()?;
        Some((e, h))
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

    /// The entry that holds `claim` for process `proc` if it is entry `e`
    /// (the claim's home): its head.
    #[inline]
    pub(crate) fn held_at(&self, e: u32, claim: &Claim, proc: u32) -> Option<Head> {
        let h = self.head(e).ok()?;
        if h.status != Status::Held || h.proc != proc || h.kind != claim.kind {
            return None;
        }
        let (hi, lo) = id_words(claim.id.as_u128());
        let same = |f, v| self.entry(e, f).is_ok_and(|w| w.load(Acquire) == v);
        (same(E_ID_HI, hi) && same(E_ID_LO, lo)).then_some(h)
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
        let word = self.slot(o, S_WORD)?;
        if self.slot(o, S_GEN)?.load(Acquire) != epoch {
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
        let o = head.slot;
        let hw = self.entry(e, E_HEAD)?;
        match self.transition(o, epoch, Op::Acquire(claim), u64::from(e) + 1, pause) {
            Ok((_, new)) => {
                let held = head.with(Status::Held);
                hw.store(held.encode(), Release);
                self.slot(o, S_WORD)?.store(untagged(new), Release);
                Ok((e, held))
            }
            Err(f) => {
                hw.store(head.with(Status::Free).encode(), Release);
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
        let hw = self.entry(e, E_HEAD)?;
        let releasing = held.with(Status::Releasing);
        if hw
            .compare_exchange(held.encode(), releasing.encode(), AcqRel, Acquire)
            .is_err()
        {
            return Err(Fail::Lost);
        }
        let epoch = self.entry(e, E_EPOCH)?.load(Acquire);
        let op = if disown {
            Op::Disown(claim)
        } else {
            Op::Release(claim)
        };
        match self.transition(held.slot, epoch, op, u64::from(e) + 1, pause) {
            Ok((effect, new)) => {
                hw.store(held.with(Status::Released).encode(), Release);
                self.slot(held.slot, S_WORD)?.store(untagged(new), Release);
                hw.store(held.with(Status::Free).encode(), Release);
                Ok(effect)
            }
            Err(f @ (Fail::Gone | Fail::Refused(Refusal::NotHeld))) => {
                // The claim went with its object (or the word lacks it:
                // damage): nothing is held any more.
                hw.store(held.with(Status::Free).encode(), Release);
                Err(if f == Fail::Gone {
                    Fail::Gone
                } else {
                    Fail::Lost
                })
            }
            Err(f) => {
                hw.store(held.encode(), Release);
                Err(f)
            }
        }
    }

    /// Evicts slot `o` (generation `epoch`) if nothing borrows it.
    pub(crate) fn evict(&self, o: u32, epoch: u64, pause: &mut impl Pause) -> Result<(), Fail> {
        self.transition(o, epoch, Op::Evict, 0, pause).map(|_| ())
    }

    /// Moves the claim held in entry `e` into a ticket `ticket`, which
    /// lasts until `deadline` unless redeemed.
    pub(crate) fn issue(
        &self,
        e: u32,
        held: Head,
        ticket: ClaimId,
        deadline: u64,
    ) -> Result<(), Fail> {
        let (hi, lo) = id_words(ticket.as_u128());
        self.entry(e, E_TICKET_HI)?.store(hi, Relaxed);
        self.entry(e, E_TICKET_LO)?.store(lo, Relaxed);
        self.entry(e, E_DEADLINE)?.store(deadline, Relaxed);
        self.entry(e, E_HEAD)?
            .compare_exchange(
                held.encode(),
                held.with(Status::Ticket).encode(),
                AcqRel,
                Acquire,
            )
            .map(|_| ())
            .map_err(|_| Fail::Lost)
    }

    /// Redeems ticket `ticket` on slot `o` (generation `epoch`) for process
    /// `proc`, exactly once: one compare-and-swap moves the entry from
    /// `Ticket` to `Held` by `proc`.
    pub(crate) fn redeem(
        &self,
        o: u32,
        epoch: u64,
        ticket: ClaimId,
        kind: ClaimKind,
        proc: u32,
    ) -> Redeemed {
        let (hi, lo) = id_words(ticket.as_u128());
        for e in 0..self.entry_hwm() {
            let Ok(hw) = self.entry(e, E_HEAD) else { break };
            let cur = hw.load(Acquire);
            let Some(h) = Head::decode(cur) else { continue };
            if h.status != Status::Ticket || h.slot != o {
                continue;
            }
            let same = |f, v| self.entry(e, f).is_ok_and(|w| w.load(Acquire) == v);
            if !(same(E_TICKET_HI, hi) && same(E_TICKET_LO, lo) && same(E_EPOCH, epoch)) {
                continue;
            }
            if h.kind != kind {
                return Redeemed::WrongKind(h.kind);
            }
            let mine = Head {
                status: Status::Held,
                proc,
                ..h
            };
            if hw
                .compare_exchange(cur, mine.encode(), AcqRel, Acquire)
                .is_err()
            {
                return Redeemed::Spent;
            }
            return match self.claim_of(e, kind) {
                Ok(c) => Redeemed::Claim(e, mine, c.id),
                Err(_) => Redeemed::Spent,
            };
        }
        Redeemed::Spent
    }

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

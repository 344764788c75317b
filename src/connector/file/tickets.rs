//! Tickets in the state table: a held claim moved into a ticket, and the
//! one compare-and-swap that redeems it exactly once.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use super::layout::*;
use super::table::{Fail, Redeemed, Table, id_words};
use crate::key::ClaimId;
use crate::state::ClaimKind;
use crate::sync::Word;

impl<W: Word> Table<'_, W> {
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
}

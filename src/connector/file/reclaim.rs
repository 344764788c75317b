//! Reclaiming claims through the state table: a dead process's (all of
//! them, at once), a stopped process's (its held claims, when its heartbeat
//! is older than its lease), and tickets whose lease ran out. Also the
//! process records of the table.

use std::sync::atomic::Ordering::{AcqRel, Acquire, Release};

use super::layout::*;
use super::table::{Fail, Pause, Table};
use crate::state::Effect;
use crate::sync::Word;

/// What a reclaim pass did, for the caller to finish: slots whose state
/// changed (wake their waiters; remove the objects that are now evicted)
/// and slots a dead process was creating or removing (remove their files,
/// then free them).
#[derive(Debug, Default)]
pub(crate) struct Reclaimed {
    /// Slots whose claims were released.
    pub(crate) touched: Vec<u32>,
    /// Slots a dead process left `Creating` or `Evicting`.
    pub(crate) dropped: Vec<u32>,
    /// Whether every claim was dealt with (false when a word stayed tagged
    /// by a stopped process: try again later).
    pub(crate) complete: bool,
}

impl<W: Word> Table<'_, W> {
    /// Takes entry `e` (head `h`, held by another process) over for process
    /// `r` and releases its claim, exactly as its holder would have.
    fn take_and_release(
        &self,
        e: u32,
        h: Head,
        r: u32,
        pause: &mut impl Pause,
        out: &mut Reclaimed,
    ) {
        let mine = Head { proc: r, ..h };
        let Ok(hw) = self.entry(e, E_HEAD) else {
            return;
        };
        if hw
            .compare_exchange(h.encode(), mine.encode(), AcqRel, Acquire)
            .is_err()
        {
            return;
        }
        let Ok(claim) = self.claim_of(e, h.kind) else {
            return;
        };
        match self.release(e, mine, claim, false, pause) {
            Ok(Effect::Evict | Effect::None) => out.touched.push(h.slot),
            Err(Fail::Busy) => {
                // Still held: give it back to its holder for the next pass.
                let _ = hw.compare_exchange(mine.encode(), h.encode(), AcqRel, Acquire);
                out.complete = false;
            }
            Err(_) => {}
        }
    }

    /// Repairs and releases everything process record `p` held, for process
    /// `r`, which holds `p`'s lock file (so `p` is dead and nobody else
    /// repairs it now). Idempotent: a pass that stops half way leaves what a
    /// later pass repairs.
    pub(crate) fn repair_dead(&self, p: u32, r: u32, pause: &mut impl Pause) -> Reclaimed {
        let mut out = Reclaimed {
            complete: true,
            ..Reclaimed::default()
        };
        for o in 0..self.slot_hwm() {
            let Ok(ph) = self.slot(o, S_PHASE) else { break };
            let cur = ph.load(Acquire);
            if phase_proc(cur) != p {
                continue;
            }
            match phase_of(cur) {
                CREATING => {
                    if let Ok(w) = self.slot(o, S_WORD) {
                        w.store(gone_word(epoch_of(w.load(Acquire))), Release);
                    }
                    out.dropped.push(o);
                }
                EVICTING => out.dropped.push(o),
                _ => {}
            }
        }
        for e in 0..self.entry_hwm() {
            let Ok(h) = self.head(e) else { continue };
            if h.proc != p {
                continue;
            }
            let Ok(hw) = self.entry(e, E_HEAD) else {
                continue;
            };
            let Ok(word) = self.slot(h.slot, S_WORD) else {
                // Damaged: an entry naming no slot holds nothing.
                let _ =
                    hw.compare_exchange(h.encode(), h.with(Status::Free).encode(), AcqRel, Acquire);
                continue;
            };
            let w = word.load(Acquire);
            let tagged = tag_of(w) == u64::from(e) + 1;
            match h.status {
                Status::Free | Status::Ticket => {}
                Status::Held => {
                    if tagged {
                        // Dead between marking it held and clearing its tag.
                        word.store(untagged(w), Release);
                    }
                    self.take_and_release(e, h, r, pause, &mut out);
                }
                Status::Acquiring if tagged => {
                    // Applied: the claim is held; then release it.
                    let held = h.with(Status::Held);
                    hw.store(held.encode(), Release);
                    word.store(untagged(w), Release);
                    self.take_and_release(e, held, r, pause, &mut out);
                }
                Status::Acquiring => {
                    // Never applied.
                    hw.store(h.with(Status::Free).encode(), Release);
                }
                Status::Releasing if tagged => {
                    hw.store(h.with(Status::Released).encode(), Release);
                    word.store(untagged(w), Release);
                    hw.store(h.with(Status::Free).encode(), Release);
                    out.touched.push(h.slot);
                }
                Status::Releasing => {
                    // Not applied: still held.
                    let held = h.with(Status::Held);
                    hw.store(held.encode(), Release);
                    self.take_and_release(e, held, r, pause, &mut out);
                }
                Status::Released => {
                    if tagged {
                        word.store(untagged(w), Release);
                    }
                    hw.store(h.with(Status::Free).encode(), Release);
                    out.touched.push(h.slot);
                }
            }
        }
        out
    }

    /// Releases the held claims of process record `p`, which is alive but
    /// has not renewed its lease: what it is in the middle of is left to it.
    pub(crate) fn revoke(&self, p: u32, r: u32, pause: &mut impl Pause) -> Reclaimed {
        let mut out = Reclaimed {
            complete: true,
            ..Reclaimed::default()
        };
        for e in 0..self.entry_hwm() {
            if let Ok(h) = self.head(e)
                && h.proc == p
                && h.status == Status::Held
            {
                self.take_and_release(e, h, r, pause, &mut out);
            }
        }
        out
    }

    /// Releases the claims of tickets whose deadline is before `now`, and
    /// frees the tickets of objects that are gone.
    pub(crate) fn expire_tickets(&self, now: u64, r: u32, pause: &mut impl Pause) -> Reclaimed {
        let mut out = Reclaimed {
            complete: true,
            ..Reclaimed::default()
        };
        for e in 0..self.entry_hwm() {
            let Ok(h) = self.head(e) else { continue };
            if h.status != Status::Ticket {
                continue;
            }
            let (Ok(hw), Ok(epoch), Ok(deadline)) = (
                self.entry(e, E_HEAD),
                self.entry(e, E_EPOCH).map(|w| w.load(Acquire)),
                self.entry(e, E_DEADLINE).map(|w| w.load(Acquire)),
            ) else {
                continue;
            };
            let gone = !matches!(self.state(h.slot, epoch), Ok(Some(s)) if !s.gone());
            if gone {
                let _ =
                    hw.compare_exchange(h.encode(), h.with(Status::Free).encode(), AcqRel, Acquire);
            } else if deadline < now {
                self.take_and_release(e, h, r, pause, &mut out);
            }
        }
        out
    }

    /// Live slots whose object is evicted but not removed (its evicter died
    /// between the two): for the caller to remove.
    pub(crate) fn unfinished_evictions(&self) -> Vec<u32> {
        (0..self.slot_hwm())
            .filter(|o| {
                let (Ok(ph), Ok(w)) = (self.slot(*o, S_PHASE), self.slot(*o, S_WORD)) else {
                    return false;
                };
                let w = w.load(Acquire);
                phase_of(ph.load(Acquire)) == LIVE && state_of(w).gone() && tag_of(w) == 0
            })
            .collect()
    }

    /// Process record `i`: state, heartbeat, pid and lease (ms).
    pub(crate) fn record(&self, i: u32) -> (u64, u64, u64, u64) {
        (
            self.proc(i, P_STATE).load(Acquire),
            self.proc(i, P_BEAT).load(Acquire),
            self.proc(i, P_PID).load(Acquire),
            self.proc(i, P_LEASE).load(Acquire),
        )
    }

    /// Makes free record `i` this process's (the caller holds its lock
    /// file). False if it is not free.
    pub(crate) fn claim_record(&self, i: u32, pid: u64, lease_ms: u64, now: u64) -> bool {
        self.proc(i, P_BEAT).store(now, Release);
        self.proc(i, P_PID).store(pid, Release);
        self.proc(i, P_LEASE).store(lease_ms, Release);
        self.proc(i, P_STATE)
            .compare_exchange(PROC_FREE, PROC_LIVE, AcqRel, Acquire)
            .is_ok()
    }

    /// Renews record `i`'s lease: its heartbeat is `now`. A record that was
    /// revoked meanwhile is live again (its reclaimed claims stay lost).
    /// Returns whether it had been revoked.
    pub(crate) fn beat(&self, i: u32, now: u64) -> bool {
        self.proc(i, P_BEAT).store(now, Release);
        self.proc(i, P_STATE)
            .compare_exchange(PROC_REVOKED, PROC_LIVE, AcqRel, Acquire)
            .is_ok()
    }

    /// Marks live record `i` revoked (its lease ran out); false if another
    /// process did, or it is not live.
    pub(crate) fn revoke_record(&self, i: u32) -> bool {
        self.proc(i, P_STATE)
            .compare_exchange(PROC_LIVE, PROC_REVOKED, AcqRel, Acquire)
            .is_ok()
    }

    /// Frees record `i` (its process is dead and repaired).
    pub(crate) fn free_record(&self, i: u32) {
        self.proc(i, P_STATE).store(PROC_FREE, Release);
    }
}

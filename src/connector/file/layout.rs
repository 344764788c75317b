//! The state table's layout: where each word is, and how the words pack an
//! object's borrow state, a claim, an object slot's phase and a process's
//! record. Pure arithmetic; [`Table`](super::table::Table) runs the protocol
//! on top of it.
//!
//! The table is one file of little-endian 64-bit words:
//!
//! | words | what |
//! |---|---|
//! | 64 | header: magic `BSTABLE1`, format, capacities, high-water marks |
//! | 4 per process record | state (free, live, revoked), heartbeat (ms), pid, lease (ms) |
//! | 8 per object slot | state word, phase, version, key (2 words), created (ms), generation, spare |
//! | 8 per claim entry | head, claim id (2), ticket id (2), ticket deadline, object generation, note |

use crate::state::{ClaimKind, Op, State};

/// The first header word: `BSTABLE1`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"BSTABLE1");
/// The table format this build reads and writes. Format 2: a slot's
/// [`S_FLAGS`] word says whether its value's first version is in its side
/// file. A format 1 build could not read such an object, and its sweep would
/// take the object's version files for orphans and remove them, so neither
/// opens the other's table.
pub(crate) const FORMAT: u64 = 2;
/// Words of the header.
pub(crate) const HEADER: usize = 64;
/// Header word: the format.
pub(crate) const H_FORMAT: usize = 1;
/// Header words: the capacities.
const H_SLOTS: usize = 2;
const H_ENTRIES: usize = 3;
const H_PROCS: usize = 4;
/// Header word: how many object slots were ever used (a scan's bound).
pub(crate) const H_SLOT_HWM: usize = 5;
/// Header word: how many claim entries were ever used.
pub(crate) const H_ENTRY_HWM: usize = 6;

const PROC_WORDS: usize = 4;
pub(crate) const SLOT_WORDS: usize = 8;
pub(crate) const ENTRY_WORDS: usize = 8;

/// Object slots a table can have: an entry's head has 24 bits for one.
pub(crate) const MAX_SLOTS: u64 = 1 << 24;
/// Claim entries a table can have: a state word's tag has 21 bits.
pub(crate) const MAX_ENTRIES: u64 = (1 << 21) - 1;
/// Process records of every table.
pub(crate) const PROCS: u64 = 1024;
/// Object slots of a table made without `capacity`: a million objects.
pub(crate) const DEFAULT_SLOTS: u64 = 1 << 20;

/// The capacities of a table, and so where everything is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Object slots.
    pub(crate) slots: u32,
    /// Claim entries.
    pub(crate) entries: u32,
    /// Process records.
    pub(crate) procs: u32,
}

impl Layout {
    /// The layout for `objects` objects (and twice as many claims, up to
    /// the most a table can have).
    pub(crate) fn for_objects(objects: u64) -> Result<Layout, String> {
        if objects == 0 || objects > MAX_SLOTS {
            return Err(format!(
                "capacity must be between 1 and {MAX_SLOTS} objects, not {objects}"
            ));
        }
        Ok(Layout {
            slots: objects as u32,
            entries: (objects * 2).clamp(64, MAX_ENTRIES) as u32,
            procs: PROCS as u32,
        })
    }

    /// The table's length in words.
    #[inline]
    pub(crate) fn words(&self) -> usize {
        HEADER
            + self.procs as usize * PROC_WORDS
            + self.slots as usize * SLOT_WORDS
            + self.entries as usize * ENTRY_WORDS
    }

    /// The header of a new table, as bytes.
    pub(crate) fn header_bytes(&self) -> Vec<u8> {
        let mut words = [0u64; HEADER];
        words[0] = MAGIC;
        words[H_FORMAT] = FORMAT;
        words[H_SLOTS] = u64::from(self.slots);
        words[H_ENTRIES] = u64::from(self.entries);
        words[H_PROCS] = u64::from(self.procs);
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// The layout a table's header describes, checked against the table's
    /// length in words; what is wrong otherwise.
    pub(crate) fn from_header(header: [u64; 5], len: usize) -> Result<Layout, String> {
        if header[0] != MAGIC {
            return Err("it is not a borrowstore state table (bad magic)".into());
        }
        if header[H_FORMAT] != FORMAT {
            return Err(format!(
                "the table has format {}; this borrowstore reads format {FORMAT}",
                header[H_FORMAT]
            ));
        }
        let (slots, entries, procs) = (header[H_SLOTS], header[H_ENTRIES], header[H_PROCS]);
        if slots == 0 || slots > MAX_SLOTS || entries == 0 || entries > MAX_ENTRIES {
            return Err(format!(
                "the table's capacities are damaged ({slots} objects, {entries} claims)"
            ));
        }
        if procs == 0 || procs > PROCS {
            return Err(format!("the table's process count {procs} is damaged"));
        }
        let layout = Layout {
            slots: slots as u32,
            entries: entries as u32,
            procs: procs as u32,
        };
        if layout.words() != len {
            return Err(format!(
                "the table is {len} words long; its header says {}",
                layout.words()
            ));
        }
        Ok(layout)
    }

    /// Word `field` of process record `i`.
    pub(crate) fn proc(&self, i: u32, field: usize) -> usize {
        HEADER + i as usize * PROC_WORDS + field
    }

    /// Word `field` of object slot `o`.
    #[inline]
    pub(crate) fn slot(&self, o: u32, field: usize) -> usize {
        HEADER + self.procs as usize * PROC_WORDS + o as usize * SLOT_WORDS + field
    }

    /// Word `field` of claim entry `e`.
    #[inline]
    pub(crate) fn entry(&self, e: u32, field: usize) -> usize {
        HEADER
            + self.procs as usize * PROC_WORDS
            + self.slots as usize * SLOT_WORDS
            + e as usize * ENTRY_WORDS
            + field
    }
}

/// Process record fields.
pub(crate) const P_STATE: usize = 0;
pub(crate) const P_BEAT: usize = 1;
pub(crate) const P_PID: usize = 2;
pub(crate) const P_LEASE: usize = 3;
/// Process record states.
pub(crate) const PROC_FREE: u64 = 0;
pub(crate) const PROC_LIVE: u64 = 1;
pub(crate) const PROC_REVOKED: u64 = 2;

/// Object slot fields.
pub(crate) const S_WORD: usize = 0;
pub(crate) const S_PHASE: usize = 1;
pub(crate) const S_VERSION: usize = 2;
pub(crate) const S_KEY_HI: usize = 3;
pub(crate) const S_KEY_LO: usize = 4;
pub(crate) const S_CREATED: usize = 5;
/// The slot's generation, in full (the state word has its low 12 bits).
pub(crate) const S_GEN: usize = 6;
/// The slot's flags: [`INLINE_FIRST`].
pub(crate) const S_FLAGS: usize = 7;
/// Slot flag: the value's first version is in the object's side file (it
/// has no version file of its own).
pub(crate) const INLINE_FIRST: u64 = 1;

/// Claim entry fields.
pub(crate) const E_HEAD: usize = 0;
pub(crate) const E_ID_HI: usize = 1;
pub(crate) const E_ID_LO: usize = 2;
pub(crate) const E_TICKET_HI: usize = 3;
pub(crate) const E_TICKET_LO: usize = 4;
pub(crate) const E_DEADLINE: usize = 5;
pub(crate) const E_EPOCH: usize = 6;
/// What inspection shows of the claim: [`note_word`].
pub(crate) const E_NOTE: usize = 7;

/// A claim entry's note word: when the claim was taken (ms since the Unix
/// epoch, bits 0..42), its label's number (bits 42..54) in the label file
/// of process record `labeler` (bits 54..64).
#[inline]
pub(crate) fn note_word(since_ms: u64, label: u32, labeler: u32) -> u64 {
    (since_ms & ((1 << 42) - 1))
        | (u64::from(label & 0xFFF) << 42)
        | (u64::from(labeler & 0x3FF) << 54)
}

/// The time, label number and labeler of a note word.
pub(crate) fn note_of(word: u64) -> (u64, u32, u32) {
    (
        word & ((1 << 42) - 1),
        ((word >> 42) & 0xFFF) as u32,
        (word >> 54) as u32,
    )
}

// ---------------------------------------------------------------------------
// The state word of an object slot
// ---------------------------------------------------------------------------

const READERS_MAX: u64 = (1 << 15) - 1;
const HOLDERS_SHIFT: u32 = 15;
const HOLDERS_MAX: u64 = (1 << 12) - 1;
const WRITER: u64 = 1 << 27;
const OWNED: u64 = 1 << 28;
const HAD_OWNER: u64 = 1 << 29;
const GONE: u64 = 1 << 30;
const EPOCH_SHIFT: u32 = 31;
/// Generations of a slot wrap at 12 bits.
pub(crate) const EPOCH_MASK: u64 = 0xFFF;
const TAG_SHIFT: u32 = 43;
const TAG_MASK: u64 = (1 << 21) - 1;

/// The borrow state a state word holds.
#[inline]
pub(crate) fn state_of(word: u64) -> State {
    State::from_parts(
        (word & READERS_MAX) as u32,
        word & WRITER != 0,
        word & OWNED != 0,
        ((word >> HOLDERS_SHIFT) & HOLDERS_MAX) as u32,
        word & HAD_OWNER != 0,
        word & GONE != 0,
    )
}

/// The slot generation a state word holds.
#[inline]
pub(crate) fn epoch_of(word: u64) -> u64 {
    (word >> EPOCH_SHIFT) & EPOCH_MASK
}

/// The tag of a state word: the claim entry (plus one) whose transition is
/// in flight, 0 when none is.
#[inline]
pub(crate) fn tag_of(word: u64) -> u64 {
    word >> TAG_SHIFT
}

/// The state word without its tag.
#[inline]
pub(crate) fn untagged(word: u64) -> u64 {
    word & !(TAG_MASK << TAG_SHIFT)
}

/// The state word for `state`, generation `epoch` and `tag`; `None` when the
/// counts do not fit (more than 32,767 readers or 4,095 holders).
pub(crate) fn pack(state: State, epoch: u64, tag: u64) -> Option<u64> {
    let (r, h) = (u64::from(state.readers()), u64::from(state.holders()));
    if r > READERS_MAX || h > HOLDERS_MAX || tag > TAG_MASK {
        return None;
    }
    let mut w =
        r | (h << HOLDERS_SHIFT) | ((epoch & EPOCH_MASK) << EPOCH_SHIFT) | (tag << TAG_SHIFT);
    for (flag, bit) in [
        (state.writer(), WRITER),
        (state.owned(), OWNED),
        (state.had_owner(), HAD_OWNER),
        (state.gone(), GONE),
    ] {
        if flag {
            w |= bit;
        }
    }
    Some(w)
}

/// The fast form of a borrow's acquire or release (`op` on a reader or
/// the writer) on an untagged state word: the word after it, where
/// [`State::apply`] would take it with no effect; `None` where `apply`
/// must decide (it would refuse, or evict, or `op` is not a borrow's).
/// The unit tests hold it to `pack` of `apply`.
#[inline(always)]
pub(crate) fn borrow_after(word: u64, op: &Op) -> Option<u64> {
    let readers = word & READERS_MAX;
    match op {
        Op::Acquire(c) => match c.kind {
            ClaimKind::Reader if word & (WRITER | GONE) == 0 && readers < READERS_MAX => {
                Some(word + 1)
            }
            ClaimKind::Writer if word & (WRITER | GONE) == 0 && readers == 0 => Some(word | WRITER),
            _ => None,
        },
        Op::Release(c) | Op::Disown(c) => {
            let next = match c.kind {
                ClaimKind::Reader if readers > 0 => word - 1,
                ClaimKind::Writer if word & WRITER != 0 => word & !WRITER,
                _ => return None,
            };
            // An object that had an owner and is left with no claim is
            // evicted: that release takes `apply`.
            let claims = OWNED | (HOLDERS_MAX << HOLDERS_SHIFT) | READERS_MAX | WRITER;
            if next & HAD_OWNER != 0 && next & (claims | GONE) == 0 {
                return None;
            }
            Some(next)
        }
        Op::Evict => None,
    }
}

/// An untagged state word with tag `tag`.
#[inline(always)]
pub(crate) fn with_tag(word: u64, tag: u64) -> u64 {
    untagged(word) | ((tag & TAG_MASK) << TAG_SHIFT)
}

/// The state word of a free slot of generation `epoch`: gone.
pub(crate) fn gone_word(epoch: u64) -> u64 {
    GONE | ((epoch & EPOCH_MASK) << EPOCH_SHIFT)
}

// ---------------------------------------------------------------------------
// An object slot's phase
// ---------------------------------------------------------------------------

/// Phases of an object slot.
pub(crate) const FREE: u64 = 0;
pub(crate) const CREATING: u64 = 1;
pub(crate) const LIVE: u64 = 2;
pub(crate) const EVICTING: u64 = 3;

/// A phase word: the phase and the process that moved the slot into it.
pub(crate) fn phase(phase: u64, proc: u32) -> u64 {
    phase | (u64::from(proc) << 8)
}

/// The phase of a phase word.
pub(crate) fn phase_of(word: u64) -> u64 {
    word & 0xFF
}

/// The process of a phase word.
pub(crate) fn phase_proc(word: u64) -> u32 {
    (word >> 8) as u32 & 0xFFFF
}

// ---------------------------------------------------------------------------
// A claim entry's head
// ---------------------------------------------------------------------------

/// What a claim entry is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Unused: any process may take it.
    Free = 0,
    /// Its holder is acquiring the claim (its state word may carry the tag).
    Acquiring = 1,
    /// The claim is held by the entry's process.
    Held = 2,
    /// Its holder is releasing the claim (the state word may carry the tag).
    Releasing = 3,
    /// The claim is in flight in a ticket, until its deadline.
    Ticket = 4,
    /// The release is applied; the tag is about to be cleared.
    Released = 5,
}

/// A claim entry's head: what it does, for which process and object slot,
/// and a generation that changes whenever the entry is taken anew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) status: Status,
    pub(crate) kind: ClaimKind,
    pub(crate) proc: u32,
    pub(crate) slot: u32,
    pub(crate) epoch: u32,
}

const KINDS: [ClaimKind; 4] = [
    ClaimKind::Owner,
    ClaimKind::Holder,
    ClaimKind::Reader,
    ClaimKind::Writer,
];

impl Head {
    /// The head as a word.
    #[inline]
    pub(crate) fn encode(self) -> u64 {
        let kind = self.kind.code();
        (self.status as u64)
            | (kind << 3)
            | (u64::from(self.proc & 0xFFFF) << 5)
            | (u64::from(self.slot & 0xFF_FFFF) << 21)
            | (u64::from(self.epoch & 0x7_FFFF) << 45)
    }

    /// The head a word holds; `None` for a status no entry has (damage).
    #[inline]
    pub(crate) fn decode(word: u64) -> Option<Head> {
        let status = match word & 7 {
            0 => Status::Free,
            1 => Status::Acquiring,
            2 => Status::Held,
            3 => Status::Releasing,
            4 => Status::Ticket,
            5 => Status::Released,
            _ => return None,
        };
        Some(Head {
            status,
            kind: KINDS[((word >> 3) & 3) as usize],
            proc: ((word >> 5) & 0xFFFF) as u32,
            slot: ((word >> 21) & 0xFF_FFFF) as u32,
            epoch: ((word >> 45) & 0x7_FFFF) as u32,
        })
    }

    /// The same entry, doing `status`.
    pub(crate) fn with(self, status: Status) -> Head {
        Head { status, ..self }
    }

    /// [`with`](Self::with) on an encoded head: the word of the same entry
    /// doing `status`.
    #[inline(always)]
    pub(crate) fn word_with(word: u64, status: Status) -> u64 {
        (word & !STATUS_BITS) | status as u64
    }

    /// The status of an encoded head, as a number (a [`Status`] as `u64`,
    /// or 6 or 7 for damage).
    #[inline(always)]
    pub(crate) fn status_code(word: u64) -> u64 {
        word & STATUS_BITS
    }

    /// The object slot of an encoded head.
    #[inline(always)]
    pub(crate) fn slot_of(word: u64) -> u32 {
        ((word >> 21) & 0xFF_FFFF) as u32
    }

    /// The low bits of the word of a head that holds a claim of `kind`
    /// for process `proc` ([`HOLDER_BITS`] of it): status `Held`, kind and
    /// process.
    #[inline(always)]
    pub(crate) fn held_by_word(kind: ClaimKind, proc: u32) -> u64 {
        Status::Held as u64 | (kind.code() << 3) | (u64::from(proc & 0xFFFF) << 5)
    }

    /// An encoded head with the next generation after `word`'s, otherwise
    /// `self`: the head an entry whose head was `word` gets when it is
    /// taken for `self`.
    #[inline(always)]
    pub(crate) fn next_after(self, word: u64) -> u64 {
        let epoch = ((word >> 45) + 1) & 0x7_FFFF;
        Head { epoch: 0, ..self }.encode() | (epoch << 45)
    }
}

/// The bits of an encoded head that hold its status.
pub(crate) const STATUS_BITS: u64 = 7;

/// The bits of an encoded head that hold its status, kind and process.
pub(crate) const HOLDER_BITS: u64 = (1 << 21) - 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Claim;

    #[test]
    fn state_words_round_trip_and_refuse_what_does_not_fit() {
        let s = State::from_parts(7, false, true, 3, true, false);
        let w = pack(s, 4095, 12345).unwrap();
        assert_eq!((state_of(w), epoch_of(w), tag_of(w)), (s, 4095, 12345));
        assert_eq!(state_of(untagged(w)), s);
        assert_eq!(tag_of(untagged(w)), 0);
        assert!(
            pack(
                State::from_parts(1 << 15, false, false, 0, false, false),
                0,
                0
            )
            .is_none()
        );
        assert!(state_of(gone_word(3)).gone());
    }

    #[test]
    fn the_fast_borrow_transitions_are_those_of_apply() {
        let kinds = [ClaimKind::Reader, ClaimKind::Writer, ClaimKind::Owner];
        let mut checked = 0;
        for readers in [0, 1, 2, READERS_MAX as u32 - 1, READERS_MAX as u32] {
            for bits in 0..32u32 {
                let f = |i: u32| bits & (1 << i) != 0;
                let holders = if f(4) { 1 } else { 0 };
                let s = State::from_parts(readers, f(0), f(1), holders, f(2), f(3));
                let Some(word) = pack(s, 5, 0) else { continue };
                for kind in kinds {
                    let c = Claim::rebuilt(kind, crate::key::ClaimId::from_u128(1));
                    for op in [Op::Acquire(c), Op::Release(c), Op::Disown(c)] {
                        let Some(fast) = borrow_after(word, &op) else {
                            continue;
                        };
                        let (next, effect) = s
                            .apply(op)
                            .expect("the fast path only takes what apply does");
                        assert_eq!(effect, crate::state::Effect::None, "{s:?} {op:?}");
                        assert_eq!(Some(fast), pack(next, 5, 0), "{s:?} {op:?}");
                        assert_eq!(state_of(with_tag(fast, 9)), next);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50, "{checked}");
    }

    #[test]
    fn note_words_round_trip() {
        let w = note_word(1_800_000_000_000, 4095, 1023);
        assert_eq!(note_of(w), (1_800_000_000_000, 4095, 1023));
        assert_eq!(note_of(note_word(5, 0, 0)), (5, 0, 0));
    }

    #[test]
    fn heads_round_trip_and_damage_is_seen() {
        let h = Head {
            status: Status::Ticket,
            kind: ClaimKind::Writer,
            proc: 1023,
            slot: (1 << 24) - 1,
            epoch: 0x7_FFFF,
        };
        assert_eq!(Head::decode(h.encode()), Some(h));
        assert_eq!(Head::decode(7), None);
    }

    #[test]
    fn crafted_headers_are_refused() {
        let l = Layout::for_objects(100).unwrap();
        let ok = [MAGIC, FORMAT, 100, u64::from(l.entries), PROCS];
        assert_eq!(Layout::from_header(ok, l.words()), Ok(l));
        assert!(Layout::from_header(ok, l.words() - 1).is_err());
        assert!(Layout::from_header([MAGIC, FORMAT, u64::MAX, 1, PROCS], 0).is_err());
        assert!(Layout::from_header([MAGIC, u64::MAX, 1, 1, 1], 0).is_err());
        assert!(Layout::for_objects(0).is_err());
    }
}

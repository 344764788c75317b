//! The packed per-object state machine: [`State`] and its one transition
//! function, [`State::apply`], with the claims, operations, effects and
//! refusals it speaks of. See the [module docs](crate::state) for the rules.

use serde::{Deserialize, Serialize};

use super::journal::Record;
use super::note::Note;
use crate::error::Borrows;
use crate::key::ClaimId;

/// What kind of claim on an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum ClaimKind {
    /// The owner proxy (`OwnedProxy`, or an owner ticket in flight). At most one.
    Owner,
    /// A scope or lifetime that shares ownership. Any number.
    Holder,
    /// A shared borrow (`RefProxy`). Any number, never beside a writer.
    Reader,
    /// The mutable borrow (`RefMutProxy`). At most one, never beside readers.
    Writer,
}

impl ClaimKind {
    /// Its code in the claim journal.
    pub(crate) const fn code(self) -> u64 {
        match self {
            ClaimKind::Owner => 0,
            ClaimKind::Holder => 1,
            ClaimKind::Reader => 2,
            ClaimKind::Writer => 3,
        }
    }

    /// Whether it is a borrow (a reader or the writer).
    #[inline(always)]
    pub(crate) const fn is_borrow(self) -> bool {
        matches!(self, ClaimKind::Reader | ClaimKind::Writer)
    }
}

/// One claim: its kind and its id.
///
/// Only this crate makes claims (the handles take them, and connectors hand
/// back the ones they were given), so code outside it cannot act under a
/// claim it does not hold. It can read one, and serialize it.
///
/// A claim also carries a [`Note`]: its label for the store's inspection
/// (the call site that took it, or a name). The note is not part of its
/// identity (two claims are equal when their kind and id are) and is not
/// serialized: a store records it when the claim is taken.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Claim {
    pub(crate) kind: ClaimKind,
    pub(crate) id: ClaimId,
    #[serde(skip)]
    tag: Tag,
}

/// What a claim carries besides its kind and id: its note, until a store's
/// claim journal records the note, and from then on the journal's record.
/// (One or the other: a claim stays small, and the handles that carry it
/// with it.)
#[derive(Clone, Copy, Debug)]
enum Tag {
    Note(Note),
    /// Its record in this process's claim journal (memory-store borrows),
    /// which holds its note.
    Record(&'static Record),
}

impl PartialEq for Claim {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.id == other.id
    }
}

impl Eq for Claim {}

impl std::hash::Hash for Claim {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
        self.id.hash(state);
    }
}

impl Claim {
    /// A claim of `kind` with a fresh id, noting the caller's call site.
    #[track_caller]
    #[inline]
    pub(crate) fn new(kind: ClaimKind) -> Self {
        Claim::noted(kind, Note::here())
    }

    /// A claim of `kind` with a fresh id and the note `note`.
    #[inline]
    pub(crate) fn noted(kind: ClaimKind, note: Note) -> Self {
        Claim {
            kind,
            id: ClaimId::next(),
            tag: Tag::Note(note),
        }
    }

    /// A claim rebuilt from its kind and id (read back from a store): no note.
    pub(crate) fn rebuilt(kind: ClaimKind, id: ClaimId) -> Self {
        Claim {
            kind,
            id,
            tag: Tag::Note(Note::NONE),
        }
    }

    /// Its label for the store's inspection; see [`Note`].
    ///
    /// ```
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-claim-note");
    /// # let owner = store.owned_proxy(1u8)?;
    /// let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// let reader = task_borrows(&mut r)[0].claim;
    /// assert_eq!(reader.note().site().map(|l| l.file()), Some(file!()));
    /// # Ok(()) }
    /// ```
    pub fn note(self) -> Note {
        match self.tag {
            Tag::Note(n) => n,
            Tag::Record(r) => r.note(),
        }
    }

    /// Its record in this process's claim journal, if it has one.
    #[inline(always)]
    pub(crate) fn record(&self) -> Option<&'static Record> {
        match self.tag {
            Tag::Record(r) => Some(r),
            Tag::Note(_) => None,
        }
    }

    /// Journals the claim in `record` (which holds its note from now on).
    #[inline(always)]
    pub(crate) fn set_record(&mut self, record: &'static Record) {
        self.tag = Tag::Record(record);
    }

    /// The kind of claim.
    ///
    /// ```
    /// use borrowstore::state::ClaimKind;
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-claim-kind");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// assert_eq!(reader.kind(), ClaimKind::Reader);
    /// # Ok(()) }
    /// ```
    pub const fn kind(self) -> ClaimKind {
        self.kind
    }

    /// Its id; releases are idempotent by id where the connector keeps ids.
    ///
    /// ```
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-claim-id");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let again = task_borrows(&mut r)[0].claim;
    /// assert_eq!(again.id(), reader.id());                   // the same borrow, the same id
    /// # Ok(()) }
    /// ```
    pub const fn id(self) -> ClaimId {
        self.id
    }
}

/// A transition request.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub enum Op {
    /// Take a claim.
    Acquire(Claim),
    /// Give a claim back.
    Release(Claim),
    /// Give a claim back without handing the object to anyone: as
    /// [`Release`](Op::Release), except that when the claim is the object's
    /// last owner or holder, the object becomes plain again — an object
    /// without an owner, as if stored by a plain `put` — instead of being
    /// evicted. While other owners or holders are left, the usual rule
    /// stays. `LivenessScope::preserve` with no enclosing scope.
    Disown(Claim),
    /// Remove the object now (explicit eviction, or an ephemeral resolve).
    Evict,
}

impl Op {
    /// The operation's name as errors report it: `"borrow"` (acquire a
    /// reader), `"mut_borrow"` (a writer), `"into_owned"` (the owner),
    /// `"manage"` (a holder), `"release"`, `"disown"`, `"evict"`.
    ///
    /// ```
    /// assert_eq!(borrowstore::state::Op::Evict.name(), "evict");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Op::Acquire(c) => match c.kind {
                ClaimKind::Reader => "borrow",
                ClaimKind::Writer => "mut_borrow",
                ClaimKind::Owner => "into_owned",
                ClaimKind::Holder => "manage",
            },
            Op::Release(_) => "release",
            Op::Disown(_) => "disown",
            Op::Evict => "evict",
        }
    }
}

/// What the connector must do after a transition.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Effect {
    /// Nothing.
    None,
    /// Remove the object's value now. Returned exactly once per object.
    Evict,
}

/// Why a transition was refused. Connectors turn this into an [`Error`](crate::Error)
/// ([`Refusal::into_error`]).
///
/// A refusal because of borrows carries the borrows that held the object in
/// the state the transition was refused in: a snapshot.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Refusal {
    /// The object was evicted (or never existed).
    Gone,
    /// A writer or an eviction was refused: the object is borrowed, by these.
    Borrowed(Borrows),
    /// A reader was refused: the object is mutably borrowed, by these (its writer).
    MutablyBorrowed(Borrows),
    /// An owner was refused: the object already has an owner proxy.
    Owned,
    /// A counter would overflow.
    Overflow,
    /// A release of a claim kind that is not held (a bug in the caller).
    NotHeld,
}

/// How a new object starts.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub enum Init {
    /// No owner: persists until evicted explicitly (plain `put`, `proxy`).
    Plain,
    /// Born with an owner proxy or a holder.
    Claimed(Claim),
}

/// The packed per-object state. See the [module docs](crate::state).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct State(u64);

const READERS_MASK: u64 = 0xFFFF_FFFF;
const HOLDER_ONE: u64 = 1 << 32;
const HOLDERS_MASK: u64 = 0xFF_FFFF << 32;
const WRITER: u64 = 1 << 56;
const OWNED: u64 = 1 << 57;
const HAD_OWNER: u64 = 1 << 58;
const GONE: u64 = 1 << 59;

impl State {
    /// A new object with no claims.
    pub const EMPTY: State = State(0);

    /// The state of a new object.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// let s = State::new(Init::Plain);                       // a plain put
    /// assert_eq!(s, State::EMPTY);
    /// assert!(!s.had_owner() && !s.borrowed());
    /// ```
    pub fn new(init: Init) -> State {
        match init {
            Init::Plain => State::EMPTY,
            Init::Claimed(c) => match State::EMPTY.apply(Op::Acquire(c)) {
                Ok((s, Effect::None)) => s,
                _ => unreachable!("acquiring on an empty state cannot fail"),
            },
        }
    }

    /// The state with these counts and flags (for connectors that keep the
    /// claims themselves and report them). Counts saturate at their limits.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// // readers, writer, owned, holders, had_owner, gone
    /// let s = State::from_parts(2, false, true, 1, true, false);
    /// assert_eq!((s.readers(), s.holders(), s.owned(), s.writer()), (2, 1, true, false));
    /// ```
    pub fn from_parts(
        readers: u32,
        writer: bool,
        owned: bool,
        holders: u32,
        had_owner: bool,
        gone: bool,
    ) -> State {
        let holders = u64::from(holders.min(0xFF_FFFF));
        let mut bits = u64::from(readers) | (holders << 32);
        for (flag, bit) in [
            (writer, WRITER),
            (owned, OWNED),
            (had_owner, HAD_OWNER),
            (gone, GONE),
        ] {
            if flag {
                bits |= bit;
            }
        }
        State(bits)
    }

    /// The raw bits, for atomic storage.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// let s = State::from_parts(3, false, true, 0, true, false);
    /// assert_eq!(State::from_bits(s.to_bits()), s);
    /// ```
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// The state of these raw bits.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// assert_eq!(State::from_bits(0), State::EMPTY);
    /// ```
    pub const fn from_bits(bits: u64) -> State {
        State(bits)
    }

    /// Number of shared borrows.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// assert_eq!(State::from_parts(4, false, true, 0, true, false).readers(), 4);
    /// ```
    pub const fn readers(self) -> u32 {
        (self.0 & READERS_MASK) as u32
    }

    /// Number of holders (scopes and lifetimes).
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// assert_eq!(State::from_parts(0, false, false, 2, true, false).holders(), 2);
    /// ```
    pub const fn holders(self) -> u32 {
        ((self.0 & HOLDERS_MASK) >> 32) as u32
    }

    /// Whether a mutable borrow exists.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// assert!(State::from_parts(0, true, true, 0, true, false).writer());
    /// ```
    pub const fn writer(self) -> bool {
        self.0 & WRITER != 0
    }

    /// Whether an owner proxy exists.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// assert!(State::from_parts(0, false, true, 0, true, false).owned());
    /// assert!(!State::EMPTY.owned());
    /// ```
    pub const fn owned(self) -> bool {
        self.0 & OWNED != 0
    }

    /// Whether the object ever had an owner or holder.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// // The owner is gone, but it had one: its last release evicts it.
    /// assert!(State::from_parts(1, false, false, 0, true, false).had_owner());
    /// assert!(!State::EMPTY.had_owner());                    // plain
    /// ```
    pub const fn had_owner(self) -> bool {
        self.0 & HAD_OWNER != 0
    }

    /// Whether the object was evicted.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// let (evicted, _) = State::EMPTY.apply(Op::Evict).unwrap();
    /// assert!(evicted.gone());
    /// ```
    pub const fn gone(self) -> bool {
        self.0 & GONE != 0
    }

    /// Whether any borrow exists.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// assert!(State::from_parts(1, false, true, 0, true, false).borrowed());
    /// assert!(State::from_parts(0, true, true, 0, true, false).borrowed());
    /// assert!(!State::from_parts(0, false, true, 0, true, false).borrowed());
    /// ```
    pub const fn borrowed(self) -> bool {
        self.readers() > 0 || self.writer()
    }

    /// The borrows: how many readers, and whether a writer.
    ///
    /// ```
    /// use borrowstore::state::{Init, Op, State};
    /// let b = State::from_parts(3, false, true, 0, true, false).borrows();
    /// assert_eq!((b.readers, b.writer), (3, false));
    /// assert_eq!(b.to_string(), "3 readers hold it");
    /// ```
    pub const fn borrows(self) -> Borrows {
        Borrows {
            readers: self.readers(),
            writer: self.writer(),
        }
    }

    /// The one transition function. Pure: the caller stores the new state
    /// atomically (compare-and-swap, a file lock, a Lua script).
    ///
    /// ```
    /// use borrowstore::state::{Effect, Op, Refusal, State};
    /// // An object with an owner and one reader: not evictable now.
    /// let s = State::from_parts(1, false, true, 0, true, false);
    /// assert!(matches!(s.apply(Op::Evict), Err(Refusal::Borrowed(_))));
    /// let (gone, effect) = State::from_parts(0, false, true, 0, true, false).apply(Op::Evict).unwrap();
    /// assert_eq!(effect, Effect::Evict);
    /// assert!(matches!(gone.apply(Op::Evict), Err(Refusal::Gone)));   // exactly once
    /// ```
    #[inline]
    pub fn apply(self, op: Op) -> Result<(State, Effect), Refusal> {
        let s = self.0;
        match op {
            Op::Acquire(c) => {
                if self.gone() {
                    return Err(Refusal::Gone);
                }
                let next = match c.kind {
                    ClaimKind::Reader => {
                        if self.writer() {
                            return Err(Refusal::MutablyBorrowed(self.borrows()));
                        }
                        if self.readers() == u32::MAX {
                            return Err(Refusal::Overflow);
                        }
                        s + 1
                    }
                    ClaimKind::Writer => {
                        if self.borrowed() {
                            return Err(Refusal::Borrowed(self.borrows()));
                        }
                        s | WRITER
                    }
                    ClaimKind::Owner => {
                        if self.owned() {
                            return Err(Refusal::Owned);
                        }
                        s | OWNED | HAD_OWNER
                    }
                    ClaimKind::Holder => {
                        if s & HOLDERS_MASK == HOLDERS_MASK {
                            return Err(Refusal::Overflow);
                        }
                        (s + HOLDER_ONE) | HAD_OWNER
                    }
                };
                Ok((State(next), Effect::None))
            }
            Op::Release(c) | Op::Disown(c) => {
                let mut next = match c.kind {
                    ClaimKind::Reader if self.readers() > 0 => s - 1,
                    ClaimKind::Writer if self.writer() => s & !WRITER,
                    ClaimKind::Owner if self.owned() => s & !OWNED,
                    ClaimKind::Holder if self.holders() > 0 => s - HOLDER_ONE,
                    _ => return Err(Refusal::NotHeld),
                };
                let an_owner = matches!(c.kind, ClaimKind::Owner | ClaimKind::Holder);
                if matches!(op, Op::Disown(_)) && an_owner && next & (OWNED | HOLDERS_MASK) == 0 {
                    next &= !HAD_OWNER;
                }
                Ok(State(next).settle())
            }
            Op::Evict => {
                if self.gone() {
                    return Err(Refusal::Gone);
                }
                if self.borrowed() {
                    return Err(Refusal::Borrowed(self.borrows()));
                }
                Ok((State(s | GONE), Effect::Evict))
            }
        }
    }

    /// The fast form of a borrow's acquire (`kind` a reader or a writer) for
    /// a connector that keeps the state in one atomic word: the bits after
    /// it, where [`apply`](State::apply) would take it with no effect;
    /// `None` where `apply` must decide (it would refuse, or `kind` is not a
    /// borrow). Bits above the state's (a connector's own marks) pass
    /// through unchanged. The property tests hold it to `apply`.
    #[inline(always)]
    pub(crate) const fn bits_after_take(bits: u64, kind: ClaimKind) -> Option<u64> {
        match kind {
            ClaimKind::Reader
                if bits & (WRITER | GONE) == 0 && bits & READERS_MASK != READERS_MASK =>
            {
                Some(bits + 1)
            }
            ClaimKind::Writer if bits & (WRITER | GONE | READERS_MASK) == 0 => Some(bits | WRITER),
            _ => None,
        }
    }

    /// The fast form of a borrow's release, as
    /// [`bits_after_take`](State::bits_after_take): the bits after it where
    /// `apply` would release it with no effect; `None` where `apply` must
    /// decide (the borrow is not held, or its release evicts).
    #[inline(always)]
    pub(crate) const fn bits_after_give_back(bits: u64, kind: ClaimKind) -> Option<u64> {
        let next = match kind {
            ClaimKind::Reader if bits & READERS_MASK != 0 => bits - 1,
            ClaimKind::Writer if bits & WRITER != 0 => bits & !WRITER,
            _ => return None,
        };
        // `settle` evicts an object that had an owner and is left with no
        // claim: that release takes the slow path.
        let claimed = next & (OWNED | HOLDERS_MASK | READERS_MASK | WRITER) != 0;
        if next & HAD_OWNER != 0 && !claimed && next & GONE == 0 {
            return None;
        }
        Some(next)
    }

    /// Evicts when the object had an owner and has no claim left.
    #[inline]
    fn settle(self) -> (State, Effect) {
        let unclaimed = !self.owned() && self.holders() == 0 && !self.borrowed();
        if self.had_owner() && unclaimed && !self.gone() {
            (State(self.0 | GONE), Effect::Evict)
        } else {
            (self, Effect::None)
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("readers", &self.readers())
            .field("writer", &self.writer())
            .field("owned", &self.owned())
            .field("holders", &self.holders())
            .field("had_owner", &self.had_owner())
            .field("gone", &self.gone())
            .finish()
    }
}

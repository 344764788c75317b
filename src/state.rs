//! The per-object ownership state machine: pure, synchronous, and the only
//! place where the rules live.
//!
//! An object's store-side state is a [`State`]: how many shared borrows it
//! has, whether it has a mutable borrow, whether an owner proxy exists, how
//! many holders (scopes and lifetimes) own it, whether it ever had an owner,
//! and whether it is gone. [`State::apply`] maps a state and an [`Op`] to the
//! next state and an [`Effect`], or refuses with a [`Refusal`]:
//!
//! | op | refused when | effect |
//! |---|---|---|
//! | acquire reader | gone; mutably borrowed | — |
//! | acquire writer | gone; borrowed at all | — |
//! | acquire owner | gone; an owner proxy exists | marks "had an owner" |
//! | acquire holder | gone | marks "had an owner" |
//! | release any | a claim of that kind is not held | evicts when it had an owner and none, and no borrow, is left |
//! | disown any | as release | as release, except that giving back the last owner or holder makes the object plain again (never evicts) |
//! | evict | gone; borrowed at all | evicts |
//!
//! Every connector applies exactly these transitions atomically: the memory
//! connector packs a `State` into one `AtomicU64` and applies `apply` in a
//! compare-and-swap loop; connectors that must survive retries and crashes
//! keep a [`Ledger`], which adds claim ids (so releases are idempotent) and
//! delegates every decision to `State::apply`.
//!
//! Eviction is an effect, not a request: the transition that returns
//! [`Effect::Evict`] also sets the "gone" bit, so exactly one caller ever
//! sees it and no claim can be acquired afterwards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

/// One claim: its kind and its id.
///
/// Only this crate makes claims (the handles take them, and connectors hand
/// back the ones they were given), so code outside it cannot act under a
/// claim it does not hold. It can read one, and serialize it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
pub struct Claim {
    pub(crate) kind: ClaimKind,
    pub(crate) id: ClaimId,
}

impl Claim {
    /// A claim of `kind` with a fresh id.
    pub(crate) fn new(kind: ClaimKind) -> Self {
        Claim {
            kind,
            id: ClaimId::next(),
        }
    }

    /// The kind of claim.
    pub const fn kind(self) -> ClaimKind {
        self.kind
    }

    /// Its id; releases are idempotent by id where the connector keeps ids.
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

/// What the connector must do after a transition.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Effect {
    /// Nothing.
    None,
    /// Remove the object's value now. Returned exactly once per object.
    Evict,
}

/// Why a transition was refused. Connectors turn this into an [`Error`](crate::Error).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Refusal {
    /// The object was evicted (or never existed).
    Gone,
    /// A writer or an eviction was refused: the object is borrowed.
    Borrowed,
    /// A reader was refused: the object is mutably borrowed.
    MutablyBorrowed,
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

/// The packed per-object state. See the [module docs](self).
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
    pub const fn to_bits(self) -> u64 {
        self.0
    }

    /// The state of these raw bits.
    pub const fn from_bits(bits: u64) -> State {
        State(bits)
    }

    /// Number of shared borrows.
    pub const fn readers(self) -> u32 {
        (self.0 & READERS_MASK) as u32
    }

    /// Number of holders (scopes and lifetimes).
    pub const fn holders(self) -> u32 {
        ((self.0 & HOLDERS_MASK) >> 32) as u32
    }

    /// Whether a mutable borrow exists.
    pub const fn writer(self) -> bool {
        self.0 & WRITER != 0
    }

    /// Whether an owner proxy exists.
    pub const fn owned(self) -> bool {
        self.0 & OWNED != 0
    }

    /// Whether the object ever had an owner or holder.
    pub const fn had_owner(self) -> bool {
        self.0 & HAD_OWNER != 0
    }

    /// Whether the object was evicted.
    pub const fn gone(self) -> bool {
        self.0 & GONE != 0
    }

    /// Whether any borrow exists.
    pub const fn borrowed(self) -> bool {
        self.readers() > 0 || self.writer()
    }

    /// The one transition function. Pure: the caller stores the new state
    /// atomically (compare-and-swap, a file lock, a Lua script).
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
                            return Err(Refusal::MutablyBorrowed);
                        }
                        if self.readers() == u32::MAX {
                            return Err(Refusal::Overflow);
                        }
                        s + 1
                    }
                    ClaimKind::Writer => {
                        if self.borrowed() {
                            return Err(Refusal::Borrowed);
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
                    return Err(Refusal::Borrowed);
                }
                Ok((State(s | GONE), Effect::Evict))
            }
        }
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

/// A lease deadline: milliseconds since the Unix epoch, on the clock the
/// connector uses for leases.
pub type Deadline = u64;

/// What redeeming a ticket found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Redeem {
    /// The ticket's claim, now held by the redeemer.
    Claim(Claim),
    /// The ticket was redeemed, cancelled or expired, or never issued.
    Spent,
    /// The ticket carries a claim of this other kind; nothing was changed.
    WrongKind(ClaimKind),
}

/// The deadline of a claim that never expires.
pub const NEVER: Deadline = u64::MAX;

/// A [`State`] with the id and lease deadline of every claim, and the
/// tickets in flight, for connectors whose requests can be retried (a lost
/// reply, a reconnect) or whose claimants can die.
///
/// Acquiring an id that is already held, or releasing one that is not, is a
/// no-op: every operation is idempotent by id. A claim whose deadline has
/// passed is released by [`Ledger::expire`] exactly as if its handle had
/// been dropped. All decisions are made by [`State::apply`].
///
/// A ledger serializes; it is read back only inside this crate, because its
/// tickets carry [`Claim`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// The counts; always agree with the claims below.
    pub state: State,
    /// The owner proxy's claim id and deadline.
    pub owner: Option<(ClaimId, Deadline)>,
    /// The holders' claim ids and deadlines.
    pub holders: BTreeMap<ClaimId, Deadline>,
    /// The readers' claim ids and deadlines.
    pub readers: BTreeMap<ClaimId, Deadline>,
    /// The writer's claim id and deadline.
    pub writer: Option<(ClaimId, Deadline)>,
    /// Tickets in flight: ticket id to the claim it carries.
    pub tickets: BTreeMap<ClaimId, Claim>,
    /// The value's version, bumped by every publish.
    pub version: u64,
}

impl Ledger {
    /// The ledger of a new object whose first claim (if any) lasts until `deadline`.
    pub fn new(init: Init, deadline: Deadline) -> Ledger {
        let mut l = Ledger {
            version: 1,
            ..Ledger::default()
        };
        if let Init::Claimed(c) = init {
            let _ = l.apply(Op::Acquire(c), deadline);
        }
        l
    }

    /// Whether `claim` is held.
    pub fn holds(&self, claim: Claim) -> bool {
        match claim.kind {
            ClaimKind::Owner => self.owner.is_some_and(|(id, _)| id == claim.id),
            ClaimKind::Holder => self.holders.contains_key(&claim.id),
            ClaimKind::Reader => self.readers.contains_key(&claim.id),
            ClaimKind::Writer => self.writer.is_some_and(|(id, _)| id == claim.id),
        }
    }

    /// Applies `op`, idempotently by claim id. An acquired claim lasts until
    /// `deadline`.
    pub fn apply(&mut self, op: Op, deadline: Deadline) -> Result<Effect, Refusal> {
        match op {
            Op::Acquire(c) if self.holds(c) => Ok(Effect::None),
            Op::Release(c) | Op::Disown(c) if !self.holds(c) => Ok(Effect::None),
            _ => {
                let (state, effect) = self.state.apply(op)?;
                self.state = state;
                match op {
                    Op::Acquire(c) => self.record(c, Some(deadline)),
                    Op::Release(c) | Op::Disown(c) => self.record(c, None),
                    Op::Evict => {}
                }
                if effect == Effect::Evict {
                    self.tickets.clear();
                }
                Ok(effect)
            }
        }
    }

    /// Moves a held claim's deadline; false if the claim is not held (it
    /// was released, or reclaimed after its lease expired).
    pub fn renew(&mut self, claim: Claim, deadline: Deadline) -> bool {
        let slot = match claim.kind {
            ClaimKind::Owner => self
                .owner
                .as_mut()
                .filter(|(id, _)| *id == claim.id)
                .map(|(_, d)| d),
            ClaimKind::Writer => self
                .writer
                .as_mut()
                .filter(|(id, _)| *id == claim.id)
                .map(|(_, d)| d),
            ClaimKind::Holder => self.holders.get_mut(&claim.id),
            ClaimKind::Reader => self.readers.get_mut(&claim.id),
        };
        match slot {
            Some(d) => {
                *d = deadline;
                true
            }
            None => false,
        }
    }

    /// Releases every claim whose deadline is before `now`, and drops the
    /// tickets whose claim is gone. Returns `Effect::Evict` if that evicted
    /// the object.
    pub fn expire(&mut self, now: Deadline) -> Effect {
        let mut expired: Vec<Claim> = Vec::new();
        let mut add = |kind, id: &ClaimId, d: &Deadline| {
            if *d < now {
                expired.push(Claim { kind, id: *id });
            }
        };
        if let Some((id, d)) = &self.owner {
            add(ClaimKind::Owner, id, d);
        }
        if let Some((id, d)) = &self.writer {
            add(ClaimKind::Writer, id, d);
        }
        for (id, d) in &self.holders {
            add(ClaimKind::Holder, id, d);
        }
        for (id, d) in &self.readers {
            add(ClaimKind::Reader, id, d);
        }
        let mut effect = Effect::None;
        for c in expired {
            if let Ok(Effect::Evict) = self.apply(Op::Release(c), NEVER) {
                effect = Effect::Evict;
            }
        }
        let held: Vec<ClaimId> = self
            .tickets
            .iter()
            .filter(|(_, c)| !self.holds(**c))
            .map(|(t, _)| *t)
            .collect();
        for t in held {
            self.tickets.remove(&t);
        }
        effect
    }

    /// The earliest deadline of any claim, if any claim has one.
    pub fn next_deadline(&self) -> Option<Deadline> {
        self.owner
            .iter()
            .chain(self.writer.iter())
            .map(|(_, d)| *d)
            .chain(self.holders.values().copied())
            .chain(self.readers.values().copied())
            .filter(|d| *d != NEVER)
            .min()
    }

    /// Records a ticket carrying `claim`, which must be held.
    pub fn issue_ticket(&mut self, ticket: ClaimId, claim: Claim) -> Result<(), Refusal> {
        if self.state.gone() {
            return Err(Refusal::Gone);
        }
        if !self.holds(claim) {
            return Err(Refusal::NotHeld);
        }
        self.tickets.insert(ticket, claim);
        Ok(())
    }

    /// Redeems a ticket once, if it carries a claim of `kind`: its claim,
    /// now lasting until `deadline`. A ticket of another kind (damaged or
    /// forged bytes) is refused and left as it was.
    pub fn redeem_ticket(
        &mut self,
        ticket: ClaimId,
        kind: ClaimKind,
        deadline: Deadline,
    ) -> Redeem {
        match self.tickets.get(&ticket) {
            None => Redeem::Spent,
            Some(c) if c.kind != kind => Redeem::WrongKind(c.kind),
            Some(_) => match self.tickets.remove(&ticket) {
                Some(claim) if self.renew(claim, deadline) => Redeem::Claim(claim),
                _ => Redeem::Spent,
            },
        }
    }

    fn record(&mut self, c: Claim, deadline: Option<Deadline>) {
        match (c.kind, deadline) {
            (ClaimKind::Owner, Some(d)) => self.owner = Some((c.id, d)),
            (ClaimKind::Owner, None) => self.owner = None,
            (ClaimKind::Writer, Some(d)) => self.writer = Some((c.id, d)),
            (ClaimKind::Writer, None) => self.writer = None,
            (ClaimKind::Holder, Some(d)) => {
                self.holders.insert(c.id, d);
            }
            (ClaimKind::Holder, None) => {
                self.holders.remove(&c.id);
            }
            (ClaimKind::Reader, Some(d)) => {
                self.readers.insert(c.id, d);
            }
            (ClaimKind::Reader, None) => {
                self.readers.remove(&c.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(kind: ClaimKind) -> Claim {
        Claim::new(kind)
    }

    fn step(s: State, op: Op) -> State {
        s.apply(op).unwrap().0
    }

    #[test]
    fn readers_exclude_writer_and_writer_excludes_everyone() {
        let s = State::new(Init::Claimed(c(ClaimKind::Owner)));
        let r = step(s, Op::Acquire(c(ClaimKind::Reader)));
        assert_eq!(
            r.apply(Op::Acquire(c(ClaimKind::Writer))),
            Err(Refusal::Borrowed)
        );
        let w = step(s, Op::Acquire(c(ClaimKind::Writer)));
        assert_eq!(
            w.apply(Op::Acquire(c(ClaimKind::Reader))),
            Err(Refusal::MutablyBorrowed)
        );
        assert_eq!(
            w.apply(Op::Acquire(c(ClaimKind::Writer))),
            Err(Refusal::Borrowed)
        );
        assert_eq!(w.apply(Op::Evict), Err(Refusal::Borrowed));
        assert_eq!(r.apply(Op::Evict), Err(Refusal::Borrowed));
    }

    #[test]
    fn owner_release_evicts_or_defers() {
        let owner = c(ClaimKind::Owner);
        let s = State::new(Init::Claimed(owner));
        assert_eq!(s.apply(Op::Release(owner)).unwrap().1, Effect::Evict);

        let reader = c(ClaimKind::Reader);
        let s = step(s, Op::Acquire(reader));
        let (s, e) = s.apply(Op::Release(owner)).unwrap();
        assert_eq!(e, Effect::None);
        let (s, e) = s.apply(Op::Release(reader)).unwrap();
        assert_eq!(e, Effect::Evict);
        assert!(s.gone());
        assert_eq!(
            s.apply(Op::Acquire(c(ClaimKind::Reader))),
            Err(Refusal::Gone)
        );
    }

    #[test]
    fn plain_objects_are_never_evicted_implicitly() {
        let s = State::new(Init::Plain);
        let s = step(s, Op::Acquire(c(ClaimKind::Reader)));
        let (s, e) = s.apply(Op::Release(c(ClaimKind::Reader))).unwrap();
        assert_eq!(e, Effect::None);
        assert!(!s.gone());
        assert_eq!(s.apply(Op::Evict).unwrap().1, Effect::Evict);
    }

    #[test]
    fn one_owner_proxy_many_holders() {
        let s = State::new(Init::Claimed(c(ClaimKind::Owner)));
        assert_eq!(
            s.apply(Op::Acquire(c(ClaimKind::Owner))),
            Err(Refusal::Owned)
        );
        let h1 = c(ClaimKind::Holder);
        let h2 = c(ClaimKind::Holder);
        let s = step(
            step(State::new(Init::Plain), Op::Acquire(h1)),
            Op::Acquire(h2),
        );
        assert_eq!(s.holders(), 2);
        let (s, e) = s.apply(Op::Release(h1)).unwrap();
        assert_eq!(e, Effect::None);
        assert_eq!(s.apply(Op::Release(h2)).unwrap().1, Effect::Evict);
    }

    #[test]
    fn releasing_what_is_not_held_is_refused() {
        let s = State::new(Init::Plain);
        for k in [
            ClaimKind::Owner,
            ClaimKind::Holder,
            ClaimKind::Reader,
            ClaimKind::Writer,
        ] {
            assert_eq!(s.apply(Op::Release(c(k))), Err(Refusal::NotHeld));
        }
    }

    #[test]
    fn disowning_the_last_owner_leaves_a_plain_object() {
        // The last holder: plain again, never evicted, even once borrows end.
        let (h1, h2, r) = (
            c(ClaimKind::Holder),
            c(ClaimKind::Holder),
            c(ClaimKind::Reader),
        );
        let s = step(State::new(Init::Claimed(h1)), Op::Acquire(r));
        let (s, e) = s.apply(Op::Disown(h1)).unwrap();
        assert_eq!((e, s.had_owner(), s.holders()), (Effect::None, false, 0));
        let (s, e) = s.apply(Op::Release(r)).unwrap();
        assert_eq!((e, s), (Effect::None, State::EMPTY));
        // Other owners left: the usual rule.
        let owner = c(ClaimKind::Owner);
        let s = step(State::new(Init::Claimed(owner)), Op::Acquire(h2));
        let (s, e) = s.apply(Op::Disown(h2)).unwrap();
        assert_eq!((e, s.had_owner()), (Effect::None, true));
        assert_eq!(s.apply(Op::Release(owner)).unwrap().1, Effect::Evict);
        // A borrow is no owner: disowning it is releasing it.
        let s = step(State::new(Init::Claimed(owner)), Op::Acquire(r));
        let s = step(s, Op::Release(owner));
        assert_eq!(s.apply(Op::Disown(r)).unwrap().1, Effect::Evict);
        assert_eq!(State::EMPTY.apply(Op::Disown(h1)), Err(Refusal::NotHeld));
        // Idempotent by id in a ledger.
        let mut l = Ledger::new(Init::Claimed(h1), NEVER);
        assert_eq!(l.apply(Op::Disown(h1), NEVER), Ok(Effect::None));
        assert_eq!(l.apply(Op::Disown(h1), NEVER), Ok(Effect::None));
        assert_eq!((l.state, l.holders.len()), (State::EMPTY, 0));
    }

    #[test]
    fn ledger_is_idempotent_by_id() {
        let owner = c(ClaimKind::Owner);
        let reader = c(ClaimKind::Reader);
        let mut l = Ledger::new(Init::Claimed(owner), NEVER);
        l.apply(Op::Acquire(reader), NEVER).unwrap();
        l.apply(Op::Acquire(reader), NEVER).unwrap();
        assert_eq!(l.state.readers(), 1);
        assert_eq!(l.apply(Op::Release(owner), NEVER).unwrap(), Effect::None);
        assert_eq!(l.apply(Op::Release(owner), NEVER).unwrap(), Effect::None);
        assert_eq!(l.apply(Op::Release(reader), NEVER).unwrap(), Effect::Evict);
        // a retried release after the eviction does nothing
        assert_eq!(l.apply(Op::Release(reader), NEVER).unwrap(), Effect::None);
        assert!(l.state.gone());
    }

    #[test]
    fn expired_leases_are_released_like_dropped_handles() {
        let owner = c(ClaimKind::Owner);
        let reader = c(ClaimKind::Reader);
        let mut l = Ledger::new(Init::Claimed(owner), 100);
        l.apply(Op::Acquire(reader), 50).unwrap();
        assert_eq!(l.next_deadline(), Some(50));
        // the reader's process died; the owner still renews
        assert!(l.renew(owner, 200));
        assert_eq!(l.expire(60), Effect::None);
        assert!(!l.holds(reader));
        assert_eq!(l.state.readers(), 0);
        assert!(!l.renew(reader, 300), "a reclaimed claim cannot be renewed");
        // a writer may now enter
        l.apply(Op::Acquire(c(ClaimKind::Writer)), 500).unwrap();
        // the owner's process died too: eviction waits for the writer
        assert_eq!(l.expire(300), Effect::None);
        assert_eq!(l.expire(600), Effect::Evict);
        assert!(l.state.gone());
    }

    #[test]
    fn tickets_are_redeemed_once_and_expire_with_their_claim() {
        let owner = c(ClaimKind::Owner);
        let t = ClaimId::random();
        let mut l = Ledger::new(Init::Claimed(owner), 100);
        l.issue_ticket(t, owner).unwrap();
        assert_eq!(
            l.redeem_ticket(t, ClaimKind::Reader, 1_000),
            Redeem::WrongKind(ClaimKind::Owner),
            "a ticket redeemed as the wrong kind is refused"
        );
        assert_eq!(
            l.redeem_ticket(t, ClaimKind::Owner, 1_000),
            Redeem::Claim(owner)
        );
        assert_eq!(l.redeem_ticket(t, ClaimKind::Owner, 1_000), Redeem::Spent);
        assert_eq!(l.owner, Some((owner.id, 1_000)));

        let t2 = ClaimId::random();
        l.issue_ticket(t2, owner).unwrap();
        // never redeemed: its lease runs out
        assert_eq!(l.expire(2_000), Effect::Evict);
        assert!(l.tickets.is_empty());
        assert_eq!(l.redeem_ticket(t2, ClaimKind::Owner, 3_000), Redeem::Spent);
        assert_eq!(l.issue_ticket(ClaimId::random(), owner), Err(Refusal::Gone));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Acquire(ClaimKind),
        Release(usize),
        Retry(usize),
        Evict,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let kind = prop_oneof![
            Just(ClaimKind::Owner),
            Just(ClaimKind::Holder),
            Just(ClaimKind::Reader),
            Just(ClaimKind::Writer)
        ];
        proptest::collection::vec(
            prop_oneof![
                kind.prop_map(Step::Acquire),
                any::<usize>().prop_map(Step::Release),
                any::<usize>().prop_map(Step::Retry),
                Just(Step::Evict),
            ],
            0..60,
        )
    }

    proptest! {
        /// The ledger and the packed state agree, the rules hold after every
        /// step, and eviction happens at most once and only when allowed.
        #[test]
        fn ledger_keeps_the_invariants(init_owned in any::<bool>(), script in steps()) {
            let init = if init_owned { Init::Claimed(c(ClaimKind::Owner)) } else { Init::Plain };
            let mut l = Ledger::new(init, NEVER);
            let mut held: Vec<Claim> = match init { Init::Claimed(c) => vec![c], Init::Plain => vec![] };
            let mut released: Vec<Claim> = vec![];
            let mut evictions = 0;
            for st in script {
                let before = l.clone();
                let r = match st {
                    Step::Acquire(k) => {
                        let cl = c(k);
                        let r = l.apply(Op::Acquire(cl), NEVER);
                        if r.is_ok() { held.push(cl); }
                        r
                    }
                    Step::Release(i) if !held.is_empty() => {
                        let cl = held.remove(i % held.len());
                        released.push(cl);
                        l.apply(Op::Release(cl), NEVER)
                    }
                    Step::Retry(i) if !released.is_empty() => {
                        let cl = released[i % released.len()];
                        let r = l.apply(Op::Release(cl), NEVER);
                        prop_assert_eq!(r, Ok(Effect::None));
                        prop_assert_eq!(&l, &before);
                        r
                    }
                    Step::Evict => l.apply(Op::Evict, NEVER),
                    _ => continue,
                };
                if r.is_err() { prop_assert_eq!(&l, &before); }
                if r == Ok(Effect::Evict) {
                    evictions += 1;
                    prop_assert!(!l.state.borrowed(), "evicted while borrowed");
                }
                let s = l.state;
                prop_assert!(!(s.writer() && s.readers() > 0));
                prop_assert_eq!(s.readers() as usize, l.readers.len());
                prop_assert_eq!(s.holders() as usize, l.holders.len());
                prop_assert_eq!(s.writer(), l.writer.is_some());
                prop_assert_eq!(s.owned(), l.owner.is_some());
                if s.had_owner() && !s.owned() && s.holders() == 0 && !s.borrowed() {
                    prop_assert!(s.gone());
                }
            }
            prop_assert!(evictions <= 1);
        }
    }
}

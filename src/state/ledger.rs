//! The id-keeping [`Ledger`]: a [`State`] with the id and lease deadline of
//! every claim, and the tickets in flight, for connectors whose requests can
//! be retried or whose claimants can die.

use std::collections::BTreeMap;

use serde::Serialize;

use super::machine::{Claim, ClaimKind, Effect, Init, Op, Refusal, State};
use crate::key::ClaimId;

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
    ///
    /// ```
    /// use borrowstore::state::{Init, Ledger, NEVER};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-new");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let plain = Ledger::new(Init::Plain, NEVER);
    /// assert!(!plain.state.had_owner() && plain.version == 1);  // version 1: the first value
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// use borrowstore::state::{Init, Ledger, NEVER, Op};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-holds");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, NEVER);
    /// assert!(!ledger.holds(reader));
    /// ledger.apply(Op::Acquire(reader), NEVER).unwrap();
    /// assert!(ledger.holds(reader));
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// use borrowstore::state::{Init, Ledger, NEVER, Op};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-apply");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, NEVER);
    /// ledger.apply(Op::Acquire(reader), NEVER).unwrap();
    /// ledger.apply(Op::Acquire(reader), NEVER).unwrap();     // a retried request
    /// assert_eq!(ledger.state.readers(), 1);
    /// ledger.apply(Op::Release(reader), NEVER).unwrap();
    /// ledger.apply(Op::Release(reader), NEVER).unwrap();     // released once
    /// assert_eq!(ledger.state.readers(), 0);
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// use borrowstore::state::{Init, Ledger, Op};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-renew");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, 0);
    /// ledger.apply(Op::Acquire(reader), 1_000).unwrap();
    /// assert!(ledger.renew(reader, 2_000));
    /// assert_eq!(ledger.next_deadline(), Some(2_000));
    /// ledger.expire(2_001);                                  // its lease ran out
    /// assert!(!ledger.renew(reader, 3_000));
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// use borrowstore::state::{Init, Ledger, Op};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-expire");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, 0);
    /// ledger.apply(Op::Acquire(reader), 1_000).unwrap();
    /// ledger.expire(999);
    /// assert!(ledger.holds(reader));
    /// ledger.expire(1_001);                                  // as if its handle had been dropped
    /// assert!(!ledger.holds(reader));
    /// # Ok(()) }
    /// ```
    pub fn expire(&mut self, now: Deadline) -> Effect {
        let mut expired: Vec<Claim> = Vec::new();
        let mut add = |kind, id: &ClaimId, d: &Deadline| {
            if *d < now {
                expired.push(Claim::rebuilt(kind, *id));
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
    ///
    /// ```
    /// use borrowstore::state::{Init, Ledger, NEVER, Op};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-next-deadline");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, NEVER);
    /// assert_eq!(ledger.next_deadline(), None);
    /// ledger.apply(Op::Acquire(reader), 5_000).unwrap();
    /// assert_eq!(ledger.next_deadline(), Some(5_000));
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// use borrowstore::ClaimId;
    /// use borrowstore::state::{Init, Ledger, NEVER, Op, Refusal};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-issue-ticket");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, NEVER);
    /// assert_eq!(ledger.issue_ticket(ClaimId::random(), reader), Err(Refusal::NotHeld));
    /// ledger.apply(Op::Acquire(reader), NEVER).unwrap();
    /// ledger.issue_ticket(ClaimId::random(), reader).unwrap();
    /// assert_eq!(ledger.tickets.len(), 1);
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```
    /// use borrowstore::ClaimId;
    /// use borrowstore::state::{ClaimKind, Init, Ledger, NEVER, Op, Redeem};
    /// # use borrowstore::{Store, borrow};
    /// # use borrowstore::submit::task_borrows;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// # let store = Store::memory("doc-ledger-redeem-ticket");
    /// # let owner = store.owned_proxy(1u8)?;
    /// # let mut r = borrow(&owner)?;
    /// # // A reader claim, as a connector receives one.
    /// # let reader = task_borrows(&mut r)[0].claim;
    /// let mut ledger = Ledger::new(Init::Plain, NEVER);
    /// ledger.apply(Op::Acquire(reader), NEVER).unwrap();
    /// let ticket = ClaimId::random();
    /// ledger.issue_ticket(ticket, reader).unwrap();
    /// assert_eq!(ledger.redeem_ticket(ticket, ClaimKind::Owner, NEVER), Redeem::WrongKind(ClaimKind::Reader));
    /// assert_eq!(ledger.redeem_ticket(ticket, ClaimKind::Reader, NEVER), Redeem::Claim(reader));
    /// assert_eq!(ledger.redeem_ticket(ticket, ClaimKind::Reader, NEVER), Redeem::Spent); // once
    /// # Ok(()) }
    /// ```
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

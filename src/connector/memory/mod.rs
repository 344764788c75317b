//! The in-process connector: a concurrent map of slots.

use std::sync::Weak;

use crate::connector::{Connector, Entry, Fetch, Inspect, Recheck, Stored, Value, Waiters};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Op, State};
use crate::sync::{self, Arc, AtomicU64, Map, Ordering, RwLock};

mod records;

use records::Records;

/// Keeps objects in this process's memory. The embedded default
/// (`memory://name`).
///
/// Each object is a slot: its [`State`] packed in one `AtomicU64`, and its
/// value with its version behind a lock. A borrow is one compare-and-swap on
/// the slot, reached through the [`Entry`] its proxies keep. Values put as
/// [`Value::Local`] are kept undecoded and shared, never copied.
///
/// Waiting borrows are woken by the release that frees them, never by
/// polling: a waiter marks the slot (a bit of the same atomic word, which
/// the state machine never uses) before it tries, and a release that finds
/// the mark clears it and announces the release to the connector's
/// [`Waiters`]. A release that finds no mark costs nothing more: the mark
/// is in the word its compare-and-swap reads anyway.
///
/// # What it records for inspection
///
/// Each slot keeps its value's type name and size, when it was stored and
/// its name (fixed at the put), and its owner's note and time. The claims
/// that proxies take through a slot (borrows) are written to this
/// process's claim journal, without a lock or an allocation: a record per
/// claim, taken from a chunk of records of the borrowing thread and freed
/// by its release. Claims taken otherwise (scopes, lifetimes, async
/// borrows) are kept in a list beside the slot, under a lock. Every claim
/// is this process's, with no lease.
pub struct MemoryConnector {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    slots: Map<Key, Arc<Slot>>,
    tickets: Map<ClaimId, Ticket>,
    waiters: Arc<Waiters>,
}

/// The waiting mark in a slot's state word: a bit [`State`] never uses (it
/// packs its counts and flags in bits 0 to 59). Set by a waiter before it
/// tries; cleared, and announced, by the next release.
const WAITING: u64 = 1 << 63;

#[derive(Clone)]
struct Ticket {
    key: Key,
    claim: Claim,
    redeemed: bool,
}

struct Slot {
    key: Key,
    state: AtomicU64,
    stored: RwLock<Option<Stored>>,
    home: Weak<Shared>,
    /// Set before this slot's first ticket is recorded; `finish` sweeps the
    /// ticket map only when it is set.
    has_tickets: std::sync::atomic::AtomicBool,
    /// What inspection reports beside the state and the value.
    records: Records,
}

impl MemoryConnector {
    /// An empty memory connector for the store named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        MemoryConnector {
            shared: Arc::new(Shared {
                name: name.into(),
                slots: Map::new(),
                tickets: Map::new(),
                waiters: Waiters::new(Recheck::Never),
            }),
        }
    }

    fn slot(&self, key: &Key) -> Option<Arc<Slot>> {
        self.shared.slots.get(key)
    }

    fn slot_or_missing(&self, key: &Key) -> Result<Arc<Slot>> {
        self.slot(key).ok_or_else(|| Error::KeyNotFound {
            key: *key,
            store: self.shared.name.clone(),
        })
    }

    /// Number of objects stored.
    pub fn len(&self) -> usize {
        self.shared.slots.len()
    }

    /// Whether no object is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Slot {
    fn store_name(&self) -> String {
        self.home
            .upgrade()
            .map(|h| h.name.clone())
            .unwrap_or_default()
    }

    fn load(&self) -> State {
        State::from_bits(self.state.load(Ordering::Acquire) & !WAITING)
    }

    /// A borrow's acquire: one compare-and-swap where the borrow is free to
    /// take (the bits of `State::bits_after_take`), the full transition
    /// otherwise (for its refusal, or when the word changed under it).
    #[inline]
    fn take_claim(&self, c: &Claim) -> Result<Effect> {
        let current = self.state.load(Ordering::Acquire);
        if let Some(next) = State::bits_after_take(current, c.kind)
            && self
                .state
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            if c.record().is_none() {
                self.records.note_taken(*c);
            }
            return Ok(Effect::None);
        }
        self.transition(Op::Acquire(*c))
    }

    /// A borrow's release: one compare-and-swap where it has no effect and
    /// no waiter is marked (the bits of `State::bits_after_give_back`),
    /// the full transition otherwise (it evicts, or announces itself).
    #[inline]
    fn give_back_claim(&self, c: &Claim) -> Result<Effect> {
        let current = self.state.load(Ordering::Acquire);
        if current & WAITING == 0
            && let Some(next) = State::bits_after_give_back(current, c.kind)
            && self
                .state
                .compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            match c.record() {
                Some(r) => r.free(),
                None => self.records.note_given_back(*c),
            }
            return Ok(Effect::None);
        }
        self.transition(Op::Release(*c))
    }

    /// The compare-and-swap loop that applies one transition. An acquire
    /// keeps the waiting mark; any other transition clears it and, if it
    /// was set, announces itself to the waiters.
    #[inline]
    fn transition(&self, op: Op) -> Result<Effect> {
        let frees = !matches!(op, Op::Acquire(_));
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (next, effect) = State::from_bits(current & !WAITING)
                .apply(op)
                .map_err(|r| r.into_error(op.name(), self.key, &self.store_name()))?;
            let next = if frees {
                next.to_bits()
            } else {
                next.to_bits() | (current & WAITING)
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    match op {
                        Op::Acquire(c) if c.record().is_none() => self.records.note_taken(c),
                        Op::Release(c) | Op::Disown(c) => match c.record() {
                            Some(r) => r.free(),
                            None => self.records.note_given_back(c),
                        },
                        _ => {}
                    }
                    if effect == Effect::Evict {
                        self.finish();
                    }
                    if frees && current & WAITING != 0 {
                        self.announce();
                    }
                    return Ok(effect);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Marks the slot: the next release announces itself. (Set after the
    /// waiter recorded what was announced, before it tries; the mark and the
    /// borrow state are one word, so the release either sees the mark or
    /// comes before the try.)
    fn mark_waiting(&self) {
        self.state.fetch_or(WAITING, Ordering::AcqRel);
    }

    #[cold]
    fn announce(&self) {
        if let Some(home) = self.home.upgrade() {
            home.waiters.notify(&self.key);
        }
    }

    /// Runs once, after the transition that evicted the slot: drops the
    /// value, the map entry and the slot's tickets. Returns the value.
    fn finish(&self) -> Option<Stored> {
        let stored = sync::write(&self.stored).take();
        if let Some(home) = self.home.upgrade() {
            home.slots
                .remove_if(&self.key, |s| std::ptr::eq(Arc::as_ptr(s), self));
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.has_tickets.load(Ordering::SeqCst) {
                home.tickets.retain(|_, t| t.key != self.key);
            }
        }
        stored
    }

    fn take(&self) -> Result<Option<Stored>> {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let next = match State::from_bits(current & !WAITING).apply(Op::Evict) {
                Ok((next, _)) => next,
                Err(crate::state::Refusal::Gone) => return Ok(None),
                Err(r) => return Err(r.into_error(Op::Evict.name(), self.key, &self.store_name())),
            };
            match self.state.compare_exchange_weak(
                current,
                next.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let stored = self.finish();
                    if current & WAITING != 0 {
                        self.announce();
                    }
                    return Ok(stored);
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn fetch(&self, known: Option<u64>) -> Fetch {
        match &*sync::read(&self.stored) {
            None => Fetch::Missing,
            Some(s) if Some(s.version) == known => Fetch::Unchanged,
            Some(s) => Fetch::Changed(s.clone()),
        }
    }

    fn publish(&self, writer: Claim, value: Value) -> Result<u64> {
        if writer.kind != crate::state::ClaimKind::Writer || !self.load().writer() {
            return Err(Error::ClaimLost { key: self.key });
        }
        let mut guard = sync::write(&self.stored);
        match &mut *guard {
            None => Err(Error::KeyNotFound {
                key: self.key,
                store: self.store_name(),
            }),
            Some(s) => {
                s.version += 1;
                s.value = value;
                Ok(s.version)
            }
        }
    }
}

impl Entry for Slot {
    fn apply(&self, op: Op) -> Result<Effect> {
        self.transition(op)
    }

    fn release(&self, claim: Claim) {
        if let Err(e) = self.transition(Op::Release(claim)) {
            tracing::warn!(key = %self.key, error = %e, "release failed");
        }
    }

    #[inline]
    fn take_borrow(&self, claim: &Claim) -> Result<Effect> {
        self.take_claim(claim)
    }

    #[inline]
    fn give_back_borrow(&self, claim: &Claim) {
        if let Err(e) = self.give_back_claim(claim) {
            tracing::warn!(key = %self.key, error = %e, "release failed");
        }
    }

    fn fetch(&self, known_version: Option<u64>) -> Result<Fetch> {
        Ok(Slot::fetch(self, known_version))
    }

    fn publish(&self, writer: Claim, value: Value) -> Result<u64> {
        Slot::publish(self, writer, value)
    }

    fn listen(&self) {
        self.mark_waiting();
    }

    fn journaled(&self) -> bool {
        true
    }
}

impl Connector for MemoryConnector {
    fn queues_releases(&self) -> bool {
        false
    }

    fn keeps_local_values(&self) -> bool {
        true
    }

    /// In this process: nothing blocks.
    fn does_io(&self) -> bool {
        false
    }

    fn waiters(&self) -> Option<&Arc<Waiters>> {
        Some(&self.shared.waiters)
    }

    fn listen(&self, key: &Key) {
        if let Some(s) = self.slot(key) {
            s.mark_waiting();
        }
    }

    fn put(&self, key: &Key, value: Value, init: Init) -> Result<Option<Arc<dyn Entry>>> {
        let slot = Arc::new(Slot {
            key: *key,
            state: AtomicU64::new(State::new(init).to_bits()),
            stored: RwLock::new(Some(Stored { value, version: 1 })),
            home: Arc::downgrade(&self.shared),
            has_tickets: std::sync::atomic::AtomicBool::new(false),
            records: Records::new(init),
        });
        if self.shared.slots.insert_new(*key, slot.clone()) {
            Ok(Some(slot))
        } else {
            Err(Error::Connector {
                store: self.shared.name.clone(),
                source: format!("key {key} already exists").into(),
            })
        }
    }

    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        Ok(self.slot(key).and_then(|s| sync::read(&s.stored).clone()))
    }

    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        Ok(self
            .slot(key)
            .map_or(Fetch::Missing, |s| s.fetch(known_version)))
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.shared.slots.contains(key))
    }

    fn evict(&self, key: &Key) -> Result<bool> {
        match self.slot(key) {
            None => Ok(false),
            Some(s) => match s.transition(Op::Evict) {
                Ok(_) => Ok(true),
                Err(Error::KeyNotFound { .. }) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        match self.slot(key) {
            None => Ok(None),
            Some(s) => s.take(),
        }
    }

    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        self.slot_or_missing(key)?.publish(writer, value)
    }

    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        self.slot_or_missing(key)?.transition(op)
    }

    fn entry(&self, key: &Key) -> Result<Option<Arc<dyn Entry>>> {
        Ok(self.slot(key).map(|s| s as Arc<dyn Entry>))
    }

    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        let slot = self.slot_or_missing(key)?;
        let t = Ticket {
            key: *key,
            claim,
            redeemed: false,
        };
        slot.has_tickets.store(true, Ordering::SeqCst);
        slot.records.note_ticket(claim, true);
        if !self.shared.tickets.insert_new(ticket, t) {
            return Err(Error::TicketRedeemed {
                ticket: ticket.to_string(),
            });
        }
        // An eviction that ran between the lookup and the insert has already
        // swept the tickets: sweep this one too.
        std::sync::atomic::fence(Ordering::SeqCst);
        if slot.load().gone() {
            self.shared.tickets.remove(&ticket);
            return Err(Error::KeyNotFound {
                key: *key,
                store: self.shared.name.clone(),
            });
        }
        Ok(())
    }

    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        let outcome = self.shared.tickets.with_mut(&ticket, |t| {
            if t.redeemed || t.key != *key {
                Err(None)
            } else if t.claim.kind != kind {
                Err(Some(t.claim.kind))
            } else {
                t.redeemed = true;
                Ok(t.claim)
            }
        });
        match outcome {
            Some(Ok(claim)) => {
                if let Some(s) = self.slot(key) {
                    s.records.note_ticket(claim, false);
                }
                Ok(claim)
            }
            Some(Err(Some(found))) => Err(crate::connector::wrong_ticket_kind(found, kind)),
            _ => Err(Error::TicketRedeemed {
                ticket: ticket.to_string(),
            }),
        }
    }

    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        let claim = self.redeem_ticket(key, ticket, kind)?;
        self.apply(key, Op::Release(claim)).map(|_| ())
    }

    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        Ok(self.slot(key).and_then(|s| {
            let stored = sync::read(&s.stored).as_ref()?.clone();
            let state = s.load();
            let version = stored.version;
            let me = std::ptr::from_ref(&*s).cast::<()>() as usize;
            let (object, claims) = s.records.report(state, &stored.value, me);
            Some(Inspect {
                state,
                version,
                object,
                claims,
            })
        }))
    }

    fn keys(&self) -> Result<Vec<Key>> {
        Ok(self.shared.slots.keys())
    }
}

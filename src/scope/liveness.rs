//! The reference counts of one liveness scope.
//!
//! A scope holds one store-side holder claim per reference: managing an
//! object twice holds two claims, unmanaging gives one back. The scope's own
//! table only remembers which claims it holds; whether an object lives is
//! decided store-side, where the claims of every scope, lifetime and owner
//! of every process are counted together.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::key::Key;
use crate::lifetime::release_claims;
use crate::state::{Claim, ClaimKind, Note, Op};
use crate::store::Store;
use crate::store::manager::Manager;
use crate::sync::{self, Mutex, unmodeled};

/// One store's object, as a map key: (store identity, key).
type Slot = (usize, Key);

/// The claims a scope holds on one object.
struct Held {
    store: Store,
    claims: Vec<Claim>,
}

/// A scope's table of claims. Also the [`Manager`] a scope pushes while it
/// is open.
pub(crate) struct ScopeInner {
    held: Mutex<HashMap<Slot, Held>>,
    /// The note of the claims it takes: its name, or where it was made.
    note: std::sync::Mutex<Note>,
}

impl ScopeInner {
    #[track_caller]
    pub(crate) fn new() -> ScopeInner {
        ScopeInner {
            held: Mutex::new(HashMap::new()),
            note: std::sync::Mutex::new(Note::here()),
        }
    }

    pub(crate) fn name(&self, name: &'static str) {
        *unmodeled::lock(&self.note) = Note::named(name);
    }

    fn note(&self) -> Note {
        *unmodeled::lock(&self.note)
    }

    fn record(&self, store: &Store, key: Key, claim: Claim) {
        sync::lock(&self.held)
            .entry((store.identity(), key))
            .or_insert_with(|| Held {
                store: store.clone(),
                claims: Vec::new(),
            })
            .claims
            .push(claim);
    }

    /// Takes one more reference: a holder claim, acquired store-side first
    /// (so the object cannot be evicted between the check and the record).
    pub(crate) fn manage(&self, store: &Store, key: Key) -> Result<()> {
        let claim = Claim::noted(ClaimKind::Holder, self.note());
        store.connector().apply(&key, Op::Acquire(claim))?;
        self.record(store, key, claim);
        Ok(())
    }

    /// Gives one reference back, if the scope holds one. Never blocks on
    /// the network.
    pub(crate) fn unmanage(&self, store: &Store, key: Key) -> bool {
        let claim = {
            let mut held = sync::lock(&self.held);
            let slot = (store.identity(), key);
            let Some(h) = held.get_mut(&slot) else {
                return false;
            };
            let claim = h.claims.pop();
            if h.claims.is_empty() {
                held.remove(&slot);
            }
            claim
        };
        match claim {
            Some(c) => {
                store.forget_cached(&key);
                store.connector().release(&key, c);
                true
            }
            None => false,
        }
    }

    /// Gives back every reference the scope holds on `key` of `store`
    /// without handing the object to anyone: the last one through
    /// [`Op::Disown`], so an object that no other owner holds becomes an
    /// object without an owner instead of being evicted. A scope that holds
    /// no reference on it only checks that the object exists.
    pub(crate) fn disown(&self, store: &Store, key: Key) -> Result<()> {
        let claims = sync::lock(&self.held)
            .remove(&(store.identity(), key))
            .map(|h| h.claims)
            .unwrap_or_default();
        let Some((last, rest)) = claims.split_last() else {
            return if store.connector().exists(&key)? {
                Ok(())
            } else {
                Err(Error::KeyNotFound {
                    key,
                    store: store.name().to_owned(),
                })
            };
        };
        // While `last` is held these cannot evict; they are applied (or
        // queued) before the disowning request.
        for c in rest {
            store.connector().release(&key, *c);
        }
        store.connector().apply(&key, Op::Disown(*last)).map(|_| ())
    }

    /// How many references the scope holds on `key` of `store`.
    pub(crate) fn references(&self, store: &Store, key: Key) -> usize {
        sync::lock(&self.held)
            .get(&(store.identity(), key))
            .map_or(0, |h| h.claims.len())
    }

    /// Number of distinct objects, and of references.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let held = sync::lock(&self.held);
        (held.len(), held.values().map(|h| h.claims.len()).sum())
    }

    /// The keys of the objects the scope manages.
    pub(crate) fn keys(&self) -> Vec<Key> {
        sync::lock(&self.held).keys().map(|(_, k)| *k).collect()
    }

    /// Gives every reference back, in a loop (never recursively, however
    /// many objects), and if `flush` waits until the stores applied it.
    /// Claims taken concurrently with the release either are released by
    /// it or stay held: each one is given back exactly once.
    pub(crate) fn release(&self, flush: bool) -> Result<()> {
        let taken = std::mem::take(&mut *sync::lock(&self.held));
        release_claims(
            taken.into_iter().flat_map(|((_, key), h)| {
                let store = h.store;
                h.claims.into_iter().map(move |c| (store.clone(), key, c))
            }),
            flush,
        )
    }
}

impl Manager for ScopeInner {
    fn claim_for(&self, _store: &Store, _key: Key) -> Option<Claim> {
        Some(Claim::noted(ClaimKind::Holder, self.note()))
    }

    fn adopt(&self, store: &Store, key: Key, claim: Claim) -> Result<()> {
        self.record(store, key, claim);
        Ok(())
    }
}

impl Drop for ScopeInner {
    /// The last handle of a scope is gone: give back what it still holds
    /// (without waiting on the network).
    fn drop(&mut self) {
        let _ = self.release(false);
    }
}

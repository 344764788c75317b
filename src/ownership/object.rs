//! The anchor that an owner and its borrows share.

use std::sync::Arc;

use crate::codec::Storable;
use crate::connector::Entry;
use crate::error::Result;
use crate::key::Key;
use crate::state::{Claim, ClaimKind, Effect, Op};
use crate::store::{Store, Target};

/// One object as its handles see it: store, key, and the connector's entry
/// (if it has one), so that a borrow is one state transition and no lookup.
/// The key and the entry reach the store as a [`Target`].
pub(crate) struct Object {
    pub(crate) store: Store,
    pub(crate) key: Key,
    entry: Option<Arc<dyn Entry>>,
}

impl Object {
    pub(crate) fn new(store: Store, key: Key, entry: Option<Arc<dyn Entry>>) -> Arc<Object> {
        Arc::new(Object { store, key, entry })
    }

    /// Looks the entry up (for handles made from a key: `into_owned`, tickets).
    pub(crate) fn attach(store: Store, key: Key) -> Result<Arc<Object>> {
        let entry = store.connector().entry(&key)?;
        Ok(Object::new(store, key, entry))
    }

    /// Where this object's operations go.
    #[inline]
    fn target(&self) -> Target<'_> {
        Target::new(&self.key, self.entry.as_deref())
    }

    #[inline]
    pub(crate) fn apply(&self, op: Op) -> Result<Effect> {
        self.target().apply(&self.store, op)
    }

    /// Takes a new claim of `kind`.
    #[inline]
    pub(crate) fn acquire(&self, kind: ClaimKind) -> Result<Claim> {
        let claim = Claim::new(kind);
        self.apply(Op::Acquire(claim))?;
        Ok(claim)
    }

    /// Whether the connector gave this object an entry (the memory store):
    /// then a claim is one atomic transition and nothing is read with it.
    #[inline]
    pub(crate) fn has_entry(&self) -> bool {
        self.entry.is_some()
    }

    /// Takes a new claim of `kind`. Where the object has no entry (network
    /// and file connectors), the same request also reads the value unless
    /// this process's cached version is current: one round trip for a
    /// borrow and its resolve. A value that cannot be decoded is left for
    /// the first resolve to report; the claim is held either way.
    pub(crate) fn acquire_resolving<T: Storable>(
        &self,
        kind: ClaimKind,
    ) -> Result<(Claim, Option<Arc<T>>)> {
        if self.entry.is_some() {
            return Ok((self.acquire(kind)?, None));
        }
        let claim = Claim::new(kind);
        let known = self.store.cached_version(&self.key);
        let fetch = self
            .store
            .connector()
            .acquire_fetch(&self.key, claim, known)?;
        let value = fetch.and_then(|f| {
            self.store
                .materialize_fetch::<T>(&self.key, f, known)
                .ok()
                .map(|(v, _)| v)
        });
        Ok((claim, value))
    }

    /// Gives a claim back; never blocks on the network, never panics.
    #[inline]
    pub(crate) fn release(&self, claim: Claim) {
        if matches!(claim.kind, ClaimKind::Owner | ClaimKind::Holder) {
            self.store.forget_cached(&self.key);
        }
        self.target().release(&self.store, claim);
    }

    pub(crate) fn resolve<T: Storable>(&self) -> Result<Arc<T>> {
        self.store.resolve(self.target())
    }

    pub(crate) fn resolve_versioned<T: Storable>(&self) -> Result<Snapshot<T>> {
        self.store
            .resolve_versioned(self.target())
            .map(|(value, version)| Snapshot { value, version })
    }

    /// Whether the stored version is still `version`.
    pub(crate) fn is_current(&self, version: u64) -> Result<bool> {
        match self.target().fetch(&self.store, Some(version))? {
            crate::connector::Fetch::Unchanged => Ok(true),
            crate::connector::Fetch::Changed(_) => Ok(false),
            crate::connector::Fetch::Missing => Err(self.store.not_found(&self.key)),
        }
    }

    pub(crate) fn publish<T: Storable>(&self, writer: Claim, value: Arc<T>) -> Result<u64> {
        let version =
            self.store
                .publish(self.target(), writer, self.store.value_of(value.clone())?)?;
        // The next resolve in this process finds the published value decoded.
        self.store.remember(self.key, version, value);
        Ok(version)
    }
}

/// Resolves once into `cell`, panicking with the key, store and cause on
/// failure (the `Deref` contract).
pub(crate) fn resolved<'a, T: Storable>(
    obj: &Object,
    cell: &'a std::sync::OnceLock<Arc<T>>,
) -> Result<&'a Arc<T>> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    match obj.resolve::<T>() {
        Ok(v) => Ok(cell.get_or_init(|| v)),
        Err(e) => cell.get().ok_or(e),
    }
}

pub(crate) fn deref_failed(obj: &Object, what: &str, e: &crate::Error) -> ! {
    panic!(
        "borrowstore: cannot resolve {what} of key {} in store {:?}: {e}",
        obj.key,
        obj.store.name()
    )
}

/// A resolved value and the store-side version it is.
pub(crate) struct Snapshot<T> {
    pub(crate) value: Arc<T>,
    pub(crate) version: u64,
}

impl<T> Clone for Snapshot<T> {
    fn clone(&self) -> Self {
        Snapshot {
            value: self.value.clone(),
            version: self.version,
        }
    }
}

/// Resolves once into `cell` (the `Deref` snapshot of an owner).
pub(crate) fn snapshot<'a, T: Storable>(
    obj: &Object,
    cell: &'a std::sync::OnceLock<Snapshot<T>>,
) -> Result<&'a Snapshot<T>> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    match obj.resolve_versioned::<T>() {
        Ok(v) => Ok(cell.get_or_init(|| v)),
        Err(e) => cell.get().ok_or(e),
    }
}

/// Publishes a locally changed value; returns the published snapshot. On
/// failure the value is handed back so no data is lost.
pub(crate) fn publish_local<T: Storable>(
    obj: &Object,
    writer: Claim,
    local: &mut Option<T>,
) -> Result<Option<Snapshot<T>>> {
    let Some(value) = local.take() else {
        return Ok(None);
    };
    let shared = Arc::new(value);
    match obj.publish(writer, shared.clone()) {
        Ok(version) => Ok(Some(Snapshot {
            value: shared,
            version,
        })),
        Err(e) => {
            // The connector dropped its copy with the error; ours is unique.
            match Arc::try_unwrap(shared) {
                Ok(v) => *local = Some(v),
                Err(s) => *local = Some(T::clone(&s)),
            }
            Err(e)
        }
    }
}

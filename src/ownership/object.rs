//! The anchor that an owner and its borrows share.

use std::sync::Arc;

use crate::codec::Storable;
use crate::connector::Entry;
use crate::error::Result;
use crate::key::Key;
use crate::observe::{self, op_span};
use crate::state::{Claim, ClaimKind, Effect, Note, Op, journal};
use crate::store::{Store, Target};

/// One object as its handles see it: store, key, and the connector's entry
/// (if it has one), so that a borrow is one state transition and no lookup.
/// The key and the entry reach the store as a [`Target`].
pub(crate) struct Object {
    pub(crate) store: Store,
    pub(crate) key: Key,
    entry: Option<Arc<dyn Entry>>,
    /// Where the entry's claims are journaled in this process (the address
    /// of the entry, see [`journal`]); 0 for an entry whose connector
    /// records its claims itself, or none.
    journal: usize,
}

impl Object {
    pub(crate) fn new(store: Store, key: Key, entry: Option<Arc<dyn Entry>>) -> Arc<Object> {
        let journal = match &entry {
            Some(e) if e.journaled() => Arc::as_ptr(e).cast::<()>() as usize,
            _ => 0,
        };
        Arc::new(Object {
            store,
            key,
            entry,
            journal,
        })
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

    /// Takes a new claim of `kind`, noting the caller's call site (and
    /// journaling the claim, on an entry whose claims are journaled).
    #[inline]
    #[track_caller]
    pub(crate) fn acquire(&self, kind: ClaimKind) -> Result<Claim> {
        self.acquire_noted(kind, Note::here())
    }

    /// [`acquire`](Self::acquire), labelled `note`.
    #[inline]
    pub(crate) fn acquire_noted(&self, kind: ClaimKind, note: Note) -> Result<Claim> {
        let mut claim = Claim::noted(kind, note);
        if self.journal != 0
            && let Some(r) = journal::record(self.journal, kind.code(), note)
        {
            claim.set_record(r);
        }
        match self.target().take(&self.store, &claim) {
            Ok(_) => {
                observe::claims(|| self.store.name(), 1.0);
                Ok(claim)
            }
            Err(e) => {
                if let Some(r) = claim.record() {
                    r.free();
                }
                Err(e)
            }
        }
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
    #[track_caller]
    pub(crate) fn acquire_resolving<T: Storable>(
        &self,
        kind: ClaimKind,
    ) -> Result<(Claim, Option<Arc<T>>)> {
        self.acquire_resolving_noted(kind, Note::here())
    }

    /// [`acquire_resolving`](Self::acquire_resolving), labelled `note`.
    pub(crate) fn acquire_resolving_noted<T: Storable>(
        &self,
        kind: ClaimKind,
        note: Note,
    ) -> Result<(Claim, Option<Arc<T>>)> {
        if self.entry.is_some() {
            return Ok((self.acquire_noted(kind, note)?, None));
        }
        let claim = Claim::noted(kind, note);
        let known = self.store.cached_version(&self.key);
        let fetch = self
            .store
            .blocking()
            .acquire_fetch(&self.key, claim, known)?;
        let value = fetch.and_then(|f| {
            self.store
                .materialize_fetch::<T>(&self.key, f, known)
                .ok()
                .map(|(v, _)| v)
        });
        Ok((claim, value))
    }

    /// [`apply`](Self::apply), without blocking the executor.
    pub(crate) async fn apply_async(&self, op: Op) -> Result<Effect> {
        self.target().apply_async(&self.store, op).await
    }

    /// [`acquire`](Self::acquire), labelled `note`, without blocking the
    /// executor. If the future is dropped, the claim is given back.
    pub(crate) async fn acquire_async(&self, kind: ClaimKind, note: Note) -> Result<Claim> {
        let claim = Claim::noted(kind, note);
        self.apply_async(Op::Acquire(claim)).await?;
        Ok(claim)
    }

    /// Takes a new claim of `kind` without blocking the executor, with the
    /// read that the connector combines with it (as
    /// [`acquire_resolving`](Self::acquire_resolving)): the claim, and the
    /// value if it came along. If the future is dropped, the claim is given
    /// back.
    pub(crate) async fn acquire_resolving_async<T: Storable>(
        &self,
        kind: ClaimKind,
        note: Note,
    ) -> Result<(Claim, Option<Arc<T>>)> {
        if self.entry.is_some() {
            return Ok((self.acquire_noted(kind, note)?, None));
        }
        let claim = Claim::noted(kind, note);
        let known = self.store.cached_version(&self.key);
        let fetch = self
            .store
            .connector()
            .acquire_fetch_async(self.key, claim, known)
            .await?;
        let value =
            fetch.and_then(
                |f| match self.store.materialize_known::<T>(&self.key, f, known) {
                    Ok(Some((v, _))) => Some(v),
                    _ => None,
                },
            );
        Ok((claim, value))
    }

    /// A waiting borrow of this process is about to try the object.
    pub(crate) fn listen(&self) {
        self.target().listen(&self.store);
    }

    /// Gives a claim back; never blocks on the network, never panics.
    #[inline]
    pub(crate) fn release(&self, claim: Claim) {
        if observe::watched() {
            return self.release_watched(claim);
        }
        self.give_back(claim);
    }

    /// [`release`](Self::release) in its span, counted.
    #[cold]
    #[inline(never)]
    fn release_watched(&self, claim: Claim) {
        let span = op_span!("release", self.store, self.key);
        span.in_scope(|| self.give_back(claim));
        observe::claims(|| self.store.name(), -1.0);
        observe::finish(&span, || self.store.name(), "release", &Ok(()));
    }

    #[inline]
    fn give_back(&self, claim: Claim) {
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

    pub(crate) async fn resolve_async<T: Storable>(&self) -> Result<Arc<T>> {
        self.store.resolve_async(self.target()).await
    }

    pub(crate) async fn resolve_versioned_async<T: Storable>(&self) -> Result<Snapshot<T>> {
        self.store
            .resolve_versioned_async(self.target())
            .await
            .map(|(value, version)| Snapshot { value, version })
    }

    /// [`is_current`](Self::is_current), without blocking the executor.
    pub(crate) async fn is_current_async(&self, version: u64) -> Result<bool> {
        match self
            .target()
            .fetch_async(&self.store, Some(version))
            .await?
        {
            crate::connector::Fetch::Unchanged => Ok(true),
            crate::connector::Fetch::Changed(_) => Ok(false),
            crate::connector::Fetch::Missing => Err(self.store.not_found(&self.key)),
        }
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
        let span = op_span!("publish", self.store, self.key);
        let r = {
            let _in = span.enter();
            self.store
                .value_of(value.clone())
                .and_then(|v| self.store.publish(self.target(), writer, v))
        };
        observe::finish(&span, || self.store.name(), "publish", &r);
        let version = r?;
        // The next resolve in this process finds the published value decoded.
        self.store.remember(self.key, version, value);
        Ok(version)
    }

    /// [`publish`](Self::publish), without blocking the executor.
    pub(crate) async fn publish_async<T: Storable>(
        &self,
        writer: Claim,
        value: Arc<T>,
    ) -> Result<u64> {
        let span = op_span!("publish", self.store, self.key);
        let encoded = self.store.value_of(value.clone())?;
        let r = self
            .store
            .publish_async(self.target(), writer, encoded)
            .await;
        observe::finish(&span, || self.store.name(), "publish", &r);
        let version = r?;
        self.store.remember(self.key, version, value);
        Ok(version)
    }

    /// Publishes without blocking on the network, for `Drop`: queued ahead
    /// of the writer's release where the connector queues releases. A
    /// failure (at once, or of the queued publish, at the next flush) is
    /// reported by the store's next flush.
    pub(crate) fn publish_on_drop<T: Storable>(&self, writer: Claim, value: Arc<T>) {
        let span = op_span!("publish", self.store, self.key);
        let _in = span.enter();
        let queued = self
            .store
            .value_of(value.clone())
            .and_then(|v| self.target().queue_publish(&self.store, writer, v));
        observe::finish(&span, || self.store.name(), "publish", &queued);
        match queued {
            Ok(Some(version)) => self.store.remember(self.key, version, value),
            // The new version is not known until it lands: read it then.
            Ok(None) => self.store.forget_cached(&self.key),
            Err(e) => self.store.defer_error(e),
        }
    }
}

/// Gives a claim back when dropped (a transient claim held across awaits).
pub(crate) struct Releasing {
    pub(crate) obj: Arc<Object>,
    pub(crate) claim: Claim,
}

impl Drop for Releasing {
    fn drop(&mut self) {
        self.obj.release(self.claim);
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

/// [`resolved`], without blocking the executor.
pub(crate) async fn resolved_async<'a, T: Storable>(
    obj: &Object,
    cell: &'a std::sync::OnceLock<Arc<T>>,
) -> Result<&'a Arc<T>> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    match obj.resolve_async::<T>().await {
        Ok(v) => Ok(cell.get_or_init(|| v)),
        Err(e) => cell.get().ok_or(e),
    }
}

/// [`snapshot`], without blocking the executor.
pub(crate) async fn snapshot_async<'a, T: Storable>(
    obj: &Object,
    cell: &'a std::sync::OnceLock<Snapshot<T>>,
) -> Result<&'a Snapshot<T>> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    match obj.resolve_versioned_async::<T>().await {
        Ok(v) => Ok(cell.get_or_init(|| v)),
        Err(e) => cell.get().ok_or(e),
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

/// [`publish_local`], without blocking the executor. If the future is
/// dropped before the publish is known to have failed or succeeded, the
/// local changes are put back (they may have been published too).
pub(crate) async fn publish_local_async<T: Storable>(
    obj: &Object,
    writer: Claim,
    local: &mut Option<T>,
) -> Result<Option<Snapshot<T>>> {
    let Some(value) = local.take() else {
        return Ok(None);
    };
    let shared = Arc::new(value);
    let mut back = PutBack {
        local,
        value: Some(shared.clone()),
    };
    match obj.publish_async(writer, shared.clone()).await {
        Ok(version) => {
            back.value = None;
            Ok(Some(Snapshot {
                value: shared,
                version,
            }))
        }
        Err(e) => {
            drop(shared);
            drop(back);
            Err(e)
        }
    }
}

/// Puts a value being published back into its handle's local changes
/// unless the publish went through (see [`publish_local_async`]).
struct PutBack<'a, T: Storable> {
    local: &'a mut Option<T>,
    value: Option<Arc<T>>,
}

impl<T: Storable> Drop for PutBack<'_, T> {
    fn drop(&mut self) {
        if let Some(shared) = self.value.take() {
            *self.local = Some(match Arc::try_unwrap(shared) {
                Ok(v) => v,
                Err(s) => T::clone(&s),
            });
        }
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

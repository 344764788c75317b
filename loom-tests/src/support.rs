//! Helpers shared by the models.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use borrowstore::connector::{Connector, Entry, Fetch, Inspect, MemoryConnector, Stored, Value};
use borrowstore::state::{Claim, ClaimKind, Effect, Init, Op};
use borrowstore::{ClaimId, Key, ObjectInfo, Result, Store};

/// A store name no other loom iteration has used.
///
/// The store registry is a process-wide std lock and `Store::memory(name)`
/// returns the registered store of that name, whose loom objects belong to
/// an earlier (finished) execution; touching them would abort the model. So
/// every iteration makes its own store, and [`finish`] unregisters it inside
/// the iteration.
pub fn unique_name(model: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("loom-{model}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A fresh memory store (`Store::memory`) for one loom iteration.
pub fn fresh_store(model: &str) -> Store {
    Store::memory(unique_name(model))
}

/// Asserts that the store holds nothing, then unregisters it, so its loom
/// objects are dropped inside the iteration that made them.
pub fn finish_empty(store: Store) {
    let keys = store.keys().expect("keys");
    assert!(keys.is_empty(), "store not empty at the end: {keys:?}");
    finish(store);
}

/// Unregisters the store of this iteration.
pub fn finish(store: Store) {
    Store::unregister(store.name());
    drop(store);
}

/// The store-side state of `key`, or `None` once it is evicted (or its
/// eviction has begun).
pub fn state(store: &Store, key: &Key) -> Option<ObjectInfo> {
    store.inspect(key).expect("inspect")
}

/// What a [`CountingConnector`] counted: evictions, and the releases it was
/// asked to apply, by claim kind, and how many of those it refused.
///
/// Plain std atomics: loom does not see them (they add no interleavings),
/// and the models read them only after joining every thread that could
/// still release something.
#[derive(Default)]
pub struct Tally {
    evictions: AtomicUsize,
    /// Indexed by [`kind_index`].
    releases: [AtomicUsize; 4],
    refused_releases: AtomicUsize,
}

fn kind_index(kind: ClaimKind) -> usize {
    match kind {
        ClaimKind::Owner => 0,
        ClaimKind::Holder => 1,
        ClaimKind::Reader => 2,
        ClaimKind::Writer => 3,
    }
}

impl Tally {
    /// Transitions whose effect was an eviction (every path).
    pub fn evictions(&self) -> usize {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Releases of claims of `kind` that reached the store, applied or
    /// refused. A claim released twice counts twice.
    pub fn releases(&self, kind: ClaimKind) -> usize {
        self.releases[kind_index(kind)].load(Ordering::Relaxed)
    }

    /// Releases the state machine refused (a claim of that kind was not
    /// held, or the object was gone): a double release shows up here, or
    /// in [`releases`](Self::releases).
    pub fn refused_releases(&self) -> usize {
        self.refused_releases.load(Ordering::Relaxed)
    }

    fn count(&self, op: Op, r: &Result<Effect>) {
        if matches!(r, Ok(Effect::Evict)) {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        if let Op::Release(claim) = op {
            self.releases[kind_index(claim.kind())].fetch_add(1, Ordering::Relaxed);
            if r.is_err() {
                self.refused_releases.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A [`MemoryConnector`] that counts every transition whose effect is an
/// eviction, and every release, on every path (keyed operations and entries
/// alike): see [`Tally`].
pub struct CountingConnector {
    inner: MemoryConnector,
    tally: Arc<Tally>,
}

/// The [`Entry`] a [`CountingConnector`] hands out: the memory connector's
/// slot, with evictions and releases counted.
struct CountingEntry {
    inner: Arc<dyn Entry>,
    tally: Arc<Tally>,
}

impl Entry for CountingEntry {
    fn apply(&self, op: Op) -> Result<Effect> {
        let r = self.inner.apply(op);
        self.tally.count(op, &r);
        r
    }

    fn release(&self, claim: Claim) {
        // Same as the slot's own `release`: apply, and swallow the refusal.
        let _ = self.apply(Op::Release(claim));
    }

    fn fetch(&self, known_version: Option<u64>) -> Result<Fetch> {
        self.inner.fetch(known_version)
    }

    fn publish(&self, writer: Claim, value: Value) -> Result<u64> {
        self.inner.publish(writer, value)
    }
}

impl CountingConnector {
    fn wrap(&self, e: Option<Arc<dyn Entry>>) -> Option<Arc<dyn Entry>> {
        e.map(|inner| {
            Arc::new(CountingEntry {
                inner,
                tally: self.tally.clone(),
            }) as Arc<dyn Entry>
        })
    }
}

impl Connector for CountingConnector {
    // Forward every capability of the wrapped connector, so that the store
    // takes the same paths (values kept undecoded, no release queue) as it
    // does on a plain memory store.
    fn keeps_local_values(&self) -> bool {
        self.inner.keeps_local_values()
    }
    fn queues_releases(&self) -> bool {
        self.inner.queues_releases()
    }
    fn put(&self, key: &Key, value: Value, init: Init) -> Result<Option<Arc<dyn Entry>>> {
        self.inner.put(key, value, init).map(|e| self.wrap(e))
    }
    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        self.inner.get(key)
    }
    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        self.inner.fetch(key, known_version)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<bool> {
        let r = self.inner.evict(key);
        if matches!(r, Ok(true)) {
            self.tally.evictions.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        let r = self.inner.take(key);
        if matches!(r, Ok(Some(_))) {
            self.tally.evictions.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        self.inner.publish(key, writer, value)
    }
    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        let r = self.inner.apply(key, op);
        self.tally.count(op, &r);
        r
    }
    fn entry(&self, key: &Key) -> Result<Option<Arc<dyn Entry>>> {
        self.inner.entry(key).map(|e| self.wrap(e))
    }
    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        self.inner.issue_ticket(key, ticket, claim)
    }
    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        self.inner.redeem_ticket(key, ticket, kind)
    }
    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        // As the memory connector does it, with the release counted.
        let claim = self.inner.redeem_ticket(key, ticket, kind)?;
        self.apply(key, Op::Release(claim)).map(|_| ())
    }
    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        self.inner.inspect(key)
    }
    fn keys(&self) -> Result<Vec<Key>> {
        self.inner.keys()
    }
}

/// A fresh registered store over a [`CountingConnector`], and what it
/// counts.
pub fn counting_store(model: &str) -> (Store, Arc<Tally>) {
    let name = unique_name(model);
    let tally = Arc::new(Tally::default());
    let connector = CountingConnector {
        inner: MemoryConnector::new(name.clone()),
        tally: tally.clone(),
    };
    let store = Store::builder(name.clone())
        .connector(Arc::new(connector), format!("memory://{name}"))
        .build()
        .expect("build counting store");
    (store, tally)
}

/// Ghost counts of the borrows a model holds: a borrow is counted after the
/// store granted it and uncounted before it is given back, so the ghost
/// counts never exceed what the store has granted. Checking the rules on
/// them (each borrower checks right after it counts itself in) therefore
/// checks the store.
///
/// Plain std atomics: loom runs every model thread on one OS thread and
/// switches only at loom operations, so these are sequentially consistent
/// and add no interleavings.
#[derive(Default)]
pub struct Ghost {
    readers: AtomicUsize,
    writers: AtomicUsize,
}

impl Ghost {
    /// A reader was granted: there must be no writer.
    pub fn reader_in(&self) {
        self.readers.fetch_add(1, Ordering::SeqCst);
        let w = self.writers.load(Ordering::SeqCst);
        assert_eq!(w, 0, "a shared borrow was granted beside a mutable borrow");
    }

    /// A reader is about to be given back.
    pub fn reader_out(&self) {
        self.readers.fetch_sub(1, Ordering::SeqCst);
    }

    /// A writer was granted: it must be alone.
    pub fn writer_in(&self) {
        let w = self.writers.fetch_add(1, Ordering::SeqCst);
        assert_eq!(w, 0, "two mutable borrows at once");
        let r = self.readers.load(Ordering::SeqCst);
        assert_eq!(
            r, 0,
            "a mutable borrow was granted beside {r} shared borrow(s)"
        );
    }

    /// A writer is about to be given back.
    pub fn writer_out(&self) {
        self.writers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Borrows currently counted.
    pub fn live(&self) -> usize {
        self.readers.load(Ordering::SeqCst) + self.writers.load(Ordering::SeqCst)
    }
}

//! Helpers shared by the models.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use borrowstore::connector::{Connector, Entry, Fetch, Inspect, MemoryConnector, Stored, Value};
use borrowstore::state::{Claim, Effect, Init, Op, State};
use borrowstore::{ClaimId, Key, Result, Store};

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
    let keys = store.connector().keys().expect("keys");
    assert!(keys.is_empty(), "store not empty at the end: {keys:?}");
    finish(store);
}

/// Unregisters the store of this iteration.
pub fn finish(store: Store) {
    Store::unregister(store.name());
    drop(store);
}

/// The store-side state of `key`, or `None` once it is evicted.
pub fn state(store: &Store, key: &Key) -> Option<State> {
    store
        .connector()
        .inspect(key)
        .expect("inspect")
        .map(|i| i.state)
}

/// A [`MemoryConnector`] that counts every transition whose effect is an
/// eviction, on every path (keyed operations and entries alike).
///
/// Counts are plain std atomics: loom does not see them, and the models read
/// them only after joining every thread.
pub struct CountingConnector {
    inner: MemoryConnector,
    evictions: Arc<AtomicUsize>,
}

/// The [`Entry`] a [`CountingConnector`] hands out: the memory connector's
/// slot, with evictions counted.
struct CountingEntry {
    inner: Arc<dyn Entry>,
    evictions: Arc<AtomicUsize>,
}

fn count(evictions: &AtomicUsize, r: &Result<Effect>) {
    if matches!(r, Ok(Effect::Evict)) {
        evictions.fetch_add(1, Ordering::Relaxed);
    }
}

impl Entry for CountingEntry {
    fn apply(&self, op: Op) -> Result<Effect> {
        let r = self.inner.apply(op);
        count(&self.evictions, &r);
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
                evictions: self.evictions.clone(),
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
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        let r = self.inner.take(key);
        if matches!(r, Ok(Some(_))) {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        self.inner.publish(key, writer, value)
    }
    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        let r = self.inner.apply(key, op);
        count(&self.evictions, &r);
        r
    }
    fn entry(&self, key: &Key) -> Result<Option<Arc<dyn Entry>>> {
        self.inner.entry(key).map(|e| self.wrap(e))
    }
    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        self.inner.issue_ticket(key, ticket, claim)
    }
    fn redeem_ticket(&self, key: &Key, ticket: ClaimId) -> Result<Claim> {
        self.inner.redeem_ticket(key, ticket)
    }
    fn cancel_ticket(&self, key: &Key, ticket: ClaimId) -> Result<()> {
        // As the memory connector does it, with the release counted.
        let claim = self.inner.redeem_ticket(key, ticket)?;
        self.apply(key, Op::Release(claim)).map(|_| ())
    }
    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        self.inner.inspect(key)
    }
    fn keys(&self) -> Result<Vec<Key>> {
        self.inner.keys()
    }
}

/// A fresh registered store over a [`CountingConnector`], and its eviction
/// count.
pub fn counting_store(model: &str) -> (Store, Arc<AtomicUsize>) {
    let name = unique_name(model);
    let evictions = Arc::new(AtomicUsize::new(0));
    let connector = CountingConnector {
        inner: MemoryConnector::new(name.clone()),
        evictions: evictions.clone(),
    };
    let store = Store::builder(name.clone())
        .connector(Arc::new(connector), format!("memory://{name}"))
        .build()
        .expect("build counting store");
    (store, evictions)
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

//! The conformance suite against a connector from outside borrowstore, as a
//! connector author runs it: a connector of this file's own (it hands every
//! call to a `MemoryConnector`, without entries or local values), given to
//! a store with `Store::builder(name).connector(..)`. The crate docs show
//! the same code.

use std::sync::Arc;

use borrowstore::connector::{Connector, Fetch, Inspect, MemoryConnector, Stored, Value};
use borrowstore::state::{Claim, ClaimKind, Effect, Init, Op};
use borrowstore::{ClaimId, Key, Result, Store};
use borrowstore_testkit::{Fixture, unique_name};

/// The connector under test.
struct MyConnector(MemoryConnector);

impl Connector for MyConnector {
    fn put(
        &self,
        key: &Key,
        value: Value,
        init: Init,
    ) -> Result<Option<Arc<dyn borrowstore::connector::Entry>>> {
        self.0.put(key, value, init).map(|_| None)
    }
    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        self.0.get(key)
    }
    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        self.0.fetch(key, known_version)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        self.0.exists(key)
    }
    fn evict(&self, key: &Key) -> Result<bool> {
        self.0.evict(key)
    }
    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        self.0.take(key)
    }
    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        self.0.publish(key, writer, value)
    }
    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        self.0.apply(key, op)
    }
    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        self.0.issue_ticket(key, ticket, claim)
    }
    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        self.0.redeem_ticket(key, ticket, kind)
    }
    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        self.0.cancel_ticket(key, ticket, kind)
    }
    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        self.0.inspect(key)
    }
    fn keys(&self) -> Result<Vec<Key>> {
        self.0.keys()
    }
}

/// A fresh store over a fresh `MyConnector`, and the connector.
fn my_fixture() -> Fixture {
    let name = unique_name("my-connector");
    // Proxies and tickets read from bytes find this store in the registry
    // by its name and URL, so the URL may be of the connector's own scheme.
    let url = format!("my-connector://{name}");
    let connector: Arc<dyn Connector> = Arc::new(MyConnector(MemoryConnector::new(name.clone())));
    let store = Store::builder(name)
        .connector(connector.clone(), url)
        .build()
        .expect("build the store");
    Fixture { store, connector }
}

borrowstore_testkit::conformance_suite!(my_fixture());

//! # borrowstore-testkit
//!
//! The connector conformance suite of [borrowstore], and the
//! fixtures borrowstore's own tests share.
//!
//! ## Checking a connector
//!
//! The [conformance suite](conformance) is the rules of borrowstore's
//! semantics as checks that every connector must pass, each a `pub fn`
//! taking a fresh store. [`conformance_suite!`] turns all of them into
//! `#[test]`s for one connector: give it an expression that makes a fresh
//! [`Fixture`] (a store and the connector it was built over), evaluated
//! once per test. For a connector of your own, in a test file of your
//! crate (with `borrowstore-testkit` as a dev-dependency):
//!
//! ```no_run
//! // tests/conformance.rs
//! use std::sync::Arc;
//!
//! use borrowstore::connector::{Connector, Fetch, Inspect, MemoryConnector, Stored, Value};
//! use borrowstore::state::{Claim, ClaimKind, Effect, Init, Op};
//! use borrowstore::{ClaimId, Key, Result, Store};
//! use borrowstore_testkit::{Fixture, unique_name};
//!
//! /// The connector to check: here, one that hands every call to a
//! /// `MemoryConnector`.
//! struct MyConnector(MemoryConnector);
//!
//! impl Connector for MyConnector {
//!     fn put(&self, key: &Key, value: Value, init: Init)
//!         -> Result<Option<Arc<dyn borrowstore::connector::Entry>>> {
//!         self.0.put(key, value, init).map(|_| None)
//!     }
//!     fn get(&self, key: &Key) -> Result<Option<Stored>> { self.0.get(key) }
//!     fn fetch(&self, key: &Key, known: Option<u64>) -> Result<Fetch> { self.0.fetch(key, known) }
//!     fn exists(&self, key: &Key) -> Result<bool> { self.0.exists(key) }
//!     fn evict(&self, key: &Key) -> Result<bool> { self.0.evict(key) }
//!     fn take(&self, key: &Key) -> Result<Option<Stored>> { self.0.take(key) }
//!     fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
//!         self.0.publish(key, writer, value)
//!     }
//!     fn apply(&self, key: &Key, op: Op) -> Result<Effect> { self.0.apply(key, op) }
//!     fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
//!         self.0.issue_ticket(key, ticket, claim)
//!     }
//!     fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
//!         self.0.redeem_ticket(key, ticket, kind)
//!     }
//!     fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
//!         self.0.cancel_ticket(key, ticket, kind)
//!     }
//!     fn inspect(&self, key: &Key) -> Result<Option<Inspect>> { self.0.inspect(key) }
//!     fn keys(&self) -> Result<Vec<Key>> { self.0.keys() }
//! }
//!
//! /// A fresh store over a fresh connector, and the connector.
//! fn my_fixture() -> Fixture {
//!     let name = unique_name("my-connector");
//!     // Proxies and tickets read from bytes find this store in the registry
//!     // by its name and URL, so the URL may be of the connector's own scheme.
//!     let url = format!("my-connector://{name}");
//!     let connector: Arc<dyn Connector> = Arc::new(MyConnector(MemoryConnector::new(name.clone())));
//!     let store = Store::builder(name)
//!         .connector(connector.clone(), url)
//!         .build()
//!         .expect("build the store");
//!     Fixture { store, connector }
//! }
//!
//! // One `#[test]` per check.
//! borrowstore_testkit::conformance_suite!(my_fixture());
//! # fn main() {}
//! ```
//!
//! [`Fixture::new`] does the same in one call. The testkit's own
//! `tests/custom_connector.rs` runs exactly this; borrowstore's
//! `tests/memory_store.rs`, `tests/file_store.rs` and `tests/redis_store.rs`
//! run the suite on its three connectors, one line each:
//!
//! ```ignore
//! borrowstore_testkit::conformance_suite!(borrowstore_testkit::suite!("file-store").file_fixture());
//! ```
//!
//! ## Fixtures
//!
//! - Names: [`unique_name`] — a name no other test, in any process, uses.
//! - Stores: a [`Suite`] (usually [`suite!`]`("name")`, with file stores
//!   under cargo's per-target temp dir) makes fresh stores of every kind:
//!   [`memory_store`](Suite::memory_store), [`file_dir`](Suite::file_dir) /
//!   [`file_store`](Suite::file_store), [`redis_store`](Suite::redis_store),
//!   and the [`Fixture`]s of the conformance suite
//!   ([`memory_fixture`](Suite::memory_fixture),
//!   [`file_fixture`](Suite::file_fixture),
//!   [`redis_fixture`](Suite::redis_fixture));
//!   [`on_every_store!`] runs a list of `fn(Store)` checks on all three.
//! - Redis: [`redis_server`] starts a real `redis-server` on a free loopback
//!   port ([`RedisServer`](redis_server::RedisServer), persistent, with a
//!   password or over TLS with certificates it makes, killed, frozen and
//!   restarted at will), or one that lives as long as the test
//!   ([`url_for_this_test`](redis_server::url_for_this_test)), or a TLS one
//!   shared by the test binary; checks written over the
//!   [`Redis`](redis_server::Redis) trait run on one server or on any other
//!   deployment that implements it. [`redis_cluster`] starts a six-node
//!   Redis Cluster, plain or over TLS, one per test binary
//!   ([`shared`](redis_cluster::shared)) or of a test's own (for
//!   failovers); [`Suite::redis_fixture_at`] puts a fresh store on either.
//! - Probes of what a store really holds: [`exists`], [`holders`],
//!   [`contents`], [`set`], [`key`], [`key_of`], and, through an
//!   independent connection ([`observe`], [`observed`]), [`borrows`] and
//!   [`assert_empty`].
//! - Waits, all bounded: [`poll_until`], [`wait_until`], [`retry_until_ok`].
//! - Assertions: [`assert_err!`].
//! - Several processes: [`process`] — child processes of the test binary
//!   ([`ChildProc`](process::ChildProc), declared with [`child_entry!`]),
//!   the store they share ([`Target`](process::Target)), the
//!   cross-process [`scenarios`](process::scenarios), and children whose
//!   clock is set off ([`process::clock`], through libfaketime).
//!
//! ## Features
//!
//! - `redis` (default): the Redis stores and fixtures, over borrowstore's
//!   `redis` feature. The `redis-server` and cluster harness needs no
//!   feature.
//! - `redis-tls`: TLS servers and clusters (certificates made with
//!   `rcgen`), over borrowstore's `redis-tls` feature.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod conformance;
mod fixture;
mod names;
mod probe;
pub mod process;
pub mod redis_cluster;
pub mod redis_server;
mod suite;
mod wait;

pub use fixture::Fixture;
pub use names::unique_name;
pub use probe::{
    assert_empty, borrows, contents, exists, holders, key, key_of, observe, observed, set,
};
pub use suite::Suite;
pub use wait::{poll_until, retry_until_ok, wait_until};

/// Asserts that `$e` is `Err` matching the pattern (with an optional
/// guard); prints what it was otherwise.
///
/// ```
/// use borrowstore::Error;
/// use borrowstore_testkit::assert_err;
///
/// let store = borrowstore::Store::memory("assert-err-doc");
/// let missing = borrowstore::Key::random();
/// let p = store.proxy_from_key::<u8>(missing);
/// assert_err!(borrowstore::Proxy::resolve(&p), Error::KeyNotFound { key, .. } if key == missing);
/// ```
#[macro_export]
macro_rules! assert_err {
    ($e:expr, $p:pat $(if $g:expr)?) => {
        match $e {
            Err($p) $(if $g)? => {}
            other => panic!(
                "expected Err({}), got {:?}",
                stringify!($p $(if $g)?),
                other
            ),
        }
    };
}

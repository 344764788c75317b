//! The connector conformance suite: the rules of DESIGN.md ("Semantics") as
//! tests that every connector must pass.
//!
//! Each check is a `pub fn` taking a fresh [`Store`] (or, for the checks of
//! connector operations that the store API does not offer, a [`Fixture`]:
//! the store and its connector); the [`conformance_suite!`] macro turns
//! every one of them into a `#[test]` for one connector:
//!
//! ```ignore
//! mod conformance;
//! conformance::conformance_suite!(conformance::memory_fixture());
//! ```
//!
//! The expression (a [`Fixture`]) is evaluated once per test, so every test
//! gets its own store. Checks assert on what the store really holds
//! (`Store::exists / inspect / keys`, read from the connector), never on a
//! cache or a flag, and use the `Result`-returning accessors
//! (`Proxy::resolve`, …) on error paths so that nothing panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use borrowstore::codec::{self, HEADER_LEN};
use borrowstore::connector::{Connector, MemoryConnector, Value};
use borrowstore::state::Init;
use borrowstore::{
    BorrowTicket, Error, Key, ObjectInfo, OwnedProxy, OwnerTicket, Proxy, RefMutProxy, RefProxy,
    Store, StoreConfig, borrow, clone, into_owned, mut_borrow, update,
};

type V = Vec<u64>;

/// Asserts that `$e` is `Err` matching the pattern (with an optional guard);
/// prints what it was otherwise.
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

/// Expands to one `#[test]` per conformance check, each with a fresh
/// [`Fixture`] made by evaluating `$make` (an expression of that type).
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance::conformance_suite!(@tests $make;
            owner_drop_evicts,
            owner_drop_while_read_defers_eviction_in_every_release_order,
            owner_drop_while_written_defers_eviction,
            readers_refuse_a_writer,
            a_writer_refuses_readers_and_a_second_writer,
            update_of_ref_mut_publishes_and_bumps_version,
            update_of_owner_publishes_local_changes,
            update_of_owner_refused_while_borrowed_keeps_local_changes,
            changed_ref_mut_publishes_on_drop,
            unchanged_ref_mut_does_not_bump_version,
            owner_sees_changes_published_by_a_writer,
            owner_update_on_a_stale_copy_is_a_conflict_and_keeps_changes,
            owner_update_after_a_writer_keeps_the_writers_changes,
            clone_is_independent_of_its_source,
            into_owned_adopts_a_plain_proxy,
            into_owned_twice_is_already_owned,
            into_owned_of_missing_key_is_key_not_found,
            plain_objects_persist_until_evicted,
            evict_refused_while_written,
            evicting_an_owned_object_ends_its_owner,
            ephemeral_proxy_is_evicted_by_first_resolve,
            ephemeral_proxy_stays_ephemeral_through_serialization,
            owner_ticket_redeemed_twice_is_ticket_redeemed,
            owner_ticket_in_flight_keeps_the_object,
            owner_ticket_cancel_evicts,
            borrow_ticket_keeps_the_borrow_in_flight,
            borrow_ticket_cancel_releases,
            ticket_redeemed_as_wrong_type_is_type_mismatch_and_stays_valid,
            owner_ticket_redeemed_as_borrow_ticket_is_refused_without_consuming_it,
            type_mismatch_via_get,
            type_mismatch_via_proxy,
            type_mismatch_via_proxy_from_bytes,
            put_get_exists_evict,
            batch_forms,
            serialized_proxy_round_trips_and_resolves,
            malformed_proxy_bytes_are_malformed,
            malformed_ticket_bytes_are_malformed,
            missing_keys,
            readers_share_one_value_of_an_owned_proxy,
            readers_share_one_decoded_value_of_an_adopted_blob,
            flush_is_ok_and_releases_are_applied,
        ;
            evict_refused_while_read,
            damaged_blob_truncated_is_decode_error,
            damaged_blob_bad_header_is_decode_error,
            damaged_blob_payload_is_decode_error,
            connector_batch_forms,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?; $($with_connector:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name($make.store);
            }
        )*
        $(
            #[test]
            fn $with_connector() {
                $crate::conformance::$with_connector($make);
            }
        )*
    };
}
pub(crate) use conformance_suite;

/// A store name no other test (in this or any other process) uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store under test and its connector: the checks of connector
/// operations that the store API does not offer (raw bytes, the batch forms,
/// a keyed evict) call the connector itself.
pub struct Fixture {
    /// The store, registered under its name.
    pub store: Store,
    /// The connector `store` was built over.
    pub connector: Arc<dyn Connector>,
}

impl Fixture {
    /// A registered store named `name` over `connector`, which other
    /// processes reach by `url` (as `Store::open(url)` makes it).
    pub fn new(name: &str, url: &str, connector: Arc<dyn Connector>) -> Fixture {
        let store = Store::builder(name)
            .connector(connector.clone(), url)
            .build()
            .expect("build the store under test");
        Fixture { store, connector }
    }
}

/// A fresh in-memory store (what `Store::memory(name)` makes) and its
/// connector.
#[allow(dead_code)] // each test binary uses one fixture
pub fn memory_fixture() -> Fixture {
    let name = unique_name("memory");
    let url = format!("memory://{name}");
    Fixture::new(&name, &url, Arc::new(MemoryConnector::new(name.clone())))
}

// ---------------------------------------------------------------- helpers

/// What the store holds for `key`; fails the test if it holds nothing (or
/// its eviction has begun).
fn inspect(store: &Store, key: &Key) -> ObjectInfo {
    match store.inspect(key) {
        Ok(Some(i)) => i,
        other => panic!("expected {key} to be stored, the store says {other:?}"),
    }
}

fn state(store: &Store, key: &Key) -> ObjectInfo {
    inspect(store, key)
}

fn version(store: &Store, key: &Key) -> u64 {
    inspect(store, key).version
}

fn assert_stored(store: &Store, key: &Key) {
    assert!(store.exists(key).unwrap(), "{key} should exist");
    assert!(
        store.inspect(key).unwrap().is_some(),
        "{key} is marked gone"
    );
    assert!(
        store.keys().unwrap().contains(key),
        "{key} missing from keys()"
    );
}

fn assert_evicted(store: &Store, key: &Key) {
    assert!(!store.exists(key).unwrap(), "{key} should be evicted");
    let i = store.inspect(key).unwrap();
    assert!(i.is_none(), "{key} should be evicted, inspect says {i:?}");
    assert!(
        !store.keys().unwrap().contains(key),
        "{key} still listed by keys()"
    );
}

fn assert_empty(store: &Store) {
    let keys = store.keys().unwrap();
    assert!(keys.is_empty(), "store should be empty, holds {keys:?}");
}

/// State of an owned object nobody borrows (and not gone: an object whose
/// eviction has begun has no `ObjectInfo`, so `state` fails first).
fn assert_idle_owned(s: ObjectInfo) {
    assert!(s.owner, "{s:?}");
    assert_eq!(s.readers, 0, "{s:?}");
    assert!(!s.writer, "{s:?}");
}

/// Stores raw bytes under a fresh key, with no owner, through the connector.
fn put_raw(connector: &Arc<dyn Connector>, bytes: Vec<u8>) -> Key {
    let key = Key::random();
    connector
        .put(&key, Value::Bytes(bytes.into()), Init::Plain)
        .unwrap();
    key
}

// ------------------------------------------------------ ownership & borrows

pub fn owner_drop_evicts(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    assert_stored(&store, &key);
    assert_idle_owned(state(&store, &key));
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    drop(owner);
    assert_evicted(&store, &key);
    assert_eq!(store.get::<V>(&key).unwrap(), None);

    // also after it was borrowed and the borrows ended first
    let owner = store.owned_proxy(vec![4u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    drop(borrow(&owner).unwrap());
    drop(mut_borrow(&owner).unwrap());
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn owner_drop_while_read_defers_eviction_in_every_release_order(store: Store) {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in ORDERS {
        let owner = store.owned_proxy(vec![7u64; 4]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let mut readers: Vec<Option<RefProxy<V>>> =
            (0..3).map(|_| Some(borrow(&owner).unwrap())).collect();
        assert_eq!(state(&store, &key).readers, 3);
        drop(owner);
        let s = state(&store, &key);
        assert!(!s.owner, "{order:?}: {s:?}");
        assert_eq!(s.readers, 3, "{order:?}");
        assert_stored(&store, &key);
        for (n, &i) in order.iter().enumerate() {
            // references stay valid: every remaining reader still resolves,
            // even for the first time after the owner is gone
            for r in readers.iter().flatten() {
                assert_eq!(RefProxy::resolve(r).unwrap(), &vec![7u64; 4]);
            }
            drop(readers[i].take());
            let left = 3 - (n as u32 + 1);
            if left > 0 {
                assert_stored(&store, &key);
                assert_eq!(state(&store, &key).readers, left, "{order:?}");
            } else {
                assert_evicted(&store, &key);
            }
        }
    }
    assert_empty(&store);
}

pub fn owner_drop_while_written_defers_eviction(store: Store) {
    // a writer that publishes after the owner is gone
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    drop(owner);
    let s = state(&store, &key);
    assert!(s.writer && !s.owner && s.readers == 0, "{s:?}");
    assert_stored(&store, &key);
    w.push(4);
    update(&mut w).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3, 4]));
    assert_eq!(version(&store, &key), 2);
    w.push(5); // published on drop, then the object is evicted
    drop(w);
    assert_evicted(&store, &key);

    // an unchanged writer
    let owner = store.owned_proxy(String::from("x")).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    drop(owner);
    assert_stored(&store, &key);
    assert_eq!(RefMutProxy::resolve(&w).unwrap(), "x");
    drop(w);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn readers_refuse_a_writer(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r1 = borrow(&owner).unwrap();
    let r2 = borrow(&owner).unwrap();
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    // the refusal left no trace
    let s = state(&store, &key);
    assert_eq!(s.readers, 2);
    assert!(!s.writer && s.owner);
    drop(r1);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_eq!(state(&store, &key).readers, 1);
    drop(r2);
    let w = mut_borrow(&owner).unwrap();
    let s = state(&store, &key);
    assert!(s.writer && s.readers == 0, "{s:?}");
    drop(w);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

pub fn a_writer_refuses_readers_and_a_second_writer(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    assert_err!(borrow(&owner), Error::AlreadyMutablyBorrowed { key: k, .. } if k == key);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    let s = state(&store, &key);
    assert!(s.writer && s.readers == 0 && s.owner, "{s:?}");
    drop(w);
    assert_idle_owned(state(&store, &key));
    let r = borrow(&owner).unwrap();
    assert_eq!(state(&store, &key).readers, 1);
    drop(r);
    drop(owner);
    assert_empty(&store);
}

// ------------------------------------------------------------- publishing

pub fn update_of_ref_mut_publishes_and_bumps_version(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(4);
    assert!(RefMutProxy::is_modified(&w));
    // local until published
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(version(&store, &key), v0);

    update(&mut w).unwrap();
    assert!(!RefMutProxy::is_modified(&w));
    assert_eq!(*w, vec![1, 2, 3, 4]);
    assert_eq!(version(&store, &key), v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3, 4]));
    // nothing new to publish: no bump
    update(&mut w).unwrap();
    assert_eq!(version(&store, &key), v0 + 1);
    assert!(state(&store, &key).writer, "update keeps the borrow");
    drop(w);
    assert_eq!(
        version(&store, &key),
        v0 + 1,
        "drop after update republished"
    );
    assert_idle_owned(state(&store, &key));

    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1, 2, 3, 4]);
    let p: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&p).unwrap(), &vec![1, 2, 3, 4]);
    drop(r);

    // a second round
    let mut w = mut_borrow(&owner).unwrap();
    w.clear();
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(version(&store, &key), v0 + 2);
    let p: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&p).unwrap(), &Vec::<u64>::new());
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![]));
    drop(owner);
    assert_empty(&store);
}

pub fn update_of_owner_publishes_local_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);
    owner.push(2);
    assert!(OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1]));
    assert_eq!(version(&store, &key), v0);

    update(&mut owner).unwrap();
    assert!(!OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    assert_eq!(version(&store, &key), v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_idle_owned(state(&store, &key)); // the transient writer is gone

    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1, 2]);
    drop(r);
    let p: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&p).unwrap(), &vec![1, 2]);

    // nothing to publish: Ok, no bump
    update(&mut owner).unwrap();
    assert_eq!(version(&store, &key), v0 + 1);

    // discarded changes are never published
    owner.push(99);
    OwnedProxy::discard_changes(&mut owner);
    assert_eq!(*owner, vec![1, 2]);
    update(&mut owner).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(version(&store, &key), v0 + 1);
    drop(owner);
    assert_empty(&store);
}

pub fn update_of_owner_refused_while_borrowed_keeps_local_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);

    // refused even with nothing to publish
    let r = borrow(&owner).unwrap();
    assert_err!(update(&mut owner), Error::AlreadyBorrowed { key: k, .. } if k == key);

    owner.push(2);
    assert_err!(update(&mut owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert!(OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1]));
    assert_eq!(version(&store, &key), v0);
    let s = state(&store, &key);
    assert!(s.readers == 1 && !s.writer, "{s:?}");
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1]);
    drop(r);

    let w = mut_borrow(&owner).unwrap();
    assert_err!(update(&mut owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert!(OwnedProxy::is_modified(&owner));
    assert_eq!(*owner, vec![1, 2]);
    let s = state(&store, &key);
    assert!(s.writer && s.readers == 0, "{s:?}");
    drop(w);
    assert_eq!(version(&store, &key), v0);

    update(&mut owner).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(version(&store, &key), v0 + 1);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

pub fn changed_ref_mut_publishes_on_drop(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(9);
    assert_eq!(version(&store, &key), v0);
    drop(w);
    assert_eq!(version(&store, &key), v0 + 1);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 9]));
    assert_idle_owned(state(&store, &key));
    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1, 9]);
    drop(r);
    drop(owner);
    assert_empty(&store);
}

pub fn unchanged_ref_mut_does_not_bump_version(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let v0 = version(&store, &key);

    let w = mut_borrow(&owner).unwrap();
    assert_eq!(w.len(), 2); // read through Deref only
    drop(w);
    assert_eq!(version(&store, &key), v0);

    let mut w = mut_borrow(&owner).unwrap();
    w.push(3);
    RefMutProxy::discard_changes(&mut w);
    assert!(!RefMutProxy::is_modified(&w));
    drop(w);
    assert_eq!(version(&store, &key), v0);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

/// After a mutable borrow ends, its owner sees what it published: at once
/// through `OwnedProxy::latest`, and in its `Deref` view after any `&mut`
/// access (`refresh`, `DerefMut`, `update`), as documented on `OwnedProxy`.
pub fn owner_sees_changes_published_by_a_writer(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    assert_eq!(*OwnedProxy::latest(&owner).unwrap(), vec![1, 2]);
    assert_eq!(OwnedProxy::refresh(&mut owner).unwrap(), &vec![1, 2]);
    assert_eq!(*owner, vec![1, 2]);
    // clone copies the current value, not a stale snapshot
    let mut w = mut_borrow(&owner).unwrap();
    w.push(3);
    drop(w);
    let copy = clone(&owner).unwrap();
    assert_eq!(*copy, vec![1, 2, 3]);
    // the next change through the owner starts from the published value
    owner.push(4);
    assert_eq!(*owner, vec![1, 2, 3, 4]);
    drop((owner, copy));
    assert_empty(&store);
}

/// Local changes of an owner made on a version that a writer has since
/// replaced are not published over it: `Conflict`, and the changes are kept.
pub fn owner_update_on_a_stale_copy_is_a_conflict_and_keeps_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    owner.push(10); // local copy of version 1
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    drop(w); // version 2 published
    assert_err!(update(&mut owner), Error::Conflict { key: k } if k == key);
    assert_eq!(*owner, vec![1, 10], "local changes are kept");
    assert_eq!(
        store.get::<V>(&key).unwrap(),
        Some(vec![1, 2]),
        "the writer's change is kept"
    );
    OwnedProxy::discard_changes(&mut owner);
    owner.push(3);
    update(&mut owner).unwrap();
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    drop(owner);
    assert_empty(&store);
}

/// Publishing the owner's local changes must not silently drop what a writer
/// published before (no lost data).
pub fn owner_update_after_a_writer_keeps_the_writers_changes(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    w.push(2);
    drop(w); // published on drop
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
    owner.push(3);
    update(&mut owner).unwrap();
    assert_eq!(
        store.get::<V>(&key).unwrap(),
        Some(vec![1, 2, 3]),
        "the owner's update overwrote the writer's published change"
    );
    drop(owner);
    assert_empty(&store);
}

pub fn clone_is_independent_of_its_source(store: Store) {
    let mut a = store.owned_proxy(vec![1u64, 2]).unwrap();
    let ka = *OwnedProxy::key(&a);
    let mut b = clone(&a).unwrap();
    let kb = *OwnedProxy::key(&b);
    assert_ne!(ka, kb);
    assert_stored(&store, &kb);
    assert_idle_owned(state(&store, &kb));
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2]));
    let va = version(&store, &ka);

    b.push(3);
    update(&mut b).unwrap();
    assert_eq!(store.get::<V>(&ka).unwrap(), Some(vec![1, 2]));
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(*a, vec![1, 2]);
    assert_eq!(version(&store, &ka), va);

    a.push(10);
    update(&mut a).unwrap();
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    let mut w = mut_borrow(&a).unwrap();
    w.push(11);
    drop(w);
    assert_eq!(store.get::<V>(&ka).unwrap(), Some(vec![1, 2, 10, 11]));
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    // borrows are per object
    let rb = borrow(&b).unwrap();
    let wa = mut_borrow(&a).unwrap();
    drop((rb, wa));

    // a clone is taken as the owner sees it, local changes included
    let mut c = store.owned_proxy(vec![5u64]).unwrap();
    let kc = *OwnedProxy::key(&c);
    c.push(6);
    let d = clone(&c).unwrap();
    let kd = *OwnedProxy::key(&d);
    assert_eq!(store.get::<V>(&kd).unwrap(), Some(vec![5, 6]));
    assert_eq!(store.get::<V>(&kc).unwrap(), Some(vec![5]));

    drop(a);
    assert_evicted(&store, &ka);
    assert_stored(&store, &kb);
    assert_eq!(store.get::<V>(&kb).unwrap(), Some(vec![1, 2, 3]));
    drop(b);
    assert_evicted(&store, &kb);
    drop((c, d));
    assert_empty(&store);
}

pub fn into_owned_adopts_a_plain_proxy(store: Store) {
    let p = store.proxy(vec![9u64]).unwrap();
    let key = *Proxy::key(&p);
    let s = state(&store, &key);
    assert!(!s.owner && s.plain, "{s:?}");
    let twin = p.clone();
    drop(twin); // a plain proxy owns nothing
    assert_stored(&store, &key);

    let owner = into_owned(p).unwrap();
    assert_eq!(OwnedProxy::key(&owner), &key);
    assert_idle_owned(state(&store, &key));
    assert_eq!(OwnedProxy::resolve(&owner).unwrap(), &vec![9]);
    let r = borrow(&owner).unwrap();
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![9]);
    drop(r);
    drop(owner);
    assert_evicted(&store, &key);

    // a proxy made from the key of a put blob
    let key = store.put(&vec![5u64, 6]).unwrap();
    let owner = into_owned(store.proxy_from_key::<V>(key)).unwrap();
    assert_idle_owned(state(&store, &key));
    assert_eq!(*owner, vec![5, 6]);
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn into_owned_twice_is_already_owned(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    let q = store.proxy_from_key::<V>(key);
    let owner = into_owned(p).unwrap();
    assert_err!(into_owned(q), Error::AlreadyOwned { key: k } if k == key);
    assert_idle_owned(state(&store, &key));

    let born_owned = store.owned_proxy(vec![2u64]).unwrap();
    let k2 = *OwnedProxy::key(&born_owned);
    assert_err!(
        into_owned(store.proxy_from_key::<V>(k2)),
        Error::AlreadyOwned { key: k } if k == k2
    );
    assert_idle_owned(state(&store, &k2));

    // the refused adoption did not steal anything: the owners still evict
    drop(owner);
    assert_evicted(&store, &key);
    drop(born_owned);
    assert_evicted(&store, &k2);
    assert_empty(&store);
}

pub fn into_owned_of_missing_key_is_key_not_found(store: Store) {
    let missing = Key::random();
    assert_err!(
        into_owned(store.proxy_from_key::<V>(missing)),
        Error::KeyNotFound { key: k, .. } if k == missing
    );
    let key = store.put(&vec![1u64]).unwrap();
    assert!(store.evict(&key).unwrap());
    assert_err!(
        into_owned(store.proxy_from_key::<V>(key)),
        Error::KeyNotFound { key: k, .. } if k == key
    );
    assert_empty(&store);
}

pub fn plain_objects_persist_until_evicted(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    drop(p);
    assert_stored(&store, &key);
    let q: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&q).unwrap(), &vec![1]);
    drop(q);
    assert_stored(&store, &key);
    let k2 = store.put(&String::from("kept")).unwrap();
    assert_stored(&store, &k2);
    assert!(store.evict(&key).unwrap());
    assert!(store.evict(&k2).unwrap());
    assert_empty(&store);
}

// ---------------------------------------------------------------- eviction

pub fn evict_refused_while_read(f: Fixture) {
    let Fixture { store, connector } = f;
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    assert_err!(store.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_err!(connector.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_stored(&store, &key);
    assert_eq!(state(&store, &key).readers, 1);
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![1]);
    drop(r);
    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    assert!(!store.evict(&key).unwrap());
    drop(owner);
    assert_empty(&store);
}

pub fn evict_refused_while_written(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    assert_err!(store.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_stored(&store, &key);
    assert!(state(&store, &key).writer);
    w.push(2);
    update(&mut w).unwrap(); // the writer still works
    drop(w);
    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    drop(owner);
    assert_empty(&store);
}

pub fn evicting_an_owned_object_ends_its_owner(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    assert_err!(borrow(&owner), Error::KeyNotFound { key: k, .. } if k == key);
    assert_err!(mut_borrow(&owner), Error::KeyNotFound { key: k, .. } if k == key);
    owner.push(2);
    assert!(update(&mut owner).is_err());
    assert!(
        OwnedProxy::is_modified(&owner),
        "a failed update keeps the changes"
    );
    drop(owner); // must not panic, must not resurrect
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn ephemeral_proxy_is_evicted_by_first_resolve(store: Store) {
    let once = store.ephemeral_proxy(vec![7u8]).unwrap();
    let key = *Proxy::key(&once);
    assert!(Proxy::is_ephemeral(&once));
    assert_stored(&store, &key);
    let twin = once.clone(); // made before the resolve
    let by_key: Proxy<Vec<u8>> = store.proxy_from_key(key);

    assert_eq!(Proxy::resolve(&once).unwrap(), &vec![7u8]);
    assert_evicted(&store, &key);
    assert_eq!(
        Proxy::resolve(&once).unwrap(),
        &vec![7u8],
        "the value is kept"
    );
    assert_err!(Proxy::resolve(&twin), Error::KeyNotFound { key: k, .. } if k == key);
    assert_err!(Proxy::resolve(&by_key), Error::KeyNotFound { key: k, .. } if k == key);
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), None);

    // a clone made after the resolve carries the value
    let after = once.clone();
    assert_eq!(Proxy::resolve(&after).unwrap(), &vec![7u8]);

    // the first resolve wins, whichever proxy makes it
    let once = store.ephemeral_proxy(String::from("x")).unwrap();
    let key = *Proxy::key(&once);
    let twin = once.clone();
    assert_eq!(Proxy::resolve(&twin).unwrap(), "x");
    assert_evicted(&store, &key);
    assert_err!(Proxy::resolve(&once), Error::KeyNotFound { key: k, .. } if k == key);
    assert_empty(&store);
}

pub fn ephemeral_proxy_stays_ephemeral_through_serialization(store: Store) {
    let once = store.ephemeral_proxy(vec![1u64, 2]).unwrap();
    let key = *Proxy::key(&once);
    let bytes = Proxy::to_bytes(&once).unwrap();
    let remote = Proxy::<V>::from_bytes(&bytes).unwrap();
    assert!(Proxy::is_ephemeral(&remote));
    assert_stored(&store, &key);
    assert_eq!(Proxy::resolve(&remote).unwrap(), &vec![1, 2]);
    assert_evicted(&store, &key);
    assert_err!(Proxy::resolve(&once), Error::KeyNotFound { key: k, .. } if k == key);
    let again = Proxy::<V>::from_bytes(&bytes).unwrap();
    assert_err!(Proxy::resolve(&again), Error::KeyNotFound { key: k, .. } if k == key);
    assert_empty(&store);
}

// ----------------------------------------------------------------- tickets

pub fn owner_ticket_redeemed_twice_is_ticket_redeemed(store: Store) {
    let owner = store.owned_proxy(vec![4u64, 2]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let ticket = OwnedProxy::into_ticket(owner).unwrap();
    assert_eq!(ticket.key(), &key);
    let bytes = ticket.to_bytes().unwrap();
    drop(ticket);

    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_eq!(OwnedProxy::key(&owner), &key);
    assert_eq!(OwnedProxy::resolve(&owner).unwrap(), &vec![4, 2]);
    assert_idle_owned(state(&store, &key));

    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );
    // the refused redeem changed nothing, and the owner works
    assert_idle_owned(state(&store, &key));
    let r = borrow(&owner).unwrap();
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { .. });
    drop(r);

    drop(owner);
    assert_evicted(&store, &key);
    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );
    assert_empty(&store);
}

pub fn owner_ticket_in_flight_keeps_the_object(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let s = state(&store, &key);
    assert!(s.owner && s.readers == 1, "{s:?}");
    drop(r);
    // the ticket owns the object store-side: it stays
    assert_stored(&store, &key);
    assert_idle_owned(state(&store, &key));
    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn owner_ticket_cancel_evicts(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let ticket = OwnedProxy::into_ticket(owner).unwrap();
    let bytes = ticket.to_bytes().unwrap();
    assert_stored(&store, &key);
    ticket.cancel().unwrap();
    assert_evicted(&store, &key);
    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );
    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().cancel(),
        Error::TicketRedeemed { .. }
    );

    // cancelling a redeemed ticket is refused and changes nothing
    let owner = store.owned_proxy(vec![2u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().cancel(),
        Error::TicketRedeemed { .. }
    );
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn borrow_ticket_keeps_the_borrow_in_flight(store: Store) {
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    let ticket = RefProxy::into_ticket(r).unwrap();
    assert_eq!(ticket.key(), &key);
    let bytes = ticket.to_bytes().unwrap();
    drop(ticket);

    // still borrowed store-side
    assert_eq!(state(&store, &key).readers, 1);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { key: k, .. } if k == key);
    assert_err!(store.evict(&key), Error::AlreadyBorrowed { key: k, .. } if k == key);
    drop(owner);
    assert_stored(&store, &key);
    let s = state(&store, &key);
    assert!(!s.owner && s.readers == 1, "{s:?}");

    let r = BorrowTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_eq!(RefProxy::key(&r), &key);
    assert_eq!(RefProxy::resolve(&r).unwrap(), &vec![3]);
    assert_eq!(state(&store, &key).readers, 1);
    assert_err!(
        BorrowTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );
    assert_eq!(state(&store, &key).readers, 1);
    drop(r);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn borrow_ticket_cancel_releases(store: Store) {
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    let bytes = ticket.to_bytes().unwrap();
    assert_eq!(state(&store, &key).readers, 1);
    ticket.cancel().unwrap();
    assert_idle_owned(state(&store, &key));
    assert_err!(
        BorrowTicket::<V>::from_bytes(&bytes).unwrap().cancel(),
        Error::TicketRedeemed { .. }
    );
    assert_err!(
        BorrowTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );
    assert_idle_owned(state(&store, &key));
    let w = mut_borrow(&owner).unwrap();
    drop(w);

    // cancelling the last borrow of an unowned object evicts it
    let t = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    drop(owner);
    assert_stored(&store, &key);
    t.cancel().unwrap();
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn ticket_redeemed_as_wrong_type_is_type_mismatch_and_stays_valid(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    assert_err!(
        OwnerTicket::<String>::from_bytes(&bytes).unwrap().redeem(),
        Error::TypeMismatch { .. }
    );
    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_eq!(*owner, vec![1]);

    let r_bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_err!(
        BorrowTicket::<u32>::from_bytes(&r_bytes).unwrap().redeem(),
        Error::TypeMismatch { .. }
    );
    assert_eq!(state(&store, &key).readers, 1);
    let r = BorrowTicket::<V>::from_bytes(&r_bytes)
        .unwrap()
        .redeem()
        .unwrap();
    drop(r);
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// An owner ticket's bytes read as a borrow ticket (or the other way round)
/// must be refused without consuming the ticket: otherwise its claim is
/// lost and the object can never be evicted.
pub fn owner_ticket_redeemed_as_borrow_ticket_is_refused_without_consuming_it(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let wrong = BorrowTicket::<V>::from_bytes(&bytes).and_then(BorrowTicket::redeem);
    assert!(
        wrong.is_err(),
        "an owner ticket redeemed as a borrow: {wrong:?}"
    );
    drop(wrong);
    assert_idle_owned(state(&store, &key));
    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the owner ticket must still be redeemable");
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

// ------------------------------------------------------------ bad input

pub fn type_mismatch_via_get(store: Store) {
    let key = store.put(&vec![1u64, 2]).unwrap();
    assert_err!(store.get::<String>(&key), Error::TypeMismatch { .. });
    assert_err!(store.get::<u64>(&key), Error::TypeMismatch { .. });
    assert_err!(store.get_shared::<String>(&key), Error::TypeMismatch { .. });
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));

    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    assert_err!(store.get::<String>(&ko), Error::TypeMismatch { .. });
    assert_err!(store.get::<Vec<u32>>(&ko), Error::TypeMismatch { .. });
    assert_eq!(store.get::<V>(&ko).unwrap(), Some(vec![3]));
    assert_idle_owned(state(&store, &ko));

    assert!(store.evict(&key).unwrap());
    drop(owner);
    assert_empty(&store);
}

pub fn type_mismatch_via_proxy(store: Store) {
    // a blob
    let key = store.put(&vec![1u64, 2]).unwrap();
    let wrong: Proxy<String> = store.proxy_from_key(key);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });
    // also once the right type is decoded and cached
    let right: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&right).unwrap(), &vec![1, 2]);
    let wrong: Proxy<String> = store.proxy_from_key(key);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });
    assert_err!(Proxy::shared(&wrong), Error::TypeMismatch { .. });
    let right: Proxy<V> = store.proxy_from_key(key);
    assert_eq!(Proxy::resolve(&right).unwrap(), &vec![1, 2]);

    // an owned value
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    let wrong: Proxy<Vec<u32>> = store.proxy_from_key(ko);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });
    assert_idle_owned(state(&store, &ko));

    // a plain proxy of a local value
    let p = store.proxy(String::from("s")).unwrap();
    let kp = *Proxy::key(&p);
    let wrong: Proxy<V> = store.proxy_from_key(kp);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });

    // an ephemeral proxy resolved as the wrong type
    let once = store.ephemeral_proxy(7u32).unwrap();
    let ke = *Proxy::key(&once);
    let wrong: Proxy<u64> = store.proxy_from_key(ke);
    assert_err!(Proxy::resolve(&wrong), Error::TypeMismatch { .. });

    assert!(store.evict(&key).unwrap());
    assert!(store.evict(&kp).unwrap());
    assert_eq!(Proxy::resolve(&once).unwrap(), &7);
    drop(owner);
    assert_empty(&store);
}

pub fn type_mismatch_via_proxy_from_bytes(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    let bytes = Proxy::to_bytes(&p).unwrap();
    assert_err!(
        Proxy::<String>::from_bytes(&bytes),
        Error::TypeMismatch { .. }
    );
    assert_err!(
        Proxy::<Vec<u32>>::from_bytes(&bytes),
        Error::TypeMismatch { .. }
    );
    assert!(postcard::from_bytes::<Proxy<String>>(&bytes).is_err());
    let q = Proxy::<V>::from_bytes(&bytes).unwrap();
    assert_eq!(Proxy::resolve(&q).unwrap(), &vec![1]);
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

/// Every way to read a damaged blob reports `Error::Decode`, and leaves it.
fn assert_decode_error(store: &Store, key: Key, what: &str) {
    let got = store.get::<String>(&key);
    assert!(
        matches!(got, Err(Error::Decode { .. })),
        "{what}: get gave {got:?}"
    );
    let got = store.get_shared::<String>(&key);
    assert!(
        matches!(got, Err(Error::Decode { .. })),
        "{what}: get_shared gave {got:?}"
    );
    let p: Proxy<String> = store.proxy_from_key(key);
    let got = Proxy::resolve(&p);
    assert!(
        matches!(got, Err(Error::Decode { .. })),
        "{what}: resolve gave {got:?}"
    );
    assert!(
        store.exists(&key).unwrap(),
        "{what}: a failed read evicted the blob"
    );
}

fn good_blob() -> Vec<u8> {
    codec::encode(&String::from("hello world")).unwrap()
}

pub fn damaged_blob_truncated_is_decode_error(f: Fixture) {
    let Fixture { store, connector } = f;
    let good = good_blob();
    for len in [
        0,
        1,
        4,
        HEADER_LEN - 1,
        HEADER_LEN,
        HEADER_LEN + 1,
        good.len() - 1,
    ] {
        let key = put_raw(&connector, good[..len].to_vec());
        assert_decode_error(&store, key, &format!("truncated to {len}"));
        assert!(store.evict(&key).unwrap());
    }
    // the intact blob reads fine, through a borrow too
    let key = put_raw(&connector, good);
    assert_eq!(
        store.get::<String>(&key).unwrap().as_deref(),
        Some("hello world")
    );
    let owner = into_owned(store.proxy_from_key::<String>(key)).unwrap();
    assert_eq!(&*borrow(&owner).unwrap(), "hello world");
    drop(owner);
    assert_empty(&store);
}

pub fn damaged_blob_bad_header_is_decode_error(f: Fixture) {
    let Fixture { store, connector } = f;
    let mut magic = good_blob();
    magic[0] = b'X';
    let mut zeros = good_blob();
    zeros[..HEADER_LEN].fill(0);
    let mut format = good_blob();
    format[4] = 99;
    for (what, bytes) in [
        ("bad magic", magic),
        ("zero header", zeros),
        ("bad format version", format),
    ] {
        let key = put_raw(&connector, bytes);
        assert_decode_error(&store, key, what);
        // through a borrow as well
        let owner = into_owned(store.proxy_from_key::<String>(key)).unwrap();
        let r = borrow(&owner).unwrap();
        assert_err!(RefProxy::resolve(&r), Error::Decode { .. });
        drop(r);
        drop(owner);
        assert_evicted(&store, &key);
    }
    // a damaged type fingerprint looks like another type
    let mut fp = good_blob();
    fp[7] ^= 0x01;
    let key = put_raw(&connector, fp);
    assert_err!(store.get::<String>(&key), Error::TypeMismatch { .. });
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

pub fn damaged_blob_payload_is_decode_error(f: Fixture) {
    let Fixture { store, connector } = f;
    let good = good_blob();
    let mut utf8 = good.clone();
    *utf8.last_mut().unwrap() = 0xFF; // invalid UTF-8
    let mut length = good.clone();
    length[codec::header_len::<String>()] = 200; // length prefix beyond the data
    let mut trailing = good.clone();
    trailing.push(0);
    let mut varint = good.clone();
    varint.truncate(codec::header_len::<String>());
    varint.extend_from_slice(&[0x80; 12]); // an endless length varint
    for (what, bytes) in [
        ("invalid utf-8", utf8),
        ("bad length", length),
        ("trailing byte", trailing),
        ("overlong varint", varint),
    ] {
        let key = put_raw(&connector, bytes);
        assert_decode_error(&store, key, what);
        let owner = into_owned(store.proxy_from_key::<String>(key)).unwrap();
        assert_err!(OwnedProxy::resolve(&owner), Error::Decode { .. });
        drop(owner);
        assert_evicted(&store, &key);
    }
    assert_empty(&store);
}

// ------------------------------------------------------------- plain API

pub fn put_get_exists_evict(store: Store) {
    let key = store.put(&vec![1u64, 2, 3]).unwrap();
    assert_stored(&store, &key);
    assert!(store.exists(&key).unwrap());
    let i = inspect(&store, &key);
    assert_eq!(i.version, 1);
    assert!(!i.owner && i.plain && i.readers == 0 && !i.writer);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(
        *store.get_shared::<V>(&key).unwrap().unwrap(),
        vec![1, 2, 3]
    );

    let again = store.put(&vec![1u64, 2, 3]).unwrap();
    assert_ne!(key, again, "every put gets a new key");
    let text = store.put(&String::from("hi")).unwrap();
    let tuple = store.put(&(1u8, Some(String::from("x")), -3i64)).unwrap();
    assert_eq!(store.get::<String>(&text).unwrap().as_deref(), Some("hi"));
    assert_eq!(
        store.get::<(u8, Option<String>, i64)>(&tuple).unwrap(),
        Some((1, Some(String::from("x")), -3))
    );
    let mut keys = store.keys().unwrap();
    keys.sort();
    let mut expected = vec![key, again, text, tuple];
    expected.sort();
    assert_eq!(keys, expected);

    assert!(store.evict(&key).unwrap());
    assert_evicted(&store, &key);
    assert!(!store.exists(&key).unwrap());
    assert_eq!(store.get::<V>(&key).unwrap(), None);
    assert!(!store.evict(&key).unwrap());
    assert_stored(&store, &again);
    for k in [again, text, tuple] {
        assert!(store.evict(&k).unwrap());
    }
    assert_empty(&store);
}

pub fn batch_forms(store: Store) {
    let keys = store.put_batch(&[vec![1u64], vec![2, 2], vec![]]).unwrap();
    assert_eq!(keys.len(), 3);
    assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2]);
    for k in &keys {
        assert_stored(&store, k);
    }
    let missing = Key::random();
    assert_eq!(
        store
            .exists_batch(&[keys[0], keys[1], keys[2], missing])
            .unwrap(),
        vec![true, true, true, false]
    );
    assert_eq!(
        store.get_batch::<V>(&[keys[2], missing, keys[0]]).unwrap(),
        vec![Some(vec![]), None, Some(vec![1])]
    );
    assert_err!(store.get_batch::<String>(&keys), Error::TypeMismatch { .. });
    assert_eq!(
        store.evict_batch(&[keys[0], missing]).unwrap(),
        vec![true, false]
    );
    assert_eq!(store.exists_batch(&keys).unwrap(), vec![false, true, true]);

    // refused while borrowed
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    assert_err!(
        store.evict_batch(&[keys[1], ko]),
        Error::AlreadyBorrowed { key: k, .. } if k == ko
    );
    assert_stored(&store, &ko);
    assert_eq!(state(&store, &ko).readers, 1);
    drop(r);
    assert_eq!(store.evict_batch(&[keys[1], keys[2]]).unwrap().len(), 2);
    assert_eq!(store.exists_batch(&keys).unwrap(), vec![false; 3]);
    assert_eq!(store.put_batch::<V>(&[]).unwrap(), Vec::<Key>::new());
    drop(owner);
    assert_empty(&store);
}

pub fn connector_batch_forms(f: Fixture) {
    let Fixture {
        store,
        connector: c,
    } = f;
    let items: Vec<(Key, Vec<u8>)> = (0..4u64)
        .map(|i| (Key::random(), codec::encode(&vec![i; i as usize]).unwrap()))
        .collect();
    let keys: Vec<Key> = items.iter().map(|(k, _)| *k).collect();
    c.put_batch(
        items
            .iter()
            .map(|(k, b)| (*k, Value::Bytes(b.clone().into())))
            .collect(),
    )
    .unwrap();
    for k in &keys {
        let s = state(&store, k);
        assert!(!s.owner && s.plain && s.readers == 0 && !s.writer, "{s:?}");
    }
    let missing = Key::random();
    let mut probe = keys.clone();
    probe.push(missing);
    assert_eq!(
        c.exists_batch(&probe).unwrap(),
        vec![true, true, true, true, false]
    );
    let got = c.get_batch(&probe).unwrap();
    assert_eq!(got.len(), 5);
    assert!(got[4].is_none());
    for (i, stored) in got.into_iter().take(4).enumerate() {
        let stored = stored.expect("stored");
        assert_eq!(stored.version, 1);
        let bytes = stored.value.into_bytes().unwrap();
        assert_eq!(codec::decode::<V>(&bytes).unwrap(), vec![i as u64; i]);
    }
    // what the store API reads back
    assert_eq!(store.get::<V>(&keys[3]).unwrap(), Some(vec![3, 3, 3]));
    assert_eq!(
        c.evict_batch(&[keys[0], missing, keys[1]]).unwrap(),
        vec![true, false, true]
    );
    assert_eq!(
        c.exists_batch(&keys).unwrap(),
        vec![false, false, true, true]
    );
    assert_eq!(
        c.evict_batch(&keys).unwrap(),
        vec![false, false, true, true]
    );
    // a key that exists is not overwritten by put
    let k = store.put(&1u8).unwrap();
    assert!(
        c.put(&k, Value::Bytes(good_blob().into()), Init::Plain)
            .is_err()
    );
    assert_eq!(store.get::<u8>(&k).unwrap(), Some(1));
    assert!(store.evict(&k).unwrap());
    assert_empty(&store);
}

pub fn serialized_proxy_round_trips_and_resolves(store: Store) {
    let big: V = (0..10_000).collect();
    let p = store.proxy(big.clone()).unwrap();
    let key = *Proxy::key(&p);
    let bytes = postcard::to_allocvec(&p).unwrap();
    assert!(
        bytes.len() < 256,
        "a proxy must never carry the value ({} bytes)",
        bytes.len()
    );
    let q: Proxy<V> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(Proxy::key(&q), &key);
    assert!(!Proxy::is_resolved(&q));
    assert!(!Proxy::is_ephemeral(&q));
    assert!(Proxy::store(&q).same_store(&store));
    assert_eq!(Proxy::resolve(&q).unwrap(), &big);
    assert_eq!(q.len(), 10_000); // Deref

    let via_api = Proxy::<V>::from_bytes(&Proxy::to_bytes(&p).unwrap()).unwrap();
    assert_eq!(Proxy::resolve(&via_api).unwrap(), &big);

    // of an owned object: resolving a plain proxy owns nothing
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let ko = *OwnedProxy::key(&owner);
    let pb = postcard::to_allocvec(&store.proxy_from_key::<V>(ko)).unwrap();
    let remote: Proxy<V> = postcard::from_bytes(&pb).unwrap();
    assert_eq!(Proxy::resolve(&remote).unwrap(), &vec![1]);
    assert_idle_owned(state(&store, &ko));
    drop(remote);
    drop(owner);
    assert_evicted(&store, &ko);
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

pub fn malformed_proxy_bytes_are_malformed(store: Store) {
    let p = store.proxy(vec![1u64]).unwrap();
    let key = *Proxy::key(&p);
    let good = Proxy::to_bytes(&p).unwrap();
    let mut bad: Vec<Vec<u8>> = vec![vec![], vec![0xFF; 4], vec![0x80; 64]];
    bad.extend((0..good.len()).map(|n| good[..n].to_vec()));
    for b in &bad {
        let got = Proxy::<V>::from_bytes(b);
        assert!(
            matches!(got, Err(Error::Malformed { what: "proxy", .. })),
            "{b:?} gave {got:?}"
        );
    }
    // well-formed bytes naming a store URL nobody supports
    let odd = postcard::to_allocvec(&(
        StoreConfig {
            name: unique_name("nowhere"),
            url: String::from("nope://x"),
        },
        key,
        false,
        codec::fingerprint::<V>(),
        std::any::type_name::<V>(),
    ))
    .unwrap();
    assert_err!(Proxy::<V>::from_bytes(&odd), Error::InvalidUrl { .. });
    // the good bytes still work
    assert_eq!(
        Proxy::resolve(&Proxy::<V>::from_bytes(&good).unwrap()).unwrap(),
        &vec![1]
    );
    assert!(store.evict(&key).unwrap());
    assert_empty(&store);
}

pub fn malformed_ticket_bytes_are_malformed(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let good = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut bad: Vec<Vec<u8>> = vec![vec![], vec![0xFF; 4], vec![0x80; 64]];
    bad.extend((0..good.len()).map(|n| good[..n].to_vec()));
    for b in &bad {
        let got = OwnerTicket::<V>::from_bytes(b);
        assert!(
            matches!(
                got,
                Err(Error::Malformed {
                    what: "owner ticket",
                    ..
                })
            ),
            "{b:?} gave {got:?}"
        );
        let got = BorrowTicket::<V>::from_bytes(b);
        assert!(
            matches!(
                got,
                Err(Error::Malformed {
                    what: "borrow ticket",
                    ..
                })
            ),
            "{b:?} gave {got:?}"
        );
    }
    // well-formed bytes of a ticket the store never issued
    let mut forged = good.clone();
    // (the ticket ends with its type name, one length byte and the name)
    let n = forged.len() - 1 - codec::recorded_type_name::<V>().len();
    forged[n - 12] ^= 0x55; // inside the ticket id
    if let Ok(t) = BorrowTicket::<V>::from_bytes(&forged) {
        assert!(t.redeem().is_err(), "a forged ticket was redeemed");
    }
    assert_eq!(state(&store, &key).readers, 1);
    let r = BorrowTicket::<V>::from_bytes(&good)
        .unwrap()
        .redeem()
        .unwrap();
    drop(r);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_empty(&store);
}

pub fn missing_keys(store: Store) {
    let missing = Key::random();
    assert_eq!(store.get::<V>(&missing).unwrap(), None);
    assert!(store.get_shared::<V>(&missing).unwrap().is_none());
    assert!(!store.exists(&missing).unwrap());
    assert!(!store.evict(&missing).unwrap());
    assert!(store.inspect(&missing).unwrap().is_none());
    let p: Proxy<V> = store.proxy_from_key(missing);
    match Proxy::resolve(&p) {
        Err(Error::KeyNotFound { key, store: name }) => {
            assert_eq!(key, missing);
            assert_eq!(name, store.name());
        }
        other => panic!("expected KeyNotFound, got {other:?}"),
    }
    assert!(!Proxy::is_resolved(&p));
    // an evicted key is missing too
    let key = store.put(&vec![1u64]).unwrap();
    let p: Proxy<V> = store.proxy_from_key(key);
    assert!(store.evict(&key).unwrap());
    assert_err!(Proxy::resolve(&p), Error::KeyNotFound { key: k, .. } if k == key);
    assert_eq!(store.get::<V>(&key).unwrap(), None);
    assert_empty(&store);
}

// ------------------------------------------------------- shared decoding

pub fn readers_share_one_value_of_an_owned_proxy(store: Store) {
    let owner = store.owned_proxy((0..100u64).collect::<V>()).unwrap();
    let a = borrow(&owner).unwrap();
    let b = borrow(&owner).unwrap();
    let sa = RefProxy::shared(&a).unwrap();
    let sb = RefProxy::shared(&b).unwrap();
    assert!(Arc::ptr_eq(sa, sb), "two readers hold two copies");
    assert_eq!(sa.len(), 100);
    drop((a, b));
    drop(owner);
    assert_empty(&store);
}

pub fn readers_share_one_decoded_value_of_an_adopted_blob(store: Store) {
    let key = store.put(&(0..100u64).collect::<V>()).unwrap();
    let owner = into_owned(store.proxy_from_key::<V>(key)).unwrap();
    let a = borrow(&owner).unwrap();
    let b = borrow(&owner).unwrap();
    let sa = RefProxy::shared(&a).unwrap().clone();
    let sb = RefProxy::shared(&b).unwrap();
    assert!(Arc::ptr_eq(&sa, sb), "two readers decoded two copies");
    drop((a, b));
    // decoded once per version: a later reader of the same version shares it
    let c = borrow(&owner).unwrap();
    assert!(Arc::ptr_eq(&sa, RefProxy::shared(&c).unwrap()));
    drop(c);
    // a new version is a new value, never the stale one
    let mut w = mut_borrow(&owner).unwrap();
    w.push(100);
    update(&mut w).unwrap();
    drop(w);
    let d = borrow(&owner).unwrap();
    let e = borrow(&owner).unwrap();
    let sd = RefProxy::shared(&d).unwrap();
    assert!(!Arc::ptr_eq(&sa, sd));
    assert_eq!(sd.len(), 101);
    assert!(Arc::ptr_eq(sd, RefProxy::shared(&e).unwrap()));
    assert_eq!(sa.len(), 100, "an old snapshot stays immutable");
    drop((d, e));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

pub fn flush_is_ok_and_releases_are_applied(store: Store) {
    store.flush().unwrap();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    drop(owner);
    store.flush().unwrap();
    assert_stored(&store, &key);
    drop(r);
    store.flush().unwrap();
    assert_evicted(&store, &key);
    assert_empty(&store);
}

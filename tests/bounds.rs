//! Auto-trait and trait bounds of the public types, checked at compile time
//! (in the manner of tokio's `tests/async_send_sync.rs`): if a change makes a
//! handle lose `Send`, `Sync` or `Unpin`, this file stops compiling.
//!
//! Values live behind `Arc<T>` shared between threads, so
//! [`Storable`](borrowstore::Storable) requires `Send + Sync`: a proxy of an
//! `Rc<_>`, a `Cell<_>` or a `RefCell<_>` cannot be created. Copy-on-write
//! copies values with `Clone`, so it requires `Clone` too. The compile-fail
//! tests (`tests/compile_fail*`) check the error message users get for that;
//! here `not_storable!` checks the bound itself, without trybuild.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Arc;

use borrowstore::{
    BorrowTicket, Error, Key, OwnedProxy, OwnerTicket, Proxy, RefMutProxy, RefProxy, Storable,
    Store, StoreConfig,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn require_send<T: Send>() {}
fn require_sync<T: Sync>() {}
fn require_unpin<T: Unpin>() {}
fn require_static<T: 'static>() {}

macro_rules! assert_value {
    ($type:ty: Send & Sync & Unpin) => {
        const _: fn() = || {
            require_send::<$type>();
            require_sync::<$type>();
            require_unpin::<$type>();
        };
    };
}

// The store and its plain data.
assert_value!(Store: Send & Sync & Unpin);
assert_value!(StoreConfig: Send & Sync & Unpin);
assert_value!(Key: Send & Sync & Unpin);
assert_value!(Error: Send & Sync & Unpin);

// Handles, for typical values.
assert_value!(Proxy<Vec<u64>>: Send & Sync & Unpin);
assert_value!(Proxy<String>: Send & Sync & Unpin);
assert_value!(OwnedProxy<Vec<u64>>: Send & Sync & Unpin);
assert_value!(OwnedProxy<String>: Send & Sync & Unpin);
assert_value!(RefProxy<Vec<u64>>: Send & Sync & Unpin);
assert_value!(RefProxy<String>: Send & Sync & Unpin);
assert_value!(RefMutProxy<Vec<u64>>: Send & Sync & Unpin);
assert_value!(RefMutProxy<String>: Send & Sync & Unpin);
assert_value!(OwnerTicket<Vec<u64>>: Send & Sync & Unpin);
assert_value!(OwnerTicket<String>: Send & Sync & Unpin);
assert_value!(BorrowTicket<Vec<u64>>: Send & Sync & Unpin);
assert_value!(BorrowTicket<String>: Send & Sync & Unpin);

/// For every storable `T`, not just the ones above: every handle is
/// `Send + Sync`; handles that never hold a `T` by value are `Unpin`
/// whatever `T` is; the others are `Unpin` when `T` is.
fn every_storable_type<T: Storable>() {
    require_send::<Proxy<T>>();
    require_sync::<Proxy<T>>();
    require_unpin::<Proxy<T>>();
    require_send::<OwnedProxy<T>>();
    require_sync::<OwnedProxy<T>>();
    require_send::<RefProxy<T>>();
    require_sync::<RefProxy<T>>();
    require_unpin::<RefProxy<T>>();
    require_send::<RefMutProxy<T>>();
    require_sync::<RefMutProxy<T>>();
    require_send::<OwnerTicket<T>>();
    require_sync::<OwnerTicket<T>>();
    require_unpin::<OwnerTicket<T>>();
    require_send::<BorrowTicket<T>>();
    require_sync::<BorrowTicket<T>>();
    require_unpin::<BorrowTicket<T>>();
    require_static::<Proxy<T>>();
    require_static::<OwnedProxy<T>>();
}

fn every_unpin_storable_type<T: Storable + Unpin>() {
    require_unpin::<OwnedProxy<T>>();
    require_unpin::<RefMutProxy<T>>();
}

// Errors box into `Box<dyn Error + Send + Sync>` and cross threads.
fn require_error<E: std::error::Error + Send + Sync + 'static>() {}
const _: fn() = || require_error::<Error>();

// Keys are plain data with a text form.
fn require_key_traits<
    K: Clone
        + Copy
        + Eq
        + Ord
        + Hash
        + Debug
        + Display
        + Serialize
        + DeserializeOwned
        + FromStr<Err = Error>,
>() {
}
const _: fn() = || require_key_traits::<Key>();

// Proxies are serializable (they carry the key, never the value); owners are
// not (that would make two owners) — the compile-fail tests check that part.
fn require_serde<T: Serialize + DeserializeOwned>() {}
const _: fn() = || {
    require_serde::<Proxy<Vec<u64>>>();
    require_serde::<OwnerTicket<Vec<u64>>>();
    require_serde::<BorrowTicket<Vec<u64>>>();
    require_serde::<StoreConfig>();
};

fn require_clone_debug<T: Clone + Debug>() {}
const _: fn() = || {
    require_clone_debug::<Store>();
    require_clone_debug::<Proxy<Vec<u64>>>();
};

/// Fails to compile if `$type` is `Storable` (two impls become applicable
/// and the call is ambiguous). The `Rc` / `Cell` / `RefCell` cases are what
/// keeps non-thread-safe values out of a store.
trait AmbiguousIfStorable<A> {
    fn some_item() {}
}
impl<T> AmbiguousIfStorable<()> for T {}
impl<T: Storable> AmbiguousIfStorable<u8> for T {}

macro_rules! not_storable {
    ($type:ty) => {
        const _: fn() = || {
            let _ = <$type as AmbiguousIfStorable<_>>::some_item;
        };
    };
}

not_storable!(Rc<u64>);
not_storable!(Cell<u64>);
not_storable!(RefCell<u64>);
not_storable!(Vec<Cell<u8>>);
not_storable!(std::sync::MutexGuard<'static, u64>);

/// The bounds are usable, not just present: a store, an owner and a borrow
/// move to another thread, and the borrow's store-side claim goes with it.
#[test]
fn handles_move_between_threads() {
    let store = Store::memory(format!("bounds-{}", std::process::id()));
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r = borrowstore::borrow(&owner).unwrap();
    let shared = Arc::new(store.proxy_from_key::<Vec<u64>>(key));

    let (sum, readers_inside) = std::thread::spawn({
        let store = store.clone();
        let shared = shared.clone();
        move || {
            let sum: u64 = r.iter().sum::<u64>() + shared.iter().sum::<u64>();
            let readers = store.inspect(&key).unwrap().unwrap().readers;
            drop(r);
            (sum, readers)
        }
    })
    .join()
    .unwrap();
    assert_eq!(sum, 12);
    assert_eq!(readers_inside, 1);
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 0);

    let moved = std::thread::spawn(move || {
        let w = borrowstore::mut_borrow(&owner).map(drop);
        (owner, w.is_ok())
    })
    .join()
    .unwrap();
    assert!(moved.1);
    drop(moved.0);
    assert!(!store.exists(&key).unwrap());
}

// `Storable` also requires `Clone`: copy-on-write copies a value with it.
// The types users store derive it with serde's traits; a serializable type
// without `Clone` is refused, and so are `Mutex` and the atomics, which
// serde can serialize but which would let a shared borrow change its value.
fn require_storable<T: Storable>() {}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Derived {
    name: String,
    values: Vec<u64>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct NotClone {
    values: Vec<u64>,
}

const _: fn() = || {
    require_storable::<Derived>();
    require_storable::<Vec<u64>>();
    require_storable::<String>();
    require_storable::<(u8, Option<String>)>();
};

not_storable!(NotClone);
not_storable!(std::sync::Mutex<u64>);
not_storable!(std::sync::atomic::AtomicU64);

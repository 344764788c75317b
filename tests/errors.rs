//! Errors a user can act on, on the memory, file and Redis stores:
//!
//! - a value, a ticket or a proxy read back as another type names the type
//!   that was stored, not only its fingerprint;
//! - a refused borrow, eviction or update says which operation was refused
//!   and what holds the object (how many readers, or a writer).

use std::any::type_name;

use borrowstore_testkit::{Suite, exists, on_every_store};

/// Names this suite's stores and directories.
const SUITE: Suite = borrowstore_testkit::suite!("errors");

use borrowstore::{
    BorrowTicket, Borrows, Error, Key, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, borrow,
    mut_borrow, update,
};

on_every_store!(SUITE;
    get_as_another_type_names_the_stored_type,
    resolve_as_another_type_names_the_stored_type,
    owner_ticket_of_another_type_names_the_stored_type,
    borrow_ticket_of_another_type_names_the_stored_type,
    proxy_of_another_type_names_the_stored_type,
    mut_borrow_refused_by_readers_says_how_many,
    mut_borrow_refused_by_a_writer_says_so,
    borrow_refused_by_a_writer_says_so,
    evict_refused_says_what_holds_the_object,
    update_refused_by_readers_says_how_many,
);

/// `result` is a `TypeMismatch` expecting `String` and finding `Vec<u64>`.
#[track_caller]
fn assert_names_vec<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::TypeMismatch { expected, found }) => {
            assert_eq!(expected, type_name::<String>());
            assert_eq!(found, type_name::<Vec<u64>>());
            assert_eq!(found, "alloc::vec::Vec<u64>");
        }
        other => panic!("expected a type mismatch, got {other:?}"),
    }
}

// ------------------------------------------------------------ type names --

fn get_as_another_type_names_the_stored_type(store: Store) {
    let key = store.put(&vec![1u64, 2, 3]).unwrap();
    assert_names_vec(store.get::<String>(&key));
    let err = store.get::<String>(&key).unwrap_err().to_string();
    assert_eq!(
        err,
        "type mismatch: expected alloc::string::String, found alloc::vec::Vec<u64>"
    );
    // nothing was consumed: the value still reads as what it is
    assert_eq!(store.get::<Vec<u64>>(&key).unwrap(), Some(vec![1, 2, 3]));
    assert!(store.evict(&key).unwrap());
}

fn resolve_as_another_type_names_the_stored_type(store: Store) {
    let p = store.proxy(vec![4u64, 5]).unwrap();
    let key = *Proxy::key(&p);
    assert_names_vec(Proxy::resolve(&store.proxy_from_key::<String>(key)));
    // through a borrow of an owner of the wrong type: the borrow is taken,
    // its resolve names the type
    let owner = borrowstore::into_owned(store.proxy_from_key::<String>(key)).unwrap();
    let r = borrow(&owner).unwrap();
    assert_names_vec(RefProxy::resolve(&r));
    drop(r);
    drop(owner);
    assert!(!exists(&store, &key));
}

fn owner_ticket_of_another_type_names_the_stored_type(store: Store) {
    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let wrong = OwnerTicket::<String>::from_bytes(&bytes).unwrap();
    assert_names_vec(wrong.redeem());
    // the refused redeem did not consume the ticket
    let owner = OwnerTicket::<Vec<u64>>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_eq!(*owner, vec![1, 2]);
    drop(owner);
    assert!(!exists(&store, &key));
}

fn borrow_ticket_of_another_type_names_the_stored_type(store: Store) {
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let wrong = BorrowTicket::<String>::from_bytes(&bytes).unwrap();
    assert_names_vec(wrong.redeem());
    let r = BorrowTicket::<Vec<u64>>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_eq!(*r, vec![3]);
}

fn proxy_of_another_type_names_the_stored_type(store: Store) {
    let p = store.proxy(vec![6u64]).unwrap();
    let bytes = Proxy::to_bytes(&p).unwrap();
    assert_names_vec(Proxy::<String>::from_bytes(&bytes));
    assert_eq!(*Proxy::<Vec<u64>>::from_bytes(&bytes).unwrap(), vec![6]);
    assert!(store.evict(Proxy::key(&p)).unwrap());
}

// -------------------------------------------------------------- refusals --

/// `readers` readers, or (`None`) the writer.
fn held_by(readers: Option<u32>) -> Borrows {
    match readers {
        Some(readers) => Borrows {
            readers,
            writer: false,
        },
        None => Borrows {
            readers: 0,
            writer: true,
        },
    }
}

/// `result` is `op` on `key` refused with `AlreadyBorrowed`, reporting
/// `readers` readers (or, `None`, the writer), and reading `message`.
#[track_caller]
fn assert_borrowed<T: std::fmt::Debug>(
    result: Result<T, Error>,
    (key, op, readers): (Key, &str, Option<u32>),
    message: &str,
) {
    match result {
        Err(e @ Error::AlreadyBorrowed { .. }) => {
            assert_eq!(e.to_string(), message);
            let Error::AlreadyBorrowed {
                key: k,
                op: o,
                borrows,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!((k, o, borrows), (key, op, held_by(readers)));
        }
        other => panic!("expected AlreadyBorrowed ({message}), got {other:?}"),
    }
}

/// `result` is a borrow of `key` refused with `AlreadyMutablyBorrowed`,
/// reporting the writer, and reading `message`.
#[track_caller]
fn assert_mutably_borrowed<T: std::fmt::Debug>(result: Result<T, Error>, key: Key, message: &str) {
    match result {
        Err(e @ Error::AlreadyMutablyBorrowed { .. }) => {
            assert_eq!(e.to_string(), message);
            let Error::AlreadyMutablyBorrowed {
                key: k,
                op,
                borrows,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!((k, op, borrows), (key, "borrow", held_by(None)));
        }
        other => panic!("expected AlreadyMutablyBorrowed ({message}), got {other:?}"),
    }
}

fn mut_borrow_refused_by_readers_says_how_many(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut readers = vec![borrow(&owner).unwrap()];
    assert_borrowed(
        mut_borrow(&owner),
        (key, "mut_borrow", Some(1)),
        &format!("cannot mut_borrow object {key}: 1 reader holds it"),
    );
    readers.push(borrow(&owner).unwrap());
    readers.push(borrow(&owner).unwrap());
    assert_borrowed(
        mut_borrow(&owner),
        (key, "mut_borrow", Some(3)),
        &format!("cannot mut_borrow object {key}: 3 readers hold it"),
    );
    drop(readers);
    store.flush().unwrap();
    drop(mut_borrow(&owner).unwrap());
}

fn mut_borrow_refused_by_a_writer_says_so(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    assert_borrowed(
        mut_borrow(&owner),
        (key, "mut_borrow", None),
        &format!("cannot mut_borrow object {key}: a writer holds it"),
    );
    drop(w);
}

fn borrow_refused_by_a_writer_says_so(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    assert_mutably_borrowed(
        borrow(&owner),
        key,
        &format!("cannot borrow object {key}: a writer holds it"),
    );
    drop(w);
    store.flush().unwrap();
    drop(borrow(&owner).unwrap());
}

fn evict_refused_says_what_holds_the_object(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let w = mut_borrow(&owner).unwrap();
    assert_borrowed(
        store.evict(&key),
        (key, "evict", None),
        &format!("cannot evict object {key}: a writer holds it"),
    );
    drop(w);
    store.flush().unwrap();
    // a borrow ticket in flight is a reader too
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    assert_borrowed(
        store.evict(&key),
        (key, "evict", Some(1)),
        &format!("cannot evict object {key}: 1 reader holds it"),
    );
    ticket.cancel().unwrap();
    store.flush().unwrap();
    assert!(store.evict(&key).unwrap());
    drop(owner);
}

fn update_refused_by_readers_says_how_many(store: Store) {
    let mut owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    owner.push(2);
    let r1 = borrow(&owner).unwrap();
    let r2 = borrow(&owner).unwrap();
    assert_borrowed(
        update(&mut owner),
        (key, "update", Some(2)),
        &format!("cannot update object {key}: 2 readers hold it"),
    );
    drop((r1, r2));
    store.flush().unwrap();
    // the refused update kept the local change
    update(&mut owner).unwrap();
    assert_eq!(*borrow(&owner).unwrap(), vec![1, 2]);
}

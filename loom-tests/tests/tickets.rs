//! (c) Tickets move a claim exactly once. Two threads stand in for two
//! processes that received the same ticket bytes: exactly one redeem wins,
//! the other gets `Error::TicketRedeemed`.
#![cfg(borrowstore_loom)]

use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, borrow};
use borrowstore_loom_tests::{finish_empty, fresh_store};
use loom::thread;

type V = Vec<u64>;

/// Redeems the owner ticket in `bytes`, uses the owner and drops it (which
/// evicts the object, racing the other redeem). Returns whether it won.
fn redeem_owner(bytes: &[u8]) -> bool {
    match OwnerTicket::<V>::from_bytes(bytes).unwrap().redeem() {
        Ok(owner) => {
            assert_eq!(*owner, vec![4, 2]);
            drop(owner);
            true
        }
        Err(Error::TicketRedeemed { .. }) => false,
        Err(e) => panic!("redeem failed with the wrong error: {e:?}"),
    }
}

#[test]
fn owner_ticket_redeemed_exactly_once() {
    loom::model(|| {
        let store = fresh_store("tko");
        let owner = store.owned_proxy(vec![4u64, 2]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();

        let b = bytes.clone();
        let t = thread::spawn(move || redeem_owner(&b));
        let here = redeem_owner(&bytes);
        let there = t.join().unwrap();
        assert!(here ^ there, "winners: here {here}, there {there}");

        // The winner dropped its owner: evicted, ticket record swept.
        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        assert!(matches!(
            OwnerTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
            Err(Error::TicketRedeemed { .. })
        ));
        finish_empty(store);
    });
}

#[test]
fn borrow_ticket_redeemed_exactly_once_while_owner_drops() {
    loom::model(|| {
        let store = fresh_store("tkb");
        let owner = store.owned_proxy(vec![4u64, 2]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let r = borrow(&owner).unwrap();
        let bytes = RefProxy::into_ticket(r).unwrap().to_bytes().unwrap();

        let spawn_redeem = |b: Vec<u8>| {
            thread::spawn(
                move || match BorrowTicket::<V>::from_bytes(&b).unwrap().redeem() {
                    Ok(r) => {
                        // The ticket held the borrow store-side, so the owner's
                        // drop cannot have evicted the object.
                        assert_eq!(*r, vec![4, 2], "evicted under a borrow ticket");
                        drop(r);
                        true
                    }
                    Err(Error::TicketRedeemed { .. }) => false,
                    Err(e) => panic!("redeem failed with the wrong error: {e:?}"),
                },
            )
        };
        let t1 = spawn_redeem(bytes.clone());
        let t2 = spawn_redeem(bytes);
        drop(owner);
        let (a, b) = (t1.join().unwrap(), t2.join().unwrap());
        assert!(a ^ b, "winners: {a} {b}");
        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        finish_empty(store);
    });
}

/// Redeem races cancel: exactly one succeeds; either way the owner claim
/// ends once and the object is evicted.
#[test]
fn redeem_races_cancel() {
    loom::model(|| {
        let store = fresh_store("tkc");
        let owner = store.owned_proxy(vec![4u64, 2]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();

        let b = bytes.clone();
        let t = thread::spawn(
            move || match OwnerTicket::<V>::from_bytes(&b).unwrap().cancel() {
                Ok(()) => true,
                Err(Error::TicketRedeemed { .. }) => false,
                Err(e) => panic!("cancel failed with the wrong error: {e:?}"),
            },
        );
        let redeemed = redeem_owner(&bytes);
        let cancelled = t.join().unwrap();
        assert!(
            redeemed ^ cancelled,
            "redeemed {redeemed}, cancelled {cancelled}"
        );
        assert!(
            !store.exists(&key).unwrap(),
            "the object outlived its owner and its last borrow"
        );
        finish_empty(store);
    });
}

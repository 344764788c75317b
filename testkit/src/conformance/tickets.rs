//! Tickets: ownership and borrows in flight, redeemed exactly once.

use borrowstore::{
    BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow, mut_borrow,
};

use super::{V, assert_evicted, assert_idle_owned, assert_stored, state};
use crate::assert_err;
use crate::probe::assert_empty;

/// An owner ticket is redeemed once: a second redeem (before or after the
/// object is gone) is `TicketRedeemed` and changes nothing.
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

/// While an owner ticket is in flight it owns the object store-side: the
/// object stays after its borrows end, until the redeemed owner goes.
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

/// Cancelling an owner ticket evicts its object; cancelling or redeeming it
/// afterwards, or cancelling a redeemed one, is `TicketRedeemed`.
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

/// A borrow ticket keeps its borrow store-side while in flight (a writer
/// and an evict are refused, the object outlives its owner); it is
/// redeemed once, and the redeemed borrow is the last holder.
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

/// Cancelling a borrow ticket releases its borrow; cancelling the last
/// borrow of an object without an owner evicts it.
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

/// A ticket redeemed as another type is `TypeMismatch` and stays
/// redeemable as its own type.
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

// ------------------------------------------------- cancelling as the wrong type

/// Ticket bytes read as a ticket of another value type are refused by
/// `cancel` as by `redeem`: [`Error::TypeMismatch`], nothing consumed, the
/// ticket still redeemable as what it is.
pub fn ticket_cancelled_as_wrong_type_is_type_mismatch_and_consumes_nothing(store: Store) {
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    assert_err!(
        OwnerTicket::<String>::from_bytes(&bytes).unwrap().cancel(),
        Error::TypeMismatch { .. }
    );
    assert_stored(&store, &key);
    assert_idle_owned(state(&store, &key));
    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the owner ticket must still be redeemable");
    assert_eq!(*owner, vec![1]);

    let r_bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_err!(
        BorrowTicket::<u32>::from_bytes(&r_bytes).unwrap().cancel(),
        Error::TypeMismatch { .. }
    );
    assert_eq!(state(&store, &key).readers, 1);
    let r = BorrowTicket::<V>::from_bytes(&r_bytes)
        .unwrap()
        .redeem()
        .expect("the borrow ticket must still be redeemable");
    assert_eq!(*r, vec![1]);
    drop(r);
    assert_idle_owned(state(&store, &key));
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

/// The bytes of a borrow ticket read as an owner ticket of the same type
/// (or the other way round) are refused by `cancel` as by `redeem`:
/// [`Error::Malformed`], nothing consumed, the ticket still redeemable as
/// what it is.
pub fn ticket_cancelled_as_wrong_kind_is_malformed_and_consumes_nothing(store: Store) {
    let owner = store.owned_proxy(vec![2u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r_bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_err!(
        OwnerTicket::<V>::from_bytes(&r_bytes).unwrap().cancel(),
        Error::Malformed { .. }
    );
    assert_eq!(state(&store, &key).readers, 1);
    assert!(state(&store, &key).owner);
    let r = BorrowTicket::<V>::from_bytes(&r_bytes)
        .unwrap()
        .redeem()
        .expect("the borrow ticket must still be redeemable");
    drop(r);
    assert_idle_owned(state(&store, &key));

    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    assert_err!(
        BorrowTicket::<V>::from_bytes(&bytes).unwrap().cancel(),
        Error::Malformed { .. }
    );
    assert_stored(&store, &key);
    assert_idle_owned(state(&store, &key));
    let owner = OwnerTicket::<V>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the owner ticket must still be redeemable");
    assert_eq!(*owner, vec![2]);
    drop(owner);
    assert_evicted(&store, &key);
    assert_empty(&store);
}

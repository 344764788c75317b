//! Tickets from arbitrary bytes, and real tickets damaged by them.
//!
//! 1. The input as a ticket: `OwnerTicket::from_bytes` /
//!    `BorrowTicket::from_bytes` are a ticket or `Malformed`; redeeming or
//!    cancelling a ticket nobody issued is refused with a clear error.
//! 2. The input as damage (see `borrowstore_fuzz::damage`) to a real owner
//!    ticket and a real borrow ticket issued for this run: redeeming the
//!    damaged bytes, as either kind, is refused without side effects or
//!    yields exactly the real handle; afterwards the real ticket still
//!    redeems (unless the damaged bytes did, as the same ticket), and when
//!    every handle is gone the store is empty — no claim leaked, no object
//!    evicted early.
#![no_main]

use std::fmt::Debug;

use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow};
use borrowstore_fuzz::{
    FIXTURE_STORES, damage, forgetting_stores, input_is_safe, is_store_error, trust_the_sandbox,
    violation,
};
use libfuzzer_sys::fuzz_target;

/// A redeem or cancel of a ticket that was not issued (or not as this kind
/// and type) is refused with one of these.
fn refused(e: &Error) -> bool {
    matches!(
        e,
        Error::TicketRedeemed { .. }
            | Error::TypeMismatch { .. }
            | Error::Malformed { .. }
            | Error::KeyNotFound { .. }
    ) || is_store_error(e)
}

fn parse<T>(data: &[u8], read: impl Fn(&[u8]) -> borrowstore::Result<T>) -> Option<T> {
    match read(data) {
        Ok(t) => Some(t),
        Err(Error::Malformed {
            what: "owner ticket" | "borrow ticket",
            ..
        }) => None,
        Err(e) => panic!("undocumented ticket error: {e:?}"),
    }
}

fn expect_refused<H: Debug>(what: &str, r: borrowstore::Result<H>) {
    match r {
        Err(e) if refused(&e) => {}
        other => panic!("{what} of a ticket nobody issued: {other:?}"),
    }
}

/// Part 1: the input is a ticket nobody issued.
fn forged(data: &[u8]) {
    if let Some(t) = parse(data, OwnerTicket::<u64>::from_bytes) {
        let bytes = t.to_bytes().expect("a ticket that was read writes back");
        let again = OwnerTicket::<u64>::from_bytes(&bytes).expect("a ticket's own bytes read back");
        assert_eq!(again.key(), t.key());
        assert_eq!(again.to_bytes().unwrap(), bytes);
        expect_refused("redeem", t.redeem());
        expect_refused("cancel", again.cancel());
    }
    if let Some(t) = parse(data, BorrowTicket::<u64>::from_bytes) {
        expect_refused("redeem", t.redeem());
    }
    if let Some(t) = parse(data, OwnerTicket::<String>::from_bytes) {
        expect_refused("redeem", t.redeem());
    }
}

enum Handle {
    Owner(OwnedProxy<u64>),
    Borrow(RefProxy<u64>),
}

impl Handle {
    fn value(&self) -> u64 {
        match self {
            Handle::Owner(o) => **o,
            Handle::Borrow(r) => **r,
        }
    }
}

/// Redeems `bytes` as `owner` (else borrow) ticket kind, if they parse.
fn redeem_as(bytes: &[u8], owner: bool) -> Option<borrowstore::Result<(Handle, borrowstore::Key)>> {
    if owner {
        let t = parse(bytes, OwnerTicket::<u64>::from_bytes)?;
        Some(t.redeem().map(|o| {
            let k = *OwnedProxy::key(&o);
            (Handle::Owner(o), k)
        }))
    } else {
        let t = parse(bytes, BorrowTicket::<u64>::from_bytes)?;
        Some(t.redeem().map(|r| {
            let k = *RefProxy::key(&r);
            (Handle::Borrow(r), k)
        }))
    }
}

/// Part 2: the input damages real tickets.
fn damaged(data: &[u8]) {
    let store = Store::memory("fuzz-tickets");
    let a = store.owned_proxy(7u64).unwrap();
    let key_a = *OwnedProxy::key(&a);
    let owner_ticket = OwnedProxy::into_ticket(a).unwrap().to_bytes().unwrap();
    let b = store.owned_proxy(8u64).unwrap();
    let key_b = *OwnedProxy::key(&b);
    let borrow_ticket = RefProxy::into_ticket(borrow(&b).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();

    for (real, key, value, is_owner) in [
        (&owner_ticket, key_a, 7u64, true),
        (&borrow_ticket, key_b, 8u64, false),
    ] {
        let bad = damage(real, data);
        let mut won: Vec<Handle> = Vec::new();
        if input_is_safe(&bad) {
            forgetting_stores(&bad, FIXTURE_STORES, || {
                for as_owner in [true, false] {
                    match redeem_as(&bad, as_owner) {
                        None => {}
                        Some(Ok((h, k))) => {
                            assert_eq!(
                                as_owner, is_owner,
                                "a damaged ticket redeemed as the other kind"
                            );
                            assert_eq!(
                                (k, h.value()),
                                (key, value),
                                "a damaged ticket redeemed another object"
                            );
                            won.push(h);
                        }
                        Some(Err(e)) => assert!(refused(&e), "undocumented redeem error: {e:?}"),
                    }
                }
            });
            // A damaged URL under this name may have displaced it.
            store.register();
        }
        assert!(won.len() <= 1, "one ticket redeemed twice");
        match (
            won.is_empty(),
            redeem_as(real, is_owner).expect("the real ticket parses"),
        ) {
            (false, Err(Error::TicketRedeemed { .. })) => {}
            (true, Ok((h, k))) => assert_eq!((k, h.value()), (key, value)),
            (_, other) => violation(
                "burnt-ticket",
                format_args!(
                    "after {} damaged redeem, the real {} ticket redeems to {:?}",
                    if won.is_empty() {
                        "a refused"
                    } else {
                        "a successful"
                    },
                    if is_owner { "owner" } else { "borrow" },
                    other.map(|(h, k)| (k, h.value())),
                ),
            ),
        }
    }
    drop(b);
    let left = store.keys().unwrap();
    if !left.is_empty() {
        violation(
            "leaked-object",
            format_args!("{} objects left: {left:?}", left.len()),
        );
        for k in left {
            let _ = store.evict(&k);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    trust_the_sandbox();
    if input_is_safe(data) {
        forgetting_stores(data, FIXTURE_STORES, || forged(data));
    }
    damaged(data);
});

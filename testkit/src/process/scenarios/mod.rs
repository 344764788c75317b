//! Cross-process scenarios. Each takes a [`Target`] (a store URL and what to
//! expect of it), so the same scenario runs against every connector that
//! several processes can share: the root crate's `tests/cross_process.rs`
//! runs them on file stores and on Redis stores.
//!
//! Process A is the test itself; B, C, … are [`ChildProc`]es driven through
//! the commands of [`super::child`] (so the test binary declares
//! [`child_entry!`](crate::child_entry!)). Every check is made on what the
//! store records (`Store::inspect`, `exists`, `keys`), not on a local flag.
//!
//! This file holds the scenarios of live processes; `crashes.rs` those where
//! a process is killed or frozen, or a ticket is never redeemed, and
//! `fate.rs` those for stores that see a process die at once (both
//! re-exported here).

mod crashes;
mod fate;

use std::time::Duration;

use borrowstore::{
    Error, OwnedProxy, OwnerTicket, Proxy, RefProxy, borrow, into_owned, mut_borrow, update,
};

use super::child::{V, csv};
use super::{ChildProc, REPLY_TIMEOUT, Target, hex, inspect};
use crate::assert_err;

pub use crashes::*;
pub use fate::*;

/// A child process playing the command interpreter of [`super::child`] on
/// the target's store.
fn child(t: &Target, name: &str) -> ChildProc {
    ChildProc::spawn(name, "interp", &t.url, &[])
}

/// Leases this short are waited out to show that a live process renews its
/// claims; with long (default) leases that would only slow the tests down.
fn renewal_check_wait(t: &Target) -> Option<Duration> {
    (t.lease <= Duration::from_secs(2)).then_some(t.lease * 3)
}

fn log(scenario: &str, what: impl std::fmt::Display) {
    println!("[{scenario}] {what}");
}

/// (a, first half) A owns an object and sends a borrow ticket to B; while B
/// holds the borrow, A's `mut_borrow`, `update` and `evict` are refused
/// store-side — also after several leases, because B renews its claim. When
/// B drops the borrow, A's `mut_borrow` succeeds.
pub fn reader_in_b_blocks_writer_in_a(t: &Target) {
    let store = t.open();
    let mut owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-reader");

    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    assert_eq!(b.ok("READ"), "1,2,3");

    let check_blocked = |owner: &mut OwnedProxy<V>| {
        let i = inspect(&store, &key).expect("stored");
        assert_eq!(i.readers, 1, "{i:?}");
        assert!(!i.writer && i.owner, "{i:?}");
        assert_err!(mut_borrow(owner), Error::AlreadyBorrowed { .. });
        assert_err!(update(owner), Error::AlreadyBorrowed { .. });
        assert_err!(store.evict(&key), Error::AlreadyBorrowed { .. });
    };
    check_blocked(&mut owner);
    if let Some(wait) = renewal_check_wait(t) {
        std::thread::sleep(wait);
        check_blocked(&mut owner);
    }

    // Readers share: A may borrow beside B.
    let mine = borrow(&owner).unwrap();
    assert_eq!(inspect(&store, &key).unwrap().readers, 2);
    assert_eq!(*mine, vec![1, 2, 3]);
    drop(mine);
    store.flush().unwrap();

    b.ok("DROP_READER");
    let i = inspect(&store, &key).expect("stored");
    assert_eq!((i.readers, i.writer), (0, false), "{i:?}");
    let mut w = mut_borrow(&owner).expect("mut_borrow once B's borrow is gone");
    w.push(4);
    update(&mut w).unwrap();
    drop(w);
    store.flush().unwrap();
    assert_eq!(inspect(&store, &key).unwrap().version, 2);

    b.exit();
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
    t.assert_empty(&store);
}

/// (a, second half) A moves its owner to B with an owner ticket; B takes
/// the mutable borrow. A sees the writer store-side, cannot evict the object
/// or adopt it, and B's own shared borrow is refused; B publishes, A reads
/// the new version; B drops the writer and A sees no borrow left; B drops
/// the owner and the object is evicted.
pub fn writer_in_b_blocks_a(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-writer");

    let ticket = OwnedProxy::into_ticket(owner).unwrap();
    b.ok(&format!(
        "REDEEM_OWNER {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    b.ok("MUT_BORROW");

    let check_written = || {
        let i = inspect(&store, &key).expect("stored");
        assert!(i.writer && i.owner, "{i:?}");
        assert_eq!(i.readers, 0, "{i:?}");
        assert_err!(store.evict(&key), Error::AlreadyBorrowed { .. });
        assert_err!(
            into_owned(store.proxy_from_key::<V>(key)),
            Error::AlreadyOwned { .. }
        );
    };
    check_written();
    if let Some(wait) = renewal_check_wait(t) {
        std::thread::sleep(wait);
        check_written();
    }
    b.err("BORROW", "AlreadyMutablyBorrowed");

    assert_eq!(b.ok("PUSH 4"), "2");
    let i = inspect(&store, &key).unwrap();
    assert_eq!(i.version, 2);
    assert!(i.writer);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2, 3, 4]));

    b.ok("DROP_WRITER");
    let i = inspect(&store, &key).expect("stored");
    assert_eq!((i.readers, i.writer), (0, false), "{i:?}");
    assert!(i.owner, "B still owns it: {i:?}");

    b.ok("DROP_OWNER");
    assert!(!store.exists(&key).unwrap());
    b.exit();
    t.assert_empty(&store);
}

/// (b) A publishes twice (through a mutable borrow, then through its owner);
/// B resolves a `Proxy` deserialized from bytes before and after each, and
/// sees each new version.
pub fn update_in_a_is_seen_by_resolve_in_b(t: &Target) {
    let store = t.open();
    let mut owner = store.owned_proxy(vec![10u64, 20]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let proxy = hex(&Proxy::to_bytes(&store.proxy_from_key::<V>(key)).unwrap());
    let resolve = format!("RESOLVE {proxy}");
    let mut b = child(t, "b-resolver");

    assert_eq!(b.ok(&resolve), "10,20");
    assert_eq!(inspect(&store, &key).unwrap().version, 1);

    let mut w = mut_borrow(&owner).unwrap();
    w.push(30);
    update(&mut w).unwrap();
    drop(w);
    store.flush().unwrap();
    assert_eq!(inspect(&store, &key).unwrap().version, 2);
    assert_eq!(b.ok(&resolve), "10,20,30");

    owner.push(40);
    update(&mut owner).unwrap();
    assert_eq!(inspect(&store, &key).unwrap().version, 3);
    assert_eq!(b.ok(&resolve), "10,20,30,40");
    // Resolving again with nothing changed gives the same value.
    assert_eq!(b.ok(&resolve), "10,20,30,40");

    drop(owner);
    store.flush().unwrap();
    b.err(&resolve, "KeyNotFound");
    b.exit();
    t.assert_empty(&store);
}

/// (c) An owner ticket moved to B: B's owner is the only owner (a second
/// redeem of the same bytes in A fails); when B drops it, the object is
/// evicted.
pub fn owner_ticket_moved_to_b_evicts_when_b_drops_it(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![7u64, 8, 9]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let i = inspect(&store, &key).expect("the ticket keeps it");
    assert!(i.owner, "{i:?}");

    let mut b = child(t, "b-owner");
    b.ok(&format!("REDEEM_OWNER {}", hex(&bytes)));
    assert_eq!(b.ok("READ"), "7,8,9");
    assert!(store.exists(&key).unwrap());
    assert!(inspect(&store, &key).unwrap().owner);
    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );

    b.ok("DROP_OWNER");
    assert!(!store.exists(&key).unwrap(), "B dropped the only owner");
    assert!(inspect(&store, &key).is_none());
    b.exit();
    t.assert_empty(&store);
}

/// (c, deferred) A keeps a borrow and moves the owner to B; B drops the
/// owner: the object stays (A's reference is valid) until A's borrow ends.
pub fn owner_dropped_in_b_waits_for_borrow_in_a(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![1u64, 1, 2, 3, 5]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mine = borrow(&owner).unwrap();
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();

    let mut b = child(t, "b-owner");
    b.ok(&format!("REDEEM_OWNER {}", hex(&bytes)));
    b.ok("DROP_OWNER");
    let i = inspect(&store, &key).expect("a borrow defers eviction");
    assert!(!i.owner && i.readers == 1, "{i:?}");
    assert_eq!(*mine, vec![1, 1, 2, 3, 5]);

    drop(mine);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
    b.exit();
    t.assert_empty(&store);
}

/// Which kind of ticket a race is about.
#[derive(Clone, Copy, Debug)]
pub enum TicketKind {
    /// An [`OwnerTicket`].
    Owner,
    /// A [`BorrowTicket`](borrowstore::BorrowTicket).
    Borrow,
}

/// (d) The same ticket bytes are redeemed by `children` processes at once,
/// `rounds` times: each time exactly one succeeds, the others get
/// `TicketRedeemed`, and the store shows exactly one claim.
pub fn ticket_redeemed_at_once_succeeds_once(
    t: &Target,
    kind: TicketKind,
    children: usize,
    rounds: usize,
) {
    let store = t.open();
    let mut procs: Vec<ChildProc> = (0..children)
        .map(|i| child(t, &format!("racer-{i}")))
        .collect();
    for round in 0..rounds {
        let value = vec![round as u64; 3];
        let owner = store.owned_proxy(value.clone()).unwrap();
        let key = *OwnedProxy::key(&owner);
        let (cmd, bytes, kept) = match kind {
            TicketKind::Owner => (
                "REDEEM_OWNER",
                OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap(),
                None,
            ),
            TicketKind::Borrow => (
                "REDEEM_BORROW",
                RefProxy::into_ticket(borrow(&owner).unwrap())
                    .unwrap()
                    .to_bytes()
                    .unwrap(),
                Some(owner),
            ),
        };
        let line = format!("{cmd} {}", hex(&bytes));
        // Send to everyone before reading any reply: they race.
        for p in &mut procs {
            p.send(&line);
        }
        let replies: Vec<_> = procs.iter_mut().map(|p| p.reply(REPLY_TIMEOUT)).collect();
        let winners: Vec<usize> = (0..children).filter(|i| replies[*i].is_ok()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one redeem must win: {replies:?}"
        );
        for r in &replies {
            if let Err((k, msg)) = r {
                assert_eq!(k, "TicketRedeemed", "round {round}: {msg}");
            }
        }
        let winner = &mut procs[winners[0]];
        assert_eq!(winner.ok("READ"), csv(&value));
        let i = inspect(&store, &key).expect("stored");
        match kind {
            TicketKind::Owner => assert!(i.owner && i.readers == 0, "{i:?}"),
            TicketKind::Borrow => assert_eq!(i.readers, 1, "{i:?}"),
        }
        match kind {
            TicketKind::Owner => {
                winner.ok("DROP_OWNER");
                assert!(!store.exists(&key).unwrap());
            }
            TicketKind::Borrow => {
                winner.ok("DROP_READER");
                assert_eq!(inspect(&store, &key).unwrap().readers, 0);
                drop(kept);
                store.flush().unwrap();
                assert!(!store.exists(&key).unwrap());
            }
        }
    }
    for p in &mut procs {
        p.exit();
    }
    t.assert_empty(&store);
}

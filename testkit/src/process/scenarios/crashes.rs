//! Cross-process scenarios where a process dies, is frozen, or never
//! redeems a ticket: what it held is reclaimed by its lease (or at once,
//! where the store sees the process die), and nothing is lost or left
//! behind.

use std::time::{Duration, Instant};

use borrowstore::{Error, OwnedProxy, OwnerTicket, RefProxy, borrow, mut_borrow, update};

use super::super::child::V;
use super::super::{Target, hex, inspect, unhex};
use super::{child, log, renewal_check_wait};
use crate::assert_err;
use crate::wait::poll_until;

/// (e) B holds a borrow redeemed from a ticket and is killed with SIGKILL:
/// its borrow is never released, but its lease runs out and A's
/// `mut_borrow` succeeds within a few leases.
pub fn killed_reader_is_reclaimed(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![3u64, 1, 4]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-reader");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    assert_eq!(b.ok("READ"), "3,1,4");
    if let Some(wait) = renewal_check_wait(t) {
        std::thread::sleep(wait);
    }
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { .. });
    assert_eq!(inspect(&store, &key).unwrap().readers, 1);

    b.kill();
    let mut writer = None;
    let took = poll_until(t.reclaim_deadline(), || match mut_borrow(&owner) {
        Ok(w) => {
            writer = Some(w);
            true
        }
        Err(Error::AlreadyBorrowed { .. }) => false,
        Err(e) => panic!("mut_borrow after the kill: {e}"),
    });
    let took = took.unwrap_or_else(|| {
        panic!(
            "the killed reader's borrow was not reclaimed within {:?}: {:?}",
            t.reclaim_deadline(),
            inspect(&store, &key)
        )
    });
    log(
        "killed_reader",
        format_args!(
            "borrow reclaimed {took:?} after SIGKILL (lease {:?})",
            t.lease
        ),
    );
    let i = inspect(&store, &key).unwrap();
    assert!(i.writer && i.readers == 0, "{i:?}");
    drop(writer);
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
    t.assert_empty(&store);
}

/// (e) B owns the object (redeemed owner ticket) — and, if `with_writer`,
/// holds its mutable borrow and has published a new version — and is
/// killed with SIGKILL: the object is evicted within a few leases and the
/// store is left empty.
pub fn killed_owner_is_evicted(t: &Target, with_writer: bool) {
    let store = t.open();
    let owner = store.owned_proxy(vec![2u64; 100]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let mut b = child(t, "b-owner");
    b.ok(&format!("REDEEM_OWNER {}", hex(&bytes)));
    if with_writer {
        b.ok("MUT_BORROW");
        assert_eq!(b.ok("PUSH 9"), "2");
    }
    if let Some(wait) = renewal_check_wait(t) {
        std::thread::sleep(wait);
    }
    let i = inspect(&store, &key).expect("B keeps it alive");
    assert!(i.owner && i.writer == with_writer, "{i:?}");

    b.kill();
    let took = poll_until(t.reclaim_deadline(), || !store.exists(&key).unwrap());
    let took = took.unwrap_or_else(|| {
        panic!(
            "the killed owner's object was not evicted within {:?}: {:?}",
            t.reclaim_deadline(),
            inspect(&store, &key)
        )
    });
    log(
        "killed_owner",
        format_args!(
            "object evicted {took:?} after SIGKILL (lease {:?}, writer: {with_writer})",
            t.lease
        ),
    );
    t.assert_empty(&store);
}

/// (e) A keeps a borrow and moves the owner to B; B is killed: its owner
/// claim is reclaimed, but the object stays while A's borrow lives, and is
/// evicted when A drops it.
pub fn killed_owner_waits_for_borrow_in_a(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![6u64, 7]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mine = borrow(&owner).unwrap();
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let mut b = child(t, "b-owner");
    b.ok(&format!("REDEEM_OWNER {}", hex(&bytes)));
    b.kill();

    let took = poll_until(t.reclaim_deadline(), || {
        !inspect(&store, &key)
            .expect("A's borrow keeps the object")
            .owner
    })
    .expect("the killed owner's claim was not reclaimed");
    log(
        "killed_owner_waits_for_borrow",
        format_args!("owner claim reclaimed {took:?} after SIGKILL"),
    );
    let i = inspect(&store, &key).expect("stored");
    assert_eq!(i.readers, 1, "{i:?}");
    assert_eq!(*mine, vec![6, 7]);
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![6, 7]));

    drop(mine);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
    t.assert_empty(&store);
}

/// (e) B creates an owner and turns it into a ticket, then exits; nobody
/// ever redeems it. The ticket's claim expires with its lease and the object
/// is evicted; redeeming the ticket afterwards fails.
pub fn never_redeemed_owner_ticket_expires(t: &Target) {
    let store = t.open();
    let mut b = child(t, "b-issuer");
    let out = b.ok("NEW_OWNER_TICKET 4,5,6");
    let (key, bytes) = out.split_once(' ').expect("key and ticket");
    let key: borrowstore::Key = key.parse().unwrap();
    let bytes = unhex(bytes).unwrap();
    b.exit();
    let issued = Instant::now();
    let i = inspect(&store, &key).expect("the ticket keeps it for now");
    assert!(i.owner, "{i:?}");

    let took = poll_until(t.reclaim_deadline(), || !store.exists(&key).unwrap());
    assert!(
        took.is_some(),
        "a never-redeemed owner ticket did not expire within {:?}: {:?}",
        t.reclaim_deadline(),
        inspect(&store, &key)
    );
    log(
        "never_redeemed_owner_ticket",
        format_args!(
            "evicted {:?} after the issuer exited (lease {:?})",
            issued.elapsed(),
            t.lease
        ),
    );
    assert_err!(
        OwnerTicket::<V>::from_bytes(&bytes).unwrap().redeem(),
        Error::TicketRedeemed { .. }
    );
    t.assert_empty(&store);
}

/// (e) A never-redeemed borrow ticket expires: A's `mut_borrow` succeeds
/// after the lease, and B's late redeem fails.
pub fn never_redeemed_borrow_ticket_expires(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![8u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { .. });
    let mut writer = None;
    let took = poll_until(t.reclaim_deadline(), || match mut_borrow(&owner) {
        Ok(w) => {
            writer = Some(w);
            true
        }
        Err(_) => false,
    });
    assert!(took.is_some(), "the borrow ticket did not expire");
    drop(writer);
    store.flush().unwrap();
    let mut b = child(t, "b-late");
    b.err(&format!("REDEEM_BORROW {}", hex(&bytes)), "TicketRedeemed");
    assert_eq!(inspect(&store, &key).unwrap().readers, 0);
    b.exit();
    drop(owner);
    store.flush().unwrap();
    t.assert_empty(&store);
}

/// (e) A process that is frozen (SIGSTOP) longer than its lease loses its
/// claims like a dead one, and cannot disturb the state when it wakes up
/// (SIGCONT): releasing a reclaimed borrow is a no-op by claim id, its
/// renewer does not bring the claim back, and a reclaimed writer cannot
/// publish into an evicted object or bring its files back.
pub fn frozen_process_loses_its_claims_harmlessly(t: &Target) {
    let store = t.open();

    // A frozen reader.
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-frozen-reader");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    assert_eq!(b.ok("READ"), "1");
    t.freeze(&mut b);
    let mut writer = None;
    let took = poll_until(t.reclaim_deadline(), || match mut_borrow(&owner) {
        Ok(w) => {
            writer = Some(w);
            true
        }
        Err(Error::AlreadyBorrowed { .. }) => false,
        Err(e) => panic!("mut_borrow while B is frozen: {e}"),
    })
    .expect("a frozen reader's borrow was not reclaimed");
    log(
        "frozen_reader",
        format_args!(
            "borrow reclaimed {took:?} after SIGSTOP (lease {:?})",
            t.lease
        ),
    );
    let mut w = writer.unwrap();
    w.push(2);
    update(&mut w).unwrap();
    b.signal("CONT");
    // Its renewer wakes up too: give it a few periods.
    std::thread::sleep(t.lease.min(Duration::from_secs(2)));
    b.ok("DROP_READER");
    let i = inspect(&store, &key).unwrap();
    assert!(i.writer && i.readers == 0, "{i:?}");
    drop(w);
    store.flush().unwrap();
    let i = inspect(&store, &key).unwrap();
    assert!(i.readers == 0 && !i.writer && i.version == 2, "{i:?}");
    b.exit();
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());

    // A frozen owner with a writer: evicted; when it wakes up its writer
    // cannot publish, and nothing comes back.
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let mut c = child(t, "c-frozen-writer");
    c.ok(&format!("REDEEM_OWNER {}", hex(&bytes)));
    c.ok("MUT_BORROW");
    assert_eq!(c.ok("READ"), "1");
    t.freeze(&mut c);
    poll_until(t.reclaim_deadline(), || !store.exists(&key).unwrap())
        .expect("a frozen owner's object was not evicted");
    c.signal("CONT");
    match c.call("PUSH 2") {
        Err((k, msg)) if k == "ClaimLost" || k == "KeyNotFound" => {
            log(
                "frozen_writer",
                format_args!("late publish refused: {k}: {msg}"),
            );
        }
        other => panic!("a reclaimed writer published: {other:?}"),
    }
    c.ok("DROP_WRITER");
    c.ok("DROP_OWNER");
    assert!(!store.exists(&key).unwrap());
    c.exit();
    t.assert_empty(&store);
    assert_eq!(
        t.files_in("tmp"),
        Vec::<String>::new(),
        "stray temporary files"
    );
}

/// (e) A process frozen (SIGSTOP) longer than its lease loses its claims;
/// once it has woken up (SIGCONT) and renewed, what it claims from then on
/// is its own again: a borrow it redeems afterwards survives several
/// leases (and blocks a writer) until it drops it.
pub fn frozen_process_keeps_what_it_claims_after_waking(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-frozen-then-awake");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    t.freeze(&mut b);
    poll_until(t.reclaim_deadline(), || {
        inspect(&store, &key).unwrap().readers == 0
    })
    .expect("a frozen reader's borrow was not reclaimed");
    b.signal("CONT");
    // Its renewer wakes up and learns what it lost.
    std::thread::sleep(t.lease.min(Duration::from_secs(2)));
    b.ok("DROP_READER");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    if let Some(wait) = renewal_check_wait(t) {
        std::thread::sleep(wait);
    }
    assert_eq!(b.ok("READ"), "1");
    assert_eq!(inspect(&store, &key).unwrap().readers, 1);
    assert_err!(mut_borrow(&owner), Error::AlreadyBorrowed { .. });
    b.ok("DROP_READER");
    drop(mut_borrow(&owner).unwrap());
    b.exit();
    drop(owner);
    store.flush().unwrap();
    t.assert_empty(&store);
}

/// Crash consistency of a publish: B publishes new versions in a tight loop
/// and is killed at a random moment, `rounds` times. A's liveness scope
/// also holds each object, so that it outlives B's claims (which a store
/// that sees B die reclaims at once, and others when their lease runs
/// out). Right after each kill the value must be readable, and its current
/// value file must exist; once A's scope is released and B's claims are
/// reclaimed, the store must be empty.
pub fn killed_during_publish_leaves_a_readable_value(t: &Target, rounds: usize) {
    let store = t.open();
    let scope = borrowstore::LivenessScope::new();
    let mut failures = Vec::new();
    let mut keys = Vec::new();
    for round in 0..rounds {
        let owner = store.owned_proxy(vec![0u64; 64]).unwrap();
        scope.manage(&owner).unwrap();
        let key = *OwnedProxy::key(&owner);
        keys.push(key);
        let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
        let mut b = child(t, &format!("b-publisher-{round}"));
        b.ok(&format!("REDEEM_OWNER {}", hex(&bytes)));
        b.ok("PUBLISH_LOOP");
        let jitter = (super::super::nanos() % 40) as u64;
        std::thread::sleep(Duration::from_millis(5 + jitter));
        b.kill();
        let version = inspect(&store, &key).map(|i| i.version);
        let read = store.get::<V>(&key);
        let blobs: Vec<String> = t
            .files_in("objects")
            .into_iter()
            .filter(|f| f.starts_with(&key.to_string()) && f.ends_with(".blob"))
            .collect();
        let readable = matches!(&read, Ok(Some(v)) if v.len() == 64);
        // The ledger's value file must exist. A kill after the new ledger
        // was written but before the old value was deleted leaves that old
        // file behind until the reap pass (checked below, after eviction).
        let current = version.map(|v| format!("{key}.{v}.blob"));
        let has_current = current.as_ref().is_some_and(|c| blobs.contains(c));
        if !readable || (t.dir.is_some() && !has_current) {
            let read = read.map(|o| o.map(|v| format!("{} numbers", v.len())));
            failures.push(format!(
                "round {round}: ledger version {version:?}, get -> {read:?}, value files {blobs:?}"
            ));
        }
    }
    scope.release().unwrap();
    store.flush().unwrap();
    let took = poll_until(t.reclaim_deadline(), || {
        keys.iter().all(|k| !store.exists(k).unwrap_or(true))
    });
    // Orphaned value files are swept by the reap pass, every lease or so.
    poll_until(t.reclaim_deadline() * 3, || {
        t.files_in("objects").is_empty()
    });
    let stray = t.files_in("objects");
    assert!(
        failures.is_empty(),
        "{} of {rounds} kills during a publish left the object unreadable or with stray value \
         files:\n{}\nfiles left in objects/ after every object was evicted: {stray:?}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        took.is_some(),
        "the killed publishers' objects were not evicted"
    );
    t.assert_empty(&store);
}

/// Claims name their process: a borrow redeemed in B and an owner redeemed
/// in C (which then borrows) show B's and C's pid and this host in
/// `inspect`, with their lease deadlines and labels. (The `borrowstore`
/// command's test shows a killed process's expired claims awaiting
/// reclaim.)
pub fn claims_name_their_process(t: &Target) {
    use borrowstore::connector::{ClaimRole, this_process};
    let store = t.open();
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-reader");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    let mut c = child(t, "c-owner");
    let other = store.owned_proxy(vec![6u64]).unwrap();
    let other_key = *OwnedProxy::key(&other);
    let ticket = OwnedProxy::into_ticket(other).unwrap();
    c.ok(&format!(
        "REDEEM_OWNER {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    c.ok("BORROW");

    let host = this_process().1;
    let i = inspect(&store, &key).expect("stored");
    let reader = i
        .claims
        .iter()
        .find(|x| x.kind == ClaimRole::Reader)
        .unwrap_or_else(|| panic!("no reader: {i:#?}"));
    assert_eq!((reader.pid, reader.host.as_str()), (b.id(), host), "{i:#?}");
    assert!(reader.lease_expires_ms.is_some(), "{reader:?}");
    let owner_claim = i
        .claims
        .iter()
        .find(|x| x.kind == ClaimRole::Owner)
        .unwrap();
    assert_eq!(owner_claim.pid, std::process::id());

    let i = inspect(&store, &other_key).expect("stored");
    assert_eq!(i.claims.len(), 2, "{i:#?}");
    for x in &i.claims {
        assert_eq!((x.pid, x.host.as_str()), (c.id(), host), "{i:#?}");
    }
    let borrowed = i
        .claims
        .iter()
        .find(|x| x.kind == ClaimRole::Reader)
        .unwrap();
    assert!(
        borrowed
            .label
            .as_deref()
            .is_some_and(|l| l.contains("process/child.rs")),
        "the child's call site: {borrowed:?}"
    );

    c.exit();
    b.exit();
    drop(owner);
}

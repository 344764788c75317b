//! Cross-process scenarios for stores that see a process die (the file
//! store: each process holds a lock on a file of its own for its life):
//! a killed process's claims are reclaimed at once, whatever it was doing,
//! and a live process keeps its claims however many it holds.

use std::time::{Duration, Instant};

use borrowstore::{Key, LivenessScope, OwnedProxy, RefProxy, borrow, mut_borrow_async};

use super::super::child::V;
use super::super::{Target, hex, inspect, nanos};
use super::{child, log};
use crate::wait::poll_until;

/// How long a store that sees deaths may take to reclaim a dead process's
/// claims, at most, on a busy machine (the file store does it within a few
/// tens of milliseconds).
const AT_ONCE: Duration = Duration::from_secs(5);

/// Owner tickets (hex) for `n` new objects that `scope` also holds; their
/// keys.
fn tickets(store: &borrowstore::Store, scope: &LivenessScope, n: u64) -> (Vec<Key>, Vec<String>) {
    let mut keys = Vec::new();
    let mut tickets = Vec::new();
    for i in 0..n {
        let owner = store.owned_proxy(vec![i; 8]).unwrap();
        scope.manage(&owner).unwrap();
        keys.push(*OwnedProxy::key(&owner));
        let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
        tickets.push(hex(&bytes));
    }
    (keys, tickets)
}

/// The crash torture: B owns three objects (A's scope also holds them) and
/// loops random transitions on them — shared borrows, writers that publish,
/// borrows sent through tickets, new objects made and dropped — until A
/// kills it with SIGKILL at a random moment; `rounds` times. After each
/// kill, while the reclaim runs and after it, A never sees a writer beside
/// readers; within `AT_ONCE` (5 s) none of B's claims is left (a ticket B
/// issued to itself and had not redeemed keeps its claim for its own
/// lease: give the target a lease well under `AT_ONCE`), the objects B
/// made are gone and A's objects read back. At the end the store holds no
/// object, and no file is left behind.
pub fn killed_at_random_moments_leave_a_consistent_state(t: &Target, rounds: usize) {
    let store = t.open();
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        // B first: the tickets' leases run from when they are made.
        let mut b = child(t, &format!("b-torture-{round}"));
        let scope = LivenessScope::new();
        let (keys, tickets) = tickets(&store, &scope, 3);
        b.ok(&format!("TORTURE {}", tickets.join(" ")));
        std::thread::sleep(Duration::from_millis(1 + (nanos() % 25) as u64));
        b.kill();
        let killed = Instant::now();
        let clean = poll_until(AT_ONCE, || {
            let all = keys.iter().all(|k| {
                let i = inspect(&store, k).expect("A's scope keeps the object");
                assert!(
                    !(i.writer && i.readers > 0),
                    "round {round}: a writer beside {} readers: {i:?}",
                    i.readers
                );
                !i.owner && !i.writer && i.readers == 0 && i.holders == 1
            });
            all && store.keys().unwrap().len() == keys.len()
        });
        if clean.is_none() {
            let left: Vec<_> = keys.iter().map(|k| inspect(&store, k)).collect();
            panic!(
                "round {round}: B's claims were not all reclaimed within {AT_ONCE:?}: {left:?}; \
                 keys: {:?}",
                store.keys()
            );
        }
        slowest = slowest.max(killed.elapsed());
        for k in &keys {
            assert_eq!(store.get::<V>(k).unwrap().map(|v| v[..8].len()), Some(8));
        }
        scope.release().unwrap();
        store.flush().unwrap();
        for k in &keys {
            assert!(
                !store.exists(k).unwrap(),
                "round {round}: released, not evicted"
            );
        }
    }
    log(
        "crash_torture",
        format_args!("{rounds} kills; the slowest reclaim took {slowest:?}"),
    );
    t.assert_empty(&store);
    poll_until(AT_ONCE, || t.files_in("tmp").is_empty());
    assert_eq!(
        t.files_in("tmp"),
        Vec::<String>::new(),
        "stray temporary files"
    );
}

/// B holds `claims` shared borrows (on 100 objects A's scope also holds)
/// for `periods` lease periods, while C creates and drops objects and A
/// creates and evicts them: B keeps every one of its claims.
pub fn live_process_keeps_many_claims(t: &Target, claims: usize, periods: u32) {
    let store = t.open();
    let scope = LivenessScope::new();
    let mut b = child(t, "b-holder");
    let (keys, tickets) = tickets(&store, &scope, 100);
    let held = b.ok(&format!("HOLD_BORROWS {claims} {}", tickets.join(" ")));
    assert_eq!(held, claims.to_string());
    let mut c = child(t, "c-creator");
    c.ok("CREATE_LOOP");
    let until = Instant::now() + t.lease * periods;
    let mut made = 0u64;
    while Instant::now() < until {
        let k = store.put(&vec![made; 4]).unwrap();
        store.evict(&k).unwrap();
        made += 1;
    }
    let readers: usize = keys
        .iter()
        .map(|k| inspect(&store, k).expect("held").readers as usize)
        .sum();
    log(
        "many_claims",
        format_args!(
            "{readers} of {claims} claims kept for {periods} leases of {:?} ({made} objects \
             created and evicted by A meanwhile)",
            t.lease
        ),
    );
    assert_eq!(readers, claims, "a live process lost claims");
    c.kill();
    b.exit();
    scope.release().unwrap();
    store.flush().unwrap();
    poll_until(AT_ONCE, || {
        store.keys().unwrap().is_empty() && t.files_in("objects").is_empty()
    })
    .expect("left objects");
    t.assert_empty(&store);
}

/// C creates objects in a loop and is stopped (SIGSTOP) at a random
/// moment: A's creations, borrows and evictions go on, each within a
/// bounded wait (they either proceed or fail with an error); when C is
/// killed, nothing of it is left.
pub fn stopped_creator_delays_others_boundedly(t: &Target) {
    let store = t.open();
    let mut c = child(t, "c-creator");
    c.ok("CREATE_LOOP");
    std::thread::sleep(Duration::from_millis(5 + (nanos() % 20) as u64));
    c.signal("STOP");
    let mut slowest = Duration::ZERO;
    for i in 0..200u64 {
        let started = Instant::now();
        let owner = store.owned_proxy(vec![i]).unwrap();
        let r = borrow(&owner).unwrap();
        drop(r);
        drop(owner);
        slowest = slowest.max(started.elapsed());
    }
    log(
        "stopped_creator",
        format_args!(
            "the slowest create + borrow + drop beside a stopped creator took {slowest:?}"
        ),
    );
    assert!(slowest < Duration::from_secs(3), "waited {slowest:?}");
    c.kill();
    // What C was creating when it was killed goes with its claims (its
    // files too, which `keys` does not list).
    poll_until(AT_ONCE, || {
        store.keys().unwrap().is_empty() && t.files_in("objects").is_empty()
    })
    .expect("C's objects were not reclaimed");
    t.assert_empty(&store);
}

/// B holds a shared borrow and is killed; A's `mut_borrow_async`, waiting
/// on it, gets the object without waiting for B's lease: returns how long
/// after the kill.
pub fn killed_reader_wakes_a_waiting_writer(t: &Target) -> Duration {
    let store = t.open();
    let owner = store.owned_proxy(vec![5u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut b = child(t, "b-reader");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    assert_eq!(inspect(&store, &key).unwrap().readers, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let took = rt.block_on(async {
        let waiting = mut_borrow_async(&owner);
        let kill = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            b.kill();
            Instant::now()
        };
        let (writer, killed) = futures_join(waiting, kill).await;
        let got = Instant::now();
        let writer = writer.expect("mut_borrow_async after the kill");
        drop(writer);
        got - killed
    });
    log(
        "reclaim_wakes_writer",
        format_args!(
            "mut_borrow_async got the object {took:?} after SIGKILL (lease {:?})",
            t.lease
        ),
    );
    drop(owner);
    store.flush().unwrap();
    t.assert_empty(&store);
    took
}

/// Both futures, polled together on this task.
async fn futures_join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (Box::pin(a), Box::pin(b));
    let (mut ra, mut rb) = (None, None);
    std::future::poll_fn(|cx| {
        if ra.is_none()
            && let std::task::Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let std::task::Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        if ra.is_some() && rb.is_some() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    (ra.unwrap(), rb.unwrap())
}

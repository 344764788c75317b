//! Loom models of the file store's state-table protocol
//! (`connector/file/table.rs`, `reclaim.rs`), run on a table of loom
//! atomics: the same code the store runs on its memory mapping. Each model
//! thread plays one process (its own process record).
//!
//! | model | what it checks |
//! |---|---|
//! | `borrow_against_borrow` | two processes' shared borrows on one object: both granted, both released, nothing left |
//! | `borrow_against_eviction` | a borrow racing an eviction: never evicted while borrowed; the borrow is refused once it is gone |
//! | `writer_against_reader` | a writer racing a reader: never both |
//! | `reclaim_of_a_dead_acquirer_against_a_live_transition::*` | a process that dies after each step of an acquire, repaired by a survivor while a third process borrows and releases: the dead one's claim counted exactly once or not at all, then released; nothing left |
//! | `reclaim_of_a_dead_releaser_against_a_live_transition` | a process that dies in the middle of a release, repaired while another borrows: released exactly once |
//! | `ticket_redeemed_twice_and_expired_at_once` | two redeemers and the ticket's expiry race: exactly one wins |
//! | `home_entry_against_a_search` | a borrow taken at its home entry racing another process's search for a free entry from there: each gets an entry of its own, holds its own claim in it, and gives it back |

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use loom::sync::atomic::AtomicU64;
use loom::thread;

use crate::connector::file::{Fail, Head, Layout, Pause, Redeemed, Status, Table};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Init, State};

/// A wait for another thread's tag that yields to loom, and gives up
/// after a while (a model never waits for a thread that cannot run).
struct Yield(u32);

impl Pause for Yield {
    fn pause(&mut self) -> bool {
        self.0 += 1;
        loom::thread::yield_now();
        self.0 < 50
    }
}

fn layout() -> Layout {
    Layout {
        slots: 2,
        entries: 6,
        procs: 4,
    }
}

/// A table of loom atomics with one object (slot 0) owned by process 0.
struct Model {
    words: Vec<AtomicU64>,
}

impl Model {
    fn new() -> Arc<Model> {
        let words = (0..layout().words()).map(|_| AtomicU64::new(0)).collect();
        let m = Arc::new(Model { words });
        let owner = Claim::new(ClaimKind::Owner);
        let (o, _, _) = m
            .table()
            .create(Key::from_u128(1), Init::Claimed(owner), 0, 0, 0, 0)
            .unwrap();
        m.table().publish_slot(o, 0).unwrap();
        assert_eq!(o, 0);
        m
    }

    fn table(&self) -> Table<'_, AtomicU64> {
        Table::new(&self.words, layout()).unwrap()
    }

    fn state(&self) -> State {
        self.table().state(0, 1).unwrap().unwrap()
    }

    /// Entries not free, other than the owner's (entry 0).
    fn busy_entries(&self) -> Vec<Head> {
        let t = self.table();
        (1..t.entry_hwm())
            .map(|e| t.head(e).unwrap())
            .filter(|h| h.status != Status::Free)
            .collect()
    }
}

fn reader() -> Claim {
    Claim::new(ClaimKind::Reader)
}

#[test]
fn borrow_against_borrow() {
    loom::model(|| {
        let m = Model::new();
        let threads: Vec<_> = (1..=2)
            .map(|p| {
                let m = m.clone();
                thread::spawn(move || {
                    let c = reader();
                    let (e, h) = m.table().acquire(0, 1, c, p, p, &mut Yield(0)).unwrap();
                    assert!(m.state().readers() >= 1);
                    m.table().release(e, h, c, false, &mut Yield(0)).unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let s = m.state();
        assert_eq!((s.readers(), s.owned()), (0, true), "{s:?}");
        assert!(m.busy_entries().is_empty());
    });
}

#[test]
fn borrow_against_eviction() {
    loom::model(|| {
        let m = Model::new();
        let borrowed = Arc::new(AtomicUsize::new(0));
        let (m1, b1) = (m.clone(), borrowed.clone());
        let t = thread::spawn(move || {
            let c = reader();
            match m1.table().acquire(0, 1, c, 1, 1, &mut Yield(0)) {
                Ok((e, h)) => {
                    b1.store(1, StdOrdering::SeqCst);
                    assert!(!m1.table().state(0, 1).unwrap().unwrap().gone());
                    b1.store(0, StdOrdering::SeqCst);
                    m1.table().release(e, h, c, false, &mut Yield(0)).unwrap();
                    true
                }
                Err(Fail::Gone) => false,
                Err(f) => panic!("{f:?}"),
            }
        });
        match m.table().evict(0, 1, &mut Yield(0)) {
            Ok(()) => assert_eq!(
                borrowed.load(StdOrdering::SeqCst),
                0,
                "evicted while borrowed"
            ),
            Err(Fail::Refused(_) | Fail::Busy) => {}
            Err(f) => panic!("{f:?}"),
        }
        t.join().unwrap();
        let s = m.table().state(0, 1).unwrap().unwrap();
        assert_eq!(s.readers(), 0, "{s:?}");
        assert!(m.busy_entries().is_empty());
    });
}

#[test]
fn writer_against_reader() {
    loom::model(|| {
        let m = Model::new();
        let m1 = m.clone();
        let t = thread::spawn(move || {
            let c = reader();
            if let Ok((e, h)) = m1.table().acquire(0, 1, c, 1, 1, &mut Yield(0)) {
                assert!(!m1.state().writer(), "a reader beside a writer");
                m1.table().release(e, h, c, false, &mut Yield(0)).unwrap();
            }
        });
        let w = Claim::new(ClaimKind::Writer);
        if let Ok((e, h)) = m.table().acquire(0, 1, w, 2, 2, &mut Yield(0)) {
            assert_eq!(m.state().readers(), 0, "a writer beside a reader");
            m.table().release(e, h, w, false, &mut Yield(0)).unwrap();
        }
        t.join().unwrap();
        let s = m.state();
        assert!(s.readers() == 0 && !s.writer(), "{s:?}");
        assert!(m.busy_entries().is_empty());
    });
}

/// Process 1 dies after `steps` steps of an acquire of a reader; process 3
/// repairs it while process 2 borrows and releases.
fn dead_acquirer(steps: usize) {
    loom::model(move || {
        let m = Model::new();
        let c = reader();
        {
            let t = m.table();
            if steps >= 1 {
                let (e, head) = t.acquire_entry(0, 1, c, 1, 0).unwrap();
                if steps >= 2 {
                    t.transition(
                        0,
                        1,
                        crate::state::Op::Acquire(c),
                        u64::from(e) + 1,
                        &mut Yield(0),
                    )
                    .unwrap();
                }
                if steps >= 3 {
                    // Step 3 alone: the head says held, the tag is still on.
                    t.entry(e, 0)
                        .unwrap()
                        .store(head.with(Status::Held).encode(), StdOrdering::Release);
                }
            }
        }
        let m2 = m.clone();
        let live = thread::spawn(move || {
            let c = reader();
            match m2.table().acquire(0, 1, c, 2, 3, &mut Yield(0)) {
                Ok((e, h)) => {
                    assert!(m2.state().readers() >= 1);
                    m2.table().release(e, h, c, false, &mut Yield(0)).unwrap();
                }
                // The dead process's tag is on the word until the repair.
                Err(Fail::Busy) => {}
                Err(f) => panic!("{f:?}"),
            }
        });
        let out = m.table().repair_dead(1, 3, &mut Yield(0));
        live.join().unwrap();
        if !out.complete {
            let again = m.table().repair_dead(1, 3, &mut Yield(0));
            assert!(again.complete);
        }
        let s = m.state();
        assert_eq!(
            (s.readers(), s.owned(), s.writer()),
            (0, true, false),
            "{s:?}"
        );
        assert!(m.busy_entries().is_empty(), "{:?}", m.busy_entries());
    });
}

mod reclaim_of_a_dead_acquirer_against_a_live_transition {
    #[test]
    fn before_it_began() {
        super::dead_acquirer(0);
    }
    #[test]
    fn with_its_entry_taken() {
        super::dead_acquirer(1);
    }
    #[test]
    fn after_its_compare_and_swap() {
        super::dead_acquirer(2);
    }
    #[test]
    fn with_its_tag_still_on() {
        super::dead_acquirer(3);
    }
}

#[test]
fn reclaim_of_a_dead_releaser_against_a_live_transition() {
    loom::model(|| {
        let m = Model::new();
        let c = reader();
        {
            // Process 1 holds a reader and dies after marking it releasing.
            let t = m.table();
            let (e, h) = t.acquire(0, 1, c, 1, 0, &mut Yield(0)).unwrap();
            t.entry(e, 0)
                .unwrap()
                .store(h.with(Status::Releasing).encode(), StdOrdering::Release);
        }
        let m2 = m.clone();
        let live = thread::spawn(move || {
            let c = reader();
            let (e, h) = m2.table().acquire(0, 1, c, 2, 3, &mut Yield(0)).unwrap();
            m2.table().release(e, h, c, false, &mut Yield(0)).unwrap();
        });
        let out = m.table().repair_dead(1, 3, &mut Yield(0));
        live.join().unwrap();
        assert!(out.complete || m.table().repair_dead(1, 3, &mut Yield(0)).complete);
        let s = m.state();
        assert_eq!(s.readers(), 0, "{s:?}");
        assert!(m.busy_entries().is_empty());
    });
}

#[test]
fn ticket_redeemed_twice_and_expired_at_once() {
    loom::model(|| {
        let m = Model::new();
        let ticket = ClaimId::random();
        {
            let t = m.table();
            let (e, h) = t.acquire(0, 1, reader(), 1, 0, &mut Yield(0)).unwrap();
            t.issue(e, h, ticket, 0).unwrap();
        }
        let wins = Arc::new(AtomicUsize::new(0));
        let redeemers: Vec<_> = (1..=2)
            .map(|p| {
                let (m, wins) = (m.clone(), wins.clone());
                thread::spawn(move || {
                    if let Redeemed::Claim(e, h, id) =
                        m.table().redeem(0, 1, ticket, ClaimKind::Reader, p)
                    {
                        wins.fetch_add(1, StdOrdering::SeqCst);
                        let c = Claim::rebuilt(ClaimKind::Reader, id);
                        m.table().release(e, h, c, false, &mut Yield(0)).unwrap();
                    }
                })
            })
            .collect();
        // The ticket's deadline (0) has passed: the reaper expires it.
        let expired = m.table().expire_tickets(1, 3, &mut Yield(0));
        redeemers.into_iter().for_each(|t| t.join().unwrap());
        let won = wins.load(StdOrdering::SeqCst) + expired.touched.len();
        assert_eq!(won, 1, "{won} winners");
        assert_eq!(m.state().readers(), 0);
        assert!(m.busy_entries().is_empty());
    });
}

#[test]
fn home_entry_against_a_search() {
    loom::model(|| {
        let m = Model::new();
        m.table().cover_entries(2);
        let m1 = m.clone();
        let t = thread::spawn(move || {
            let c = reader();
            let t = m1.table();
            // The hot path of a borrow and its release, on words.
            let (e, h) = match t.acquire_home(1, (0, 1), &c, 1, 7, &mut Yield(0)) {
                Some(held) => (1, held.unwrap()),
                None => {
                    let (e, h) = t.acquire(0, 1, c, 1, 1, &mut Yield(0)).unwrap();
                    (e, h.encode())
                }
            };
            assert_eq!(t.held_word_at(e, &c, 1), Some(h));
            t.release_word(e, h, c, false, &mut Yield(0)).unwrap();
            assert_eq!(t.held_word_at(e, &c, 1), None);
        });
        let c = reader();
        let (e, h) = m.table().acquire(0, 1, c, 2, 1, &mut Yield(0)).unwrap();
        assert_eq!(m.table().held_word_at(e, &c, 2), Some(h.encode()));
        m.table().release(e, h, c, false, &mut Yield(0)).unwrap();
        t.join().unwrap();
        let s = m.state();
        assert_eq!((s.readers(), s.owned()), (0, true), "{s:?}");
        assert!(m.busy_entries().is_empty());
    });
}

//! `State::apply` on its own, applied through a loom `AtomicU64`
//! compare-and-swap loop — the pattern every in-memory connector uses.
//! Independent of the memory connector's code, so a failure here points at
//! the state machine, a failure only in the other models at the connector.
#![cfg(borrowstore_loom)]

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use borrowstore::state::{Claim, ClaimKind, Effect, Init, Op, Refusal, State};
use borrowstore_loom_tests::Ghost;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

struct Cell {
    state: AtomicU64,
    evictions: AtomicUsize,
    ghost: Ghost,
}

impl Cell {
    fn new(init: Init) -> Arc<Cell> {
        Arc::new(Cell {
            state: AtomicU64::new(State::new(init).to_bits()),
            evictions: AtomicUsize::new(0),
            ghost: Ghost::default(),
        })
    }

    fn apply(&self, op: Op) -> Result<Effect, Refusal> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let (next, effect) = State::from_bits(cur).apply(op)?;
            match self.state.compare_exchange_weak(
                cur,
                next.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if effect == Effect::Evict {
                        self.evictions
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(self.ghost.live(), 0, "evicted while borrowed");
                    }
                    return Ok(effect);
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn load(&self) -> State {
        State::from_bits(self.state.load(Ordering::Acquire))
    }
}

/// A reader, a writer and the owner's release race on one owned object.
#[test]
fn reader_writer_owner_release() {
    loom::model(|| {
        let owner = Claim::new(ClaimKind::Owner);
        let cell = Cell::new(Init::Claimed(owner));

        let c = cell.clone();
        let reader = thread::spawn(move || {
            let claim = Claim::new(ClaimKind::Reader);
            match c.apply(Op::Acquire(claim)) {
                Ok(_) => {
                    c.ghost.reader_in();
                    let s = c.load(); // a loom step while the borrow is held
                    assert!(!s.writer() && s.readers() == 1 && !s.gone(), "{s:?}");
                    c.ghost.reader_out();
                    c.apply(Op::Release(claim)).unwrap();
                }
                Err(Refusal::MutablyBorrowed | Refusal::Gone) => {}
                Err(r) => panic!("reader refused: {r:?}"),
            }
        });
        let c = cell.clone();
        let writer = thread::spawn(move || {
            let claim = Claim::new(ClaimKind::Writer);
            match c.apply(Op::Acquire(claim)) {
                Ok(_) => {
                    c.ghost.writer_in();
                    let s = c.load(); // a loom step while the borrow is held
                    assert!(s.writer() && s.readers() == 0 && !s.gone(), "{s:?}");
                    c.ghost.writer_out();
                    c.apply(Op::Release(claim)).unwrap();
                }
                Err(Refusal::Borrowed | Refusal::Gone) => {}
                Err(r) => panic!("writer refused: {r:?}"),
            }
        });
        cell.apply(Op::Release(owner)).unwrap();
        reader.join().unwrap();
        writer.join().unwrap();

        let s = cell.load();
        assert!(s.gone() && !s.borrowed() && !s.owned(), "{s:?}");
        assert_eq!(
            cell.evictions.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "evictions"
        );
    });
}

/// Two borrows already held; the owner's release races both borrow
/// releases and an explicit evict. Exactly one eviction.
#[test]
fn releases_and_evict_evict_once() {
    loom::model(|| {
        let owner = Claim::new(ClaimKind::Owner);
        let cell = Cell::new(Init::Claimed(owner));
        let r1 = Claim::new(ClaimKind::Reader);
        let r2 = Claim::new(ClaimKind::Reader);
        cell.apply(Op::Acquire(r1)).unwrap();
        cell.apply(Op::Acquire(r2)).unwrap();

        let c = cell.clone();
        let t1 = thread::spawn(move || {
            c.apply(Op::Release(r1)).unwrap();
        });
        let c = cell.clone();
        let t2 = thread::spawn(move || {
            c.apply(Op::Release(r2)).unwrap();
            match c.apply(Op::Evict) {
                Ok(_) | Err(Refusal::Gone | Refusal::Borrowed) => {}
                Err(r) => panic!("evict refused: {r:?}"),
            }
        });
        cell.apply(Op::Release(owner)).unwrap();
        t1.join().unwrap();
        t2.join().unwrap();

        let s = cell.load();
        assert!(s.gone() && !s.borrowed(), "{s:?}");
        assert_eq!(
            cell.evictions.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "evictions"
        );
    });
}

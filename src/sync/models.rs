//! Loom models that need what only this crate can do: make claims by hand
//! and reach the connector. They live beside the loom switch because they
//! exist only under it. The models of the public API are in
//! `loom-tests/`; `scripts/loom.sh` runs both (these with
//! `cargo test -p borrowstore --lib` under `--cfg borrowstore_loom`).
//!
//! | model | what it checks |
//! |---|---|
//! | `state_cas::*` | [`State::apply`] applied through a loom `AtomicU64` compare-and-swap loop, on its own |
//! | `update::owner_update_races_a_reader` | `update` on an owner racing a reader claim taken through the connector's keyed calls |

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

use crate::error::Borrows;
use crate::state::{Claim, ClaimKind, Effect, Init, Op, Refusal, State};

/// What a refusal reports when one reader holds the object.
const ONE_READER: Borrows = Borrows {
    readers: 1,
    writer: false,
};
/// What a refusal reports when the writer holds the object.
const ONE_WRITER: Borrows = Borrows {
    readers: 0,
    writer: true,
};

/// Ghost counts of the borrows a model holds: a borrow is counted after it
/// was granted and uncounted before it is given back, so the counts never
/// exceed what was granted, and checking the rules on them checks the
/// state. Plain std atomics: loom runs every model thread on one OS thread
/// and switches only at loom operations, so they add no interleavings.
#[derive(Default)]
struct Ghost {
    readers: AtomicUsize,
    writers: AtomicUsize,
}

impl Ghost {
    fn reader_in(&self) {
        self.readers.fetch_add(1, StdOrdering::SeqCst);
        let w = self.writers.load(StdOrdering::SeqCst);
        assert_eq!(w, 0, "a shared borrow was granted beside a mutable borrow");
    }

    fn reader_out(&self) {
        self.readers.fetch_sub(1, StdOrdering::SeqCst);
    }

    fn writer_in(&self) {
        let w = self.writers.fetch_add(1, StdOrdering::SeqCst);
        assert_eq!(w, 0, "two mutable borrows at once");
        let r = self.readers.load(StdOrdering::SeqCst);
        assert_eq!(
            r, 0,
            "a mutable borrow was granted beside {r} shared borrow(s)"
        );
    }

    fn writer_out(&self) {
        self.writers.fetch_sub(1, StdOrdering::SeqCst);
    }

    fn live(&self) -> usize {
        self.readers.load(StdOrdering::SeqCst) + self.writers.load(StdOrdering::SeqCst)
    }
}

/// `State::apply` on its own, applied through a loom `AtomicU64`
/// compare-and-swap loop — the pattern every in-memory connector uses.
/// Independent of the memory connector's code, so a failure here points at
/// the state machine, a failure only in the other models at the connector.
mod state_cas {
    use std::sync::Arc;

    use loom::sync::atomic::{AtomicU64, Ordering};
    use loom::thread;

    use super::*;

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
                            self.evictions.fetch_add(1, StdOrdering::SeqCst);
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
                    // refused by the one writer, as the state showed it
                    Err(Refusal::MutablyBorrowed(b)) => assert_eq!(b, ONE_WRITER),
                    Err(Refusal::Gone) => {}
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
                    // refused by the one reader, as the state showed it
                    Err(Refusal::Borrowed(b)) => assert_eq!(b, ONE_READER),
                    Err(Refusal::Gone) => {}
                    Err(r) => panic!("writer refused: {r:?}"),
                }
            });
            cell.apply(Op::Release(owner)).unwrap();
            reader.join().unwrap();
            writer.join().unwrap();

            let s = cell.load();
            assert!(s.gone() && !s.borrowed() && !s.owned(), "{s:?}");
            assert_eq!(cell.evictions.load(StdOrdering::SeqCst), 1, "evictions");
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
                    Ok(_) | Err(Refusal::Gone) => {}
                    // refused by r1, still held
                    Err(Refusal::Borrowed(b)) => assert_eq!(b, ONE_READER),
                    Err(r) => panic!("evict refused: {r:?}"),
                }
            });
            cell.apply(Op::Release(owner)).unwrap();
            t1.join().unwrap();
            t2.join().unwrap();

            let s = cell.load();
            assert!(s.gone() && !s.borrowed(), "{s:?}");
            assert_eq!(cell.evictions.load(StdOrdering::SeqCst), 1, "evictions");
        });
    }
}

/// `update` racing a borrow that has no handle in this process.
mod update {
    use loom::thread;

    use super::*;
    use crate::{Error, OwnedProxy, Store, update};

    /// A memory store no other loom iteration has used: `Store::memory(name)`
    /// returns the registered store of that name, whose loom objects belong
    /// to an earlier (finished) execution.
    fn fresh_store(model: &str) -> Store {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, StdOrdering::Relaxed);
        Store::memory(format!("loom-crate-{model}-{n}"))
    }

    /// Asserts that the store holds nothing, then unregisters it, so its
    /// loom objects are dropped inside the iteration that made them.
    fn finish_empty(store: Store) {
        let keys = store.keys().expect("keys");
        assert!(keys.is_empty(), "store not empty at the end: {keys:?}");
        Store::unregister(store.name());
    }

    /// `update(&mut owner)` races a reader that another process holds: the
    /// reader thread has no handle, it takes and gives back a reader claim on
    /// the key through the connector's keyed calls, as a remote process would.
    #[test]
    fn owner_update_races_a_reader() {
        loom::model(|| {
            let store = fresh_store("upo");
            let mut owner = store.owned_proxy(vec![1u64]).unwrap();
            let key = *OwnedProxy::key(&owner);

            let s = store.clone();
            let t = thread::spawn(move || {
                let claim = Claim::new(ClaimKind::Reader);
                match s.connector().apply(&key, Op::Acquire(claim)) {
                    Ok(_) => {
                        let first: Vec<u64> = s.get(&key).unwrap().expect("stored");
                        assert!(first == [1] || first == [1, 2], "{first:?}");
                        let again: Vec<u64> = s.get(&key).unwrap().expect("stored");
                        assert_eq!(first, again, "value changed under a shared borrow");
                        s.connector()
                            .apply(&key, Op::Release(claim))
                            .expect("the reader claim this thread holds was lost store-side");
                        true
                    }
                    Err(Error::AlreadyMutablyBorrowed { .. }) => false,
                    Err(e) => panic!("reader refused with the wrong error: {e:?}"),
                }
            });

            owner.push(2); // local, copy-on-write
            let published = match update(&mut owner) {
                Ok(()) => {
                    assert!(!OwnedProxy::is_modified(&owner));
                    true
                }
                Err(Error::AlreadyBorrowed { .. }) => {
                    assert!(
                        OwnedProxy::is_modified(&owner),
                        "a refused update lost the changes"
                    );
                    assert_eq!(*owner, vec![1, 2]);
                    false
                }
                Err(e) => panic!("update refused with the wrong error: {e:?}"),
            };
            let read = t.join().unwrap();
            assert!(published || read, "both refused");
            if !published {
                update(&mut owner).expect("nothing borrows the object any more");
            }

            let i = store.inspect(&key).unwrap().unwrap();
            assert_eq!(i.version, 2);
            assert!(
                i.readers == 0 && !i.writer,
                "claims left after all were released: {i:?}"
            );
            assert_eq!(store.get::<Vec<u64>>(&key).unwrap().unwrap(), vec![1, 2]);
            drop(owner);
            finish_empty(store);
        });
    }
}

//! Copy-on-write copies a stored value with `Clone`: the first `DerefMut`
//! of a `RefMutProxy` or an `OwnedProxy`, `clone` of a changed owner and
//! `Store::get` of a value the store keeps as it is (the memory store) make
//! one `Clone::clone` of it, and no round trip through the serialized form
//! (which costs an encode and a decode, and loses what the serialized form
//! leaves out, such as `#[serde(skip)]` fields).

use std::sync::atomic::{AtomicUsize, Ordering};

use borrowstore::{OwnedProxy, Proxy, Store, clone, mut_borrow, update};
use serde::{Deserialize, Serialize};

/// A value that counts its clones, per test (the tests of this file run
/// in parallel, each with its own `id`).
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Counted {
    id: usize,
    items: Vec<u64>,
    /// Not part of the serialized form.
    #[serde(skip)]
    note: Option<String>,
}

const COUNTERS: usize = 8;
static CLONES: [AtomicUsize; COUNTERS] = [const { AtomicUsize::new(0) }; COUNTERS];

impl Clone for Counted {
    fn clone(&self) -> Self {
        CLONES[self.id].fetch_add(1, Ordering::SeqCst);
        Counted {
            id: self.id,
            items: self.items.clone(),
            note: self.note.clone(),
        }
    }
}

fn clones(id: usize) -> usize {
    CLONES[id].load(Ordering::SeqCst)
}

fn value(id: usize) -> Counted {
    Counted {
        id,
        items: vec![1, 2, 3],
        note: Some("kept in memory".to_owned()),
    }
}

fn memory_store(name: &str) -> Store {
    Store::memory(format!("cow-{name}-{}", std::process::id()))
}

fn file_store(name: &str) -> Store {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("copy-on-write")
        .join(format!("{name}-{}", std::process::id()));
    Store::open(&format!("file://{}", dir.display())).expect("open file store")
}

#[test]
fn first_deref_mut_of_a_writer_clones_once() {
    const ID: usize = 0;
    let store = memory_store("writer");
    let owner = store.owned_proxy(value(ID)).unwrap();
    let mut w = mut_borrow(&owner).unwrap();
    assert_eq!(clones(ID), 0);
    w.items.push(4);
    assert_eq!(clones(ID), 1, "the first DerefMut copies with Clone");
    w.items.push(5);
    assert_eq!(clones(ID), 1, "later ones use the copy");
    assert_eq!(w.note.as_deref(), Some("kept in memory"));
    update(&mut w).unwrap();
    drop(w);
    let r = borrowstore::borrow(&owner).unwrap();
    assert_eq!(r.items, vec![1, 2, 3, 4, 5]);
    assert_eq!(r.note.as_deref(), Some("kept in memory"));
}

#[test]
fn first_deref_mut_of_an_owner_clones_once() {
    const ID: usize = 1;
    let store = memory_store("owner");
    let mut owner = store.owned_proxy(value(ID)).unwrap();
    owner.items.push(4);
    owner.items.push(5);
    assert_eq!(clones(ID), 1);
    assert_eq!(owner.note.as_deref(), Some("kept in memory"));
    assert!(OwnedProxy::is_modified(&owner));
    update(&mut owner).unwrap();
    assert_eq!(owner.items, vec![1, 2, 3, 4, 5]);
    assert_eq!(owner.note.as_deref(), Some("kept in memory"));
}

#[test]
fn clone_of_a_changed_owner_clones_its_changes() {
    const ID: usize = 2;
    let store = memory_store("clone");
    let mut owner = store.owned_proxy(value(ID)).unwrap();
    owner.items.push(4);
    assert_eq!(clones(ID), 1);
    let copy = clone(&owner).unwrap();
    assert_eq!(clones(ID), 2);
    assert_eq!(copy.items, vec![1, 2, 3, 4]);
    assert_eq!(copy.note.as_deref(), Some("kept in memory"));
    // An unchanged owner's value is shared in a memory store, not copied.
    let unchanged = store.owned_proxy(value(ID)).unwrap();
    let _shared = clone(&unchanged).unwrap();
    assert_eq!(clones(ID), 2);
}

#[test]
fn get_of_a_local_value_clones_it() {
    const ID: usize = 3;
    let store = memory_store("get");
    // `proxy` keeps the value as it is in a memory store (`put` encodes).
    let key = *Proxy::key(&store.proxy(value(ID)).unwrap());
    let before = clones(ID);
    let got: Counted = store.get(&key).unwrap().unwrap();
    assert_eq!(got, value(ID));
    assert_eq!(got.note.as_deref(), Some("kept in memory"));
    assert!(clones(ID) > before, "get copies with Clone");
    assert_eq!(
        store.get_batch::<Counted>(&[key]).unwrap()[0]
            .as_ref()
            .unwrap()
            .note
            .as_deref(),
        Some("kept in memory")
    );
}

#[test]
fn encoding_stores_copy_the_decoded_value_with_clone() {
    const ID: usize = 4;
    let store = file_store("file");
    let owner = store.owned_proxy(value(ID)).unwrap();
    let mut w = mut_borrow(&owner).unwrap();
    // Stored encoded: what the serialized form leaves out is gone.
    assert_eq!(w.note, None);
    let before = clones(ID);
    w.items.push(4);
    assert_eq!(clones(ID), before + 1);
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(borrowstore::borrow(&owner).unwrap().items, vec![1, 2, 3, 4]);
}

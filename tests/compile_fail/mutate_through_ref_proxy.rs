// A shared borrow gives `&T` only: `RefProxy` has no `DerefMut`.
#![allow(unused_mut)] // `mut` is there so the only error is the missing `DerefMut`

use borrowstore::{RefProxy, Store, borrow};

fn main() {
    let store = Store::memory("cf-mutate-through-ref");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let mut r: RefProxy<Vec<u64>> = borrow(&owner).unwrap();
    r.push(1);
}

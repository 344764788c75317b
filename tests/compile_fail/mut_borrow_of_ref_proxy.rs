// A shared borrow cannot be upgraded to a mutable one: `mut_borrow` takes the owner.
use borrowstore::{RefProxy, Store, borrow, mut_borrow};

fn main() {
    let store = Store::memory("cf-mut-borrow-of-ref");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let r: RefProxy<Vec<u64>> = borrow(&owner).unwrap();
    let _w = mut_borrow(&r);
}

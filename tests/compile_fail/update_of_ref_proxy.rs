// A shared borrow is never mutable, so there is nothing for `update` to publish:
// `RefProxy` does not implement the sealed `Update` trait.
use borrowstore::{RefProxy, Store, borrow, update};

fn main() {
    let store = Store::memory("cf-update-of-ref");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let mut r: RefProxy<Vec<u64>> = borrow(&owner).unwrap();
    let _ = update(&mut r);
}

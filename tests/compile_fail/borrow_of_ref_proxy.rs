// A shared borrow cannot be borrowed again: `borrow` takes the owner.
use borrowstore::{RefProxy, Store, borrow};

fn main() {
    let store = Store::memory("cf-borrow-of-ref");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let r: RefProxy<Vec<u64>> = borrow(&owner).unwrap();
    let _again = borrow(&r);
}

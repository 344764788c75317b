// Only the owner can be deep-copied into a new owned object: `clone` takes the owner.
use borrowstore::{RefProxy, Store, borrow, clone};

fn main() {
    let store = Store::memory("cf-clone-of-ref");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let r: RefProxy<Vec<u64>> = borrow(&owner).unwrap();
    let _copy = clone(&r);
}

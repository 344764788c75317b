// Copy-on-write copies a stored value with `Clone` (the first change through
// a `RefMutProxy` or an `OwnedProxy`), so a stored type must be `Clone`:
// serializable and thread-safe is not enough.
use borrowstore::Store;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Scores {
    points: Vec<u32>,
}

fn main() {
    let store = Store::memory("cf-proxy-without-clone");
    let _owner = store.owned_proxy(Scores { points: vec![1] }).unwrap();
}

// A map of borrows is not a task argument (a `Vec` of them is).
use std::collections::HashMap;

use borrowstore::submit::submit;
use borrowstore::{RefProxy, Store, borrow};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = Store::memory("cf-submit-map");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let mut by_name: HashMap<String, RefProxy<Vec<u64>>> = HashMap::new();
    by_name.insert("a".to_owned(), borrow(&owner).unwrap());
    let h = submit(rt.handle(), by_name, |m| async move { m.len() });
    let _ = rt.block_on(h);
}

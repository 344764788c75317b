// `Cell` is `Send` but not `Sync`: readers in several threads share one
// decoded value, so it cannot be stored (`Storable` requires `Sync`).
use std::cell::Cell;

use borrowstore::Store;

fn main() {
    let store = Store::memory("cf-proxy-of-cell");
    let owner = store.owned_proxy(Cell::new(1u8)).unwrap();
    std::thread::spawn(move || drop(owner)).join().unwrap();
}

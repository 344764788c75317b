// A store's connector is not reachable from a `Store`: users read what a
// store holds through `Store::inspect` and `Store::keys`, and change its
// state only through the handles.
use borrowstore::Store;

fn main() {
    let store = Store::memory("cf-connector-of-store");
    let _ = store.connector().keys();
}

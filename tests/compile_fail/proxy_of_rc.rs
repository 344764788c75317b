// Stored values are shared between threads (`Arc<T>`), so a type that holds
// an `Rc` (neither `Send` nor `Sync`) cannot be stored, and no proxy of it can
// ever reach another thread: `Storable` requires `Send + Sync`.
//
// The `Rc` is skipped by serde and the type derives `Clone`, so that it *is*
// serializable and cloneable: the only reason it is refused is thread safety.
use std::rc::Rc;

use borrowstore::Store;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
struct Local {
    value: u8,
    #[serde(skip)]
    shared: Rc<u8>,
}

fn main() {
    let store = Store::memory("cf-proxy-of-rc");
    let p = store
        .proxy(Local {
            value: 1,
            shared: Rc::new(1),
        })
        .unwrap();
    std::thread::spawn(move || drop(p)).join().unwrap();
}

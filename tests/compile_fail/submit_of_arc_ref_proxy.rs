// A borrow behind an `Arc` cannot be tied to the task: the task could not
// end it while other clones of the `Arc` live on. Give each task its own
// borrow (`RefProxy::reborrow`).
use std::sync::Arc;

use borrowstore::submit::submit;
use borrowstore::{Store, borrow};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = Store::memory("cf-submit-arc");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let shared = Arc::new(borrow(&owner).unwrap());
    let h = submit(rt.handle(), shared, |r| async move { r.len() });
    let _ = rt.block_on(h);
}

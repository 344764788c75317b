// Turning the owner into a ticket moves it: the old handle is gone.
use borrowstore::{OwnedProxy, Store};

fn main() {
    let store = Store::memory("cf-use-after-into-ticket");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let _ticket = OwnedProxy::into_ticket(owner).unwrap();
    let _len = owner.len();
}

// An owner is not serializable (that would make two owners): ownership moves
// between processes through `OwnedProxy::into_ticket`.
use borrowstore::Store;

fn main() {
    let store = Store::memory("cf-serialize-owned");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let _bytes = postcard::to_allocvec(&owner);
}

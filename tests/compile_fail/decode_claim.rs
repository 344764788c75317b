// A claim serializes but does not deserialize outside borrowstore, so bytes
// cannot be turned into a claim either.
use borrowstore::state::Claim;

fn main() {
    let _decoded: Claim = postcard::from_bytes(&[3, 1]).unwrap();
}

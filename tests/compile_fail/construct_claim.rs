// A claim is made only inside borrowstore: it has no public constructor and
// no `Default`, so outside code can never publish or release under a claim
// it was not given.
use borrowstore::state::{Claim, ClaimKind};

fn main() {
    let _new = Claim::new(ClaimKind::Writer);
    let _default = Claim::default();
}

// A claim's fields are private: outside code reads them (`Claim::kind`,
// `Claim::id`) but cannot write a claim of its own with a struct literal.
use borrowstore::ClaimId;
use borrowstore::state::{Claim, ClaimKind};

fn main() {
    let _forged = Claim {
        kind: ClaimKind::Writer,
        id: ClaimId::next(),
    };
}

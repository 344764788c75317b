//! Reading claims back from bytes, inside this crate only.
//!
//! A [`Claim`] must not be buildable outside the crate, so it is `Serialize`
//! but not `Deserialize`, and neither is a [`Ledger`], whose tickets carry
//! claims. What the crate itself wrote — a borrow sent to another process,
//! a ledger persisted by the file connector — it reads back here.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::key::ClaimId;
use crate::state::{Claim, ClaimKind, Deadline, Ledger, State};

/// Reads a claim from what its `Serialize` wrote, for
/// `#[serde(deserialize_with = "crate::connector::wire::deserialize_claim")]`.
pub(crate) fn deserialize_claim<'de, D: Deserializer<'de>>(d: D) -> Result<Claim, D::Error> {
    /// [`Claim`]'s fields, in its serialization order.
    #[derive(Deserialize)]
    #[serde(rename = "Claim")]
    struct Wire {
        kind: ClaimKind,
        id: ClaimId,
    }
    Wire::deserialize(d).map(|w| Claim::rebuilt(w.kind, w.id))
}

/// [`Ledger`]'s fields, in its serialization order.
// No connector of the crate persists a `Ledger` since the file store keeps
// its state in a table; reading one back stays for those that will.
#[allow(dead_code)]
#[derive(Deserialize)]
struct LedgerWire {
    state: State,
    owner: Option<(ClaimId, Deadline)>,
    holders: BTreeMap<ClaimId, Deadline>,
    readers: BTreeMap<ClaimId, Deadline>,
    writer: Option<(ClaimId, Deadline)>,
    tickets: BTreeMap<ClaimId, ClaimWire>,
    version: u64,
}

/// A ticket's claim.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(transparent)]
struct ClaimWire(#[serde(deserialize_with = "deserialize_claim")] Claim);

/// The ledger that `postcard::to_extend(&ledger, ..)` wrote at the start
/// of `bytes`, and the bytes after it.
#[allow(dead_code)]
pub(crate) fn decode_ledger(bytes: &[u8]) -> postcard::Result<(Ledger, &[u8])> {
    let (w, rest): (LedgerWire, &[u8]) = postcard::take_from_bytes(bytes)?;
    let ledger = Ledger {
        state: w.state,
        owner: w.owner,
        holders: w.holders,
        readers: w.readers,
        writer: w.writer,
        tickets: w
            .tickets
            .into_iter()
            .map(|(t, ClaimWire(c))| (t, c))
            .collect(),
        version: w.version,
    };
    Ok((ledger, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Init, NEVER, Op};

    #[test]
    fn reads_back_what_a_claim_serializes() {
        let claim = Claim::new(ClaimKind::Writer);
        let bytes = postcard::to_allocvec(&claim).unwrap();
        let mut de = postcard::Deserializer::from_bytes(&bytes);
        assert_eq!(deserialize_claim(&mut de).unwrap(), claim);
    }

    #[test]
    fn decodes_what_a_ledger_serializes() {
        let owner = Claim::new(ClaimKind::Owner);
        let reader = Claim::new(ClaimKind::Reader);
        let mut l = Ledger::new(Init::Claimed(owner), 1_000);
        l.apply(Op::Acquire(reader), NEVER).unwrap();
        l.apply(Op::Acquire(Claim::new(ClaimKind::Holder)), 2_000)
            .unwrap();
        l.issue_ticket(ClaimId::random(), owner).unwrap();
        l.issue_ticket(ClaimId::random(), reader).unwrap();
        let bytes = postcard::to_allocvec(&l).unwrap();
        assert_eq!(decode_ledger(&bytes).unwrap(), (l, &[][..]));
        assert_eq!(decode_ledger(&bytes[..bytes.len() - 1]).ok(), None);
    }
}

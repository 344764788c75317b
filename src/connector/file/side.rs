//! An object's side file (`objects/<key>.ledger`): written once when the
//! object is created, it names the object's slot in the state table and
//! its generation, and has room for per-object metadata.
//!
//! Format: magic `BSO1`, the slot (u32, little-endian), the slot's
//! generation (u64), the metadata's length (u32) and that many bytes of metadata
//! (none today), nothing after.

/// The side file's magic.
const SIDE_MAGIC: &[u8; 4] = b"BSO1";

/// Where an object is in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) slot: u32,
    pub(super) epoch: u64,
}

/// The bytes of a side file naming `place`.
pub(super) fn encode_side(place: Place) -> Vec<u8> {
    let mut bytes = SIDE_MAGIC.to_vec();
    bytes.extend_from_slice(&place.slot.to_le_bytes());
    bytes.extend_from_slice(&place.epoch.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes()); // metadata: none yet
    bytes
}

/// The place a side file's bytes name; `None` if they are not a side file.
pub(super) fn parse_side(bytes: &[u8]) -> Option<Place> {
    let rest = bytes.strip_prefix(SIDE_MAGIC)?;
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(rest.get(at..at + 4)?.try_into().ok()?))
    };
    let slot = word(0)?;
    let epoch = u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?);
    let meta = word(12)?;
    if rest.len() != 16 + meta as usize {
        return None;
    }
    Some(Place { slot, epoch })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_parse_exactly() {
        let mut b = SIDE_MAGIC.to_vec();
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&3u64.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(parse_side(&b), Some(Place { slot: 7, epoch: 3 }));
        b.push(0);
        assert_eq!(parse_side(&b), None);
        assert_eq!(parse_side(b"BSO1"), None);
        assert_eq!(parse_side(&[0xff; 64]), None);
    }
}

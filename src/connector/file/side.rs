//! An object's side file (`objects/<key>.ledger`): written once when the
//! object is created, it names the object's slot in the state table and
//! its generation, and records what inspection shows of the object.
//!
//! Format: magic `BSO1`, the slot (u32, little-endian), the slot's
//! generation (u64), the record's length (u32) and that many bytes: the
//! postcard bytes of the object's [`ObjectMeta`] (its type name, size,
//! creation time and name), nothing after. A record that does not decode
//! reads as an empty one.

use crate::connector::ObjectMeta;

/// The side file's magic.
const SIDE_MAGIC: &[u8; 4] = b"BSO1";

/// Where an object is in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) slot: u32,
    pub(super) epoch: u64,
}

/// The bytes of a side file naming `place`, recording `meta`.
pub(super) fn encode_side(place: Place, meta: &ObjectMeta) -> Vec<u8> {
    let record = postcard::to_allocvec(meta).unwrap_or_default();
    let mut bytes = SIDE_MAGIC.to_vec();
    bytes.extend_from_slice(&place.slot.to_le_bytes());
    bytes.extend_from_slice(&place.epoch.to_le_bytes());
    bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&record);
    bytes
}

/// The place a side file's bytes name; `None` if they are not a side file.
pub(super) fn parse_side(bytes: &[u8]) -> Option<Place> {
    parse(bytes).map(|(place, _)| place)
}

/// The place a side file's bytes name, and the object's record.
pub(super) fn parse_side_meta(bytes: &[u8]) -> Option<(Place, ObjectMeta)> {
    let (place, record) = parse(bytes)?;
    Some((place, postcard::from_bytes(record).unwrap_or_default()))
}

fn parse(bytes: &[u8]) -> Option<(Place, &[u8])> {
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
    Some((Place { slot, epoch }, &rest[16..]))
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
        assert_eq!(
            parse_side_meta(&b),
            Some((Place { slot: 7, epoch: 3 }, ObjectMeta::default()))
        );
        b.push(0);
        assert_eq!(parse_side(&b), None);
        assert_eq!(parse_side(b"BSO1"), None);
        assert_eq!(parse_side(&[0xff; 64]), None);
    }

    #[test]
    fn side_files_keep_the_object_record() {
        let place = Place { slot: 9, epoch: 1 };
        let meta = ObjectMeta::of_bytes(b"not a codec header", Some("nine"));
        let b = encode_side(place, &meta);
        assert_eq!(parse_side(&b), Some(place));
        assert_eq!(parse_side_meta(&b), Some((place, meta)));
    }
}

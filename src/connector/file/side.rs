//! An object's side file (`objects/<key>.ledger`): written once when the
//! object is created, it names the object's slot in the state table and
//! its generation, records what inspection shows of the object and, for a
//! small value, holds the value's first version.
//!
//! Format: magic `BSO2`, the slot (u32, little-endian), the slot's
//! generation (u64), the record's length (u32) and that many bytes: the
//! postcard bytes of the object's [`ObjectMeta`] (its type name, size,
//! creation time and name); then a flags word (u32): bit 0 set if the
//! value's first version follows, to the end of the file (it is then no
//! file of its own); no other bit is set, and without bit 0 nothing
//! follows. Side files of magic `BSO1` (an earlier build's) end after the
//! record and hold no value. A record that does not decode reads as an
//! empty one.

use std::ops::Range;

use crate::connector::ObjectMeta;

/// The side file's magic.
const SIDE_MAGIC: &[u8; 4] = b"BSO2";

/// The magic of side files that hold no value (an earlier build's).
const SIDE_MAGIC_V1: &[u8; 4] = b"BSO1";

/// Flag: the value's first version is in the side file.
const INLINE: u32 = 1;

/// The largest encoded value whose first version is kept in its side file.
pub(super) const INLINE_MAX: usize = 64 * 1024;

/// Where an object is in the state table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) slot: u32,
    pub(super) epoch: u64,
}

/// The bytes of a side file naming `place`, recording `meta`, and holding
/// `inline` (the value's first version) if given.
pub(super) fn encode_side(place: Place, meta: &ObjectMeta, inline: Option<&[u8]>) -> Vec<u8> {
    let record = postcard::to_allocvec(meta).unwrap_or_default();
    let value = inline.unwrap_or_default();
    let mut bytes = Vec::with_capacity(24 + record.len() + value.len());
    bytes.extend_from_slice(SIDE_MAGIC);
    bytes.extend_from_slice(&place.slot.to_le_bytes());
    bytes.extend_from_slice(&place.epoch.to_le_bytes());
    bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&record);
    let flags = if inline.is_some() { INLINE } else { 0 };
    bytes.extend_from_slice(&flags.to_le_bytes());
    bytes.extend_from_slice(value);
    bytes
}

/// A side file, parsed: the place it names, its record's bytes, and where
/// in the file the value's first version is, if it holds it.
pub(super) struct Side<'a> {
    pub(super) place: Place,
    record: &'a [u8],
    pub(super) inline: Option<Range<usize>>,
}

impl Side<'_> {
    /// The object's record.
    pub(super) fn meta(&self) -> ObjectMeta {
        postcard::from_bytes(self.record).unwrap_or_default()
    }
}

/// The place a side file's bytes name; `None` if they are not a side file.
pub(super) fn parse_side(bytes: &[u8]) -> Option<Place> {
    parse(bytes).map(|s| s.place)
}

/// The place a side file's bytes name, and the object's record.
pub(super) fn parse_side_meta(bytes: &[u8]) -> Option<(Place, ObjectMeta)> {
    parse(bytes).map(|s| (s.place, s.meta()))
}

/// A side file's bytes, parsed; `None` if they are not a side file.
pub(super) fn parse(bytes: &[u8]) -> Option<Side<'_>> {
    let (rest, v2) = match bytes.strip_prefix(SIDE_MAGIC) {
        Some(rest) => (rest, true),
        None => (bytes.strip_prefix(SIDE_MAGIC_V1)?, false),
    };
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(rest.get(at..at + 4)?.try_into().ok()?))
    };
    let slot = word(0)?;
    let epoch = u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?);
    let meta = word(12)? as usize;
    let end = 16usize.checked_add(meta)?;
    let record = rest.get(16..end)?;
    let place = Place { slot, epoch };
    if !v2 {
        return (rest.len() == end).then_some(Side {
            place,
            record,
            inline: None,
        });
    }
    let flags = word(end)?;
    let value = end + 4;
    let inline = match flags {
        0 if rest.len() == value => None,
        INLINE => Some(SIDE_MAGIC.len() + value..bytes.len()),
        _ => return None,
    };
    Some(Side {
        place,
        record,
        inline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_parse_exactly() {
        // An earlier build's side file (no flags, no value) reads as one.
        let mut b = SIDE_MAGIC_V1.to_vec();
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
        let b = encode_side(place, &meta, None);
        assert_eq!(parse_side(&b), Some(place));
        assert_eq!(parse_side_meta(&b), Some((place, meta.clone())));
        assert_eq!(parse(&b).and_then(|s| s.inline), None);
    }

    #[test]
    fn side_files_hold_a_small_first_version() {
        let place = Place { slot: 4, epoch: 2 };
        let meta = ObjectMeta::of_bytes(b"value", None);
        let b = encode_side(place, &meta, Some(b"the value"));
        let side = parse(&b).unwrap();
        assert_eq!(side.place, place);
        assert_eq!(side.meta(), meta);
        assert_eq!(&b[side.inline.unwrap()], b"the value");
        // An empty value is held too.
        let b = encode_side(place, &meta, Some(b""));
        assert_eq!(parse(&b).unwrap().inline, Some(b.len()..b.len()));
        // No value: nothing may follow the flags; unknown flags are damage.
        let mut b = encode_side(place, &meta, None);
        b.push(0);
        assert!(parse(&b).is_none());
        let mut b = encode_side(place, &meta, None);
        let at = b.len() - 4;
        b[at] = 2;
        assert!(parse(&b).is_none());
        // Cut short anywhere: not a side file, no panic.
        let b = encode_side(place, &meta, Some(b"v"));
        for n in 0..b.len() - 1 {
            let _ = parse(&b[..n]);
        }
        let mut huge = SIDE_MAGIC.to_vec();
        huge.extend_from_slice(&[0; 12]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&huge).is_none());
    }
}

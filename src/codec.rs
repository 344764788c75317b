//! How values become bytes: serde + postcard behind a small header.
//!
//! Every blob that borrowstore writes starts with a 13-byte header:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `b"BSTO"` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 5..13 | type fingerprint of `T`, little endian ([`fingerprint`]) |
//!
//! followed by the postcard encoding of the value. Decoding checks all three
//! and that the payload is consumed exactly, so bytes of another type are
//! [`Error::TypeMismatch`] and damaged bytes are [`Error::Decode`]; decoding
//! never panics.
//!
//! postcard is not self-describing: types stored through borrowstore must not
//! use `#[serde(untagged)]`, `#[serde(flatten)]` or `deserialize_any`.
//!
//! ```
//! use borrowstore::codec;
//! let bytes = codec::encode(&vec![1u32, 2, 3]).unwrap();
//! assert_eq!(codec::decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2, 3]);
//! assert!(matches!(
//!     codec::decode::<String>(&bytes),
//!     Err(borrowstore::Error::TypeMismatch { .. })
//! ));
//! ```

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The first four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"BSTO";
/// The blob format this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The header length in bytes.
pub const HEADER_LEN: usize = 13;

/// What a value must be to live in a store:
///
/// - `Serialize + DeserializeOwned`: it is encoded when it leaves the
///   process (file and Redis stores, tickets, `put`);
/// - `Clone`: copy-on-write copies it — the first `DerefMut` of a
///   [`RefMutProxy`](crate::RefMutProxy) or a changed
///   [`OwnedProxy`](crate::OwnedProxy), [`clone`](crate::clone) of an owner
///   with local changes, [`Store::get`](crate::Store::get) of a value the
///   store keeps as it is — with one `Clone::clone`, not a round trip
///   through the serialized form. The clone should be a deep copy (as the
///   derived `Clone` of plain data is): a type whose clones share state
///   would see a writer's unpublished changes in the stored value;
/// - `Send + Sync + 'static`: readers in every thread share one decoded
///   value (`Arc<T>`).
///
/// Implemented for every type that qualifies: `#[derive(Clone, Serialize,
/// Deserialize)]` on a type of your own. Types with interior mutability
/// (`Cell`, `RefCell`, `Mutex`, atomics) are left out, by `Sync` or by
/// `Clone`: a shared borrow never changes its value.
///
/// ```
/// use borrowstore::{Store, mut_borrow};
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Scores {
///     points: Vec<u32>,
/// }
///
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-storable");
/// let owner = store.owned_proxy(Scores { points: vec![3, 4] })?;
/// let mut w = mut_borrow(&owner)?;
/// w.points.push(5); // the first change clones the value
/// # Ok(()) }
/// ```
pub trait Storable: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Storable for T {}

/// The type fingerprint of `T`: 64-bit FNV-1a of its type name.
///
/// Type names are the same in every process built from the same source, so
/// the fingerprint catches a value read back as another type across
/// processes; it is not a schema hash.
pub fn fingerprint<T: ?Sized>() -> u64 {
    fingerprint_of(std::any::type_name::<T>())
}

/// Checks a type fingerprint read back from bytes against `T`'s: else
/// [`Error::TypeMismatch`], expecting `T` and finding "`{what}` type
/// fingerprint …" (`what`: "a proxy of", "a value with", …).
pub(crate) fn check_fingerprint<T: ?Sized>(found: u64, what: impl fmt::Display) -> Result<()> {
    check_fingerprint_as(fingerprint::<T>(), std::any::type_name::<T>(), found, what)
}

/// [`check_fingerprint`] against the fingerprint `expected` of a type that
/// stands for the one named `name` (its wire form).
pub(crate) fn check_fingerprint_as(
    expected: u64,
    name: &'static str,
    found: u64,
    what: impl fmt::Display,
) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::TypeMismatch {
            expected: name,
            found: format!("{what} type fingerprint {found:016x}"),
        })
    }
}

fn fingerprint_of(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Encodes `value` with the header for `T`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(HEADER_LEN + 16);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&fingerprint::<T>().to_le_bytes());
    postcard::to_extend(value, out).map_err(Error::encode)
}

/// The type fingerprint in a blob's header, after checking magic and version.
pub fn header_fingerprint(bytes: &[u8]) -> Result<u64> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::decode(format_args!(
            "blob of {} bytes is shorter than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    }
    if bytes[..4] != MAGIC {
        return Err(Error::decode("bad magic: not a borrowstore blob"));
    }
    if bytes[4] != FORMAT_VERSION {
        return Err(Error::decode(format_args!(
            "unsupported format version {} (this build reads {FORMAT_VERSION})",
            bytes[4]
        )));
    }
    let mut fp = [0u8; 8];
    fp.copy_from_slice(&bytes[5..HEADER_LEN]);
    Ok(u64::from_le_bytes(fp))
}

/// Decodes a blob written by [`encode`] for `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    check_fingerprint::<T>(header_fingerprint(bytes)?, "a value with")?;
    let (value, rest) =
        postcard::take_from_bytes::<T>(&bytes[HEADER_LEN..]).map_err(Error::decode)?;
    if !rest.is_empty() {
        return Err(Error::decode(format_args!(
            "{} trailing bytes after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// A copy of `value` made through its serialized form (an encode and a
/// decode): what a process that decodes the value gets. Copy-on-write does
/// not use it — it copies with `Clone`, which every [`Storable`] type is.
pub fn deep_copy<T: Storable>(value: &T) -> Result<T> {
    let bytes = postcard::to_allocvec(value).map_err(Error::encode)?;
    postcard::from_bytes(&bytes).map_err(Error::decode)
}

/// What a store needs to know of a value's type to keep it undecoded:
/// its name and how to encode it when it has to leave the process.
pub(crate) struct TypeVtable {
    pub(crate) type_name: fn() -> &'static str,
    pub(crate) encode: fn(&(dyn Any + Send + Sync)) -> Result<Vec<u8>>,
}

pub(crate) trait HasVtable {
    const VTABLE: &'static TypeVtable;
}

impl<T: Storable> HasVtable for T {
    const VTABLE: &'static TypeVtable = &TypeVtable {
        type_name: std::any::type_name::<T>,
        encode: encode_any::<T>,
    };
}

fn encode_any<T: Storable>(value: &(dyn Any + Send + Sync)) -> Result<Vec<u8>> {
    match value.downcast_ref::<T>() {
        Some(v) => encode(v),
        None => Err(Error::encode("value does not have the type of its vtable")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = (String::from("x"), vec![1u8, 2], Some(3.5f64));
        assert_eq!(
            decode::<(String, Vec<u8>, Option<f64>)>(&encode(&v).unwrap()).unwrap(),
            v
        );
    }

    #[test]
    fn wrong_type_is_type_mismatch() {
        let b = encode(&7u64).unwrap();
        assert!(matches!(decode::<u32>(&b), Err(Error::TypeMismatch { .. })));
    }

    #[test]
    fn damage_is_decode_error() {
        let mut b = encode(&String::from("hello")).unwrap();
        assert!(matches!(
            decode::<String>(&b[..3]),
            Err(Error::Decode { .. })
        ));
        b.push(0);
        assert!(matches!(decode::<String>(&b), Err(Error::Decode { .. })));
        b.pop();
        b[HEADER_LEN] = 200; // length prefix beyond the data
        assert!(matches!(decode::<String>(&b), Err(Error::Decode { .. })));
        let mut m = encode(&1u8).unwrap();
        m[0] = b'X';
        assert!(matches!(decode::<u8>(&m), Err(Error::Decode { .. })));
        let mut v = encode(&1u8).unwrap();
        v[4] = 99;
        assert!(matches!(decode::<u8>(&v), Err(Error::Decode { .. })));
    }

    #[test]
    fn deep_copy_is_equal_and_distinct() {
        let v = vec![String::from("a"); 3];
        let c = deep_copy(&v).unwrap();
        assert_eq!(v, c);
        assert_ne!(v.as_ptr(), c.as_ptr());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode::<Vec<String>>(&bytes);
            let _ = decode::<(u64, Option<String>)>(&bytes);
        }

        #[test]
        fn arbitrary_payload_after_valid_header_never_panics(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let mut b = encode(&Vec::<String>::new()).unwrap();
            b.truncate(HEADER_LEN);
            b.extend_from_slice(&tail);
            let _ = decode::<Vec<String>>(&b);
        }
    }
}

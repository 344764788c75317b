//! [`Blob`]: bytes stored as they are, read without a copy.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Immutable bytes that deref to `[u8]`: a value type for large binary
/// objects that every reader shares instead of copying.
///
/// - On the file store (`file://`), a resolved `Blob` is a read-only memory
///   mapping of the value's version file: no copy is made, and every
///   process that reads it shares the same pages of the page cache. Its
///   first byte is readable as soon as the borrow is taken; pages are read
///   from disk as they are touched. (Version files are never written after
///   they are renamed into place, so the bytes cannot change under it.)
/// - On the memory store (`memory://`), a `Blob` is kept as it is and
///   shared by every reader.
/// - Elsewhere (Redis, or a `Blob` inside another type) it is encoded as a
///   byte string and decoded once per process per version, like any value.
///
/// Cloning a `Blob` shares its bytes.
///
/// ```
/// use borrowstore::{Blob, Store, borrow};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-blob");
/// let owner = store.owned_proxy(Blob::from(vec![7u8; 1024]))?;
/// let r = borrow(&owner)?;
/// assert_eq!(r.len(), 1024);
/// assert_eq!(r[0], 7);                       // &[u8], through the Blob
/// # Ok(()) }
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Blob(Bytes);

impl Blob {
    /// A blob of `bytes`, shared (no copy).
    ///
    /// ```
    /// let b = borrowstore::Blob::from_bytes(bytes::Bytes::from_static(b"abc"));
    /// assert_eq!(&b[..], b"abc");
    /// ```
    pub fn from_bytes(bytes: Bytes) -> Blob {
        Blob(bytes)
    }

    /// The bytes, shared (no copy).
    ///
    /// ```
    /// let b = borrowstore::Blob::from(vec![1u8, 2]);
    /// assert_eq!(b.bytes().len(), 2);
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Blob {
        Blob(Bytes::from(v))
    }
}

impl From<Bytes> for Blob {
    fn from(b: Bytes) -> Blob {
        Blob(b)
    }
}

impl From<&'static [u8]> for Blob {
    fn from(b: &'static [u8]) -> Blob {
        Blob(Bytes::from_static(b))
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({} bytes)", self.0.len())
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob::from(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob::from(v))
            }
        }
        d.deserialize_bytes(Visit)
    }
}

/// Decodes a stored value of `T` from `encoded`: a [`Blob`] shares the
/// bytes (on the file store, its mapping), any other type is decoded as
/// [`codec::decode`](crate::codec::decode) does.
pub(crate) fn decode_shared<T: serde::de::DeserializeOwned + 'static>(
    encoded: &Bytes,
) -> crate::error::Result<T> {
    use std::any::{Any, TypeId};
    if TypeId::of::<T>() == TypeId::of::<Blob>()
        && let Ok(h) = crate::codec::header(encoded)
        && h.fingerprint() == crate::codec::fingerprint::<Blob>()
        && h.type_name() == crate::codec::recorded_type_name::<Blob>()
    {
        let blob = share(encoded, h.size())
            .ok_or_else(|| crate::error::Error::decode("a damaged blob: its length is wrong"))?;
        let any: Box<dyn Any> = Box::new(blob);
        if let Ok(t) = any.downcast::<T>() {
            return Ok(*t);
        }
    }
    crate::codec::decode(encoded)
}

/// The `Blob` whose encoded form (a blob header, then postcard's byte
/// string: a varint length and the bytes) is `encoded`, sharing its bytes:
/// `None` if the payload after `header_len` is not exactly one byte string.
pub(crate) fn share(encoded: &Bytes, header_len: usize) -> Option<Blob> {
    let payload = encoded.get(header_len..)?;
    let (mut len, mut used) = (0u64, 0usize);
    loop {
        let b = *payload.get(used)?;
        if used == 10 {
            return None;
        }
        len |= u64::from(b & 0x7f) << (7 * used);
        used += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let start = header_len + used;
    let len = usize::try_from(len).ok()?;
    (encoded.len().checked_sub(start)? == len).then(|| Blob(encoded.slice(start..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_blob_is_what_decode_gives_and_damage_is_refused() {
        for n in [0usize, 1, 127, 128, 300, 70_000] {
            let blob = Blob::from((0..n).map(|i| i as u8).collect::<Vec<_>>());
            let bytes = Bytes::from(crate::codec::encode(&blob).unwrap());
            let h = crate::codec::header_len::<Blob>();
            assert_eq!(
                share(&bytes, h),
                Some(crate::codec::decode::<Blob>(&bytes).unwrap())
            );
            assert_eq!(
                share(&bytes.slice(..bytes.len() - usize::from(n > 0)), h).is_some(),
                n == 0
            );
        }
        assert_eq!(share(&Bytes::from_static(&[0xff; 20]), 4), None);
        assert_eq!(share(&Bytes::new(), 4), None);
    }
}

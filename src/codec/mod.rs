//! How values become bytes: serde + postcard behind a small header.
//!
//! Every blob that borrowstore writes starts with a header that names the
//! value's type:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `b"BSTO"` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 5..13 | type fingerprint of `T`, little endian ([`fingerprint`]) |
//! | 13 | length `n` of the type name, at most [`MAX_TYPE_NAME`] |
//! | 14..14 + n | the type name of `T` ([`recorded_type_name`]), UTF-8 |
//!
//! followed by the postcard encoding of the value. Decoding checks the
//! header and that the payload is consumed exactly, so bytes of another type
//! are [`Error::TypeMismatch`], naming the type they hold, and damaged bytes
//! are [`Error::Decode`]; decoding never panics. [`header`] reads a blob's
//! header without decoding the value.
//!
//! postcard is not self-describing: types stored through borrowstore must not
//! use `#[serde(untagged)]`, `#[serde(flatten)]` or `deserialize_any`.
//!
//! ```
//! use borrowstore::{Error, codec};
//! let bytes = codec::encode(&vec![1u32, 2, 3]).unwrap();
//! assert_eq!(codec::decode::<Vec<u32>>(&bytes).unwrap(), vec![1, 2, 3]);
//! assert_eq!(codec::header(&bytes).unwrap().type_name(), "alloc::vec::Vec<u32>");
//! match codec::decode::<String>(&bytes) {
//!     Err(Error::TypeMismatch { expected, found }) => {
//!         assert_eq!(expected, "alloc::string::String");
//!         assert_eq!(found, "alloc::vec::Vec<u32>");
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The first four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"BSTO";
/// The blob format this build writes and reads. Version 2 added the type
/// name to the header; blobs of version 1 are [`Error::Decode`].
pub const FORMAT_VERSION: u8 = 2;
/// The length in bytes of the header's fixed part: magic, format version and
/// type fingerprint. The type name follows it; a blob's whole header is
/// [`Header::size`] bytes, [`header_len`] for a blob of `T`.
pub const HEADER_LEN: usize = 13;
/// The longest type name a header (or a proxy's or ticket's wire form)
/// records, in bytes. Longer names are cut at the last character boundary
/// that fits.
pub const MAX_TYPE_NAME: usize = 255;

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
///
/// ```
/// use borrowstore::codec::fingerprint;
/// assert_eq!(fingerprint::<Vec<u64>>(), fingerprint::<Vec<u64>>());
/// assert_ne!(fingerprint::<Vec<u64>>(), fingerprint::<Vec<u32>>());
/// ```
pub fn fingerprint<T: ?Sized>() -> u64 {
    fingerprint_of(std::any::type_name::<T>())
}

/// `T`'s type name as headers and wire forms record it:
/// [`std::any::type_name`], cut to at most [`MAX_TYPE_NAME`] bytes.
///
/// ```
/// assert_eq!(borrowstore::codec::recorded_type_name::<Vec<u64>>(), "alloc::vec::Vec<u64>");
/// ```
pub fn recorded_type_name<T: ?Sized>() -> &'static str {
    bounded_name(std::any::type_name::<T>())
}

/// The length in bytes of the header of a blob of `T`: where its payload starts.
///
/// ```
/// use borrowstore::codec::{self, HEADER_LEN};
/// let name = codec::recorded_type_name::<u32>();             // "u32"
/// assert_eq!(codec::header_len::<u32>(), HEADER_LEN + 1 + name.len());
/// let bytes = codec::encode(&7u32).unwrap();
/// assert_eq!(bytes.len(), codec::header_len::<u32>() + 1);   // postcard: 7 is one byte
/// ```
pub fn header_len<T: ?Sized>() -> usize {
    HEADER_LEN + 1 + recorded_type_name::<T>().len()
}

/// `name`, cut to at most [`MAX_TYPE_NAME`] bytes at a character boundary.
fn bounded_name(name: &str) -> &str {
    if name.len() <= MAX_TYPE_NAME {
        return name;
    }
    let mut end = MAX_TYPE_NAME;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What to report as the type found, from a fingerprint and the type name
/// recorded beside it: the name when it is the one the fingerprint was made
/// of, the name marked as cut when it was too long to record whole, else
/// (damaged bytes) "`{what}` type fingerprint …".
fn found_type(fingerprint: u64, name: &str, what: impl fmt::Display) -> String {
    let name = bounded_name(name);
    if !name.is_empty() && fingerprint_of(name) == fingerprint {
        name.to_owned()
    } else if name.len() + 3 >= MAX_TYPE_NAME {
        // Cut to fit: at most three bytes short of the limit (a character).
        format!("{name}…")
    } else {
        format!("{what} type fingerprint {fingerprint:016x}")
    }
}

/// Checks a type fingerprint read back from bytes against `T`'s: else
/// [`Error::TypeMismatch`], expecting `T` and finding "`{what}` type
/// fingerprint …" (`what`: "a proxy of", "a value with", …). Where the bytes
/// record the type name too, [`check_type`] names the type found.
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

/// Checks a type fingerprint and the type name recorded beside it (a
/// proxy's or a ticket's wire form) against `T`: else
/// [`Error::TypeMismatch`], expecting `T` and finding the recorded type
/// name (or, if the name does not go with the fingerprint, "`{what}` type
/// fingerprint …"). The name is only reported, never trusted: the
/// fingerprint decides.
pub(crate) fn check_type<T: ?Sized>(
    found: u64,
    found_name: &str,
    what: impl fmt::Display,
) -> Result<()> {
    if found == fingerprint::<T>() {
        Ok(())
    } else {
        Err(Error::TypeMismatch {
            expected: std::any::type_name::<T>(),
            found: found_type(found, found_name, what),
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

/// Encodes `value` with the header for `T`: what every encoded value of a
/// store starts with, followed by the value in postcard.
///
/// # Errors
///
/// [`Error::Encode`] if serde cannot serialize the value.
///
/// ```
/// use borrowstore::codec::{self, MAGIC, FORMAT_VERSION};
/// let bytes = codec::encode(&vec![1u8, 2, 3]).unwrap();
/// assert_eq!(bytes[..4], MAGIC);
/// assert_eq!(bytes[4], FORMAT_VERSION);
/// assert_eq!(codec::decode::<Vec<u8>>(&bytes).unwrap(), vec![1, 2, 3]);
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let name = recorded_type_name::<T>();
    let mut out = Vec::with_capacity(HEADER_LEN + 1 + name.len() + 16);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&fingerprint::<T>().to_le_bytes());
    // `bounded_name` keeps the length within one byte.
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
    postcard::to_extend(value, out).map_err(Error::encode)
}

/// A blob's header, read by [`header`]: the fingerprint and the name of the
/// type its value was encoded as, and where the value starts.
///
/// ```
/// use borrowstore::codec;
/// let bytes = codec::encode(&String::from("hi")).unwrap();
/// let h = codec::header(&bytes).unwrap();
/// assert_eq!(h.type_name(), "alloc::string::String");
/// assert_eq!(h.fingerprint(), codec::fingerprint::<String>());
/// assert_eq!(h.size(), codec::header_len::<String>());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    fingerprint: u64,
    type_name: &'a str,
}

impl<'a> Header<'a> {
    /// The type fingerprint ([`fingerprint`]) of the value's type.
    ///
    /// ```
    /// use borrowstore::codec;
    /// let bytes = codec::encode(&3u16).unwrap();
    /// assert_eq!(codec::header(&bytes).unwrap().fingerprint(), codec::fingerprint::<u16>());
    /// ```
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The value's type name as recorded ([`recorded_type_name`]: at most
    /// [`MAX_TYPE_NAME`] bytes). It is what the writer says; only the
    /// [`fingerprint`](Header::fingerprint) is checked.
    ///
    /// ```
    /// use borrowstore::codec;
    /// let bytes = codec::encode(&Some(1u8)).unwrap();
    /// assert_eq!(codec::header(&bytes).unwrap().type_name(), "core::option::Option<u8>");
    /// ```
    pub fn type_name(&self) -> &'a str {
        self.type_name
    }

    /// The header's length in bytes: where the encoded value starts.
    ///
    /// ```
    /// use borrowstore::codec;
    /// let bytes = codec::encode(&42u8).unwrap();
    /// let h = codec::header(&bytes).unwrap();
    /// assert_eq!(&bytes[h.size()..], &[42]);                 // the value, in postcard
    /// ```
    pub fn size(&self) -> usize {
        HEADER_LEN + 1 + self.type_name.len()
    }
}

/// Reads a blob's header: checks magic and format version, and reads the
/// type fingerprint and name. Damaged or truncated headers are
/// [`Error::Decode`]. Reads at most the header's bytes.
///
/// ```
/// use borrowstore::{Error, codec};
/// let bytes = codec::encode(&1.5f64).unwrap();
/// assert_eq!(codec::header(&bytes).unwrap().type_name(), "f64");
/// assert!(matches!(codec::header(b"BST"), Err(Error::Decode { .. })));
/// ```
pub fn header(bytes: &[u8]) -> Result<Header<'_>> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::decode(format_args!(
            "blob of {} bytes is shorter than the {HEADER_LEN}-byte fixed header",
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
    let Some((&n, rest)) = bytes[HEADER_LEN..].split_first() else {
        return Err(Error::decode("blob ends before its type name"));
    };
    let Some(name) = rest.get(..usize::from(n)) else {
        return Err(Error::decode(format_args!(
            "blob ends inside its {n}-byte type name"
        )));
    };
    let type_name = std::str::from_utf8(name)
        .map_err(|_| Error::decode("the type name in the header is not UTF-8"))?;
    Ok(Header {
        fingerprint: u64::from_le_bytes(fp),
        type_name,
    })
}

/// The type fingerprint in a blob's header, after checking magic and
/// version; [`header`] reads the type name too.
///
/// ```
/// use borrowstore::codec;
/// let bytes = codec::encode(&"text").unwrap();
/// assert_eq!(codec::header_fingerprint(&bytes).unwrap(), codec::fingerprint::<&str>());
/// ```
pub fn header_fingerprint(bytes: &[u8]) -> Result<u64> {
    header(bytes).map(|h| h.fingerprint)
}

/// Decodes a blob written by [`encode`] for `T`.
///
/// A blob of another type is [`Error::TypeMismatch`] whose `found` is the
/// type name its header records; damaged bytes, including a header whose
/// type name is not `T`'s although its fingerprint is, are [`Error::Decode`].
///
/// # Errors
///
/// [`Error::TypeMismatch`] and [`Error::Decode`] as above; never a panic,
/// whatever the bytes.
///
/// ```
/// use borrowstore::{Error, codec};
/// let bytes = codec::encode(&vec![1u64, 2]).unwrap();
/// assert_eq!(codec::decode::<Vec<u64>>(&bytes).unwrap(), vec![1, 2]);
/// match codec::decode::<String>(&bytes) {
///     Err(Error::TypeMismatch { found, .. }) => assert_eq!(found, "alloc::vec::Vec<u64>"),
///     other => panic!("{other:?}"),
/// }
/// assert!(matches!(codec::decode::<Vec<u64>>(&bytes[..bytes.len() - 1]), Err(Error::Decode { .. })));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let h = header(bytes)?;
    check_type::<T>(h.fingerprint, h.type_name, "a value with")?;
    if h.type_name != recorded_type_name::<T>() {
        return Err(Error::decode(
            "damaged header: the type name does not go with the fingerprint",
        ));
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(&bytes[h.size()..]).map_err(Error::decode)?;
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
///
/// ```
/// let original = vec![String::from("a"), String::from("b")];
/// let copy = borrowstore::codec::deep_copy(&original).unwrap();
/// assert_eq!(copy, original);
/// ```
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
mod tests;

//! Object keys and claim ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The key of a stored object: 128 random bits.
///
/// Its [`Display`](fmt::Display) form is 32 lowercase hex digits, and
/// [`FromStr`] accepts exactly that form back, so a key is safe to use as a
/// file name or a Redis key part: nothing else parses.
///
/// ```
/// use borrowstore::Key;
/// let key = Key::random();
/// let text = key.to_string();
/// assert_eq!(text.parse::<Key>().unwrap(), key);
/// assert!("../etc/passwd".parse::<Key>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u128);

impl Key {
    /// A fresh random key. Stores make one for every object; you need one
    /// only to name an object that surely does not exist.
    ///
    /// ```
    /// use borrowstore::{Key, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// assert_ne!(Key::random(), Key::random());
    /// assert!(!Store::memory("doc-key-random").exists(&Key::random())?);
    /// # Ok(()) }
    /// ```
    pub fn random() -> Self {
        Key(rand::random())
    }

    /// The key with these 128 bits.
    ///
    /// ```
    /// use borrowstore::Key;
    /// let key = Key::from_u128(0xff);
    /// assert_eq!(key.to_string(), "000000000000000000000000000000ff");
    /// ```
    pub const fn from_u128(bits: u128) -> Self {
        Key(bits)
    }

    /// The key's 128 bits.
    ///
    /// ```
    /// use borrowstore::Key;
    /// let key = Key::random();
    /// assert_eq!(Key::from_u128(key.as_u128()), key);
    /// ```
    pub const fn as_u128(&self) -> u128 {
        self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

pub(crate) fn parse_hex128(s: &str) -> Option<u128> {
    if s.len() != 32 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

impl FromStr for Key {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        parse_hex128(s).map(Key).ok_or_else(|| Error::InvalidKey {
            key: s.chars().take(100).collect(),
            reason: "a key is exactly 32 lowercase hex digits",
        })
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            u128::deserialize(d).map(Key)
        }
    }
}

/// The id of one claim on an object: an owner handle, a holder (scope or
/// lifetime), a shared borrow or a mutable borrow.
///
/// Ids make store-side releases idempotent: releasing the same id twice (for
/// example a script retried after a reconnect) has the effect of releasing
/// it once. The high 64 bits are random per process, the low 64 bits count,
/// so ids from different processes never collide in practice.
///
/// It is kept as its two halves (high, low), so that a claim, and the
/// handles that carry one, need no 16-byte alignment; it is stored and
/// compared as the `u128` it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimId(u64, u64);

impl Serialize for ClaimId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_u128(self.as_u128())
    }
}

impl<'de> Deserialize<'de> for ClaimId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        u128::deserialize(d).map(ClaimId::from_u128)
    }
}

impl ClaimId {
    /// A fresh id, unique in this process and, with overwhelming
    /// probability, among all processes. Costs no system call.
    ///
    /// ```
    /// use borrowstore::ClaimId;
    /// let (a, b) = (ClaimId::next(), ClaimId::next());
    /// assert_ne!(a, b);
    /// assert_eq!(a.as_u128() >> 64, b.as_u128() >> 64);       // one prefix per process
    /// ```
    #[inline]
    pub fn next() -> Self {
        use std::cell::Cell;
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};

        const BLOCK: u64 = 1 << 16;
        static PREFIX: OnceLock<u64> = OnceLock::new();
        static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
        thread_local! {
            static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
        }

        let prefix = *PREFIX.get_or_init(rand::random);
        let low = RANGE.with(|r| {
            let (mut next, mut end) = r.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                end = next + BLOCK;
            }
            r.set((next + 1, end));
            next
        });
        ClaimId(prefix, low)
    }

    /// A random id (for tickets, which must not be guessable).
    ///
    /// ```
    /// use borrowstore::ClaimId;
    /// assert_ne!(ClaimId::random(), ClaimId::random());
    /// ```
    pub fn random() -> Self {
        ClaimId::from_u128(rand::random())
    }

    /// The id's 128 bits.
    ///
    /// ```
    /// use borrowstore::ClaimId;
    /// assert_eq!(ClaimId::from_u128(7).as_u128(), 7);
    /// ```
    pub const fn as_u128(&self) -> u128 {
        ((self.0 as u128) << 64) | self.1 as u128
    }

    /// The id with these 128 bits.
    ///
    /// ```
    /// use borrowstore::ClaimId;
    /// assert_eq!(ClaimId::from_u128(0xab).to_string(), "000000000000000000000000000000ab");
    /// ```
    pub const fn from_u128(bits: u128) -> Self {
        ClaimId((bits >> 64) as u64, bits as u64)
    }
}

impl fmt::Display for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.as_u128())
    }
}

impl fmt::Debug for ClaimId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_ids_are_stored_and_ordered_as_their_u128() {
        for bits in [
            0,
            7,
            u128::from(u64::MAX),
            1 << 64,
            (3 << 64) | 5,
            u128::MAX,
        ] {
            let id = ClaimId::from_u128(bits);
            assert_eq!(id.as_u128(), bits);
            let bytes = postcard::to_stdvec(&id).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(&bits).unwrap());
            assert_eq!(postcard::from_bytes::<ClaimId>(&bytes).unwrap(), id);
        }
        let (a, b) = (
            ClaimId::from_u128(u128::from(u64::MAX)),
            ClaimId::from_u128(1 << 64),
        );
        assert!(a < b);
        assert_eq!(std::mem::align_of::<ClaimId>(), 8);
    }

    #[test]
    fn key_round_trips_through_display() {
        for _ in 0..100 {
            let k = Key::random();
            assert_eq!(k.to_string().parse::<Key>().unwrap(), k);
        }
        assert_eq!(
            Key::from_u128(1).to_string(),
            "00000000000000000000000000000001"
        );
    }

    #[test]
    fn key_rejects_everything_else() {
        for bad in [
            "",
            "../../etc/passwd",
            "/abs",
            "0000000000000000000000000000000G",
            "0000000000000000000000000000000A",
            "000000000000000000000000000000001",
            "+0000000000000000000000000000001",
        ] {
            assert!(
                matches!(bad.parse::<Key>(), Err(Error::InvalidKey { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_serde_round_trips_in_both_forms() {
        let k = Key::random();
        let bytes = postcard::to_allocvec(&k).unwrap();
        assert_eq!(postcard::from_bytes::<Key>(&bytes).unwrap(), k);
    }

    #[test]
    fn claim_ids_are_unique_across_threads() {
        let ids: Vec<ClaimId> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..70_000).map(|_| ClaimId::next()).collect::<Vec<_>>()))
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let set: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(set.len(), ids.len());
    }
}

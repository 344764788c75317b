//! [`ObjectInfo`]: what a store holds for one object.

use std::fmt;

use serde::Serialize;

use crate::connector::Inspect;
use crate::key::Key;

/// What a store holds for one object, read store-side in one step: what
/// [`Store::inspect`](crate::Store::inspect) returns.
///
/// A snapshot: it does not change when the object does. Its `Display` is a
/// small table, one field a line; it serializes (for logs and tools) with
/// the key as 32 hex digits in human-readable formats.
///
/// # Growing
///
/// The fields are public to read, and the type is `#[non_exhaustive]`: only
/// this crate makes one, and fields can be added without breaking code that
/// reads the ones it knows. Expect more (the value's type and size, when it
/// was stored, and one record per claim: its kind, process, host, label,
/// age and lease deadline); the counts here stay.
///
/// ```
/// use borrowstore::{OwnedProxy, Store, mut_borrow};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-object-info");
/// let owner = store.owned_proxy(String::from("draft"))?;
/// let writer = mut_borrow(&owner)?;
///
/// let info = store.inspect(OwnedProxy::key(&owner))?.expect("stored");
/// assert!(info.writer && info.readers == 0);
/// assert!(info.owner);
/// assert_eq!((info.owners, info.holders), (1, 0));
/// assert!(!info.plain);
/// assert!(info.to_string().contains("writer   yes"));
/// # drop(writer);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// The object's key.
    pub key: Key,
    /// The value's version: 1 when stored, one more at every publish.
    pub version: u64,
    /// How many owners keep the object: its [`owner`](ObjectInfo::owner)
    /// handle, if it has one, plus its [`holders`](ObjectInfo::holders).
    pub owners: u32,
    /// Whether the object has its owner handle: an
    /// [`OwnedProxy`](crate::OwnedProxy), or an owner ticket in flight. At
    /// most one.
    pub owner: bool,
    /// How many of the owners are holders: liveness scopes and lifetimes.
    pub holders: u32,
    /// How many shared borrows ([`RefProxy`](crate::RefProxy), or borrow
    /// tickets in flight) the object has.
    pub readers: u32,
    /// Whether the object has its mutable borrow ([`RefMutProxy`](crate::RefMutProxy)).
    pub writer: bool,
    /// Whether the object never had an owner ([`Store::put`](crate::Store::put),
    /// [`Store::proxy`](crate::Store::proxy)): it persists until it is
    /// evicted, explicitly or by the resolve of an ephemeral proxy. An
    /// object that had an owner is evicted when its last owner and its last
    /// borrow are gone.
    pub plain: bool,
}

impl ObjectInfo {
    /// The info of what the connector reported for `key`; `None` for an
    /// object whose eviction has begun.
    pub(crate) fn from_inspect(key: Key, inspect: Inspect) -> Option<ObjectInfo> {
        let s = inspect.state;
        if s.gone() {
            return None;
        }
        Some(ObjectInfo {
            key,
            version: inspect.version,
            owners: s.holders().saturating_add(u32::from(s.owned())),
            owner: s.owned(),
            holders: s.holders(),
            readers: s.readers(),
            writer: s.writer(),
            plain: !s.had_owner(),
        })
    }
}

impl fmt::Display for ObjectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        writeln!(f, "key      {}", self.key)?;
        writeln!(f, "version  {}", self.version)?;
        writeln!(
            f,
            "owners   {} (owner handle: {}, holders: {})",
            self.owners,
            yes_no(self.owner),
            self.holders
        )?;
        writeln!(f, "readers  {}", self.readers)?;
        writeln!(f, "writer   {}", yes_no(self.writer))?;
        write!(f, "plain    {}", yes_no(self.plain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    fn info(state: State) -> Option<ObjectInfo> {
        ObjectInfo::from_inspect(Key::from_u128(7), Inspect { state, version: 3 })
    }

    #[test]
    fn counts_come_from_the_state() {
        let i = info(State::from_parts(2, false, true, 3, true, false)).unwrap();
        assert_eq!(i.key, Key::from_u128(7));
        assert_eq!(i.version, 3);
        assert_eq!((i.owners, i.holders, i.readers), (4, 3, 2));
        assert!(i.owner && !i.writer && !i.plain);

        let i = info(State::from_parts(0, true, false, 0, false, false)).unwrap();
        assert_eq!((i.owners, i.holders, i.readers), (0, 0, 0));
        assert!(!i.owner && i.writer && i.plain);
    }

    #[test]
    fn an_object_being_evicted_has_no_info() {
        assert!(info(State::from_parts(0, false, false, 0, true, true)).is_none());
    }

    #[test]
    fn displays_as_a_table() {
        let i = info(State::from_parts(1, false, true, 0, true, false)).unwrap();
        assert_eq!(
            i.to_string(),
            "key      00000000000000000000000000000007\n\
             version  3\n\
             owners   1 (owner handle: yes, holders: 0)\n\
             readers  1\n\
             writer   no\n\
             plain    no"
        );
    }
}

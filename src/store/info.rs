//! [`ObjectInfo`]: what a store holds for one object.

use std::fmt;

use serde::Serialize;

use crate::connector::{ClaimInfo, Inspect};
use crate::key::Key;

/// What a store holds for one object, read store-side in one step: what
/// [`Store::inspect`](crate::Store::inspect) returns, and each row of a
/// [`Store::snapshot`](crate::Store::snapshot).
///
/// A snapshot: it does not change when the object does. Its `Display` is a
/// small table, one field a line, then one line per claim; it serializes
/// (for logs and tools, and `borrowstore memory --json`) with the key as 32
/// hex digits in human-readable formats and the type name as `type`.
///
/// # Growing
///
/// The fields are public to read, and the type is `#[non_exhaustive]`: only
/// this crate makes one, and fields can be added without breaking code that
/// reads the ones it knows.
///
/// # What the claims say
///
/// Each [`ClaimInfo`] is one claim as the store recorded it when it was
/// taken: its kind (or `ticket` while it is in flight), the process id and
/// host of its holder, its label (a name, or the call site that took it),
/// when it was taken, and its lease deadline on stores with leases. On
/// file and Redis stores inspection only reads: a claim whose lease ran
/// out (a killed process) is still listed, with its deadline in the past,
/// until the next operation on the object (or `borrowstore reap`) reclaims
/// it; the counts include it until then.
///
/// ```
/// use borrowstore::{OwnedProxy, Store, mut_borrow};
/// use borrowstore::connector::ClaimRole;
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-object-info");
/// let owner = store.owned_proxy_named(String::from("draft"), "draft")?;
/// let writer = mut_borrow(&owner)?;
///
/// let info = store.inspect(OwnedProxy::key(&owner))?.expect("stored");
/// assert!(info.writer && info.readers == 0);
/// assert!(info.owner);
/// assert_eq!((info.owners, info.holders), (1, 0));
/// assert!(!info.plain);
/// assert_eq!(info.type_name.as_deref(), Some("alloc::string::String"));
/// assert_eq!(info.label.as_deref(), Some("draft"));
/// let w = info.claims.iter().find(|c| c.kind == ClaimRole::Writer).expect("the writer");
/// assert_eq!(w.pid, std::process::id());
/// assert!(info.to_string().contains("writer   yes"));
/// # drop(writer);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// The object's key.
    pub key: Key,
    /// The value's type name, as recorded when it was stored.
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    /// Its encoded size in bytes (the in-memory size of the value itself,
    /// on a memory store that never encoded it).
    pub size: Option<u64>,
    /// The value's version: 1 when stored, one more at every publish.
    pub version: u64,
    /// When it was stored, ms since the Unix epoch.
    pub created_ms: Option<u64>,
    /// The name it was stored with ([`Store::owned_proxy_named`](crate::Store::owned_proxy_named)).
    pub label: Option<String>,
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
    /// Every claim on it, as recorded; see [What the claims say](#what-the-claims-say).
    pub claims: Vec<ClaimInfo>,
}

impl ObjectInfo {
    /// The info of what the connector reported for `key`; `None` for an
    /// object whose eviction has begun.
    pub(crate) fn from_inspect(key: Key, inspect: Inspect) -> Option<ObjectInfo> {
        let s = inspect.state;
        if s.gone() {
            return None;
        }
        let mut claims = inspect.claims;
        claims.sort_by_key(|c| (c.kind, c.since_ms));
        let o = inspect.object;
        Some(ObjectInfo {
            key,
            type_name: o.type_name,
            size: o.size,
            version: inspect.version,
            created_ms: o.created_ms,
            label: o.label,
            owners: s.holders().saturating_add(u32::from(s.owned())),
            owner: s.owned(),
            holders: s.holders(),
            readers: s.readers(),
            writer: s.writer(),
            plain: !s.had_owner(),
            claims,
        })
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS.mmm` UTC.
pub(crate) fn utc(ms: u64) -> String {
    let (days, rem) = (ms / 86_400_000, ms % 86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

impl fmt::Display for ObjectInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let or_dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
        writeln!(f, "key      {}", self.key)?;
        writeln!(f, "type     {}", or_dash(&self.type_name))?;
        writeln!(
            f,
            "size     {}",
            self.size.map_or("-".into(), |s| format!("{s} B"))
        )?;
        writeln!(f, "version  {}", self.version)?;
        writeln!(f, "created  {}", self.created_ms.map_or("-".into(), utc))?;
        writeln!(f, "label    {}", or_dash(&self.label))?;
        writeln!(
            f,
            "owners   {} (owner handle: {}, holders: {})",
            self.owners,
            yes_no(self.owner),
            self.holders
        )?;
        writeln!(f, "readers  {}", self.readers)?;
        writeln!(f, "writer   {}", yes_no(self.writer))?;
        write!(f, "plain    {}", yes_no(self.plain))?;
        if !self.claims.is_empty() {
            write!(
                f,
                "\nclaims   {:<7} {:>8} {:<16} {:<23} {:<23} label",
                "kind", "pid", "host", "since (UTC)", "lease until (UTC)"
            )?;
        }
        for c in &self.claims {
            write!(
                f,
                "\n         {:<7} {:>8} {:<16} {:<23} {:<23} {}",
                c.kind.name(),
                c.pid,
                c.host,
                utc(c.since_ms),
                c.lease_expires_ms.map_or("-".into(), utc),
                c.label.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    fn info(state: State) -> Option<ObjectInfo> {
        ObjectInfo::from_inspect(Key::from_u128(7), Inspect::new(state, 3))
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
    fn times_print_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_764_633_600_123), "2025-12-02 00:00:00.123");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00.000");
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
             type     -\n\
             size     -\n\
             version  3\n\
             created  -\n\
             label    -\n\
             owners   1 (owner handle: yes, holders: 0)\n\
             readers  1\n\
             writer   no\n\
             plain    no"
        );
    }
}

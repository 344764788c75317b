//! [`Store::snapshot`]: every object of a store, with its claims, and the
//! [`Snapshot`] that holds them (a table to print, a list to serialize).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::connector::ClaimRole;
use crate::error::Result;
use crate::store::Store;
use crate::store::info::ObjectInfo;

/// Every object of a store as [`Store::snapshot`] read it, one
/// [`ObjectInfo`] each (in key order), with a summary.
///
/// It serializes as the list of its objects; its `Display` prints one line
/// per object and one indented line per claim, then the summary.
///
/// ```
/// use borrowstore::{Store, borrow};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-snapshot");
/// let a = store.owned_proxy_named(vec![1u32, 2], "a")?;
/// let _r = borrow(&a)?;
/// store.put(&7u8)?;
/// let snap = store.snapshot()?;
/// assert_eq!(snap.objects.len(), 2);
/// let s = snap.summary();
/// assert_eq!((s.objects, s.claims.get("reader").copied()), (2, Some(1)));
/// println!("{snap}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
#[non_exhaustive]
pub struct Snapshot {
    /// The objects, in key order.
    pub objects: Vec<ObjectInfo>,
}

/// What a [`Snapshot`] adds up to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// How many objects.
    pub objects: usize,
    /// Their sizes, added up.
    pub bytes: u64,
    /// How many claims of each kind (`owner`, `holder`, `reader`, `writer`, `ticket`).
    pub claims: BTreeMap<&'static str, usize>,
    /// The processes holding claims, as `(host, pid)`.
    pub processes: Vec<(String, u32)>,
    /// Claims whose lease ran out at `now_ms` and that the store has not
    /// reclaimed yet.
    pub expired: usize,
}

impl Snapshot {
    /// A snapshot of `objects` (a part of another, grouped or sorted).
    ///
    /// ```
    /// let s = borrowstore::Snapshot::from_objects(Vec::new());
    /// assert_eq!(s.summary().objects, 0);
    /// ```
    pub fn from_objects(objects: Vec<ObjectInfo>) -> Snapshot {
        Snapshot { objects }
    }

    /// The summary, with leases judged against the clock now.
    pub fn summary(&self) -> Summary {
        self.summary_at(crate::connector::lease::now_ms())
    }

    /// The summary, with leases judged against `now_ms`.
    pub fn summary_at(&self, now_ms: u64) -> Summary {
        let mut s = Summary {
            objects: self.objects.len(),
            ..Summary::default()
        };
        for o in &self.objects {
            s.bytes += o.size.unwrap_or(0);
            for c in &o.claims {
                *s.claims.entry(c.kind.name()).or_default() += 1;
                let p = (c.host.clone(), c.pid);
                if !s.processes.contains(&p) {
                    s.processes.push(p);
                }
                if c.lease_expires_ms.is_some_and(|d| d < now_ms) {
                    s.expired += 1;
                }
            }
        }
        s.processes.sort();
        s
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<32}  {:<28} {:>9} {:>4} {:>6} {:>7} {:>6}  label",
            "key", "type", "size", "ver", "owners", "readers", "writer"
        )?;
        for o in &self.objects {
            writeln!(
                f,
                "{:<32}  {:<28} {:>9} {:>4} {:>6} {:>7} {:>6}  {}",
                o.key.to_string(),
                short(o.type_name.as_deref().unwrap_or("-"), 28),
                o.size.map_or("-".into(), |s| s.to_string()),
                o.version,
                o.owners,
                o.readers,
                if o.writer { "yes" } else { "no" },
                o.label.as_deref().unwrap_or("-"),
            )?;
            for c in &o.claims {
                writeln!(
                    f,
                    "    {:<7} pid {:<8} {:<12} since {}  lease {:<23}  {}",
                    c.kind.name(),
                    c.pid,
                    short(&c.host, 12),
                    super::info::utc(c.since_ms),
                    c.lease_expires_ms.map_or("-".into(), super::info::utc),
                    c.label.as_deref().unwrap_or("-"),
                )?;
            }
        }
        let s = self.summary();
        let kinds = [
            ClaimRole::Owner,
            ClaimRole::Holder,
            ClaimRole::Reader,
            ClaimRole::Writer,
            ClaimRole::Ticket,
        ]
        .map(|k| format!("{} {}", s.claims.get(k.name()).copied().unwrap_or(0), k));
        write!(
            f,
            "{} objects, {} bytes; claims: {}; {} processes; {} expired leases awaiting reclaim",
            s.objects,
            s.bytes,
            kinds.join(", "),
            s.processes.len(),
            s.expired
        )
    }
}

/// `s`, cut to `n` characters with a `…` if it is longer.
fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(n - 1).collect();
        format!("{cut}…")
    }
}

impl Store {
    /// Every object of the store, with its claims: one
    /// [`Store::inspect`] per key of [`Store::keys`] (an object evicted
    /// between the two is left out). On a shared store that includes other
    /// processes' objects. It only reads: on file and Redis stores, claims
    /// whose lease ran out are listed, not reclaimed.
    ///
    /// ```
    /// use borrowstore::Store;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-store-snapshot");
    /// let _o = store.owned_proxy(String::from("x"))?;
    /// let snap = store.snapshot()?;
    /// assert_eq!(snap.objects[0].claims.len(), 1); // the owner
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut keys = self.keys()?;
        keys.sort();
        let mut objects = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(i) = self.inspect(&k)? {
                objects.push(i);
            }
        }
        Ok(Snapshot { objects })
    }

    /// [`Store::snapshot`], without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn snapshot_async(&self) -> Result<Snapshot> {
        let mut keys = self.keys_async().await?;
        keys.sort();
        let mut objects = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(i) = self.inspect_async(&k).await? {
                objects.push(i);
            }
        }
        Ok(Snapshot { objects })
    }
}

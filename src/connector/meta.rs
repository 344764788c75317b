//! What connectors record about objects and claims for inspection:
//! [`ObjectMeta`] and [`ClaimInfo`], and this process's identity (its id
//! and host name) that every claim it takes is recorded with.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::connector::Value;
use crate::state::{ClaimKind, State};

/// What a store records about one object when it is stored.
///
/// ```
/// use borrowstore::connector::{LocalValue, ObjectMeta, Value};
/// use std::sync::Arc;
/// let v = Value::Local(LocalValue::new(Arc::new(7u64)));
/// let m = ObjectMeta::of_value(&v, Some("seven"));
/// assert_eq!(m.type_name.as_deref(), Some("u64"));
/// assert_eq!((m.size, m.label.as_deref()), (Some(8), Some("seven")));
/// assert!(m.created_ms.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The value's type name, as the codec records it.
    pub type_name: Option<String>,
    /// The encoded size in bytes, or the in-memory size (of the value
    /// itself, not what it points to) of a value never encoded.
    pub size: Option<u64>,
    /// When the object was stored, ms since the Unix epoch.
    pub created_ms: Option<u64>,
    /// The name it was given when it was stored, if any.
    pub label: Option<String>,
}

impl ObjectMeta {
    /// The record of `value`, stored now, named `label`.
    pub fn of_value(value: &Value, label: Option<&str>) -> ObjectMeta {
        match value {
            Value::Local(l) => ObjectMeta {
                type_name: Some(l.type_name().to_owned()),
                size: Some(l.size() as u64),
                created_ms: Some(crate::connector::lease::now_ms()),
                label: label.map(str::to_owned),
            },
            Value::Bytes(b) => ObjectMeta::of_bytes(b, label),
        }
    }

    /// The record of an encoded value (its type name from the codec's
    /// header), stored now, named `label`.
    ///
    /// ```
    /// use borrowstore::connector::ObjectMeta;
    /// let bytes = borrowstore::codec::encode(&String::from("hi")).unwrap();
    /// let m = ObjectMeta::of_bytes(&bytes, None);
    /// assert_eq!(m.type_name.as_deref(), Some("alloc::string::String"));
    /// assert_eq!(m.size, Some(bytes.len() as u64));
    /// ```
    pub fn of_bytes(bytes: &[u8], label: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            type_name: codec::header(bytes).ok().map(|h| h.type_name().to_owned()),
            size: Some(bytes.len() as u64),
            created_ms: Some(crate::connector::lease::now_ms()),
            label: label.map(str::to_owned),
        }
    }
}

/// What a claim is, as inspection shows it: its [`ClaimKind`], or a ticket
/// in flight (a claim that left its handle and was not redeemed yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimRole {
    /// The owner handle.
    Owner,
    /// A scope or a lifetime.
    Holder,
    /// A shared borrow.
    Reader,
    /// The mutable borrow.
    Writer,
    /// A ticket in flight.
    Ticket,
}

impl From<ClaimKind> for ClaimRole {
    fn from(k: ClaimKind) -> Self {
        match k {
            ClaimKind::Owner => ClaimRole::Owner,
            ClaimKind::Holder => ClaimRole::Holder,
            ClaimKind::Reader => ClaimRole::Reader,
            ClaimKind::Writer => ClaimRole::Writer,
        }
    }
}

impl ClaimRole {
    /// Its name: `owner`, `holder`, `reader`, `writer`, `ticket`.
    ///
    /// ```
    /// assert_eq!(borrowstore::connector::ClaimRole::Ticket.name(), "ticket");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ClaimRole::Owner => "owner",
            ClaimRole::Holder => "holder",
            ClaimRole::Reader => "reader",
            ClaimRole::Writer => "writer",
            ClaimRole::Ticket => "ticket",
        }
    }
}

impl fmt::Display for ClaimRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One claim on an object, as its store recorded it.
///
/// ```
/// use borrowstore::{OwnedProxy, Store, borrow};
/// use borrowstore::connector::ClaimRole;
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-claim-info");
/// let owner = store.owned_proxy(1u8)?;
/// let r = borrow(&owner)?;
/// let info = store.inspect(OwnedProxy::key(&owner))?.expect("stored");
/// let reader = info.claims.iter().find(|c| c.kind == ClaimRole::Reader).expect("a reader");
/// assert_eq!(reader.pid, std::process::id());
/// assert!(reader.label.as_deref().is_some_and(|l| l.starts_with(file!())));
/// # drop(r);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ClaimInfo {
    /// What the claim is.
    pub kind: ClaimRole,
    /// The process id of its holder (of the process that issued a ticket).
    pub pid: u32,
    /// The host name of its holder.
    pub host: String,
    /// Its label: a name given to it, or the call site that took it.
    pub label: Option<String>,
    /// When it was taken, ms since the Unix epoch.
    pub since_ms: u64,
    /// When its lease runs out unless it is renewed, ms since the Unix
    /// epoch; `None` for a claim without a lease.
    pub lease_expires_ms: Option<u64>,
}

impl ClaimInfo {
    /// A claim of this process.
    pub fn here(kind: ClaimRole, label: Option<String>, since_ms: u64) -> ClaimInfo {
        let (pid, host) = this_process();
        ClaimInfo {
            kind,
            pid,
            host: host.to_owned(),
            label,
            since_ms,
            lease_expires_ms: None,
        }
    }

    /// A claim with every field given.
    pub fn new(
        kind: ClaimRole,
        pid: u32,
        host: String,
        label: Option<String>,
        since_ms: u64,
        lease_expires_ms: Option<u64>,
    ) -> ClaimInfo {
        ClaimInfo {
            kind,
            pid,
            host,
            label,
            since_ms,
            lease_expires_ms,
        }
    }
}

/// This process's id and host name, as claims record them.
///
/// ```
/// let (pid, host) = borrowstore::connector::this_process();
/// assert_eq!(pid, std::process::id());
/// assert!(!host.is_empty());
/// ```
pub fn this_process() -> (u32, &'static str) {
    static HOST: OnceLock<String> = OnceLock::new();
    let host = HOST.get_or_init(|| {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "localhost".to_owned())
    });
    (std::process::id(), host)
}

/// What a connector reports of one object's state; users see it as an
/// [`ObjectInfo`](crate::ObjectInfo), through [`Store::inspect`](crate::Store::inspect).
///
/// The state and version are what the store's rules need; the object's
/// record and its claims are what a connector recorded of them (a
/// connector that records nothing leaves them empty: [`Inspect::new`]).
///
/// ```
/// use borrowstore::connector::Inspect;
/// use borrowstore::state::{Init, State};
/// let i = Inspect::new(State::new(Init::Plain), 1);
/// assert!(i.claims.is_empty() && i.object.type_name.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspect {
    /// The borrow state.
    pub state: State,
    /// The value's version.
    pub version: u64,
    /// What was recorded of the object when it was stored.
    pub object: ObjectMeta,
    /// Every claim held on it (and every ticket in flight), as recorded.
    pub claims: Vec<ClaimInfo>,
}

impl Inspect {
    /// The report of an object in `state` at `version`, with no records.
    pub fn new(state: State, version: u64) -> Inspect {
        Inspect {
            state,
            version,
            object: ObjectMeta::default(),
            claims: Vec::new(),
        }
    }
}

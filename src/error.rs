//! The crate's error type, and [`Borrows`], what it reports of the borrows
//! that held an object when an operation on it was refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::key::Key;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in borrowstore.
///
/// Bad input is always reported through this type, never by a panic, and an
/// operation that fails leaves the store as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No object is stored under this key (never stored, evicted, or consumed
    /// by an ephemeral resolve).
    #[error("no object under key {key} in store {store:?}")]
    KeyNotFound {
        /// The key that was looked up.
        key: Key,
        /// The name of the store.
        store: String,
    },
    /// A mutable borrow, an `update` or an explicit eviction was refused
    /// because the object is borrowed: "cannot mut_borrow object …: 3
    /// readers hold it".
    ///
    /// Match it with `{ key, .. }`: fields may be added.
    #[error("cannot {op} object {key}: {borrows}")]
    #[non_exhaustive]
    AlreadyBorrowed {
        /// The borrowed object.
        key: Key,
        /// The operation that was refused: `"mut_borrow"`, `"update"` or
        /// `"evict"` (also the eviction of an ephemeral proxy's resolve).
        op: &'static str,
        /// The borrows that held the object when the store refused: a
        /// snapshot, which may have changed since.
        borrows: Borrows,
    },
    /// A waiting borrow ([`borrow_timeout`](crate::borrow_timeout),
    /// [`mut_borrow_timeout`](crate::mut_borrow_timeout)) did not get the
    /// object within its timeout. Nothing was claimed.
    ///
    /// Match it with `{ key, .. }`: fields may be added.
    #[error("object {key} was still borrowed after waiting {waited:?}")]
    #[non_exhaustive]
    Timeout {
        /// The object.
        key: Key,
        /// How long the call waited.
        waited: std::time::Duration,
    },
    /// A shared borrow was refused because the object is mutably borrowed:
    /// "cannot borrow object …: a writer holds it".
    ///
    /// Match it with `{ key, .. }`: fields may be added.
    #[error("cannot {op} object {key}: {borrows}")]
    #[non_exhaustive]
    AlreadyMutablyBorrowed {
        /// The mutably borrowed object.
        key: Key,
        /// The operation that was refused: `"borrow"`.
        op: &'static str,
        /// The borrows that held the object when the store refused (its
        /// writer): a snapshot, which may have changed since.
        borrows: Borrows,
    },
    /// `into_owned` was refused because the object already has an owner proxy.
    #[error("object {key} already has an owner")]
    AlreadyOwned {
        /// The owned object.
        key: Key,
    },
    /// The ticket was already redeemed, cancelled or expired, or was never
    /// issued by this store.
    #[error("ticket {ticket} was already redeemed, cancelled or expired")]
    TicketRedeemed {
        /// The ticket id, in hex.
        ticket: String,
    },
    /// The stored value has another type than the one asked for.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// The type asked for.
        expected: &'static str,
        /// What is stored: the type name recorded with the value, ticket or
        /// proxy (cut to [`codec::MAX_TYPE_NAME`](crate::codec::MAX_TYPE_NAME)
        /// bytes, marked `…`), or a type fingerprint where no name goes with
        /// it (damaged bytes, or a form that records none).
        found: String,
    },
    /// Stored bytes could not be decoded (damaged, truncated or of another format).
    #[error("cannot decode stored bytes: {reason}")]
    Decode {
        /// What was wrong.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode value: {reason}")]
    Encode {
        /// What was wrong.
        reason: String,
    },
    /// The encoded value is larger than the store accepts.
    #[error("value of {size} bytes exceeds the store's limit of {limit} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A key was malformed.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The offending text.
        key: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// A store URL was malformed or names an unsupported scheme.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The offending URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Proxy or ticket bytes could not be read.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read ("proxy", "ticket", …).
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// An owner's local changes were not published because the object
    /// changed (a mutable borrow published) after the owner copied it;
    /// publishing would lose that change. The local changes are kept:
    /// inspect them, then discard them or apply them again after
    /// `OwnedProxy::refresh`.
    #[error(
        "object {key} changed since this owner copied it; its local changes were not published"
    )]
    Conflict {
        /// The object.
        key: Key,
    },
    /// The borrow or ownership this handle held was reclaimed store-side
    /// (its lease expired or its task ended), so its value can no longer be
    /// trusted.
    #[error("the claim on object {key} is no longer held")]
    ClaimLost {
        /// The object.
        key: Key,
    },
    /// [`LivenessScope::preserve`](crate::LivenessScope::preserve) was
    /// called on a scope that is not the innermost scope open on this
    /// thread: only the innermost scope may hand an object outwards.
    #[error("preserve: this scope is not the innermost liveness scope open on this thread")]
    NotInnermostScope,
    /// No longer returned. [`LivenessScope::preserve`](crate::LivenessScope::preserve)
    /// used to refuse with it in the outermost open scope; it now hands the
    /// object on as an object without an owner there. The variant stays so
    /// that code naming it still compiles; it goes with the next breaking
    /// release.
    #[deprecated(
        note = "never returned: `preserve` in the outermost scope hands the object on as an object without an owner"
    )]
    #[error("preserve: no enclosing liveness scope is open to hand object {key} to")]
    NoEnclosingScope {
        /// The object.
        key: Key,
    },
    /// The lifetime has ended (closed, or its lease expired): nothing can
    /// be added to it. Nothing was added or written.
    #[error("the lifetime has ended")]
    LifetimeEnded,
    /// A task started by `submit` or `submit_blocking` panicked. Its borrows
    /// were ended store-side before this was reported.
    #[error("the submitted task panicked: {message}")]
    TaskPanicked {
        /// The panic message (or a placeholder when the payload is not text).
        message: String,
    },
    /// A task started by `submit` or `submit_blocking` was cancelled before
    /// it finished: aborted, dropped by its executor (a runtime shutting
    /// down), or never started (the executor refused it). Its borrows were
    /// ended store-side before this was reported.
    #[error("the submitted task was cancelled: {reason}")]
    TaskCancelled {
        /// Why, as far as the executor tells.
        reason: String,
    },
    /// Proxy or ticket bytes named a store this process does not trust: it
    /// is not registered here under that name and URL, and no pattern of
    /// [`trust::allow`](crate::trust::allow) admits the URL. Nothing was
    /// opened, created or connected.
    #[error("{}", untrusted_message(url))]
    Untrusted {
        /// The store's URL, as the bytes named it (at most 200 characters).
        url: String,
    },
    /// Proxy or ticket bytes named a `memory://` store of another process:
    /// memory stores live in one process, and no other process can reach
    /// their objects.
    #[error(
        "{url} is local to process {pid}; use file:// or redis:// to share objects between processes"
    )]
    LocalStore {
        /// The memory store's URL.
        url: String,
        /// The id of the process the store lives in.
        pid: u32,
    },
    /// Proxy or ticket bytes named a trusted store that is not open yet, and
    /// this process already has as many stores open for arriving bytes as
    /// [`trust::max_stores`](crate::trust::max_stores) allows. Nothing was
    /// opened; the stores that are open keep working.
    #[error(
        "cannot open store {url}: {limit} stores are already open for proxies and tickets that \
         arrived (the limit); drop some of their handles, or raise the limit with \
         borrowstore::trust::set_max_stores"
    )]
    TooManyStores {
        /// The store's URL, as the bytes named it (at most 200 characters).
        url: String,
        /// The limit.
        limit: usize,
    },
    /// [`StoreBuilder::build`](crate::StoreBuilder::build) was asked to
    /// register a store under a name that a store with another URL or other
    /// settings holds. The registered store is left as it was.
    #[error(
        "the store name {name:?} is taken by {url} with other settings; choose another name, \
         or replace it with StoreBuilder::replace(true)"
    )]
    NameTaken {
        /// The name.
        name: String,
        /// The URL of the store registered under it.
        url: String,
    },
    /// The store's backend failed or could not be reached.
    #[error("store {store:?} failed: {source}")]
    Connector {
        /// The name of the store.
        store: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// The variant's name in snake case (`already_borrowed`, `key_not_found`,
    /// …): the `outcome` of a failed operation's span, and a metrics label.
    ///
    /// ```
    /// use borrowstore::{Error, Key};
    /// let e = Error::KeyNotFound { key: Key::from_u128(1), store: "s".into() };
    /// assert_eq!(e.kind_name(), "key_not_found");
    /// ```
    #[allow(deprecated)]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::KeyNotFound { .. } => "key_not_found",
            Error::AlreadyBorrowed { .. } => "already_borrowed",
            Error::Timeout { .. } => "timeout",
            Error::AlreadyMutablyBorrowed { .. } => "already_mutably_borrowed",
            Error::AlreadyOwned { .. } => "already_owned",
            Error::TicketRedeemed { .. } => "ticket_redeemed",
            Error::TypeMismatch { .. } => "type_mismatch",
            Error::Decode { .. } => "decode",
            Error::Encode { .. } => "encode",
            Error::TooLarge { .. } => "too_large",
            Error::InvalidKey { .. } => "invalid_key",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::Malformed { .. } => "malformed",
            Error::Conflict { .. } => "conflict",
            Error::ClaimLost { .. } => "claim_lost",
            Error::NotInnermostScope => "not_innermost_scope",
            Error::NoEnclosingScope { .. } => "no_enclosing_scope",
            Error::LifetimeEnded => "lifetime_ended",
            Error::TaskPanicked { .. } => "task_panicked",
            Error::TaskCancelled { .. } => "task_cancelled",
            Error::Untrusted { .. } => "untrusted",
            Error::LocalStore { .. } => "local_store",
            Error::TooManyStores { .. } => "too_many_stores",
            Error::NameTaken { .. } => "name_taken",
            Error::Connector { .. } => "connector",
        }
    }

    /// Whether this error from a publish means the writer's borrow is gone
    /// store-side ([`Error::ClaimLost`], [`Error::KeyNotFound`]): trying
    /// again cannot help.
    pub(crate) fn means_borrow_gone(&self) -> bool {
        matches!(self, Error::ClaimLost { .. } | Error::KeyNotFound { .. })
    }

    /// This error, reporting `op` as the refused operation if it is a
    /// refused borrow ([`Error::AlreadyBorrowed`],
    /// [`Error::AlreadyMutablyBorrowed`]): for operations that borrow on the
    /// caller's behalf (`update` takes a transient mutable borrow).
    pub(crate) fn refused_as(self, op: &'static str) -> Self {
        match self {
            Error::AlreadyBorrowed { key, borrows, .. } => {
                Error::AlreadyBorrowed { key, op, borrows }
            }
            Error::AlreadyMutablyBorrowed { key, borrows, .. } => {
                Error::AlreadyMutablyBorrowed { key, op, borrows }
            }
            other => other,
        }
    }

    pub(crate) fn decode(reason: impl std::fmt::Display) -> Self {
        Error::Decode {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn encode(reason: impl std::fmt::Display) -> Self {
        Error::Encode {
            reason: reason.to_string(),
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what,
            reason: reason.to_string(),
        }
    }
}

/// The borrows that held an object when an operation on it was refused, as
/// [`Error::AlreadyBorrowed`] and [`Error::AlreadyMutablyBorrowed`] report
/// them.
///
/// A snapshot: the counts the store saw at the moment it refused, in the
/// same atomic step. By the time the error is read they may have changed
/// (a reader let go, another arrived), so they explain the refusal; they
/// do not predict whether a retry succeeds.
///
/// Its `Display` is the end of the error message: "1 reader holds it",
/// "3 readers hold it", "a writer holds it".
///
/// ```
/// use borrowstore::{Borrows, Error, OwnedProxy, Store, borrow, mut_borrow};
/// # fn main() -> Result<(), Error> {
/// let store = Store::memory("doc-borrows");
/// let owner = store.owned_proxy(vec![1u64, 2])?;
/// let readers = (borrow(&owner)?, borrow(&owner)?, borrow(&owner)?);
/// match mut_borrow(&owner) {
///     Err(e @ Error::AlreadyBorrowed { .. }) => {
///         let key = OwnedProxy::key(&owner);
///         assert_eq!(e.to_string(), format!("cannot mut_borrow object {key}: 3 readers hold it"));
///         if let Error::AlreadyBorrowed { op, borrows, .. } = e {
///             assert_eq!(op, "mut_borrow");
///             assert_eq!(borrows, Borrows { readers: 3, writer: false });
///         }
///     }
///     other => panic!("{other:?}"),
/// }
/// # drop(readers);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Borrows {
    /// How many shared borrows ([`RefProxy`](crate::RefProxy)s, and borrow
    /// tickets in flight) held the object.
    pub readers: u32,
    /// Whether its mutable borrow ([`RefMutProxy`](crate::RefMutProxy)) held it.
    pub writer: bool,
}

impl fmt::Display for Borrows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.readers, self.writer) {
            (0, false) => f.write_str("no borrow holds it"),
            (0, true) => f.write_str("a writer holds it"),
            (1, false) => f.write_str("1 reader holds it"),
            (n, false) => write!(f, "{n} readers hold it"),
            (1, true) => f.write_str("a writer and 1 reader hold it"),
            (n, true) => write!(f, "a writer and {n} readers hold it"),
        }
    }
}

/// A URL for a message: a password in it (`user:password@`) is shown as `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

fn untrusted_message(url: &str) -> String {
    let url = redact(url);
    if url.starts_with("memory://") {
        return format!(
            "store {url} is not registered in this process: proxies and tickets of a memory store \
             reach only the store registered under their name (Store::memory)"
        );
    }
    format!(
        "store {url} is not trusted by this process: proxies and tickets may connect only to \
         stores registered here and to URLs allowed explicitly; to allow it: \
         borrowstore::trust::allow(\"{url}\")"
    )
}

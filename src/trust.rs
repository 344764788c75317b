//! Which stores proxy and ticket bytes may connect this process to.
//!
//! A [`Proxy`](crate::Proxy), an [`OwnerTicket`](crate::OwnerTicket), a
//! [`BorrowTicket`](crate::BorrowTicket) or a task's arguments
//! ([`submit::remote`](crate::submit::remote)) travel as bytes that name
//! their store ([`StoreConfig`](crate::StoreConfig): a name and a URL).
//! When such bytes are read ([`Store::from_config`](crate::Store::from_config)),
//! **this process** decides whether they may connect to that store:
//!
//! 1. a store registered in this process under that name, with that URL
//!    ([`Store::open`](crate::Store::open), [`Store::memory`](crate::Store::memory),
//!    a [`StoreBuilder`](crate::StoreBuilder)) is always used;
//! 2. any other store is opened only if its URL matches a pattern given to
//!    [`allow`]; and only while fewer than [`max_stores`] stores are open
//!    for arriving bytes;
//! 3. anything else fails with [`Error::Untrusted`], before anything is
//!    opened, created or connected.
//!
//! By default nothing is allowed: bytes reach only the stores this process
//! opened itself. A process that takes proxies or tickets of a store it does
//! not open itself says so, in one line:
//!
//! ```
//! # fn main() -> Result<(), borrowstore::Error> {
//! borrowstore::trust::allow("file:///srv/work/*")?;
//! borrowstore::trust::allow("redis://cache.internal:6379/*")?;
//! assert!(borrowstore::trust::is_allowed("file:///srv/work/jobs"));
//! assert!(!borrowstore::trust::is_allowed("file:///srv/workshop"));
//! assert!(!borrowstore::trust::is_allowed("redis://cache.internal:6379/0?lease_ms=1"));
//! # borrowstore::trust::disallow("file:///srv/work/*");
//! # borrowstore::trust::disallow("redis://cache.internal:6379/*");
//! # Ok(()) }
//! ```
//!
//! # Patterns
//!
//! A pattern is an exact URL, or a prefix followed by one `*` at its end:
//!
//! | pattern | allows | does not allow |
//! |---|---|---|
//! | `file:///srv/work` | `file:///srv/work` | `file:///srv/work/a`, `file:///srv/work?lease_ms=500` |
//! | `file:///srv/work/*` | `file:///srv/work/a`, `file:///srv/work/a/b` | `file:///srv/work`, `file:///srv/work/a?lease_ms=1` |
//! | `file:///srv/work*` | `file:///srv/work`, `file:///srv/work/a` | `file:///srv/workshop` |
//! | `file:///srv/work/a?*` | `file:///srv/work/a`, `file:///srv/work/a?lease_ms=500` | `file:///srv/work/b` |
//! | `redis://cache.internal:6379/*` | `redis://cache.internal:6379/0` | `redis://cache.internal:63790/0`, `redis://cache.internal:6379/0?ns=x` |
//!
//! Two rules make a prefix mean what it looks like:
//!
//! - **A `*` never ends inside a name.** Unless the prefix ends with `/`,
//!   `?` or `&`, what the `*` stands for must be empty or begin with `/` or
//!   `?`: `file:///srv/work*` is the directory `work` and what is below it,
//!   never `workshop`; `redis://cache.internal*` never reaches
//!   `cache.internal.example.com`, nor port `63790` from `…:6379*`.
//! - **A `*` chooses places, not settings.** It never stands for a `?`:
//!   query parameters (`lease_ms`, `timeout_ms`, `ns`) set how a store
//!   behaves, so a sender can choose them only where the pattern has the
//!   `?` itself (`file:///srv/work/a?*`: that directory, with any settings
//!   or none), or where the exact URL is allowed. (A `memory://` URL has no
//!   settings: a `?` in it is part of the store's name.)
//!
//! URLs are compared as written: `redis://user:pw@host:6379/0` is not
//! matched by `redis://host:6379/*`, and the error for a refused URL names
//! the exact pattern that would allow it. `..` never appears in a `file://`
//! URL that opens (the parser refuses it); symbolic links below an allowed
//! directory are followed.
//!
//! `memory://` URLs can be allowed too (`allow("memory://*")`): bytes made in
//! this process then reopen a memory store that is no longer registered as a
//! new, empty store. Bytes of another process's memory store always fail
//! with [`Error::LocalStore`], whatever is allowed.
//!
//! # What stores opened for bytes hold, and the bound
//!
//! A store opened because bytes arrived is shared by every later proxy or
//! ticket that names it, and closed as soon as no handle uses it. At most
//! [`max_stores`] of them are open at once ([`DEFAULT_MAX_STORES`] unless
//! [`set_max_stores`] says otherwise); past the bound, bytes naming one more
//! fail with [`Error::TooManyStores`], and every store already open —
//! and every store the process opened itself — keeps working. What one such
//! store holds while it is open:
//!
//! | store | threads | files and connections |
//! |---|---|---|
//! | `file://` | 1 (lease renewer) | the directory's lock files, opened as objects use them: at most 256 per directory, shared by every store of that directory in the process; 1–2 more during an operation |
//! | `redis://` | 2 (I/O, lease renewer) | 1 connection, made on first use |
//! | `memory://` | none | none |
//!
//! A `file://` store named by bytes must already exist and be a borrowstore
//! directory (it has the `borrowstore.dir` marker that
//! [`Store::open`](crate::Store::open) writes): bytes never create a
//! directory or a file outside one.
//!
//! [`Error::Untrusted`]: crate::Error::Untrusted
//! [`Error::LocalStore`]: crate::Error::LocalStore
//! [`Error::TooManyStores`]: crate::Error::TooManyStores

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use crate::error::{Error, Result};

/// How many stores may be open at once for arriving bytes, unless
/// [`set_max_stores`] says otherwise.
pub const DEFAULT_MAX_STORES: usize = 16;

static PATTERNS: RwLock<Vec<String>> = RwLock::new(Vec::new());
static MAX_STORES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_STORES);
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// Lets proxy and ticket bytes connect this process to the stores whose URL
/// matches `pattern` (see [Patterns](self#patterns)). Allowing a pattern
/// twice is allowing it once.
///
/// [`Error::InvalidUrl`] if `pattern` is not a URL with a scheme, or has a
/// `*` anywhere but at its end.
///
/// ```
/// # fn main() -> Result<(), borrowstore::Error> {
/// borrowstore::trust::allow("file:///srv/shared/*")?;
/// assert!(borrowstore::trust::is_allowed("file:///srv/shared/jobs"));
/// assert!(borrowstore::trust::allow("file:///srv/*/jobs").is_err());
/// # borrowstore::trust::disallow("file:///srv/shared/*");
/// # Ok(()) }
/// ```
pub fn allow(pattern: &str) -> Result<()> {
    check_pattern(pattern)?;
    let mut patterns = PATTERNS.write().unwrap_or_else(PoisonError::into_inner);
    if !patterns.iter().any(|p| p == pattern) {
        patterns.push(pattern.to_owned());
    }
    Ok(())
}

/// Withdraws a pattern given to [`allow`] (exactly as it was given);
/// returns whether it was allowed. Stores already open stay open for the
/// handles that use them; later bytes are judged without the pattern.
///
/// ```
/// # fn main() -> Result<(), borrowstore::Error> {
/// borrowstore::trust::allow("file:///srv/once/*")?;
/// assert!(borrowstore::trust::disallow("file:///srv/once/*"));
/// assert!(!borrowstore::trust::is_allowed("file:///srv/once/x"));
/// # Ok(()) }
/// ```
pub fn disallow(pattern: &str) -> bool {
    let mut patterns = PATTERNS.write().unwrap_or_else(PoisonError::into_inner);
    let before = patterns.len();
    patterns.retain(|p| p != pattern);
    patterns.len() != before
}

/// Withdraws every pattern: back to the default, where bytes reach only the
/// stores registered in this process. (The bound set by
/// [`set_max_stores`] stays.)
///
/// ```standalone_crate
/// # fn main() -> Result<(), borrowstore::Error> {
/// borrowstore::trust::allow("file:///srv/a/*")?;
/// borrowstore::trust::allow("redis://cache:6379/*")?;
/// borrowstore::trust::clear();
/// assert!(borrowstore::trust::allowed().is_empty());
/// assert!(!borrowstore::trust::is_allowed("file:///srv/a/jobs"));
/// # Ok(()) }
/// ```
pub fn clear() {
    PATTERNS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

/// The patterns allowed now, in the order they were allowed.
///
/// ```standalone_crate
/// # fn main() -> Result<(), borrowstore::Error> {
/// borrowstore::trust::allow("file:///srv/first/*")?;
/// borrowstore::trust::allow("file:///srv/second")?;
/// borrowstore::trust::allow("file:///srv/first/*")?;      // once is enough
/// assert_eq!(borrowstore::trust::allowed(), ["file:///srv/first/*", "file:///srv/second"]);
/// # Ok(()) }
/// ```
pub fn allowed() -> Vec<String> {
    PATTERNS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Whether a pattern allowed now matches `url`. (Stores registered in this
/// process are trusted whatever this says.)
///
/// ```
/// # fn main() -> Result<(), borrowstore::Error> {
/// use borrowstore::trust;
/// trust::allow("file:///srv/doc-is-allowed/*")?;
/// assert!(trust::is_allowed("file:///srv/doc-is-allowed/jobs"));
/// assert!(!trust::is_allowed("file:///srv/doc-is-allowed/jobs?lease_ms=1")); // settings need a `?*`
/// assert!(!trust::is_allowed("file:///srv/doc-is-allowed-not/jobs"));
/// # trust::disallow("file:///srv/doc-is-allowed/*");
/// # Ok(()) }
/// ```
pub fn is_allowed(url: &str) -> bool {
    PATTERNS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|p| matches(p, url))
}

/// Sets how many stores may be open at once for arriving bytes (default
/// [`DEFAULT_MAX_STORES`]). Lowering it closes nothing: it refuses new
/// stores until fewer are open. `0` refuses every store that is not
/// registered.
///
/// ```
/// borrowstore::trust::set_max_stores(4);
/// assert_eq!(borrowstore::trust::max_stores(), 4);
/// # borrowstore::trust::set_max_stores(borrowstore::trust::DEFAULT_MAX_STORES);
/// ```
pub fn set_max_stores(limit: usize) {
    MAX_STORES.store(limit, Ordering::SeqCst);
}

/// How many stores may be open at once for arriving bytes.
///
/// ```standalone_crate
/// use borrowstore::trust;
/// assert_eq!(trust::max_stores(), trust::DEFAULT_MAX_STORES);
/// trust::set_max_stores(2);
/// assert_eq!(trust::max_stores(), 2);
/// ```
pub fn max_stores() -> usize {
    MAX_STORES.load(Ordering::SeqCst)
}

/// How many stores are open now because bytes arrived (registered stores
/// are not counted).
///
/// ```standalone_crate
/// use borrowstore::{Proxy, Store, trust};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-open-stores");
/// let bytes = Proxy::to_bytes(&store.proxy(1u8)?)?;
/// let p = Proxy::<u8>::from_bytes(&bytes)?;              // its store is registered here
/// assert_eq!(*p, 1);
/// assert_eq!(trust::open_stores(), 0);                   // so nothing was opened for it
/// # Ok(()) }
/// ```
pub fn open_stores() -> usize {
    OPEN.load(Ordering::SeqCst)
}

/// One store opened for arriving bytes: counted in [`open_stores`] until
/// it is dropped (with the store).
#[derive(Debug)]
pub(crate) struct Slot(());

impl Slot {
    /// A slot, if fewer than [`max_stores`] are taken.
    pub(crate) fn take() -> Option<Slot> {
        OPEN.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < max_stores()).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

fn check_pattern(pattern: &str) -> Result<()> {
    let bad = |reason: &str| Error::InvalidUrl {
        url: pattern.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    let scheme = pattern.split_once("://").map(|(s, _)| s).ok_or_else(|| {
        bad("a trust pattern is a URL or a URL prefix ending in *, with a scheme: file:///dir/*")
    })?;
    if scheme.is_empty() || scheme.contains('*') {
        return Err(bad(
            "a trust pattern needs a scheme, without *: file:///dir/*",
        ));
    }
    if pattern.trim_end_matches('*').contains('*') || pattern.ends_with("**") {
        return Err(bad("a trust pattern may have one *, at its end"));
    }
    if pattern.chars().any(char::is_control) {
        return Err(bad("a trust pattern may not contain control characters"));
    }
    Ok(())
}

/// Whether `pattern` (checked by [`check_pattern`]) matches `url`.
fn matches(pattern: &str, url: &str) -> bool {
    let Some(prefix) = pattern.strip_suffix('*') else {
        return pattern == url;
    };
    // `…?*`: these settings or none.
    if prefix.strip_suffix('?') == Some(url) {
        return true;
    }
    let Some(rest) = url.strip_prefix(prefix) else {
        return false;
    };
    let at_boundary =
        prefix.ends_with(['/', '?', '&']) || rest.is_empty() || rest.starts_with(['/', '?']);
    // (A memory URL has no settings: a `?` in it is part of the name.)
    let settings_allowed =
        prefix.contains('?') || !rest.contains('?') || url.starts_with("memory://");
    at_boundary && settings_allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_patterns_match_only_themselves() {
        assert!(matches("file:///srv/work", "file:///srv/work"));
        assert!(!matches("file:///srv/work", "file:///srv/work/a"));
        assert!(!matches("file:///srv/work", "file:///srv/work?lease_ms=5"));
        assert!(!matches("file:///srv/work", "file:///srv/wor"));
    }

    #[test]
    fn a_prefix_never_ends_inside_a_name() {
        let p = "file:///srv/work*";
        assert!(matches(p, "file:///srv/work"));
        assert!(matches(p, "file:///srv/work/a"));
        assert!(!matches(p, "file:///srv/workshop"));
        assert!(!matches("redis://cache:6379*", "redis://cache:63790/0"));
        assert!(matches("redis://cache:6379*", "redis://cache:6379/0"));
        assert!(!matches(
            "redis://cache*",
            "redis://cache.example.com:6379/0"
        ));
        assert!(!matches("redis://cache*", "redis://cache@evil:6379/0"));
        let d = "file:///srv/work/*";
        assert!(matches(d, "file:///srv/work/a"));
        assert!(matches(d, "file:///srv/work/a/b"));
        assert!(!matches(d, "file:///srv/work"));
        assert!(!matches(d, "file:///srv/worker/a"));
    }

    #[test]
    fn a_prefix_chooses_places_not_settings() {
        let d = "file:///srv/work/*";
        assert!(!matches(d, "file:///srv/work/a?lease_ms=1"));
        assert!(!matches("redis://h:6379/*", "redis://h:6379/0?ns=x"));
        let q = "file:///srv/work/a?*";
        assert!(matches(q, "file:///srv/work/a?lease_ms=1"));
        assert!(matches(q, "file:///srv/work/a?"));
        assert!(matches(q, "file:///srv/work/a"));
        assert!(!matches(q, "file:///srv/work/ab?lease_ms=1"));
        assert!(!matches(
            "file:///srv/work/a*",
            "file:///srv/work/a?lease_ms=1"
        ));
        assert!(matches(
            "redis://h:6379/0?ns=a&*",
            "redis://h:6379/0?ns=a&lease_ms=9"
        ));
        // Memory URLs have no settings: `?` is part of the name.
        assert!(matches("memory://*", "memory://a?b"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "*",
            "file",
            "://x",
            "*://x",
            "file:///a/*/b",
            "file:///a**",
            "file:///a\n*",
        ] {
            assert!(
                matches!(check_pattern(bad), Err(Error::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
        for good in [
            "file:///a",
            "file:///a/*",
            "redis://h:1/*",
            "memory://*",
            "file://*",
        ] {
            check_pattern(good).unwrap();
        }
    }
}

//! Harness code shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds untrusted bytes to borrowstore and checks that the
//! result is a value or an error of a documented variant. Deserializing a
//! proxy or a ticket opens the store its config names, so the harness
//!
//! - refuses inputs whose store URL could reach outside this process's
//!   sandbox: only `memory://…`, `file://` URLs under [`sandbox`], and URLs
//!   whose scheme no connector could ever have, are let through (no file
//!   store outside the sandbox, no network connector, whatever borrowstore
//!   adds later);
//! - lets bytes connect to what the harness lets through, and nothing else:
//!   memory stores of this process and file stores under [`sandbox`]
//!   ([`trust_the_sandbox`]; borrowstore refuses every other store that is
//!   not registered, with `Error::Untrusted`);
//! - forgets the stores an input registered, and removes the directories of
//!   the file stores it created, so memory and disk use stay flat over
//!   millions of runs.
//!
//! Invariant violations panic (libFuzzer reports them as crashes) unless
//! listed in `BORROWSTORE_FUZZ_TOLERATE` (comma-separated names, see
//! [`violation`]), for running a target past a known, reported bug.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use borrowstore::{Error, Store, StoreConfig};
use serde::{Deserialize, Serialize};

/// The directory under which fuzz inputs may name file stores.
pub fn sandbox() -> PathBuf {
    std::env::temp_dir().join("borrowstore-fuzz-sandbox")
}

/// Lets proxy and ticket bytes reach memory stores of this process and
/// file stores under [`sandbox`] (once per process).
pub fn trust_the_sandbox() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        borrowstore::trust::allow("memory://*").expect("a valid pattern");
        borrowstore::trust::allow(&format!("file://{}/*", sandbox().display()))
            .expect("a valid pattern");
    });
}

/// The store config a proxy's or ticket's wire form begins with, if the
/// bytes begin with one.
pub fn leading_config(data: &[u8]) -> Option<StoreConfig> {
    postcard::take_from_bytes::<StoreConfig>(data)
        .ok()
        .map(|(c, _)| c)
}

/// Whether opening a store from `url` stays inside this process and the
/// sandbox.
pub fn url_is_safe(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return true; // not a URL: refused by the parser
    };
    let could_be_a_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    match scheme {
        "memory" => true,
        "file" => {
            let path = rest.split('?').next().unwrap_or_default();
            let root = sandbox();
            path.strip_prefix(root.to_str().unwrap_or("\0"))
                .is_some_and(|sub| sub.starts_with('/'))
                && !path.split('/').any(|part| part == "..")
        }
        _ => !could_be_a_scheme,
    }
}

/// Whether `data` may be handed to borrowstore as a proxy or a ticket.
pub fn input_is_safe(data: &[u8]) -> bool {
    leading_config(data).is_none_or(|c| url_is_safe(&c.url))
}

/// Runs `f` on input `data`, then unregisters the store that `data`'s
/// config names if `f` registered it, and removes the directory of a file
/// store it created. Stores named in `keep` are left alone.
pub fn forgetting_stores<R>(data: &[u8], keep: &[&str], f: impl FnOnce() -> R) -> R {
    let config = leading_config(data).filter(|c| !keep.contains(&c.name.as_str()));
    let Some(config) = config else {
        return f();
    };
    let was_registered = Store::registered(&config.name).is_some();
    let dir = file_store_dir(&config.url).filter(|d| !d.exists());
    let r = f();
    if !was_registered {
        drop(Store::unregister(&config.name));
    }
    if let Some(dir) = dir {
        remove_created(&dir);
    }
    r
}

fn file_store_dir(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("file://")?.split('?').next()?;
    Some(PathBuf::from(path))
}

/// Removes `dir`, and the empty directories above it up to the sandbox.
fn remove_created(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let root = sandbox();
    let mut up = dir.parent();
    while let Some(d) = up {
        if d == root || !d.starts_with(&root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        up = d.parent();
    }
}

/// Store-side errors: a URL that does not parse, a backend that fails, or
/// a store this process does not let bytes reach (not registered nor
/// allowed, another process's memory store, past the bound).
pub fn is_store_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidUrl { .. }
            | Error::Connector { .. }
            | Error::Untrusted { .. }
            | Error::LocalStore { .. }
            | Error::TooManyStores { .. }
    )
}

/// Reports a broken invariant: panics, unless `name` is listed in
/// `BORROWSTORE_FUZZ_TOLERATE`.
pub fn violation(name: &str, what: std::fmt::Arguments<'_>) {
    static TOLERATED: OnceLock<Vec<String>> = OnceLock::new();
    let tolerated = TOLERATED.get_or_init(|| {
        std::env::var("BORROWSTORE_FUZZ_TOLERATE")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    if !tolerated.iter().any(|t| t == name) {
        panic!("invariant {name} broken: {what}");
    }
}

/// Applies `data` as damage to `real`: the first byte's low bit says whether
/// to truncate (to the rest of that byte, modulo the length), the remaining
/// bytes are XORed over the result and any excess is appended.
pub fn damage(real: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = real.to_vec();
    let Some((&op, mask)) = data.split_first() else {
        return out;
    };
    if op & 1 == 1 {
        out.truncate(usize::from(op >> 1) % (out.len() + 1));
    }
    for (i, m) in mask.iter().enumerate() {
        match out.get_mut(i) {
            Some(b) => *b ^= m,
            None => out.push(*m),
        }
    }
    out
}

/// A user type with the serde shapes postcard supports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// A number.
    pub id: u64,
    /// A string.
    pub name: String,
    /// A sequence.
    pub tags: Vec<String>,
    /// An option.
    pub score: Option<i32>,
    /// An enum.
    pub shape: Shape,
    /// A map.
    pub attrs: std::collections::BTreeMap<String, u16>,
    /// Bytes.
    pub bytes: Vec<u8>,
    /// A char.
    pub initial: char,
}

/// An enum of every variant shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// Unit.
    Point,
    /// Newtype.
    Circle(u32),
    /// Struct.
    Rect {
        /// Width.
        w: u16,
        /// Height.
        h: u16,
    },
    /// Tuple.
    Named(String, bool),
}

/// A sample [`Record`].
pub fn record() -> Record {
    Record {
        id: 7,
        name: "seed".into(),
        tags: vec!["a".into(), "bc".into()],
        score: Some(-1),
        shape: Shape::Rect { w: 1, h: 2 },
        attrs: [("k".to_owned(), 3)].into(),
        bytes: vec![1, 2, 3],
        initial: 'é',
    }
}

/// The names of the stores the targets keep for themselves.
pub const FIXTURE_STORES: &[&str] = &["fuzz", "fuzz-blobs", "fuzz-tickets"];

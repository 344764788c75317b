//! Property tests of everything that turns bytes into values: blobs
//! (`codec::decode`), proxies, tickets and keys.
//!
//! Bad input gets a clear error, never a panic (DESIGN.md, semantics 9):
//! arbitrary or damaged bytes must decode to `Ok` or to an `Err` of the
//! documented variant, and valid bytes must round-trip. Deserializing a proxy
//! or a ticket reaches `Store::from_config` with whatever config the bytes
//! carry, so that path is exercised too.
//!
//! The fuzz targets in `fuzz/` run the same checks for millions of inputs;
//! regression inputs they find belong at the end of this file.

use std::collections::BTreeMap;

use borrowstore::codec;
use borrowstore::{
    BorrowTicket, Error, Key, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, StoreConfig, borrow,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// `prop_assert!(matches!(..))` with a message that shows the value.
macro_rules! prop_assert_matches {
    ($e:expr, $p:pat) => {{
        let v = $e;
        prop_assert!(matches!(v, $p), "{:?} does not match {}", v, stringify!($p));
    }};
}

/// A user type with the serde shapes postcard supports: struct, enum,
/// option, sequence, map, string, bytes, floats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<i32>,
    shape: Shape,
    attrs: BTreeMap<String, u16>,
    bytes: Vec<u8>,
    ratio: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Point,
    Circle(u32),
    Rect { w: u16, h: u16 },
    Named(String, bool),
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Point),
        any::<u32>().prop_map(Shape::Circle),
        (any::<u16>(), any::<u16>()).prop_map(|(w, h)| Shape::Rect { w, h }),
        (".{0,12}", any::<bool>()).prop_map(|(s, b)| Shape::Named(s, b)),
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        ".{0,16}",
        prop::collection::vec(".{0,8}", 0..4),
        any::<Option<i32>>(),
        shape(),
        prop::collection::btree_map(".{0,6}", any::<u16>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..32),
        // Finite floats only, so that `==` is the right equality.
        -1.0e6f32..1.0e6f32,
    )
        .prop_map(
            |(id, name, tags, score, shape, attrs, bytes, ratio)| Record {
                id,
                name,
                tags,
                score,
                shape,
                attrs,
                bytes,
                ratio,
            },
        )
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Edits for [`mutate`]: where, which byte, which kind of edit.
fn edits(
    count: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), count)
}

/// The store name `name`, unless it is `store`'s.
fn other_names(name: Option<String>, store: &Store) -> Vec<String> {
    name.into_iter().filter(|n| n != store.name()).collect()
}

/// The documented outcomes of decoding a blob: the value, or `Decode` /
/// `TypeMismatch`.
fn check_decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, TestCaseError> {
    match codec::decode::<T>(bytes) {
        Ok(v) => Ok(Some(v)),
        Err(Error::Decode { .. } | Error::TypeMismatch { .. }) => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!(
            "undocumented decode error: {e:?}"
        ))),
    }
}

/// Runs `f`, then unregisters every store it registered that was not
/// registered before, so arbitrary configs do not pile up in the registry.
/// Only stores named in `names` are considered.
fn forgetting_new_stores<R>(names: &[String], f: impl FnOnce() -> R) -> R {
    let before: Vec<bool> = names
        .iter()
        .map(|n| Store::registered(n).is_some())
        .collect();
    let r = f();
    for (n, was) in names.iter().zip(before) {
        if !was {
            Store::unregister(n);
        }
    }
    r
}

/// The store name a proxy's or ticket's wire form begins with, if it has one
/// (postcard: a varint length, then UTF-8).
fn leading_name(bytes: &[u8]) -> Option<String> {
    postcard::take_from_bytes::<String>(bytes)
        .ok()
        .map(|(s, _)| s)
}

/// The fields a proxy's or ticket's wire form begins with: the store config,
/// then the key, then (tickets) the ticket id. Forged wire forms are real
/// ones with these fields replaced, so the tests follow any field the crate
/// appends after them.
struct WireParts {
    config: StoreConfig,
    key: u128,
    /// The ticket id for tickets; the next field otherwise.
    rest: Vec<u8>,
}

fn split_wire(wire: &[u8]) -> WireParts {
    let (config, rest) = postcard::take_from_bytes::<StoreConfig>(wire)
        .expect("a proxy's or ticket's wire form begins with its store config");
    let (key, rest) =
        postcard::take_from_bytes::<u128>(rest).expect("the store config is followed by the key");
    WireParts {
        config,
        key,
        rest: rest.to_vec(),
    }
}

/// `wire` with its store config and key replaced.
fn forge(wire: &[u8], config: &StoreConfig, key: u128) -> Vec<u8> {
    let parts = split_wire(wire);
    let mut out = postcard::to_allocvec(config).unwrap();
    out.extend_from_slice(&postcard::to_allocvec(&key).unwrap());
    out.extend_from_slice(&parts.rest);
    out
}

/// A proxy's wire form from before proxies carried their type name (store
/// config, key, ephemeral flag, fingerprint, then whatever followed), with
/// `name` inserted after the fingerprint.
fn with_type_name(old: &[u8], name: &str) -> Vec<u8> {
    let parts = split_wire(old);
    let (_, after) = postcard::take_from_bytes::<(bool, u64)>(&parts.rest)
        .expect("the key is followed by the ephemeral flag and the fingerprint");
    let mut out = old[..old.len() - after.len()].to_vec();
    out.extend_from_slice(&postcard::to_allocvec(name).unwrap());
    out.extend_from_slice(after);
    out
}

/// A ticket's wire form with its store config, key and ticket id replaced.
fn forge_ticket(wire: &[u8], config: &StoreConfig, key: u128, id: u128) -> Vec<u8> {
    let parts = split_wire(wire);
    let (_, after_id) = postcard::take_from_bytes::<u128>(&parts.rest)
        .expect("a ticket's key is followed by its ticket id");
    let mut out = postcard::to_allocvec(config).unwrap();
    out.extend_from_slice(&postcard::to_allocvec(&key).unwrap());
    out.extend_from_slice(&postcard::to_allocvec(&id).unwrap());
    out.extend_from_slice(after_id);
    out
}

/// Real wire forms to forge from, made once per process.
struct Bases {
    /// Proxies of `Record`: plain, ephemeral.
    proxy: [Vec<u8>; 2],
    /// A proxy of another type.
    proxy_other_type: Vec<u8>,
    /// An owner ticket and a borrow ticket of `u64`, never redeemed.
    owner_ticket: Vec<u8>,
    borrow_ticket: Vec<u8>,
    /// An owner ticket of another type.
    ticket_other_type: Vec<u8>,
}

fn bases() -> &'static Bases {
    static BASES: std::sync::OnceLock<Bases> = std::sync::OnceLock::new();
    BASES.get_or_init(|| {
        trust_the_sandbox();
        let store = Store::memory("wp-bases");
        let owner = store.owned_proxy(1u64).unwrap();
        let borrow_ticket = RefProxy::into_ticket(borrow(&owner).unwrap())
            .unwrap()
            .to_bytes()
            .unwrap();
        Bases {
            proxy: [
                Proxy::to_bytes(&store.proxy(record_seed()).unwrap()).unwrap(),
                Proxy::to_bytes(&store.ephemeral_proxy(record_seed()).unwrap()).unwrap(),
            ],
            proxy_other_type: Proxy::to_bytes(&store.proxy(Shape::Point).unwrap()).unwrap(),
            owner_ticket: OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap(),
            borrow_ticket,
            ticket_other_type: OwnedProxy::into_ticket(store.owned_proxy(Shape::Point).unwrap())
                .unwrap()
                .to_bytes()
                .unwrap(),
        }
    })
}

/// Generated `file://` URLs name this placeholder, which each test case
/// replaces with a directory of its own ([`CaseDir`]); nothing can name a
/// directory outside it.
const SANDBOX: &str = "@SANDBOX@";

/// Where this process's test cases put file stores: one directory under
/// the system temp dir.
fn sandbox_root() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("borrowstore-wire-props-{}", std::process::id()))
}

/// What the generated bytes may connect this process to: memory stores
/// (of this process) and file stores in the sandbox.
fn trust_the_sandbox() {
    borrowstore::trust::allow("memory://*").unwrap();
    borrowstore::trust::allow(&format!("file://{}/*", sandbox_root().display())).unwrap();
}

/// A test case's directory for file stores, in [`sandbox_root`]; removed
/// with everything in it when the case ends.
struct CaseDir(std::path::PathBuf);

impl CaseDir {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        trust_the_sandbox();
        CaseDir(sandbox_root().join(n.to_string()))
    }

    /// `url` with the sandbox placeholder pointing into this directory.
    fn url(&self, url: &str) -> String {
        url.replace(SANDBOX, &self.0.display().to_string())
    }
}

impl Drop for CaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir(sandbox_root());
    }
}

/// Store URLs: valid memory URLs, file URLs inside the case's sandbox, near
/// misses and junk. Nothing here can open a store outside this process and
/// the sandbox: see [`contained`].
fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,12}".prop_map(|n| format!("memory://{n}")),
        ".{0,12}".prop_map(|n| format!("memory://{n}")),
        Just("memory://wp-gen\n".to_owned()),
        "(redis|rediss|ftp|memory|MEMORY|)(://|:/|:|)[ -~]{0,16}",
        // file: relative paths and '..' — refused by the parser.
        "file:(//|/|)[a-z]{0,8}",
        "[a-z]{0,4}/\\.\\./[a-z]{0,4}".prop_map(|tail| format!("file://{SANDBOX}/{tail}")),
        // file: good and bad queries.
        "[a-z]{1,6}(\\?lease_ms=[0-9]{1,5}|\\?lease_ms=0|\\?lease_ms=-1|\\?colour=red|\\?|)"
            .prop_map(|tail| format!("file://{SANDBOX}/{tail}")),
        ".{0,24}",
    ]
    .prop_filter("only URLs contained in this process and the sandbox", |u| {
        contained(u)
    })
}

/// Whether opening a store from `url` stays in this process and the test's
/// sandbox: memory URLs, file URLs under [`SANDBOX`], and URLs whose scheme
/// no connector could have. Every other scheme — `file` elsewhere, `redis`,
/// whatever borrowstore adds next — could touch the file system or the
/// network, so the tests never generate it.
fn contained(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return true;
    };
    let could_be_a_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    match scheme {
        "memory" => true,
        "file" => rest.starts_with(SANDBOX),
        _ => !could_be_a_scheme,
    }
}

/// Whether `url` is one `Store::from_config` accepts (mirrors the parser's
/// documented rules; only used to check which outcome is expected).
fn valid_memory_url(url: &str) -> bool {
    url.strip_prefix("memory://")
        .is_some_and(|name| !name.is_empty() && !name.chars().any(char::is_control))
}

/// Errors of the store a config names: a bad URL, a backend that fails,
/// or a store this process does not let bytes reach (not registered nor
/// allowed, another process's memory store, past the bound).
fn is_store_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidUrl { .. }
            | Error::Connector { .. }
            | Error::Untrusted { .. }
            | Error::LocalStore { .. }
            | Error::TooManyStores { .. }
    )
}

// ---------------------------------------------------------------------------
// Blobs

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_arbitrary_bytes_never_panics(bytes in bytes(96)) {
        check_decode::<u64>(&bytes)?;
        check_decode::<String>(&bytes)?;
        check_decode::<Vec<u8>>(&bytes)?;
        check_decode::<(u8, Option<Vec<u16>>, bool)>(&bytes)?;
        check_decode::<Record>(&bytes)?;
        check_decode::<Key>(&bytes)?;
        check_decode::<Option<char>>(&bytes)?;
    }

    /// A valid header for the right type followed by arbitrary payload bytes:
    /// this is what reaches postcard, so it is the interesting case.
    #[test]
    fn decode_arbitrary_payload_never_panics(payload in bytes(96)) {
        fn with_header<T: Serialize + Default>(payload: &[u8]) -> Vec<u8> {
            let mut b = codec::encode(&T::default()).unwrap();
            b.truncate(codec::header_len::<T>());
            b.extend_from_slice(payload);
            b
        }
        check_decode::<u64>(&with_header::<u64>(&payload))?;
        check_decode::<String>(&with_header::<String>(&payload))?;
        check_decode::<Vec<String>>(&with_header::<Vec<String>>(&payload))?;
        type Map = BTreeMap<String, Vec<u32>>;
        type Tuple = (u8, Option<Vec<u16>>, bool);
        check_decode::<Map>(&with_header::<Map>(&payload))?;
        check_decode::<Tuple>(&with_header::<Tuple>(&payload))?;

        let mut b = codec::encode(&record_seed()).unwrap();
        b.truncate(codec::header_len::<Record>());
        b.extend_from_slice(&payload);
        check_decode::<Record>(&b)?;
    }

    #[test]
    fn encode_decode_round_trips(
        r in record(),
        s in ".{0,32}",
        v in prop::collection::vec(any::<i64>(), 0..16),
    ) {
        prop_assert_eq!(codec::decode::<Record>(&codec::encode(&r).unwrap()).unwrap(), r);
        prop_assert_eq!(codec::decode::<String>(&codec::encode(&s).unwrap()).unwrap(), s);
        prop_assert_eq!(codec::decode::<Vec<i64>>(&codec::encode(&v).unwrap()).unwrap(), v);
    }

    #[test]
    fn decoding_as_another_type_is_type_mismatch(r in record()) {
        let b = codec::encode(&r).unwrap();
        prop_assert_matches!(codec::decode::<Shape>(&b), Err(Error::TypeMismatch { .. }));
        prop_assert_matches!(codec::decode::<Vec<u8>>(&b), Err(Error::TypeMismatch { .. }));
        prop_assert_matches!(codec::decode::<String>(&b), Err(Error::TypeMismatch { .. }));
    }

    /// Damage anywhere: error, or — where the damage leaves a valid encoding —
    /// some value; never a panic. Damage to the header is always an error.
    #[test]
    fn damaged_blobs_are_errors_or_values(
        r in record(),
        edits in edits(1..4),
    ) {
        let original = codec::encode(&r).unwrap();
        let damaged = mutate(&original, &edits);
        let header_len = codec::header_len::<Record>();
        let header_intact =
            damaged.len() >= header_len && damaged[..header_len] == original[..header_len];
        if let Some(v) = check_decode::<Record>(&damaged)? {
            prop_assert!(header_intact, "a damaged header decoded");
            if damaged == original {
                prop_assert_eq!(v, r);
            }
        }
        if !header_intact {
            prop_assert!(codec::decode::<Record>(&damaged).is_err());
        }
    }

    #[test]
    fn truncated_blobs_are_decode_errors(r in record(), cut in any::<prop::sample::Index>()) {
        let b = codec::encode(&r).unwrap();
        let n = cut.index(b.len());
        prop_assert_matches!(codec::decode::<Record>(&b[..n]), Err(Error::Decode { .. }));
    }

    #[test]
    fn trailing_bytes_are_decode_errors(r in record(), tail in prop::collection::vec(any::<u8>(), 1..8)) {
        let mut b = codec::encode(&r).unwrap();
        b.extend_from_slice(&tail);
        prop_assert_matches!(codec::decode::<Record>(&b), Err(Error::Decode { .. }));
    }
}

fn record_seed() -> Record {
    Record {
        id: 7,
        name: "seed".into(),
        tags: vec!["a".into()],
        score: Some(-1),
        shape: Shape::Rect { w: 1, h: 2 },
        attrs: BTreeMap::from([("k".into(), 3)]),
        bytes: vec![1, 2, 3],
        ratio: 0.5,
    }
}

/// Applies edits: 0 overwrite, 1 insert, 2 delete, 3 flip one bit.
fn mutate(original: &[u8], edits: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    let mut b = original.to_vec();
    for (at, byte, op) in edits {
        match op {
            0 if !b.is_empty() => {
                let i = at.index(b.len());
                b[i] = *byte;
            }
            1 => {
                let i = at.index(b.len() + 1);
                b.insert(i, *byte);
            }
            2 if !b.is_empty() => {
                let i = at.index(b.len());
                b.remove(i);
            }
            _ if !b.is_empty() => {
                let i = at.index(b.len());
                b[i] ^= 1 << (byte % 8);
            }
            _ => b.push(*byte),
        }
    }
    b
}

// ---------------------------------------------------------------------------
// Keys

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn key_display_from_str_round_trips(bits in any::<u128>()) {
        let k = Key::from_u128(bits);
        let text = k.to_string();
        prop_assert_eq!(text.len(), 32);
        prop_assert_eq!(text.parse::<Key>().unwrap(), k);
        let wire = postcard::to_allocvec(&k).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Key>(&wire).unwrap(), k);
    }

    /// `FromStr` accepts exactly the `Display` form: anything it accepts
    /// prints back identically, everything else is `InvalidKey`.
    #[test]
    fn key_from_str_accepts_only_the_display_form(
        s in prop_oneof![".{0,40}", "[0-9a-fA-F]{30,34}", "[0-9a-f]{32}"],
    ) {
        match s.parse::<Key>() {
            Ok(k) => prop_assert_eq!(k.to_string(), s),
            Err(Error::InvalidKey { .. }) => {}
            Err(e) => prop_assert!(false, "undocumented key error: {e:?}"),
        }
    }

    #[test]
    fn key_postcard_from_arbitrary_bytes_never_panics(bytes in bytes(24)) {
        if let Ok((k, _)) = postcard::take_from_bytes::<Key>(&bytes) {
            let again = postcard::to_allocvec(&k).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Key>(&again).unwrap(), k);
        }
    }
}

// ---------------------------------------------------------------------------
// Proxies

/// The documented outcomes of reading a proxy: the proxy, or `Malformed`,
/// `TypeMismatch`, or an error of the store its config names.
fn check_proxy<T: borrowstore::Storable>(bytes: &[u8]) -> Result<Option<Proxy<T>>, TestCaseError> {
    match Proxy::<T>::from_bytes(bytes) {
        Ok(p) => Ok(Some(p)),
        Err(Error::Malformed { what: "proxy", .. } | Error::TypeMismatch { .. }) => Ok(None),
        Err(e) if is_store_error(&e) => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!(
            "undocumented proxy error: {e:?}"
        ))),
    }
}

/// Resolving a proxy read from untrusted bytes: a value or a clear error.
fn check_resolve<T: borrowstore::Storable + std::fmt::Debug>(
    p: &Proxy<T>,
) -> Result<(), TestCaseError> {
    match Proxy::resolve(p) {
        Ok(_)
        | Err(Error::KeyNotFound { .. } | Error::TypeMismatch { .. } | Error::Decode { .. }) => {
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!(
            "undocumented resolve error: {e:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn proxy_from_arbitrary_bytes_never_panics(bytes in bytes(96)) {
        let names: Vec<String> = leading_name(&bytes).into_iter().collect();
        forgetting_new_stores(&names, || -> Result<(), TestCaseError> {
            if let Some(p) = check_proxy::<u64>(&bytes)? {
                check_resolve(&p)?;
            }
            if let Some(p) = check_proxy::<Record>(&bytes)? {
                check_resolve(&p)?;
            }
            check_proxy::<Vec<String>>(&bytes)?;
            // Through serde directly, as a proxy nested in a message.
            let _ = postcard::from_bytes::<Proxy<String>>(&bytes);
            let _ = postcard::from_bytes::<(u8, Proxy<Vec<u8>>)>(&bytes);
            Ok(())
        })?;
    }

    /// Well-formed wire forms with arbitrary configs and keys: this is what
    /// reaches `Store::from_config`.
    #[test]
    fn proxy_with_arbitrary_config_is_a_proxy_or_a_clear_error(
        name in "[ -~]{0,10}",
        url in url(),
        key in any::<u128>(),
        ephemeral in any::<bool>(),
        right_type in any::<bool>(),
    ) {
        let dir = CaseDir::new();
        let url = dir.url(&url);
        let name = format!("wp-gen-{name}");
        let config = StoreConfig { name: name.clone(), url: url.clone() };
        let base = if right_type {
            &bases().proxy[usize::from(ephemeral)]
        } else {
            &bases().proxy_other_type
        };
        let wire = forge(base, &config, key);
        let names = std::slice::from_ref(&name);
        let outcome = forgetting_new_stores(names, || -> Result<(), TestCaseError> {
            match Proxy::<Record>::from_bytes(&wire) {
                Ok(p) => {
                    prop_assert!(right_type);
                    prop_assert_eq!(Proxy::key(&p).as_u128(), key);
                    prop_assert_eq!(Proxy::is_ephemeral(&p), ephemeral);
                    prop_assert_eq!(Proxy::store(&p).name(), name.as_str());
                    prop_assert_eq!(Proxy::store(&p).url(), url.as_str());
                    // A fresh store: nothing is under the key.
                    prop_assert_matches!(Proxy::resolve(&p), Err(Error::KeyNotFound { .. }));
                    // And it writes back exactly the bytes it was read from.
                    prop_assert_eq!(Proxy::to_bytes(&p).unwrap(), wire.clone());
                }
                Err(Error::TypeMismatch { .. }) => prop_assert!(!right_type),
                Err(e @ (Error::InvalidUrl { .. } | Error::Connector { .. })) => {
                    prop_assert!(right_type, "the type is checked before the store: {e:?}");
                    prop_assert!(!valid_memory_url(&url), "a valid memory URL was refused: {e:?}");
                }
                // The sandbox is allowed without settings (`trust_the_sandbox`).
                Err(e @ Error::Untrusted { .. }) => {
                    prop_assert!(right_type, "the type is checked before the store: {e:?}");
                    prop_assert!(url.starts_with("file://") && url.contains('?'), "{e:?}");
                }
                Err(e) => prop_assert!(false, "undocumented proxy error: {e:?}"),
            }
            Ok(())
        });
        outcome?;
    }

    #[test]
    fn proxy_round_trips(r in record(), ephemeral in any::<bool>()) {
        let store = Store::memory("wp-proxy-round-trip");
        let p = if ephemeral {
            store.ephemeral_proxy(r.clone()).unwrap()
        } else {
            store.proxy(r.clone()).unwrap()
        };
        let bytes = Proxy::to_bytes(&p).unwrap();
        let q = Proxy::<Record>::from_bytes(&bytes).unwrap();
        prop_assert_eq!(Proxy::key(&q), Proxy::key(&p));
        prop_assert!(Proxy::store(&q).same_store(&store));
        prop_assert_eq!(Proxy::is_ephemeral(&q), ephemeral);
        prop_assert!(!Proxy::is_resolved(&q));
        prop_assert_eq!(Proxy::resolve(&q).unwrap(), &r);
        prop_assert_eq!(Proxy::to_bytes(&q).unwrap(), bytes.clone());
        // The same bytes through serde, and as another type.
        let s: Proxy<Record> = postcard::from_bytes(&bytes).unwrap();
        prop_assert_eq!(Proxy::key(&s), Proxy::key(&p));
        prop_assert_matches!(Proxy::<Shape>::from_bytes(&bytes), Err(Error::TypeMismatch { .. }));
        if ephemeral {
            // Consumed by the first resolve.
            prop_assert_matches!(Proxy::resolve(&s), Err(Error::KeyNotFound { .. }));
        } else {
            prop_assert_eq!(Proxy::resolve(&s).unwrap(), &r);
            store.evict(Proxy::key(&p)).unwrap();
        }
    }

    /// Damaged proxy bytes: an error, or a proxy that resolves to the
    /// original value or to a clear error; never a panic.
    #[test]
    fn damaged_proxies_are_errors_or_equal_values(
        r in record(),
        edits in edits(1..4),
    ) {
        // A store of its own: a damaged URL under the same name displaces the
        // registered store (see `registry_displacement` below).
        let store = Store::memory("wp-damaged-proxy");
        let p = store.proxy(r.clone()).unwrap();
        let original = Proxy::to_bytes(&p).unwrap();
        let damaged = mutate(&original, &edits);
        let names = other_names(leading_name(&damaged), &store);
        let consumed = forgetting_new_stores(&names, || -> Result<bool, TestCaseError> {
            if let Some(q) = check_proxy::<Record>(&damaged)? {
                let same_object =
                    Proxy::store(&q).same_store(&store) && Proxy::key(&q) == Proxy::key(&p);
                match Proxy::resolve(&q) {
                    Ok(v) => {
                        prop_assert!(same_object, "a damaged proxy resolved to another object");
                        prop_assert_eq!(v, &r);
                        // Damage that set the ephemeral flag consumed the object.
                        return Ok(Proxy::is_ephemeral(&q));
                    }
                    Err(Error::KeyNotFound { .. }) => prop_assert!(!same_object),
                    Err(e) => prop_assert!(false, "undocumented resolve error: {e:?}"),
                }
            }
            Ok(false)
        })?;
        // Whatever happened, the original bytes still read back in this
        // store (re-register it in case a damaged URL displaced it).
        store.register();
        let back = Proxy::<Record>::from_bytes(&original).unwrap();
        if consumed {
            prop_assert_matches!(Proxy::resolve(&back), Err(Error::KeyNotFound { .. }));
        } else {
            prop_assert_eq!(Proxy::resolve(&back).unwrap(), &r);
        }
        let _ = store.evict(Proxy::key(&p));
    }

    /// A proxy stored as (part of) a value: decoding the blob reads the
    /// proxy, so damaged blobs reach `Store::from_config` too.
    #[test]
    fn proxies_inside_blobs(n in any::<u64>(), edits in edits(0..3)) {
        let store = Store::memory("wp-proxy-in-blob");
        let p = store.proxy(n).unwrap();
        let blob = codec::encode(&(p.clone(), 5u8)).unwrap();
        let damaged = mutate(&blob, &edits);
        let names = other_names(damaged.get(codec::header_len::<(Proxy<u64>, u8)>()..).and_then(leading_name), &store);
        forgetting_new_stores(&names, || -> Result<(), TestCaseError> {
            if let Some((q, _)) = check_decode::<(Proxy<u64>, u8)>(&damaged)? {
                check_resolve(&q)?;
                if damaged == blob {
                    prop_assert_eq!(*q, n);
                }
            }
            Ok(())
        })?;
        store.register();
        let _ = store.evict(Proxy::key(&p));
    }
}

// ---------------------------------------------------------------------------
// Tickets

/// The documented outcomes of reading a ticket: the ticket or `Malformed`.
/// Reading never touches a store.
fn check_ticket<T>(
    bytes: &[u8],
    read: impl Fn(&[u8]) -> Result<T, Error>,
) -> Result<Option<T>, TestCaseError> {
    match read(bytes) {
        Ok(t) => Ok(Some(t)),
        Err(Error::Malformed {
            what: "owner ticket" | "borrow ticket",
            ..
        }) => Ok(None),
        Err(e) => Err(TestCaseError::fail(format!(
            "undocumented ticket error: {e:?}"
        ))),
    }
}

/// The documented outcomes of redeeming a ticket that was not issued (or
/// not for this type): a clear error, never a panic.
fn check_redeem_refused<H: std::fmt::Debug>(r: Result<H, Error>) -> Result<(), TestCaseError> {
    match r {
        Err(
            Error::TicketRedeemed { .. }
            | Error::TypeMismatch { .. }
            | Error::Malformed { .. }
            | Error::KeyNotFound { .. },
        ) => Ok(()),
        Err(e) if is_store_error(&e) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!(
            "undocumented redeem error: {e:?}"
        ))),
        Ok(h) => Err(TestCaseError::fail(format!(
            "a forged ticket was redeemed: {h:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tickets_from_arbitrary_bytes_never_panic(bytes in bytes(96)) {
        let names: Vec<String> = leading_name(&bytes).into_iter().collect();
        forgetting_new_stores(&names, || -> Result<(), TestCaseError> {
            if let Some(t) = check_ticket(&bytes, OwnerTicket::<u64>::from_bytes)? {
                check_redeem_refused(t.redeem())?;
            }
            if let Some(t) = check_ticket(&bytes, BorrowTicket::<u64>::from_bytes)? {
                check_redeem_refused(t.redeem())?;
            }
            if let Some(t) = check_ticket(&bytes, OwnerTicket::<Record>::from_bytes)? {
                // Checked as `redeem` checks: the type and the kind first.
                match t.cancel() {
                    Err(
                        Error::TicketRedeemed { .. }
                        | Error::TypeMismatch { .. }
                        | Error::Malformed { .. },
                    ) => {}
                    Err(e) if is_store_error(&e) => {}
                    other => prop_assert!(false, "cancel of a forged ticket: {other:?}"),
                }
            }
            Ok(())
        })?;
    }

    /// Well-formed ticket wire forms with arbitrary configs, keys and ids:
    /// parsed, and refused on redeem and cancel with a clear error.
    #[test]
    fn forged_tickets_are_refused(
        name in "[ -~]{0,10}",
        url in url(),
        key in any::<u128>(),
        id in any::<u128>(),
        base in 0usize..3,
    ) {
        let dir = CaseDir::new();
        let name = format!("wp-gen-{name}");
        let config = StoreConfig { name: name.clone(), url: dir.url(&url) };
        let b = bases();
        let base_wire = [&b.owner_ticket, &b.borrow_ticket, &b.ticket_other_type][base];
        let wire = forge_ticket(base_wire, &config, key, id);
        forgetting_new_stores(std::slice::from_ref(&name), || -> Result<(), TestCaseError> {
            let t = OwnerTicket::<u64>::from_bytes(&wire).unwrap();
            prop_assert_eq!(t.key().as_u128(), key);
            prop_assert_eq!(t.to_bytes().unwrap(), wire.clone());
            check_redeem_refused(t.redeem())?;
            check_redeem_refused(BorrowTicket::<u64>::from_bytes(&wire).unwrap().redeem())?;
            // `cancel` refuses what `redeem` refuses before asking the
            // store: a borrow ticket's bytes (the wrong kind) and a ticket
            // of another type; only an owner ticket of `u64` reaches it.
            match (base, OwnerTicket::<u64>::from_bytes(&wire).unwrap().cancel()) {
                (0, Err(Error::TicketRedeemed { .. })) => {}
                (0, Err(e)) if is_store_error(&e) => {}
                (1, Err(Error::Malformed { .. })) => {}
                (2, Err(Error::TypeMismatch { .. })) => {}
                (_, other) => prop_assert!(false, "cancel of a forged ticket: {other:?}"),
            }
            Ok(())
        })?;
    }

    #[test]
    fn owner_tickets_round_trip_exactly_once(r in record()) {
        let store = Store::memory("wp-owner-ticket");
        let owner = store.owned_proxy(r.clone()).unwrap();
        let key = *OwnedProxy::key(&owner);
        let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
        prop_assert_matches!(
            OwnerTicket::<Shape>::from_bytes(&bytes).unwrap().redeem(),
            Err(Error::TypeMismatch { .. })
        );
        let t = OwnerTicket::<Record>::from_bytes(&bytes).unwrap();
        prop_assert_eq!(t.key(), &key);
        let back = t.redeem().unwrap();
        prop_assert_eq!(&*back, &r);
        prop_assert_matches!(
            OwnerTicket::<Record>::from_bytes(&bytes).unwrap().redeem(),
            Err(Error::TicketRedeemed { .. })
        );
        drop(back);
        prop_assert!(!store.exists(&key).unwrap());
    }

    #[test]
    fn borrow_tickets_round_trip_exactly_once(r in record()) {
        let store = Store::memory("wp-borrow-ticket");
        let owner = store.owned_proxy(r.clone()).unwrap();
        let bytes = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap().to_bytes().unwrap();
        // The ticket holds the borrow.
        prop_assert_matches!(borrowstore::mut_borrow(&owner), Err(Error::AlreadyBorrowed { .. }));
        let back = BorrowTicket::<Record>::from_bytes(&bytes).unwrap().redeem().unwrap();
        prop_assert_eq!(&*back, &r);
        prop_assert_matches!(
            BorrowTicket::<Record>::from_bytes(&bytes).unwrap().redeem(),
            Err(Error::TicketRedeemed { .. })
        );
        drop(back);
        prop_assert!(borrowstore::mut_borrow(&owner).is_ok());
    }

    /// Damaged ticket bytes never panic, and a refused redeem has no side
    /// effect: afterwards the undamaged ticket still redeems, to the value.
    /// Only a damaged ticket that still means the same ticket redeems.
    #[test]
    fn damaged_tickets_are_errors_or_the_handle(
        n in any::<u64>(),
        edits in edits(1..4),
    ) {
        let store = Store::memory("wp-damaged-ticket");
        let owner = store.owned_proxy(n).unwrap();
        let key = *OwnedProxy::key(&owner);
        let original = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
        let damaged = mutate(&original, &edits);
        let names = other_names(leading_name(&damaged), &store);
        type Redeemed = Result<Option<OwnedProxy<u64>>, TestCaseError>;
        let redeemed = forgetting_new_stores(&names, || -> Redeemed {
            if let Some(t) = check_ticket(&damaged, OwnerTicket::<u64>::from_bytes)? {
                match t.redeem() {
                    Ok(o) => {
                        prop_assert_eq!(OwnedProxy::key(&o), &key);
                        prop_assert_eq!(*o, n);
                        return Ok(Some(o));
                    }
                    other => check_redeem_refused(other)?,
                }
            }
            Ok(None)
        })?;
        // A damaged URL under the same name may have displaced the store
        // from the registry (see `registry_displacement`).
        store.register();
        let again = OwnerTicket::<u64>::from_bytes(&original).unwrap().redeem();
        match redeemed {
            Some(o) => {
                prop_assert_matches!(again, Err(Error::TicketRedeemed { .. }));
                drop(o);
            }
            None => {
                let o = again.map_err(|e| {
                    TestCaseError::fail(format!("a refused damaged redeem burnt the ticket: {e:?}"))
                })?;
                prop_assert_eq!(*o, n);
            }
        }
        prop_assert!(!store.exists(&key).unwrap());
    }
}

// ---------------------------------------------------------------------------
// Inputs found by the fuzz targets (fuzz/), kept as regression cases.

/// `proxy_bytes` (LeakSanitizer report): the saved input is a proxy of
/// `String` naming a file store with control characters in its path
/// (`…/se\x02zz\rmmrm:/yo/fuzz`), with trailing bytes. (The report itself
/// came from the lease renewer threads of file stores opened by earlier
/// inputs, which outlive their store by up to a third of the lease.) Kept
/// as found, with the path moved from the fuzzer's sandbox into this test's
/// directory, and the type name that proxies now carry after their
/// fingerprint added (the input predates it).
#[test]
fn fuzz_proxy_of_file_store_with_control_characters() {
    const FOUND: &[u8] = &[
        10, 102, 18, 0, 0, 0, 0, 0, 0, 0, 114, 56, 102, 105, 108, 101, 58, 47, 47, 47, 116, 109,
        112, 47, 98, 111, 114, 114, 111, 119, 115, 116, 111, 114, 101, 45, 102, 117, 122, 122, 45,
        115, 97, 110, 100, 98, 111, 120, 47, 115, 101, 2, 122, 122, 13, 109, 109, 114, 109, 58, 47,
        121, 111, 47, 102, 117, 122, 122, 2, 0, 198, 220, 128, 143, 146, 210, 155, 241, 118, 203,
        48, 48, 181, 244, 147, 241, 149, 143, 238, 158, 68,
    ];
    let dir = CaseDir::new();
    let found = split_wire(FOUND);
    let config = StoreConfig {
        name: found.config.name.clone(),
        url: found
            .config
            .url
            .replace("/tmp/borrowstore-fuzz-sandbox", &dir.url(SANDBOX)),
    };
    assert!(config.url.starts_with("file://") && config.url.contains('\r'));
    let bytes = forge(
        &with_type_name(FOUND, "alloc::string::String"),
        &config,
        found.key,
    );
    // The type is checked before any store is opened.
    for r in [
        Proxy::<u64>::from_bytes(&bytes).map(drop),
        Proxy::<Vec<String>>::from_bytes(&bytes).map(drop),
    ] {
        assert!(matches!(r, Err(Error::TypeMismatch { .. })), "{r:?}");
    }
    let names = [config.name.clone()];
    forgetting_new_stores(&names, || match Proxy::<String>::from_bytes(&bytes) {
        Ok(p) => {
            assert_eq!(Proxy::store(&p).url(), config.url);
            assert_eq!(Proxy::key(&p).as_u128(), 2);
            assert!(matches!(Proxy::resolve(&p), Err(Error::KeyNotFound { .. })));
            let again = Proxy::<String>::from_bytes(&Proxy::to_bytes(&p).unwrap()).unwrap();
            assert!(Proxy::store(&again).same_store(Proxy::store(&p)));
        }
        Err(e) => assert!(
            matches!(e, Error::InvalidUrl { .. } | Error::Connector { .. }),
            "{e:?}"
        ),
    });
}

// ---------------------------------------------------------------------------
// Tickets and the registry: regression tests for bugs these properties and
// the fuzz targets found (all fixed).

/// Redeeming a valid ticket's bytes as the wrong kind of ticket (owner bytes
/// read as a `BorrowTicket`) is refused without side effects. (Found in the
/// first version of tickets: the store consumed the ticket before the kind
/// was checked, so the claim was held by nobody.)
#[test]
fn wrong_kind_redeem_does_not_burn_the_ticket() {
    let store = Store::memory("wp-wrong-kind-redeem");
    let owner = store.owned_proxy(5u64).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let wrong = BorrowTicket::<u64>::from_bytes(&bytes).unwrap().redeem();
    assert!(wrong.is_err());
    let back = OwnerTicket::<u64>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the owner ticket must still be redeemable after a refused wrong-kind redeem");
    drop(back);
    assert!(!store.exists(&key).unwrap());
}

/// Same with a damaged key: a ticket whose id is intact but whose key was
/// changed is refused, and the refusal leaves the real ticket redeemable.
#[test]
fn mismatched_key_redeem_does_not_burn_the_ticket() {
    let store = Store::memory("wp-mismatched-key-redeem");
    let owner = store.owned_proxy(5u64).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let parts = split_wire(&bytes);
    assert_eq!(parts.key, key.as_u128());
    let forged = forge(&bytes, &parts.config, parts.key ^ 1);
    assert!(
        OwnerTicket::<u64>::from_bytes(&forged)
            .unwrap()
            .redeem()
            .is_err()
    );
    let back = OwnerTicket::<u64>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the owner ticket must still be redeemable after a refused forged redeem");
    drop(back);
    assert!(!store.exists(&key).unwrap());
}

/// A proxy whose config names a registered store but another URL replaces
/// that store in the registry with a fresh, empty one. Every later proxy or
/// ticket of the real store — and `Store::memory(name)` itself — then finds
/// an empty store: the objects are still there but unreachable by name.
#[test]
fn registry_displacement() {
    let store = Store::memory("wp-registry-displacement");
    let p = store.proxy(9u64).unwrap();
    let bytes = Proxy::to_bytes(&p).unwrap();
    let intruder = forge(
        &bytes,
        &StoreConfig {
            name: store.name().to_owned(),
            url: "memory://elsewhere".to_owned(),
        },
        0,
    );
    let _ = Proxy::<u64>::from_bytes(&intruder);
    let again = Proxy::<u64>::from_bytes(&bytes).unwrap();
    let resolved = Proxy::resolve(&again).copied();
    store.register();
    assert_eq!(
        resolved.unwrap(),
        9,
        "the real store was displaced from the registry"
    );
    assert!(Store::memory("wp-registry-displacement").same_store(&store));
}

/// `bytes` (a ticket's wire form) with its claim kind replaced.
fn with_kind(
    bytes: &[u8],
    expected: borrowstore::state::ClaimKind,
    kind: borrowstore::state::ClaimKind,
) -> Vec<u8> {
    let parts = split_wire(bytes);
    let (_, after_id) = postcard::take_from_bytes::<u128>(&parts.rest).unwrap();
    let (found, after_kind) = postcard::take_from_bytes::<borrowstore::state::ClaimKind>(after_id)
        .expect("a ticket's id is followed by its claim kind");
    assert_eq!(found, expected);
    let mut damaged = bytes[..bytes.len() - after_id.len()].to_vec();
    damaged.extend_from_slice(&postcard::to_allocvec(&kind).unwrap());
    damaged.extend_from_slice(after_kind);
    damaged
}

/// An owner ticket whose kind field was damaged to "reader", redeemed as a
/// `BorrowTicket`: the wire's kind matches what the caller asks for, so the
/// store-side record is consulted — and it must refuse without side
/// effects, not consume the ticket and release the owner claim (which
/// evicts the object). Found by `ticket_bytes` (damage: XOR 0x02 on the
/// kind byte of a real owner ticket).
#[test]
fn damaged_kind_owner_ticket_is_refused_without_side_effects() {
    use borrowstore::state::ClaimKind;
    let store = Store::memory("wp-damaged-kind-owner");
    let owner = store.owned_proxy(5u64).unwrap();
    let key = *OwnedProxy::key(&owner);
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let damaged = with_kind(&bytes, ClaimKind::Owner, ClaimKind::Reader);
    assert!(
        BorrowTicket::<u64>::from_bytes(&damaged)
            .unwrap()
            .redeem()
            .is_err()
    );
    assert!(
        store.exists(&key).unwrap(),
        "a refused redeem evicted the object"
    );
    let back = OwnerTicket::<u64>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the owner ticket must still be redeemable after a refused damaged redeem");
    assert_eq!(*back, 5);
}

/// A borrow ticket whose kind field was damaged to "owner", redeemed as an
/// `OwnerTicket`: must be refused without ending the borrow or burning the
/// real ticket. Found by `ticket_bytes` (damage: XOR 0x02 on the kind byte
/// of a real borrow ticket).
#[test]
fn damaged_kind_borrow_ticket_is_refused_without_side_effects() {
    use borrowstore::state::ClaimKind;
    let store = Store::memory("wp-damaged-kind-borrow");
    let owner = store.owned_proxy(6u64).unwrap();
    let bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let damaged = with_kind(&bytes, ClaimKind::Reader, ClaimKind::Owner);
    assert!(
        OwnerTicket::<u64>::from_bytes(&damaged)
            .unwrap()
            .redeem()
            .is_err()
    );
    assert!(
        matches!(
            borrowstore::mut_borrow(&owner),
            Err(Error::AlreadyBorrowed { .. })
        ),
        "a refused redeem ended the borrow the real ticket holds"
    );
    let back = BorrowTicket::<u64>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .expect("the borrow ticket must still be redeemable after a refused damaged redeem");
    assert_eq!(*back, 6);
}

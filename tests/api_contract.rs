//! The store / proxy / ownership snippet of DESIGN.md ("Public API
//! contract") compiled exactly as written, followed by assertions on what it
//! did. (`Store::open("redis://…")` connects lazily, so it needs no server.)

/// The snippet is kept verbatim, so rustfmt must not touch it; and it clones
/// a `Key`, which is `Copy` (clippy's `clone_on_copy`).
#[rustfmt::skip]
#[allow(clippy::clone_on_copy)]
#[test]
fn public_api_contract_snippet() -> Result<(), Box<dyn std::error::Error>> {
use borrowstore::{Store, Proxy, OwnedProxy, RefProxy, RefMutProxy, Error};
use borrowstore::{borrow, mut_borrow, clone, into_owned, update};

let store = Store::memory("demo");                    // embedded default; registered by name
let shared = Store::open("redis://127.0.0.1:6379/0")?; // also "file:///dir", "memory://name"
let key = store.put(&vec![1u64, 2, 3])?;
let back: Option<Vec<u64>> = store.get(&key)?;
assert!(store.exists(&key)?);
store.evict(&key)?;

let p: Proxy<Vec<u64>> = store.proxy(vec![1, 2, 3])?;   // lazy: Deref resolves
let sum: u64 = p.iter().sum();
let again: Proxy<Vec<u64>> = store.proxy_from_key(Proxy::key(&p).clone());
let bytes = postcard::to_allocvec(&p)?;                 // never carries the value
let once = store.ephemeral_proxy(vec![7u8])?;           // evicted on first resolve

let owner: OwnedProxy<Vec<u64>> = store.owned_proxy(vec![1, 2, 3])?;
let r1: RefProxy<Vec<u64>> = borrow(&owner)?;
let r2 = borrow(&owner)?;
assert!(matches!(mut_borrow(&owner), Err(Error::AlreadyBorrowed { .. })));
drop((r1, r2));
let mut w: RefMutProxy<Vec<u64>> = mut_borrow(&owner)?;
w.push(4);
update(&mut w)?;
drop(w);
let copy: OwnedProxy<Vec<u64>> = clone(&owner)?;        // deep copy under a new key
let adopted: OwnedProxy<Vec<u64>> = into_owned(store.proxy(vec![9])?)?;

    // ---- what it did ----
    // Store::memory / Store::open: registered by name, reopened by URL
    assert_eq!(store.name(), "demo");
    assert_eq!(store.url(), "memory://demo");
    assert!(Store::registered("demo").is_some_and(|s| s.same_store(&store)));
    assert!(!shared.same_store(&store));
    // Redis stores connect lazily: opening needs no server; the same URL
    // gives the same registered store.
    assert!(Store::open("redis://127.0.0.1:6379/0")?.same_store(&shared));
    assert_eq!(shared.url(), "redis://127.0.0.1:6379/0");
    assert!(Store::open("memory://demo")?.same_store(&store));

    // put / get / exists / evict
    assert_eq!(back, Some(vec![1, 2, 3]));
    assert!(!store.exists(&key)?);
    assert_eq!(store.get::<Vec<u64>>(&key)?, None);

    // plain proxies
    assert_eq!(sum, 6);
    assert_eq!(Proxy::key(&again), Proxy::key(&p));
    assert_eq!(Proxy::resolve(&again)?, &vec![1, 2, 3]);
    let decoded: Proxy<Vec<u64>> = postcard::from_bytes(&bytes)?;
    assert_eq!(Proxy::key(&decoded), Proxy::key(&p));
    assert_eq!(*decoded, vec![1, 2, 3]);
    // A proxy's bytes do not grow with its value (10,000 values would be
    // 10 KB at least): they are the key, the store and the type's name.
    let big = store.proxy((0..10_000u64).collect::<Vec<_>>())?;
    let small = store.proxy(vec![1u64])?;
    let (big_len, small_len) = (
        postcard::to_allocvec(&big)?.len(),
        postcard::to_allocvec(&small)?.len(),
    );
    assert!(
        big_len <= small_len + 8 && big_len < 200,
        "a proxy never carries the value ({big_len} bytes, {small_len} for one element)"
    );
    assert!(store.exists(Proxy::key(&p))?);

    // the ephemeral proxy is stored until its first resolve
    let once_key = *Proxy::key(&once);
    assert!(store.exists(&once_key)?);
    assert_eq!(*once, vec![7u8]);
    assert!(!store.exists(&once_key)?);

    // the owner, its published update, and the borrows that ended
    let owner_key = *OwnedProxy::key(&owner);
    let i = store.inspect(&owner_key)?.expect("the owner's object is stored");
    assert!(i.owner && i.readers == 0 && !i.writer);
    assert_eq!(i.version, 2, "one update");
    assert_eq!(store.get::<Vec<u64>>(&owner_key)?, Some(vec![1, 2, 3, 4]));
    assert_eq!(*borrow(&owner)?, vec![1, 2, 3, 4]);

    // the copy is a new object with its own owner
    let copy_key = *OwnedProxy::key(&copy);
    assert_ne!(copy_key, owner_key);
    assert!(store.inspect(&copy_key)?.expect("stored").owner);
    assert_eq!(
        store.get::<Vec<u64>>(&copy_key)?,
        Some(vec![1, 2, 3, 4]),
        "the copy misses the update published through `w` before it was made"
    );

    // the adopted proxy's object is owned, and goes with its owner
    let adopted_key = *OwnedProxy::key(&adopted);
    assert!(store.inspect(&adopted_key)?.expect("stored").owner);
    assert_eq!(*adopted, vec![9]);

    drop(owner);
    assert!(!store.exists(&owner_key)?);
    assert!(store.exists(&copy_key)?, "dropping the source leaves the copy");
    drop(copy);
    drop(adopted);
    assert!(!store.exists(&copy_key)? && !store.exists(&adopted_key)?);

    // what is left: the three plain objects, until evicted
    let mut left = store.keys()?;
    left.sort();
    let mut plain = vec![*Proxy::key(&p), *Proxy::key(&big), *Proxy::key(&small)];
    plain.sort();
    assert_eq!(left, plain);
    assert_eq!(store.evict_batch(&plain)?, vec![true, true, true]);
    assert!(store.keys()?.is_empty());
    Ok(())
}

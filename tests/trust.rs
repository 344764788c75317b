//! The trust policy: which stores proxy and ticket bytes may connect this
//! process to (`borrowstore::trust`), that opening a store for bytes never
//! creates anything, and that such stores are shared, bounded and closed
//! with their last handle. (What they hold is counted in
//! `trust_resources.rs`; a million hostile inputs in `trust_flood.rs`.)
//!
//! Every test that changes the process-wide policy (the bound, or a pattern
//! that another test's URLs could match) holds [`serial`]; patterns name
//! directories of their own test.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use borrowstore::{
    BorrowTicket, Error, Key, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, StoreConfig, borrow,
    trust,
};

/// Tests that change the bound take turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fresh directory path under cargo's temp dir (not created).
fn fresh_dir(tag: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("trust")
        .join(format!("{tag}-{}-{}", std::process::id(), Key::random()))
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// `wire` (a proxy's or ticket's bytes) with its store config replaced.
fn with_config(wire: &[u8], config: &StoreConfig) -> Vec<u8> {
    let (_, rest) = postcard::take_from_bytes::<StoreConfig>(wire).expect("a wire form");
    let mut out = postcard::to_allocvec(config).unwrap();
    out.extend_from_slice(rest);
    out
}

fn config(name: &str, url: &str) -> StoreConfig {
    StoreConfig {
        name: name.to_owned(),
        url: url.to_owned(),
    }
}

/// A proxy, an owner ticket and a borrow ticket of a memory store, as bytes
/// to forge others from.
fn samples() -> [Vec<u8>; 3] {
    let store = Store::memory("trust-samples");
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let proxy = Proxy::to_bytes(&store.proxy(vec![1u64]).unwrap()).unwrap();
    let borrow_ticket = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let owner_ticket = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    [proxy, owner_ticket, borrow_ticket]
}

/// Every way bytes of the `i`th kind of [`samples`] reach their store
/// (read a proxy; redeem or cancel a ticket): the errors.
fn errors_of(i: usize, bytes: &[u8]) -> Vec<Error> {
    let out: Vec<Result<(), Error>> = match i {
        0 => vec![Proxy::<Vec<u64>>::from_bytes(bytes).map(drop)],
        1 => vec![
            OwnerTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.redeem().map(drop)),
            OwnerTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.cancel()),
        ],
        _ => vec![
            BorrowTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.redeem().map(drop)),
            BorrowTicket::<Vec<u64>>::from_bytes(bytes).and_then(|t| t.cancel()),
        ],
    };
    out.into_iter()
        .map(|r| r.expect_err("bytes of a store that cannot be reached were accepted"))
        .collect()
}

/// A borrowstore directory `name` in `parent` that nothing in this process
/// has open: made by a store that is dropped at once, never registered.
fn marked_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    let made = Store::builder(format!("maker-{}", dir.display()))
        .url(file_url(&dir))
        .register(false)
        .build()
        .expect("make a store directory");
    drop(made);
    dir
}

// ------------------------------------------------------- the default policy

#[test]
fn bytes_naming_an_unregistered_file_store_are_untrusted_and_create_nothing() {
    let dir = fresh_dir("untrusted");
    let url = file_url(&dir);
    for (i, sample) in samples().iter().enumerate() {
        let forged = with_config(sample, &config("jobs", &url));
        for e in errors_of(i, &forged) {
            match &e {
                Error::Untrusted { url: named } => assert_eq!(named, &url),
                other => panic!("expected Untrusted, got {other:?}"),
            }
            let msg = e.to_string();
            assert!(msg.contains(&url), "{msg}");
            assert!(
                msg.contains(&format!("borrowstore::trust::allow(\"{url}\")")),
                "the message says how to allow it: {msg}"
            );
        }
    }
    assert!(!dir.exists(), "a directory was created for untrusted bytes");
    assert!(!dir.parent().unwrap().join("jobs").exists());
    assert!(Store::registered("jobs").is_none());
}

#[test]
fn bytes_naming_an_unregistered_redis_store_are_untrusted_and_connect_nowhere() {
    // A listener that would see any connection attempt.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().unwrap().port()
    );
    for (i, sample) in samples().iter().enumerate() {
        let forged = with_config(sample, &config("cache", &url));
        for e in errors_of(i, &forged) {
            assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "untrusted bytes connected to the server they named"
    );
}

#[test]
fn a_password_in_a_refused_url_is_not_repeated_in_the_message() {
    let url = "redis://user:hunter2@127.0.0.1:1/0";
    let [proxy, ..] = samples();
    let e = Proxy::<Vec<u64>>::from_bytes(&with_config(&proxy, &config("c", url))).unwrap_err();
    assert!(matches!(e, Error::Untrusted { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(msg.contains("redis://user:***@127.0.0.1:1/0"), "{msg}");
}

#[test]
fn a_registered_store_is_trusted_by_name_and_url() {
    let dir = fresh_dir("registered");
    let url = file_url(&dir);
    let store = Store::open(&url).unwrap();
    let p = store.proxy(vec![7u64]).unwrap();
    let bytes = Proxy::to_bytes(&p).unwrap();
    let back = Proxy::<Vec<u64>>::from_bytes(&bytes).unwrap();
    assert!(Proxy::store(&back).same_store(&store));
    assert_eq!(*back, vec![7]);
    // The same URL under another name is not the registered store.
    let renamed = with_config(&bytes, &config("another-name", &url));
    assert!(matches!(
        Proxy::<Vec<u64>>::from_bytes(&renamed),
        Err(Error::Untrusted { .. })
    ));
    // Nor is the same name with another URL.
    let moved = with_config(&bytes, &config(&url, &format!("{url}-elsewhere")));
    assert!(matches!(
        Proxy::<Vec<u64>>::from_bytes(&moved),
        Err(Error::Untrusted { .. })
    ));
    assert!(!Path::new(&format!("{}-elsewhere", dir.display())).exists());
}

// ------------------------------------------------------------ allowing

#[test]
fn an_allowed_store_opens_is_shared_and_is_never_registered() {
    let _turn = serial();
    let parent = fresh_dir("allowed");
    let dir = marked_dir(&parent, "jobs");
    let url = file_url(&dir);
    // Put an object there, through a store of our own that is then closed.
    let key = {
        let own = Store::builder("trust-allowed-writer")
            .url(&url)
            .register(false)
            .build()
            .unwrap();
        own.put(&vec![4u64, 2]).unwrap()
    };
    let [proxy, ..] = samples();
    let forged = with_config(&proxy, &config("jobs-allowed", &url));

    assert!(matches!(
        Proxy::<Vec<u64>>::from_bytes(&forged),
        Err(Error::Untrusted { .. })
    ));

    trust::allow(&format!("{}/*", file_url(&parent))).unwrap();
    let p = Proxy::<Vec<u64>>::from_bytes(&forged).unwrap();
    let q = Proxy::<Vec<u64>>::from_bytes(&forged).unwrap();
    assert!(Proxy::store(&p).same_store(Proxy::store(&q)), "one store");
    assert_eq!(Proxy::store(&p).url(), url);
    assert_eq!(Proxy::store(&p).name(), "jobs-allowed");
    assert!(
        Store::registered("jobs-allowed").is_none(),
        "not registered"
    );
    let p = Proxy::store(&p).proxy_from_key::<Vec<u64>>(key);
    assert_eq!(*p, vec![4, 2]);
    // A proxy read from bytes writes back the same bytes.
    let again = Proxy::to_bytes(&Proxy::<Vec<u64>>::from_bytes(&forged).unwrap()).unwrap();
    assert_eq!(again, forged);
}

#[test]
fn an_allowed_directory_that_is_not_a_borrowstore_directory_is_refused_and_left_alone() {
    let _turn = serial();
    let parent = fresh_dir("not-a-store");
    let plain = parent.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("notes.txt"), b"mine").unwrap();
    let missing = parent.join("missing");
    trust::allow(&format!("{}/*", file_url(&parent))).unwrap();
    for dir in [&plain, &missing] {
        for (i, sample) in samples().iter().enumerate() {
            let forged = with_config(sample, &config("x", &file_url(dir)));
            for e in errors_of(i, &forged) {
                assert!(matches!(e, Error::Connector { .. }), "{e:?}");
                let msg = e.to_string();
                assert!(msg.contains("not a borrowstore directory"), "{msg}");
            }
        }
    }
    assert!(!missing.exists(), "a directory was created for bytes");
    let left: Vec<_> = std::fs::read_dir(&plain)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn disallowing_refuses_later_bytes_and_keeps_open_handles_working() {
    let _turn = serial();
    let dir = marked_dir(&fresh_dir("disallow"), "d");
    let url = file_url(&dir);
    let pattern = format!("{url}?*");
    let [proxy, ..] = samples();
    let forged = with_config(&proxy, &config("disallow", &url));
    trust::allow(&pattern).unwrap();
    assert!(trust::allowed().contains(&pattern));
    let p = Proxy::<Vec<u64>>::from_bytes(&forged).unwrap();
    assert!(trust::disallow(&pattern));
    assert!(!trust::disallow(&pattern));
    assert!(matches!(
        Proxy::<Vec<u64>>::from_bytes(&forged),
        Err(Error::Untrusted { .. })
    ));
    let key = Proxy::store(&p).put(&5u8).unwrap();
    assert_eq!(Proxy::store(&p).get::<u8>(&key).unwrap(), Some(5));
}

#[test]
fn open_promotes_a_store_that_bytes_opened() {
    let _turn = serial();
    let dir = marked_dir(&fresh_dir("promote"), "p");
    let url = file_url(&dir);
    trust::allow(&url).unwrap();
    let [proxy, ..] = samples();
    let forged = with_config(&proxy, &config(&url, &url));
    let before = trust::open_stores();
    let p = Proxy::<Vec<u64>>::from_bytes(&forged).unwrap();
    assert_eq!(trust::open_stores(), before + 1);
    let own = Store::open(&url).unwrap();
    assert!(own.same_store(Proxy::store(&p)), "the open store is reused");
    assert!(Store::registered(&url).unwrap().same_store(&own));
    assert_eq!(trust::open_stores(), before, "no longer counted");
    trust::disallow(&url);
    // Registered now: trusted without the pattern.
    assert!(Proxy::<Vec<u64>>::from_bytes(&forged).is_ok());

    // `register` makes a store that bytes opened the process's own too.
    let other = marked_dir(&fresh_dir("promote"), "r");
    let url = file_url(&other);
    trust::allow(&url).unwrap();
    let forged = with_config(&proxy, &config("promote-by-register", &url));
    let p = Proxy::<Vec<u64>>::from_bytes(&forged).unwrap();
    assert_eq!(trust::open_stores(), before + 1);
    Proxy::store(&p).register();
    assert_eq!(trust::open_stores(), before);
    assert!(
        Store::registered("promote-by-register").is_some_and(|s| s.same_store(Proxy::store(&p)))
    );
    trust::disallow(&url);
}

// ------------------------------------------------------------ the bound

#[test]
fn past_the_bound_bytes_fail_clearly_and_every_open_store_keeps_working() {
    let _turn = serial();
    let parent = fresh_dir("bound");
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| marked_dir(&parent, &format!("s{i}")))
        .collect();
    let own = Store::open(&file_url(&parent.join("own"))).unwrap();
    trust::allow(&format!("{}/*", file_url(&parent))).unwrap();
    let [proxy, ..] = samples();
    let forged: Vec<Vec<u8>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| with_config(&proxy, &config(&format!("bound-{i}"), &file_url(d))))
        .collect();

    let limit = trust::open_stores() + 2;
    trust::set_max_stores(limit);
    let a = Proxy::<Vec<u64>>::from_bytes(&forged[0]).unwrap();
    let b = Proxy::<Vec<u64>>::from_bytes(&forged[1]).unwrap();
    let refused = Proxy::<Vec<u64>>::from_bytes(&forged[2]);
    match &refused {
        Err(e @ Error::TooManyStores { limit: l, url }) => {
            assert_eq!(*l, limit);
            assert_eq!(url, &file_url(&dirs[2]));
            assert!(e.to_string().contains("set_max_stores"), "{e}");
        }
        other => panic!("expected TooManyStores, got {other:?}"),
    }
    // What is open keeps working, and so does the process's own store.
    for s in [Proxy::store(&a), Proxy::store(&b), &own] {
        let k = s.put(&1u32).unwrap();
        assert_eq!(s.get::<u32>(&k).unwrap(), Some(1));
    }
    // More bytes of a store that is open need no new slot.
    assert!(Proxy::<Vec<u64>>::from_bytes(&forged[0]).is_ok());
    drop(a);
    let c = Proxy::<Vec<u64>>::from_bytes(&forged[2]).expect("a slot was freed");
    assert_eq!(Proxy::store(&c).url(), file_url(&dirs[2]));
    trust::set_max_stores(trust::DEFAULT_MAX_STORES);
    drop((b, c));
}

// ------------------------------------------------------ memory stores

#[test]
fn a_memory_store_of_this_process_works_as_before() {
    let store = Store::memory("trust-local-memory");
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    let back = OwnerTicket::<Vec<u64>>::from_bytes(&bytes)
        .unwrap()
        .redeem()
        .unwrap();
    assert_eq!(*back, vec![3]);
    assert!(OwnedProxy::store(&back).same_store(&store));
    // Not registered any more: refused, and nothing is made for it.
    let p = Proxy::to_bytes(&store.proxy(1u8).unwrap()).unwrap();
    Store::unregister("trust-local-memory");
    assert!(matches!(
        Proxy::<u8>::from_bytes(&p),
        Err(Error::Untrusted { .. })
    ));
    assert!(Store::registered("trust-local-memory").is_none());
    store.register();
    assert_eq!(*Proxy::<u8>::from_bytes(&p).unwrap(), 1);
}

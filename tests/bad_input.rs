//! Bad input gets a clear error, never a panic, and loses no data.

use borrowstore::{BorrowTicket, Error, Key, OwnerTicket, Proxy, Store};
use borrowstore_testkit::Suite;

/// Names this suite's file store directories.
const SUITE: Suite = borrowstore_testkit::suite!("bad-input");

#[test]
fn path_traversal_and_absolute_keys_are_invalid() {
    for bad in [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        "a/b",
        "00000000000000000000000000000000/../x",
        "0000000000000000000000000000000\0",
        "",
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ] {
        assert!(
            matches!(bad.parse::<Key>(), Err(Error::InvalidKey { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn malformed_urls_are_invalid_url_errors() {
    for bad in [
        "",
        "memory",
        "nonsense://x",
        "file://relative/path",
        "file://",
        "file:///tmp/../etc",
        "file:///tmp/x?lease_ms=-1",
        "file:///tmp/x?unknown=1",
        "redis://localhost:notaport",
        "redis://localhost:6379/0?ns=has space",
        "redis://localhost:6379/0?timeout_ms=0",
    ] {
        assert!(
            matches!(Store::open(bad), Err(Error::InvalidUrl { .. })),
            "{bad:?}: {:?}",
            Store::open(bad).map(|s| s.url().to_owned())
        );
    }
}

/// `memory://` names no store: it used to open (and register) a memory
/// store with the empty name; it is an invalid URL, wherever a URL is read.
#[test]
fn a_memory_url_without_a_name_is_an_invalid_url() {
    match Store::open("memory://") {
        Err(Error::InvalidUrl { url, reason }) => {
            assert_eq!(url, "memory://");
            assert!(reason.contains("name"), "{reason}");
        }
        other => panic!(
            "expected InvalidUrl, got {:?}",
            other.map(|s| s.name().to_owned())
        ),
    }
    assert!(matches!(
        Store::builder("").build(),
        Err(Error::InvalidUrl { .. })
    ));
    assert!(matches!(
        Store::from_config(&borrowstore::StoreConfig {
            name: "bad-input-empty".into(),
            url: "memory://".into(),
        }),
        Err(Error::InvalidUrl { .. })
    ));
    assert!(Store::registered("").is_none(), "nothing was registered");
    // `Store::memory` cannot fail: with the empty name it is still an
    // in-process store, but one that no URL reaches.
    let anonymous = Store::memory("");
    assert_eq!(anonymous.url(), "memory://");
    let p = anonymous.proxy(5u8).unwrap();
    assert_eq!(*p, 5);
    assert!(matches!(
        Proxy::<u8>::from_bytes(&Proxy::to_bytes(&p).unwrap()),
        Err(Error::InvalidUrl { .. })
    ));
    // A name is all it takes.
    assert_eq!(Store::open("memory://x").unwrap().name(), "x");
}

#[test]
fn rediss_without_tls_support_is_a_clear_error_not_a_panic() {
    match Store::open("rediss://localhost:6380/0") {
        Err(Error::InvalidUrl { reason, .. }) => assert!(!reason.is_empty()),
        // A build with TLS support accepts the URL; using it needs a server.
        Ok(_) => {}
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

#[test]
fn malformed_wire_bytes_are_malformed_errors() {
    let samples: [&[u8]; 5] = [
        b"",
        b"\x00",
        b"\xff\xff\xff\xff",
        b"not a proxy at all",
        &[0x80; 40],
    ];
    for bytes in samples {
        assert!(
            matches!(
                Proxy::<Vec<u64>>::from_bytes(bytes),
                Err(Error::Malformed { .. })
            ),
            "{bytes:?}"
        );
        assert!(matches!(
            OwnerTicket::<Vec<u64>>::from_bytes(bytes),
            Err(Error::Malformed { .. })
        ));
        assert!(matches!(
            BorrowTicket::<Vec<u64>>::from_bytes(bytes),
            Err(Error::Malformed { .. })
        ));
    }
}

#[test]
fn a_proxy_naming_an_unreachable_url_is_an_error_at_decode_time() {
    // A well-formed proxy whose store config carries a bad URL: decoding it
    // must fail cleanly (the URL is checked before anything is opened).
    let store = Store::memory("bad-input-proxy");
    let p = store.proxy(1u32).unwrap();
    let mut bytes = Proxy::to_bytes(&p).unwrap();
    // The URL is the second string in the wire form; corrupt its scheme.
    let pos = bytes
        .windows(9)
        .position(|w| w == b"memory://")
        .expect("url in wire form");
    bytes[pos..pos + 6].copy_from_slice(b"bogus!");
    assert!(matches!(
        Proxy::<u32>::from_bytes(&bytes),
        Err(Error::Malformed { .. }) | Err(Error::InvalidUrl { .. })
    ));
    // Nothing was lost.
    assert_eq!(*p, 1);
}

#[test]
fn oversized_values_are_refused_and_store_nothing() {
    let store = Store::builder("bad-input-limit")
        .max_value_size(64)
        .build()
        .unwrap();
    let before = store.keys().unwrap().len();
    assert!(matches!(
        store.put(&vec![0u8; 1000]),
        Err(Error::TooLarge { size, limit: 64 }) if size > 64
    ));
    assert_eq!(store.keys().unwrap().len(), before);
    assert!(store.put(&vec![0u8; 8]).is_ok());
}

#[test]
fn the_size_limit_applies_to_every_value_a_file_store_encodes() {
    let dir = SUITE.file_dir_named("size-limit");
    let store = Store::builder(format!("bad-input-file-{}", Key::random()))
        .url(format!("file://{}", dir.display()))
        .max_value_size(64)
        .build()
        .unwrap();
    assert!(matches!(
        store.owned_proxy(vec![0u8; 1000]),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        store.proxy(vec![0u8; 1000]),
        Err(Error::TooLarge { .. })
    ));
    let mut owner = store.owned_proxy(vec![0u8; 8]).unwrap();
    owner.extend_from_slice(&[1u8; 1000]);
    assert!(matches!(
        borrowstore::update(&mut owner),
        Err(Error::TooLarge { .. })
    ));
    assert!(
        borrowstore::OwnedProxy::is_modified(&owner),
        "the change is kept"
    );
    assert_eq!(
        store
            .get::<Vec<u8>>(borrowstore::OwnedProxy::key(&owner))
            .unwrap(),
        Some(vec![0u8; 8])
    );
    drop(owner);
    assert!(store.keys().unwrap().is_empty());
}

/// A file store's I/O errors name the store, the operation and the path,
/// not only the OS error ("No such file or directory" alone said nothing).
#[test]
fn a_file_store_that_cannot_create_its_directory_names_the_path_and_the_operation() {
    let url = "file:///proc/borrowstore-forbidden";
    let err = match Store::open(url) {
        Ok(_) => panic!("a store directory under /proc was created"),
        Err(e) => e,
    };
    assert!(matches!(err, Error::Connector { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(url), "{msg}");
    assert!(
        msg.contains("creating directory /proc/borrowstore-forbidden/objects: "),
        "{msg}"
    );
    assert!(msg.contains("os error"), "the OS error is kept: {msg}");
    // The OS error is still there for code that looks at it.
    let source = std::error::Error::source(&err).expect("a source");
    let io = source
        .downcast_ref::<std::io::Error>()
        .expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    // A store opened under another name names its URL too.
    let err = Store::builder("bad-input-named-file-store")
        .url(url)
        .build()
        .expect_err("refused");
    let msg = err.to_string();
    assert!(msg.contains("bad-input-named-file-store"), "{msg}");
    assert!(msg.contains(url), "{msg}");
    assert!(msg.contains("creating directory"), "{msg}");
}

/// Reads and writes that fail after the store opened name the file too.
#[test]
fn file_store_read_and_write_errors_name_the_path_and_the_operation() {
    let dir = SUITE.file_dir_named("io-errors");
    let url = format!("file://{}", dir.display());
    let store = Store::open(&url).unwrap();
    let key = store.put(&7u32).unwrap();

    // A ledger that is a directory cannot be read.
    let ledger = dir.join("objects").join(format!("{key}.ledger"));
    std::fs::remove_file(&ledger).unwrap();
    std::fs::create_dir(&ledger).unwrap();
    let msg = store.get::<u32>(&key).unwrap_err().to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(
        msg.contains(&format!("reading {}: ", ledger.display())),
        "{msg}"
    );
    assert!(msg.contains("os error"), "{msg}");

    // Values are written to tmp/ first: a tmp/ that is a regular file
    // makes every write fail.
    let tmp = dir.join("tmp");
    std::fs::remove_dir_all(&tmp).unwrap();
    std::fs::write(&tmp, b"not a directory").unwrap();
    let msg = store.put(&8u32).unwrap_err().to_string();
    assert!(msg.contains(&url), "{msg}");
    assert!(
        msg.contains(&format!("creating {}/", tmp.display())),
        "{msg}"
    );
    assert!(msg.contains("os error"), "{msg}");
}

/// A file store's state table has the capacity its directory was made
/// with (`capacity=N`): past it, a put is a clear error, and an evicted
/// object's slot serves again.
#[test]
fn a_full_state_table_is_an_error_not_corruption() {
    let dir = SUITE.file_dir_named("full-table");
    let store = Store::open(&format!("file://{}?capacity=2", dir.display())).unwrap();
    let a = store.put(&1u32).unwrap();
    let _b = store.put(&2u32).unwrap();
    let msg = store.put(&3u32).unwrap_err().to_string();
    assert!(msg.contains("no room for more objects"), "{msg}");
    store.evict(&a).unwrap();
    let c = store.put(&4u32).unwrap();
    assert_eq!(store.get::<u32>(&c).unwrap(), Some(4));
}

/// Damaged or crafted files of a file store give an error, never a panic:
/// a side file that names a slot the table does not have, one of the wrong
/// length, and a table whose header is garbage.
#[test]
fn crafted_file_store_files_are_errors() {
    let dir = SUITE.file_dir_named("crafted");
    let url = format!("file://{}", dir.display());
    let store = Store::open(&url).unwrap();
    let key = store.put(&7u32).unwrap();
    let side = dir.join("objects").join(format!("{key}.ledger"));
    let mut bytes = b"BSO1".to_vec();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&u64::MAX.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    std::fs::write(&side, &bytes).unwrap();
    assert!(matches!(store.get::<u32>(&key), Err(Error::Decode { .. })));
    std::fs::write(&side, b"BSO1\x01").unwrap();
    assert!(matches!(store.get::<u32>(&key), Err(Error::Decode { .. })));
    drop(store);

    let other = SUITE.file_dir_named("crafted-table");
    let url = format!("file://{}", other.display());
    drop(
        Store::builder("crafted-table-maker")
            .url(&url)
            .register(false)
            .build()
            .unwrap(),
    );
    let table = other.join("table");
    let len = std::fs::metadata(&table).unwrap().len();
    let mut garbage = vec![0xffu8; 64];
    garbage.extend_from_slice(&vec![0u8; len as usize - 64]);
    std::fs::write(&table, &garbage).unwrap();
    let msg = Store::builder("crafted-table-reader")
        .url(&url)
        .register(false)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("damaged") || msg.contains("not a borrowstore state table"),
        "{msg}"
    );
}

/// The names of the files in a file store's `objects/`, sorted.
fn object_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A small value's first version lives in its side file (one file per
/// object); a big one, and every later version, is a version file of its
/// own; eviction removes them all.
#[test]
fn file_store_keeps_a_small_first_version_in_the_side_file() {
    let dir = SUITE.file_dir_named("inline-first");
    let store = Store::open(&format!("file://{}", dir.display())).unwrap();
    let small = store.owned_proxy(vec![7u8; 100]).unwrap();
    let key = *borrowstore::OwnedProxy::key(&small);
    assert_eq!(object_files(&dir), vec![format!("{key}.ledger")]);
    assert_eq!(store.get::<Vec<u8>>(&key).unwrap(), Some(vec![7u8; 100]));
    {
        let mut w = borrowstore::mut_borrow(&small).unwrap();
        w.push(8);
        borrowstore::update(&mut w).unwrap();
    }
    assert_eq!(
        object_files(&dir),
        vec![format!("{key}.2.blob"), format!("{key}.ledger")]
    );
    assert_eq!(
        store.get::<Vec<u8>>(&key).unwrap().map(|v| v.len()),
        Some(101)
    );
    drop(small);
    store.flush().unwrap();
    assert!(object_files(&dir).is_empty(), "{:?}", object_files(&dir));

    let big = store.put(&vec![1u8; 200_000]).unwrap();
    assert_eq!(
        object_files(&dir),
        vec![format!("{big}.1.blob"), format!("{big}.ledger")]
    );
    assert_eq!(
        store.get::<Vec<u8>>(&big).unwrap().map(|v| v.len()),
        Some(200_000)
    );
    store.evict(&big).unwrap();
    assert!(object_files(&dir).is_empty(), "{:?}", object_files(&dir));
}

/// A side file that claims to hold the first version but is cut short, or
/// has flags no build writes, is an error, never a panic.
#[test]
fn crafted_inline_side_files_are_errors() {
    let dir = SUITE.file_dir_named("crafted-inline");
    let store = Store::open(&format!("file://{}", dir.display())).unwrap();
    let key = store.put(&7u32).unwrap();
    let side = dir.join("objects").join(format!("{key}.ledger"));
    let good = std::fs::read(&side).unwrap();
    assert_eq!(&good[..4], b"BSO2");
    for cut in [good.len() - 1, 24, 17, 5] {
        std::fs::write(&side, &good[..cut]).unwrap();
        let got = store.get::<u32>(&key);
        assert!(
            matches!(got, Err(Error::Decode { .. }) | Ok(None)),
            "cut to {cut}: {got:?}"
        );
    }
    // The flags word is the 4 bytes before the value: set an unknown bit.
    let mut flags = good.clone();
    let record = u32::from_le_bytes(good[16..20].try_into().unwrap()) as usize;
    flags[20 + record] |= 2;
    std::fs::write(&side, &flags).unwrap();
    assert!(matches!(store.get::<u32>(&key), Err(Error::Decode { .. })));
    std::fs::write(&side, &good).unwrap();
    assert_eq!(store.get::<u32>(&key).unwrap(), Some(7));
}

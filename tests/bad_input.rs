//! Bad input gets a clear error, never a panic, and loses no data.

use borrowstore::{BorrowTicket, Error, Key, OwnerTicket, Proxy, Store};

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
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bad-input-{}", Key::random()));
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

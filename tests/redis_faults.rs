//! The Redis store when things go wrong: the server dies and comes back,
//! a third party damages a value, the server cannot be reached.

use std::time::{Duration, Instant};

use borrowstore::{Error, OwnedProxy, Store, borrow, mut_borrow, update};
use borrowstore_testkit::redis_server::RedisServer;
use borrowstore_testkit::{retry_until_ok, unique_name};

type V = Vec<u64>;

fn assert_connector_error_within<T: std::fmt::Debug>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> Result<T, Error>,
) {
    let start = Instant::now();
    let r = f();
    let took = start.elapsed();
    assert!(
        matches!(r, Err(Error::Connector { .. })),
        "{what}: expected a connector error, got {r:?}"
    );
    assert!(took < limit, "{what}: took {took:?}, limit {limit:?}");
}

#[test]
fn a_killed_server_gives_errors_within_the_timeout_and_the_store_recovers_after_restart() {
    let mut server = RedisServer::start_persistent();
    // 300 ms per operation; callers give up after 3 × that + 200 ms at most.
    let store = Store::open(&server.url(&unique_name("fault"), "timeout_ms=300")).unwrap();
    let limit = Duration::from_secs(3);

    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let r1 = borrow(&owner).unwrap();
    let r2 = borrow(&owner).unwrap();
    drop(r1); // applied before the crash
    store.flush().unwrap();
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 1);

    server.kill();
    assert_connector_error_within(limit, "borrow", || borrow(&owner));
    assert_connector_error_within(limit, "mut_borrow", || mut_borrow(&owner));
    assert_connector_error_within(limit, "get", || store.get::<V>(&key));
    assert_connector_error_within(limit, "put", || store.put(&7u8));
    assert_connector_error_within(limit, "exists", || store.exists(&key));
    // Drop neither blocks nor panics while the server is down: the release
    // is queued, and kept.
    let start = Instant::now();
    drop(r2);
    assert!(start.elapsed() < Duration::from_millis(100), "drop blocked");
    assert_connector_error_within(limit, "flush", || store.flush());

    server.restart();
    // The queued release is applied once the server is back, exactly once.
    retry_until_ok(Duration::from_secs(10), || store.flush());
    let state = store.inspect(&key).unwrap().unwrap();
    assert_eq!(state.readers, 0, "{state:?}");
    assert!(state.owner && !state.writer, "{state:?}");

    // The same store works again.
    let mut w = mut_borrow(&owner).unwrap();
    w.push(4);
    update(&mut w).unwrap();
    drop(w);
    assert_eq!(*borrow(&owner).unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(store.inspect(&key).unwrap().unwrap().version, 2);
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
    // Releasing again (a retried script) changes nothing and evicts nothing twice.
    assert!(store.keys().unwrap().is_empty());
}

#[test]
fn an_owner_dropped_while_the_server_is_down_is_evicted_after_restart() {
    let mut server = RedisServer::start_persistent();
    let store = Store::open(&server.url(&unique_name("fault"), "timeout_ms=300")).unwrap();
    let owner = store.owned_proxy(String::from("x")).unwrap();
    let key = *OwnedProxy::key(&owner);
    server.kill();
    drop(owner);
    server.restart();
    retry_until_ok(Duration::from_secs(10), || store.flush());
    assert!(!store.exists(&key).unwrap());
    assert!(store.keys().unwrap().is_empty());
}

#[test]
fn a_value_damaged_by_a_third_party_is_a_decode_error() {
    let server = RedisServer::start();
    let ns = unique_name("damage");
    let store = Store::open(&server.url(&ns, "")).unwrap();
    let key = store.put(&vec![1u64, 2]).unwrap();
    let hash = format!("{ns}:{{{key}}}:s");
    let reply = server.command(&[b"HSET", hash.as_bytes(), b"b", b"garbage"]);
    assert!(
        reply.starts_with(b":0"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(matches!(store.get::<V>(&key), Err(Error::Decode { .. })));
    let p = store.proxy_from_key::<V>(key);
    assert!(matches!(
        borrowstore::Proxy::resolve(&p),
        Err(Error::Decode { .. })
    ));
    // Nothing was lost or changed by the failed reads.
    assert!(store.exists(&key).unwrap());
}

#[test]
fn keys_outside_the_namespace_are_never_touched() {
    let server = RedisServer::start();
    server.command(&[b"SET", b"someone-else:key", b"keep me"]);
    let ns = unique_name("ns");
    let store = Store::open(&server.url(&ns, "")).unwrap();
    for i in 0..20u64 {
        let owner = store.owned_proxy(vec![i]).unwrap();
        let r = borrow(&owner).unwrap();
        drop(owner);
        drop(r);
        let k = store.put(&i).unwrap();
        store.evict(&k).unwrap();
    }
    store.flush().unwrap();
    let reply = server.command(&[b"GET", b"someone-else:key"]);
    assert_eq!(reply, b"$7\r\nkeep me\r\n");
    let keys = server.command(&[b"KEYS", b"*"]);
    let text = String::from_utf8_lossy(&keys);
    assert!(text.contains("someone-else:key"), "{text}");
    assert!(!text.contains(&ns), "objects left behind: {text}");
}

#[test]
fn the_store_works_inside_a_current_thread_runtime_and_from_drop() {
    let server = RedisServer::start();
    let store = Store::open(&server.url(&unique_name("rt"), "")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let owner = store.owned_proxy(vec![5u64]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let r = borrow(&owner).unwrap();
        let task = tokio::spawn(async move { r.iter().sum::<u64>() });
        assert_eq!(task.await.unwrap(), 5);
        store.flush_async().await.unwrap();
        assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 0);
        drop(owner);
        store.flush_async().await.unwrap();
        assert!(!store.exists(&key).unwrap());
    });
}

#[test]
fn an_unreachable_server_is_a_connector_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Store::open(&format!(
        "redis://127.0.0.1:{port}/0?ns={}&timeout_ms=200",
        unique_name("down")
    ))
    .unwrap();
    assert_connector_error_within(Duration::from_secs(2), "put", || store.put(&1u8));
    assert_connector_error_within(Duration::from_secs(2), "owned_proxy", || {
        store.owned_proxy(1u8)
    });
}

#[test]
fn malformed_redis_urls_are_invalid_url_errors() {
    for bad in [
        "redis://127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/0?ns=",
        "redis://127.0.0.1:6379/0?ns=a/b",
        "redis://127.0.0.1:6379/0?lease_ms=0",
        "redis://127.0.0.1:6379/0?timeout_ms=soon",
    ] {
        assert!(
            matches!(Store::open(bad), Err(Error::InvalidUrl { .. })),
            "{bad}"
        );
    }
}

#[test]
fn auth_in_the_url_is_used_and_a_wrong_password_is_an_error() {
    let server = RedisServer::start_with_password("s3cret");
    let ns = unique_name("auth");
    let good = Store::open(&format!(
        "redis://:s3cret@127.0.0.1:{}/0?ns={ns}",
        server.port()
    ))
    .unwrap();
    let owner = good.owned_proxy(vec![1u64]).unwrap();
    assert_eq!(*borrow(&owner).unwrap(), vec![1]);
    drop(owner);
    good.flush().unwrap();
    assert!(good.keys().unwrap().is_empty());

    let bad = Store::open(&format!(
        "redis://:wrong@127.0.0.1:{}/0?ns={ns}&timeout_ms=300",
        server.port()
    ))
    .unwrap();
    assert_connector_error_within(Duration::from_secs(3), "put with a wrong password", || {
        bad.put(&1u8)
    });
}

/// A listener that accepts connections and never answers: a frozen node.
/// Kept open while the returned listener lives.
fn silent_node() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// The error of `f`, which must be an `Error::Connector` within
/// `timeout` + 10 % (+ 100 ms for a busy machine), and name `node` and
/// the operation `op`.
fn connection_failure(
    timeout: Duration,
    node: &str,
    op: &str,
    f: impl FnOnce() -> Result<borrowstore::Key, Error>,
) -> String {
    let start = Instant::now();
    let r = f();
    let took = start.elapsed();
    let limit = timeout + timeout / 10 + Duration::from_millis(100);
    let Err(e @ Error::Connector { .. }) = r else {
        panic!("expected a connector error, got {r:?}");
    };
    let message = e.to_string();
    assert!(took < limit, "took {took:?}, limit {limit:?}: {message}");
    assert!(message.contains(node), "{message:?} does not name {node}");
    assert!(message.contains(op), "{message:?} does not name {op}");
    message
}

#[test]
fn a_wrong_password_names_the_node_and_fails_within_the_timeout() {
    let server = RedisServer::start_with_password("s3cret");
    let node = format!("127.0.0.1:{}", server.port());
    let bad = Store::open(&format!(
        "redis://:wrong@{node}/0?ns={}&timeout_ms=500",
        unique_name("auth")
    ))
    .unwrap();
    let message = connection_failure(Duration::from_millis(500), &node, "`put`", || bad.put(&1u8));
    assert!(
        message.to_lowercase().contains("authentication failed"),
        "{message}"
    );
}

#[test]
fn a_frozen_server_names_the_node_and_fails_within_the_timeout() {
    let (_frozen, port) = silent_node();
    let node = format!("127.0.0.1:{port}");
    let store = Store::open(&format!(
        "redis://{node}/0?ns={}&timeout_ms=400",
        unique_name("frozen")
    ))
    .unwrap();
    for _ in 0..2 {
        connection_failure(Duration::from_millis(400), &node, "`put`", || {
            store.put(&1u8)
        });
    }
}

#[test]
fn a_cluster_that_is_down_is_a_clear_error_within_the_timeout() {
    // Three nodes that accept and never answer, and one where nothing
    // listens.
    let frozen: Vec<_> = (0..3).map(|_| silent_node()).collect();
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut nodes: Vec<String> = frozen
        .iter()
        .map(|(_, p)| format!("127.0.0.1:{p}"))
        .collect();
    nodes.push(format!("127.0.0.1:{refused}"));
    let store = Store::open(&format!(
        "redis+cluster://{}?ns={}&timeout_ms=600",
        nodes.join(","),
        unique_name("down")
    ))
    .unwrap();
    for _ in 0..2 {
        connection_failure(Duration::from_millis(600), &nodes[0], "`put`", || {
            store.put(&1u8)
        });
    }
    // Nothing listens anywhere.
    drop(frozen);
    let store = Store::open(&format!(
        "redis+cluster://{}?ns={}&timeout_ms=600",
        nodes.join(","),
        unique_name("down")
    ))
    .unwrap();
    let message = connection_failure(Duration::from_millis(600), &nodes[3], "`put`", || {
        store.put(&1u8)
    });
    assert!(message.contains("the cluster of"), "{message}");
}

/// A TLS server whose certificate the client does not trust, and a plain
/// client at a TLS port: clear errors naming the node, within the timeout.
#[cfg(feature = "redis-tls")]
#[test]
fn a_tls_server_with_an_unknown_authority_is_a_clear_error_within_the_timeout() {
    let server = borrowstore_testkit::redis_server::shared_tls();
    let node = format!("127.0.0.1:{}", server.port());
    // An authority of its own, which did not sign the server's certificate.
    let other = std::env::temp_dir().join(unique_name("other-ca"));
    let other_ca = borrowstore_testkit::redis_server::Tls::generate_in(&other).ca;
    let untrusted = Store::open(&format!(
        "rediss://{node}/0?ns={}&timeout_ms=500&tls_ca={}",
        unique_name("tls"),
        other_ca.display()
    ))
    .unwrap();
    let message = connection_failure(Duration::from_millis(500), &node, "`put`", || {
        untrusted.put(&1u8)
    });
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    let plain = Store::open(&format!(
        "redis://{node}/0?ns={}&timeout_ms=500",
        unique_name("tls")
    ))
    .unwrap();
    connection_failure(Duration::from_millis(500), &node, "`put`", || {
        plain.put(&1u8)
    });
    // And the right authority works.
    let trusted = Store::open(&server.url(&unique_name("tls"), "timeout_ms=500")).unwrap();
    let key = trusted.put(&1u8).unwrap();
    assert!(trusted.evict(&key).unwrap());
    let _ = std::fs::remove_dir_all(&other);
}

//! Borrow + resolve of 1 KiB over Redis, next to raw redis-rs commands on
//! the same server.

use std::hint::black_box;
use std::time::Instant;

use borrowstore::{OwnedProxy, Proxy, RefProxy, Store, borrow, borrow_async};

use crate::measure::{Budget, emit_time, time, time_loop};

/// The 1 KiB value both sides read.
fn value_1k() -> Vec<u8> {
    (0..1024u32).map(|i| (i % 251) as u8).collect()
}

/// Raw redis-rs `GET` (sync and async multiplexed), `SET` + `DEL`, and
/// borrowstore's `borrow` + `RefProxy::resolve` + drop of a 1 KiB owner.
pub fn run(server: &str, store: &Store, budget: Budget) {
    let value = value_1k();
    let client = redis::Client::open(server).expect("redis URL");
    let mut con = client.get_connection().expect("connect to redis");
    let raw_key = format!("bench-harness:raw:{}", std::process::id());
    let _: () = redis::cmd("SET")
        .arg(&raw_key)
        .arg(value.as_slice())
        .query(&mut con)
        .expect("SET");

    let t = time_loop(budget, || {
        let v: Vec<u8> = redis::cmd("GET")
            .arg(black_box(&raw_key))
            .query(&mut con)
            .expect("GET");
        black_box(v);
    });
    emit_time(
        "raw_get_1k",
        "redis",
        "reference",
        t,
        "redis-rs sync Connection: GET of a 1 KiB value (one round trip)",
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut multiplexed = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connect to redis");
    let t = time(budget, |n| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let v: Vec<u8> = redis::cmd("GET")
                    .arg(black_box(&raw_key))
                    .query_async(&mut multiplexed)
                    .await
                    .expect("GET");
                black_box(v);
            }
            start.elapsed()
        })
    });
    emit_time(
        "raw_get_1k_async",
        "redis",
        "reference",
        t,
        "redis-rs multiplexed async connection on a current-thread runtime: GET of 1 KiB",
    );

    let tmp_key = format!("{raw_key}:tmp");
    let t = time_loop(budget, || {
        let _: () = redis::cmd("SET")
            .arg(&tmp_key)
            .arg(black_box(42u64))
            .query(&mut con)
            .expect("SET");
        let _: () = redis::cmd("DEL")
            .arg(&tmp_key)
            .query(&mut con)
            .expect("DEL");
    });
    emit_time(
        "raw_set_del",
        "redis",
        "reference",
        t,
        "redis-rs sync: SET + DEL of a small value (two round trips)",
    );
    let _: () = redis::cmd("DEL")
        .arg(&raw_key)
        .query(&mut con)
        .expect("DEL");

    let owner = store.owned_proxy(value).expect("owned_proxy");
    // The first resolve moves the value into this process's cache.
    black_box(
        borrowstore::OwnedProxy::resolve(&owner)
            .expect("resolve")
            .len(),
    );
    let t = time(budget, |n| {
        let start = Instant::now();
        for _ in 0..n {
            let r = borrow(&owner).expect("borrow");
            black_box(RefProxy::resolve(&r).expect("resolve").len());
            drop(r);
        }
        store.flush().expect("flush");
        start.elapsed()
    });
    emit_time(
        "borrow_resolve_1k",
        "redis",
        "borrowstore",
        t,
        "borrow(&owner) + RefProxy::resolve + drop of a 1 KiB Vec<u8>, value cached and current; \
         each round ends with store.flush(), timed",
    );

    // The async forms, on the current-thread runtime of `raw_get_1k_async`.
    let t = time(budget, |n| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let r = borrow_async(&owner).await.expect("borrow_async");
                black_box(RefProxy::resolve_async(&r).await.expect("resolve").len());
                drop(r);
            }
            store.flush_async().await.expect("flush");
            start.elapsed()
        })
    });
    emit_time(
        "borrow_async_resolve_async_1k",
        "redis",
        "borrowstore",
        t,
        "borrow_async(&owner) + RefProxy::resolve_async + drop of a 1 KiB Vec<u8> on a \
         current-thread runtime (one round trip; value cached and current); each round ends \
         with store.flush_async(), timed",
    );

    let key = *OwnedProxy::key(&owner);
    let t = time(budget, |n| {
        let fresh: Vec<Proxy<Vec<u8>>> = (0..n).map(|_| store.proxy_from_key(key)).collect();
        rt.block_on(async {
            let start = Instant::now();
            for p in &fresh {
                black_box(Proxy::resolve_async(p).await.expect("resolve").len());
            }
            start.elapsed()
        })
    });
    emit_time(
        "resolve_async_1k",
        "redis",
        "borrowstore",
        t,
        "Proxy::resolve_async of a fresh proxy (made untimed) of a 1 KiB object on a \
         current-thread runtime: a version-checked fetch; the decoded value is cached, so no \
         value moves",
    );

    let value = value_1k();
    let t = time(budget, |n| {
        rt.block_on(async {
            let start = Instant::now();
            for _ in 0..n {
                let o = store
                    .owned_proxy_async(value.clone())
                    .await
                    .expect("owned_proxy_async");
                drop(black_box(o));
            }
            store.flush_async().await.expect("flush");
            start.elapsed()
        })
    });
    emit_time(
        "owned_proxy_async_1k",
        "redis",
        "borrowstore",
        t,
        "store.owned_proxy_async(1 KiB Vec<u8>) + drop (evicts; release queued) on a \
         current-thread runtime; each round ends with store.flush_async(), timed",
    );

    drop(owner);
    store.flush().expect("flush");
}

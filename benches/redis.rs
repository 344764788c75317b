//! borrowstore over Redis next to raw redis-rs, in one run, against a
//! `redis-server` this benchmark starts on a free loopback port.
//!
//! ```text
//! cargo bench --bench redis
//! ```
//!
//! | benchmark | what it does | target |
//! |---|---|---|
//! | `redis/raw_get_1k` | redis-rs `GET` of a 1 KiB value (one round trip) | the floor |
//! | `redis/borrow_resolve_1k` | `borrow(&owner)` + `RefProxy::resolve` + drop, 1 KiB, cache fresh | ≤ 1.2 × raw GET |
//! | `redis/borrow_drop_1k` | `borrow(&owner)` + drop, 1 KiB (one round trip: the release rides the next borrow's pipeline) | ≤ 1.2 × raw GET |
//! | `redis/borrow_resolve_1k_stale` | the same after another process published (value moves) | — |
//! | `redis/owner_create_drop_1k` | `owned_proxy` + drop (put + queued release) | — |
//! | `redis/raw_set_del_1k` | redis-rs `SET` + `DEL` | the floor for create + drop |
//! | `redis/owned_proxy_async_1k` | `owned_proxy_async` + drop, awaited on the current-thread runtime of `raw_get_1k` | ≤ 1.3 × raw GET |
//! | `redis/resolve_async_1k` | `Proxy::resolve_async` of a fresh proxy of a 1 KiB object (version check; value cached) | ≤ 1.3 × raw GET |
//! | `redis/borrow_async_resolve_async_1k` | `borrow_async` + `RefProxy::resolve_async` + drop (one round trip) | ≤ 1.3 × raw GET |
//! | `wake/redis_borrow_async` | release → grant of a waiting `borrow_async` (the release script's `PUBLISH` wakes it) | — |
//!
//! `raw_get_1k` is the async `GET` of redis-rs (multiplexed connection) on a
//! current-thread runtime; the `_async` rows run on that same runtime.

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use borrowstore::{OwnedProxy, Proxy, RefProxy, Store, borrow, borrow_async, mut_borrow, update};
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (./scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    Server(child, port)
}

fn bench_redis(c: &mut Criterion) {
    let server = start_server();
    let url = format!("redis://127.0.0.1:{}/0", server.1);
    let value: Vec<u8> = (0..1024).map(|i| i as u8).collect();

    let mut g = c.benchmark_group("redis");

    // The floor: one GET of a 1 KiB value through redis-rs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut raw = rt.block_on(async {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    rt.block_on(async {
        let _: () = raw.set("raw:1k", value.clone()).await.unwrap();
    });
    g.bench_function("raw_get_1k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v: Vec<u8> = raw.get("raw:1k").await.unwrap();
                black_box(v)
            })
        })
    });
    g.bench_function("raw_set_del_1k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let _: () = raw.set("raw:tmp", value.as_slice()).await.unwrap();
                let _: () = raw.del("raw:tmp").await.unwrap();
            })
        })
    });

    let store = Store::open(&format!("{url}?ns=bench")).unwrap();
    let owner = store.owned_proxy(value.clone()).unwrap();
    g.bench_function("borrow_resolve_1k", |b| {
        b.iter(|| {
            let r = borrow(&owner).unwrap();
            black_box(RefProxy::resolve(&r).unwrap().len());
        })
    });
    g.bench_function("borrow_drop_1k", |b| {
        b.iter(|| drop(black_box(borrow(&owner).unwrap())))
    });
    g.bench_function("borrow_resolve_1k_stale", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Another writer publishes, so the next borrow moves the value.
                let mut w = mut_borrow(&owner).unwrap();
                w[0] = w[0].wrapping_add(1);
                update(&mut w).unwrap();
                drop(w);
                store.flush().unwrap();
                let start = Instant::now();
                let r = borrow(&owner).unwrap();
                black_box(RefProxy::resolve(&r).unwrap().len());
                drop(r);
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("owner_create_drop_1k", |b| {
        b.iter(|| drop(black_box(store.owned_proxy(value.clone()).unwrap())))
    });
    g.bench_function("owned_proxy_async_1k", |b| {
        b.iter(|| {
            rt.block_on(async {
                drop(black_box(
                    store.owned_proxy_async(value.clone()).await.unwrap(),
                ))
            })
        })
    });
    let key = *OwnedProxy::key(&owner);
    g.bench_function("resolve_async_1k", |b| {
        b.iter_batched(
            || store.proxy_from_key::<Vec<u8>>(key),
            |p| {
                rt.block_on(async { black_box(Proxy::resolve_async(&p).await.unwrap().len()) });
                p
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("borrow_async_resolve_async_1k", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = borrow_async(&owner).await.unwrap();
                black_box(RefProxy::resolve_async(&r).await.unwrap().len());
            })
        })
    });
    g.finish();
    drop(owner);
    store.flush().unwrap();

    wake(c, &store);
}

/// Release → grant of a `borrow_async` waiting on a 2-worker runtime (see
/// `benches/wake.rs` for the method).
fn wake(c: &mut Criterion, store: &Store) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let owner = Arc::new(store.owned_proxy(42u64).unwrap());
    // The first waiter starts the store's subscriber.
    drop(rt.block_on(borrow_async(&owner)).unwrap());
    let mut g = c.benchmark_group("wake");
    g.bench_function("redis_borrow_async", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let w = mut_borrow(&owner).unwrap();
                let (started, ready) = std::sync::mpsc::sync_channel(1);
                let o = owner.clone();
                let task = rt.spawn(async move {
                    let _ = started.send(());
                    let r = borrow_async(&o).await.unwrap();
                    let at = Instant::now();
                    drop(r);
                    at
                });
                ready.recv().unwrap();
                std::thread::sleep(Duration::from_millis(1));
                let released = Instant::now();
                drop(w);
                let granted = rt.block_on(task).unwrap();
                total += granted.saturating_duration_since(released);
            }
            total
        })
    });
    g.finish();
    drop(owner);
    store.flush().unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = bench_redis
}
criterion_main!(benches);

//! What opening a store for arriving bytes costs this process, counted in
//! `/proc/self`: refused bytes open no file, start no thread and connect
//! nowhere; a store opened for allowed bytes holds what `trust`'s docs say,
//! and gives all of it back when its last handle is dropped.
//!
//! One test, so that no other test of this binary moves the counts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use borrowstore::{
    Error, Key, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, StoreConfig, borrow, trust,
};

use borrowstore_testkit::redis_server;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Open files and threads of this process.
fn resources() -> (usize, usize) {
    (count("/proc/self/fd"), count("/proc/self/task"))
}

/// Waits (up to 5 s) until `resources()` is `want`; returns what it is.
fn settles_to(want: (usize, usize)) -> (usize, usize) {
    let start = Instant::now();
    loop {
        let now = resources();
        if now == want || start.elapsed() > Duration::from_secs(5) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Connections to `server`, other than the one that asks.
fn clients(server: &redis_server::RedisServer) -> usize {
    let list = server.command(&[b"CLIENT".as_slice(), b"LIST"]);
    String::from_utf8_lossy(&list)
        .lines()
        .filter(|l| l.starts_with("id=") && !l.contains("cmd=client|list"))
        .count()
}

fn with_config(wire: &[u8], name: &str, url: &str) -> Vec<u8> {
    let (_, rest) = postcard::take_from_bytes::<StoreConfig>(wire).expect("a wire form");
    let config = StoreConfig {
        name: name.to_owned(),
        url: url.to_owned(),
    };
    let mut out = postcard::to_allocvec(&config).unwrap();
    out.extend_from_slice(rest);
    out
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

#[test]
fn stores_opened_for_bytes_hold_what_they_say_and_give_it_back() {
    if !Path::new("/proc/self/fd").exists() {
        eprintln!("no /proc/self: skipped");
        return;
    }
    let base: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("trust-resources")
        .join(format!("{}-{}", std::process::id(), Key::random()));
    // Real bytes to forge from.
    let memory = Store::memory("trust-resources");
    let owner = memory.owned_proxy(vec![1u64]).unwrap();
    let proxy = Proxy::to_bytes(&memory.proxy(vec![1u64]).unwrap()).unwrap();
    let borrow_ticket = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let owner_ticket = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    // A store directory, made and closed; an object in it.
    let dir = base.join("allowed").join("jobs");
    let key = {
        let maker = Store::builder("trust-resources-maker")
            .url(file_url(&dir))
            .register(false)
            .build()
            .unwrap();
        maker.put(&vec![9u64]).unwrap()
    };
    let installed = std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let server = installed.then(redis_server::RedisServer::start);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let silent_redis = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().unwrap().port()
    );

    // 1. Refused bytes cost nothing: no file, no thread, no connection.
    let idle = settles_to(resources());
    let forbidden = base.join("forbidden");
    for url in [file_url(&forbidden), silent_redis.clone(), file_url(&dir)] {
        for _ in 0..50 {
            let p = Proxy::<Vec<u64>>::from_bytes(&with_config(&proxy, "x", &url));
            assert!(matches!(p, Err(Error::Untrusted { .. })), "{p:?}");
            let t = OwnerTicket::<Vec<u64>>::from_bytes(&with_config(&owner_ticket, "x", &url))
                .unwrap()
                .redeem();
            assert!(matches!(t, Err(Error::Untrusted { .. })), "{t:?}");
        }
    }
    assert_eq!(resources(), idle, "refused bytes held files or threads");
    assert!(!forbidden.exists());
    assert!(listener.accept().is_err(), "refused bytes connected");

    // 2. An allowed file store: one thread; lock files as objects use them.
    trust::allow(&format!("{}/*", file_url(&base.join("allowed")))).unwrap();
    let p = Proxy::<Vec<u64>>::from_bytes(&with_config(&proxy, "jobs", &file_url(&dir))).unwrap();
    assert_eq!(trust::open_stores(), 1);
    let store = Proxy::store(&p).clone();
    let (files, threads) = resources();
    assert_eq!(threads, idle.1 + 1, "a file store starts one thread");
    assert_eq!(files, idle.0, "no file is opened before an object is used");
    assert_eq!(*store.proxy_from_key::<Vec<u64>>(key), vec![9]);
    let (files, _) = resources();
    assert_eq!(files, idle.0 + 1, "one lock file for one object");
    // More bytes of the same store share it.
    let q = Proxy::<Vec<u64>>::from_bytes(&with_config(&proxy, "jobs", &file_url(&dir))).unwrap();
    assert!(Proxy::store(&q).same_store(&store));
    assert_eq!(resources(), (idle.0 + 1, idle.1 + 1));
    assert_eq!(trust::open_stores(), 1);
    // 3. Closed with its last handle.
    drop((p, q, store));
    assert_eq!(
        settles_to(idle),
        idle,
        "a closed file store left files or threads"
    );
    assert_eq!(trust::open_stores(), 0);

    // 4. An allowed Redis store: two threads, one connection on first use;
    //    all of it gone with the last handle.
    if let Some(server) = &server {
        let url = server.url(&format!("trust-resources-{}", std::process::id()), "");
        trust::allow(&url).unwrap();
        // Tickets of objects in the Redis store, made by a store of our own
        // that is then closed.
        let tickets: Vec<Vec<u8>> = {
            let own = Store::builder("trust-resources-redis")
                .url(&url)
                .register(false)
                .build()
                .unwrap();
            let t = (0..3u64)
                .map(|i| {
                    let owner = own.owned_proxy(vec![i]).unwrap();
                    let t = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
                    with_config(&t, "remote", &url)
                })
                .collect();
            own.flush().unwrap();
            t
        };
        // (The first Redis store of a process also makes tokio's
        // process-wide signal pipe: measure from here.)
        std::thread::sleep(Duration::from_millis(200));
        let idle = settles_to(resources());
        let refused = with_config(&tickets[0], "remote", &silent_redis);
        assert!(matches!(
            OwnerTicket::<Vec<u64>>::from_bytes(&refused)
                .unwrap()
                .redeem(),
            Err(Error::Untrusted { .. })
        ));
        assert_eq!(resources(), idle);
        // Opened and closed again and again: nothing accumulates.
        for (i, forged) in tickets.iter().enumerate() {
            let owner = OwnerTicket::<Vec<u64>>::from_bytes(forged)
                .unwrap()
                .redeem()
                .expect("an allowed Redis store");
            assert_eq!(*owner, vec![i as u64]);
            let (files, threads) = resources();
            assert_eq!(threads, idle.1 + 2, "a Redis store starts two threads");
            assert!(
                files <= idle.0 + 5,
                "one connection and the I/O thread's event loop: {} more files",
                files - idle.0
            );
            assert_eq!(clients(server), 1, "one connection");
            assert_eq!(trust::open_stores(), 1);
            let store = OwnedProxy::store(&owner).clone();
            drop(owner);
            store.flush().unwrap();
            drop(store);
            assert_eq!(
                settles_to(idle),
                idle,
                "a closed Redis store left threads or files"
            );
            assert_eq!(clients(server), 0, "the connection is closed");
            assert_eq!(trust::open_stores(), 0);
        }
    } else {
        eprintln!("redis-server is not installed: the Redis part is skipped");
    }
    drop(borrow_ticket);
    let _ = std::fs::remove_dir_all(&base);
}

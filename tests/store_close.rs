//! A store's threads end with it: once the last handle of a file or Redis
//! store is dropped, its lease renewer (and the Redis I/O thread) stop at
//! once, instead of sleeping out the rest of a renewal period (10 s with
//! the default lease) first.
//!
//! One test, so that no other test of this binary moves the thread count.

use std::path::Path;
use std::time::{Duration, Instant};

use borrowstore::{Key, Store};

use borrowstore_testkit::redis_server;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Waits up to `within` for the thread count to be `want`.
fn settles_to(want: usize, within: Duration) -> usize {
    let start = Instant::now();
    loop {
        let now = threads();
        if now == want || start.elapsed() > within {
            return now;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_closed_store_leaves_no_thread() {
    if !Path::new("/proc/self/task").exists() {
        eprintln!("no /proc/self: skipped");
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("store-close")
        .join(format!("{}-{}", std::process::id(), Key::random()));
    let installed = std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let server = installed.then(redis_server::RedisServer::start);
    let mut urls = vec![format!("file://{}", dir.display())];
    urls.extend(server.as_ref().map(|s| s.url("store-close", "")));
    for url in urls {
        let idle = settles_to(threads(), Duration::from_millis(100));
        let store = Store::builder("store-close")
            .url(&url)
            .register(false)
            .build()
            .unwrap();
        let key = store.put(&1u8).unwrap();
        assert!(threads() > idle, "{url}: the store runs threads");
        store.evict(&key).unwrap();
        store.flush().unwrap();
        drop(store);
        assert_eq!(
            settles_to(idle, Duration::from_secs(1)),
            idle,
            "{url}: a closed store's threads are still running"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! The conformance suite against the Redis store, on a real `redis-server`
//! started for each test on a free loopback port.

mod conformance;
mod redis_server;

fn redis_store() -> borrowstore::Store {
    let ns = conformance::unique_name("ns");
    let url = redis_server::url_for_this_test(&ns, "");
    borrowstore::Store::open(&url).expect("open redis store")
}

conformance::conformance_suite!(redis_store());

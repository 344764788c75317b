//! The conformance suite against the Redis store, on a real `redis-server`
//! started for each test on a free loopback port.

mod conformance;
mod redis_server;

use std::sync::Arc;

use borrowstore::connector::{DEFAULT_LEASE, DEFAULT_TIMEOUT, RedisConnector, RedisOptions};

/// A Redis store in a fresh namespace, as `Store::open(url)` makes it (named
/// by its URL), and its connector.
fn redis_store() -> conformance::Fixture {
    let ns = conformance::unique_name("ns");
    let url = redis_server::url_for_this_test(&ns, "");
    let (server, _) = url.split_once('?').expect("the URL has a query");
    let options = RedisOptions {
        url: server.to_owned(),
        namespace: ns,
        lease: DEFAULT_LEASE,
        timeout: DEFAULT_TIMEOUT,
    };
    let connector = RedisConnector::new(url.clone(), options).expect("open redis store");
    conformance::Fixture::new(&url, &url, Arc::new(connector))
}

conformance::conformance_suite!(redis_store());

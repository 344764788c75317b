//! The conformance suite against the Redis store, on a real `redis-server`
//! started for each test on a free loopback port.

borrowstore_testkit::conformance_suite!(borrowstore_testkit::suite!("redis-store").redis_fixture());

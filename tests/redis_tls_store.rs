//! The conformance suite against the Redis store over TLS (`rediss://`,
//! with `tls_ca=` naming the test's own certificate authority), on one
//! `redis-server --tls-port` started once for this test binary; each test
//! in a namespace of its own.

borrowstore_testkit::conformance_suite!(
    borrowstore_testkit::suite!("redis-tls-store")
        .redis_fixture_at(&borrowstore_testkit::redis_server::shared_tls().base_url())
);

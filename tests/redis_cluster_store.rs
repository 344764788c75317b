//! The conformance suite against the Redis store on a Redis Cluster: six
//! `redis-server --cluster-enabled yes` nodes on loopback (three primaries,
//! one replica each), started once for this test binary; each test in a
//! namespace of its own.

borrowstore_testkit::conformance_suite!(
    borrowstore_testkit::suite!("redis-cluster-store")
        .redis_fixture_at(&borrowstore_testkit::redis_cluster::shared().base_url())
);

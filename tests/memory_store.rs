//! The conformance suite against the in-memory store.

borrowstore_testkit::conformance_suite!(
    borrowstore_testkit::suite!("memory-store").memory_fixture()
);

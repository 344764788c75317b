//! The conformance suite against the in-memory store.

mod conformance;

conformance::conformance_suite!(borrowstore::Store::memory(conformance::unique_name(
    "memory"
)));

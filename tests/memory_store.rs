//! The conformance suite against the in-memory store.

mod conformance;

conformance::conformance_suite!(conformance::memory_fixture());

//! The conformance suite against the file store (a directory shared by the
//! processes of one host), each test in a fresh directory under cargo's
//! per-target temp dir.

borrowstore_testkit::conformance_suite!(borrowstore_testkit::suite!("file-store").file_fixture());

//! The conformance suite against the file store (a directory shared by the
//! processes of one host).

mod conformance;

/// A file store in a fresh directory under cargo's per-target temp dir.
fn file_store() -> borrowstore::Store {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("file-store")
        .join(conformance::unique_name("file"));
    borrowstore::Store::open(&format!("file://{}", dir.display())).expect("open file store")
}

conformance::conformance_suite!(file_store());

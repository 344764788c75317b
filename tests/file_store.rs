//! The conformance suite against the file store (a directory shared by the
//! processes of one host).

mod conformance;

use std::sync::Arc;

use borrowstore::connector::FileConnector;

/// A file store in a fresh directory under cargo's per-target temp dir, as
/// `Store::open("file://<dir>")` makes it (named by its URL), and its
/// connector.
fn file_store() -> conformance::Fixture {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("file-store")
        .join(conformance::unique_name("file"));
    let url = format!("file://{}", dir.display());
    let connector = FileConnector::open(url.clone(), dir).expect("open file store");
    conformance::Fixture::new(&url, &url, Arc::new(connector))
}

conformance::conformance_suite!(file_store());

//! A store under test and its connector.

use std::sync::Arc;

use borrowstore::Store;
use borrowstore::connector::Connector;

/// A store under test and its connector: the checks of connector operations
/// that the store API does not offer (raw bytes, the batch forms, a keyed
/// evict) call the connector itself.
///
/// ```
/// use std::sync::Arc;
/// use borrowstore::connector::MemoryConnector;
/// use borrowstore_testkit::Fixture;
///
/// let f = Fixture::new("fixture-doc", "memory://fixture-doc", Arc::new(MemoryConnector::new("fixture-doc")));
/// assert_eq!(f.store.url(), "memory://fixture-doc");
/// ```
pub struct Fixture {
    /// The store, registered under its name.
    pub store: Store,
    /// The connector `store` was built over.
    pub connector: Arc<dyn Connector>,
}

impl Fixture {
    /// A registered store named `name` over `connector`, which other
    /// processes reach by `url`: what
    /// `Store::builder(name).connector(connector, url).build()` makes.
    pub fn new(name: &str, url: &str, connector: Arc<dyn Connector>) -> Fixture {
        let store = Store::builder(name)
            .connector(connector.clone(), url)
            .build()
            .expect("build the store under test");
        Fixture { store, connector }
    }
}

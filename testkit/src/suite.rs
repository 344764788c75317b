//! Fresh stores of every kind for the tests of one test binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use borrowstore::Store;
use borrowstore::connector::{FileConnector, MemoryConnector};

use crate::fixture::Fixture;
use crate::names::unique_name;

/// What a test binary's stores are named after and where its file stores
/// live: every store a [`Suite`] makes is new, so tests never share one.
///
/// A test binary declares its suite once, usually with [`suite!`](crate::suite!)
/// (which puts file stores under cargo's per-target temp dir):
///
/// ```
/// use borrowstore_testkit::Suite;
///
/// const SUITE: Suite = Suite::new("example", "/tmp/borrowstore-testkit-docs");
///
/// let store = SUITE.memory_store();
/// let key = store.put(&7u32).unwrap();
/// assert_eq!(store.get::<u32>(&key).unwrap(), Some(7));
///
/// let dir = SUITE.file_dir();
/// assert!(dir.starts_with("/tmp/borrowstore-testkit-docs/example"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Suite {
    name: &'static str,
    tmp_dir: &'static str,
    /// Whether Redis stores come with an observer (read by the Redis
    /// factories only).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    observer: bool,
}

impl Suite {
    /// A suite named `name` (its stores' names start with it), whose file
    /// stores live under `tmp_dir/name/`.
    pub const fn new(name: &'static str, tmp_dir: &'static str) -> Suite {
        Suite {
            name,
            tmp_dir,
            observer: false,
        }
    }

    /// The same suite, whose Redis stores come with an observer: an
    /// independent connection to the same store, which
    /// [`observed`](crate::observed) (and so [`borrows`](crate::borrows) and
    /// [`assert_empty`](crate::assert_empty)) read through, so that a check
    /// never applies a release still queued in the store's own connection.
    pub const fn with_observer(self) -> Suite {
        Suite {
            observer: true,
            ..self
        }
    }

    /// The suite's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// A fresh in-memory store, as [`Store::memory`] makes it.
    pub fn memory_store(&self) -> Store {
        Store::memory(unique_name(&format!("{}-memory", self.name)))
    }

    /// A fresh directory for a file store (not created yet):
    /// `<tmp_dir>/<suite name>/file-…`.
    pub fn file_dir(&self) -> PathBuf {
        self.file_dir_named("file")
    }

    /// A fresh directory for a file store, its name starting with `prefix`:
    /// `<tmp_dir>/<suite name>/<prefix>-…`.
    pub fn file_dir_named(&self, prefix: &str) -> PathBuf {
        Path::new(self.tmp_dir)
            .join(self.name)
            .join(unique_name(prefix))
    }

    /// A file store in a fresh directory, as
    /// [`Store::open("file://<dir>")`](Store::open) makes it.
    pub fn file_store(&self) -> Store {
        Store::open(&format!("file://{}", self.file_dir().display())).expect("open file store")
    }

    /// A Redis store in a fresh namespace, on a `redis-server` started for
    /// this test (it lives until the test's thread ends), as
    /// [`Store::open`] makes it.
    #[cfg(feature = "redis")]
    pub fn redis_store(&self) -> Store {
        let url = crate::redis_server::url_for_this_test(&unique_name(self.name), "");
        let store = Store::open(&url).expect("open redis store");
        if self.observer {
            crate::probe::observe(&url);
        }
        store
    }

    /// A fresh in-memory store (what [`Store::memory`] makes) and its
    /// connector, for the [conformance suite](crate::conformance).
    pub fn memory_fixture(&self) -> Fixture {
        let name = unique_name(&format!("{}-memory", self.name));
        let url = format!("memory://{name}");
        Fixture::new(&name, &url, Arc::new(MemoryConnector::new(name.clone())))
    }

    /// A file store in a fresh directory, as `Store::open("file://<dir>")`
    /// makes it (named by its URL), and its connector.
    pub fn file_fixture(&self) -> Fixture {
        let dir = self.file_dir();
        let url = format!("file://{}", dir.display());
        let connector = FileConnector::open(url.clone(), dir).expect("open file store");
        Fixture::new(&url, &url, Arc::new(connector))
    }

    /// A Redis store in a fresh namespace on a `redis-server` started for
    /// this test, as `Store::open(url)` makes it (named by its URL), and its
    /// connector.
    #[cfg(feature = "redis")]
    pub fn redis_fixture(&self) -> Fixture {
        let server = crate::redis_server::base_url_for_this_test();
        self.redis_fixture_at(&server)
    }

    /// A Redis store in a fresh namespace on the servers of `base` (a URL
    /// without `ns`, `lease_ms` and `timeout_ms`: one server, a cluster,
    /// over TLS — for example [`RedisCluster::base_url`]), as
    /// `Store::open(url)` makes it (named by its URL), and its connector.
    ///
    /// [`RedisCluster::base_url`]: crate::redis_cluster::RedisCluster::base_url
    #[cfg(feature = "redis")]
    pub fn redis_fixture_at(&self, base: &str) -> Fixture {
        use borrowstore::connector::{
            DEFAULT_LEASE, DEFAULT_TIMEOUT, RedisConnector, RedisOptions,
        };

        let ns = unique_name(self.name);
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}ns={ns}");
        let options = RedisOptions {
            url: base.to_owned(),
            namespace: ns,
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
        };
        let connector = RedisConnector::new(url.clone(), options).expect("open redis store");
        Fixture::new(&url, &url, Arc::new(connector))
    }

    /// A Redis store in a fresh namespace on the servers of `base` (as for
    /// [`redis_fixture_at`](Self::redis_fixture_at)), as [`Store::open`]
    /// makes it.
    #[cfg(feature = "redis")]
    pub fn redis_store_at(&self, base: &str) -> Store {
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}ns={}", unique_name(self.name));
        let store = Store::open(&url).expect("open redis store");
        if self.observer {
            crate::probe::observe(&url);
        }
        store
    }
}

/// The [`Suite`] named `$name`, with its file stores under cargo's
/// per-target temp dir (`CARGO_TARGET_TMPDIR`, which cargo sets for
/// integration tests and benchmarks only).
///
/// ```ignore
/// const SUITE: borrowstore_testkit::Suite = borrowstore_testkit::suite!("lifetimes");
/// ```
#[macro_export]
macro_rules! suite {
    ($name:expr) => {
        $crate::Suite::new($name, env!("CARGO_TARGET_TMPDIR"))
    };
}

/// Runs every listed check (a `fn(Store)` at the test crate's root) against
/// a fresh memory, file and Redis store of the suite `$suite` (a [`Suite`]
/// constant at the crate's root), one `#[test]` each, in the modules
/// `memory`, `file` and `redis`. The Redis tests are there when the
/// testkit's `redis` feature is.
///
/// ```ignore
/// const SUITE: borrowstore_testkit::Suite = borrowstore_testkit::suite!("mine");
///
/// fn put_then_get(store: borrowstore::Store) {
///     let key = store.put(&1u8).unwrap();
///     assert_eq!(store.get::<u8>(&key).unwrap(), Some(1));
/// }
///
/// borrowstore_testkit::on_every_store!(SUITE; put_then_get);
/// ```
#[macro_export]
macro_rules! on_every_store {
    ($suite:ident; $($check:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $check() { super::$check(super::$suite.memory_store()) } )*
        }
        mod file {
            $( #[test] fn $check() { super::$check(super::$suite.file_store()) } )*
        }
        $crate::__with_redis! {
            mod redis {
                $( #[test] fn $check() { super::$check(super::$suite.redis_store()) } )*
            }
        }
    };
}

/// Its input when the testkit has its `redis` feature, else nothing: the
/// Redis tests of [`on_every_store!`] follow the testkit's feature, not the
/// calling crate's.
#[cfg(feature = "redis")]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_redis {
    ($($t:tt)*) => { $($t)* };
}

/// Its input when the testkit has its `redis` feature, else nothing.
#[cfg(not(feature = "redis"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __with_redis {
    ($($t:tt)*) => {};
}

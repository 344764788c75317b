//! What a store is, as data: a name and a connector URL.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::connector::{Connector, DEFAULT_LEASE, FileConnector, MemoryConnector};
#[cfg(feature = "redis")]
use crate::connector::{RedisConnector, RedisOptions};
use crate::error::{Error, Result};

/// A store's serializable description: enough for a proxy or ticket that
/// arrives in another process to find or reopen its store — if that process
/// trusts it (see [`trust`](crate::trust)).
///
/// # Wire form
///
/// The name, then the URL (postcard: two strings). The URL of a
/// `memory://` store is written with the process it lives in appended,
/// `memory://name#process=<pid>-<16 hex digits>` (a random id per
/// process), so that another process can tell it cannot reach that store
/// ([`Error::LocalStore`]) instead of finding an empty one. Reading keeps
/// the suffix in [`url`](StoreConfig::url);
/// [`Store::from_config`](crate::Store::from_config) reads it. A memory
/// URL without the suffix (written by an earlier version) is taken to be of
/// this process. File and Redis URLs are written as they are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
pub struct StoreConfig {
    /// The store's name, its key in the process-wide registry.
    pub name: String,
    /// The connector URL, as accepted by [`Store::open`](crate::Store::open).
    pub url: String,
}

impl Serialize for StoreConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("StoreConfig", 2)?;
        out.serialize_field("name", &self.name)?;
        out.serialize_field("url", &*Origin::wire_url(&self.url))?;
        out.end()
    }
}

/// The process a memory store lives in, as a memory URL on the wire names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) pid: u32,
    id: u64,
}

const ORIGIN_TAG: &str = "#process=";

impl Origin {
    /// This process.
    pub(crate) fn here() -> Origin {
        static HERE: std::sync::OnceLock<Origin> = std::sync::OnceLock::new();
        *HERE.get_or_init(|| Origin {
            pid: std::process::id(),
            id: rand::random(),
        })
    }

    /// `url` as it goes on the wire: a memory URL with this process
    /// appended, unless it names a process already.
    fn wire_url(url: &str) -> std::borrow::Cow<'_, str> {
        if url.starts_with("memory://") && Origin::split(url).1.is_none() {
            let here = Origin::here();
            format!("{url}{ORIGIN_TAG}{}-{:016x}", here.pid, here.id).into()
        } else {
            url.into()
        }
    }

    /// The URL without its process suffix, and the process (memory URLs
    /// that end with a well-formed suffix only).
    pub(crate) fn split(url: &str) -> (&str, Option<Origin>) {
        let parsed = url
            .strip_prefix("memory://")
            .and_then(|rest| rest.rfind(ORIGIN_TAG).map(|i| "memory://".len() + i))
            .and_then(|at| {
                let (pid, id) = url[at + ORIGIN_TAG.len()..].split_once('-')?;
                let digits = |s: &str, n: usize| !s.is_empty() && s.len() <= n;
                let ok = digits(pid, 10)
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && id.len() == 16
                    && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                ok.then_some(())?;
                Some((
                    at,
                    Origin {
                        pid: pid.parse().ok()?,
                        id: u64::from_str_radix(id, 16).ok()?,
                    },
                ))
            });
        match parsed {
            Some((at, origin)) => (&url[..at], Some(origin)),
            None => (url, None),
        }
    }
}

/// A parsed connector URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `memory://name`, `name` not empty
    Memory { name: String },
    /// `file:///absolute/dir[?lease_ms=N&capacity=N]`
    File {
        root: PathBuf,
        lease: Duration,
        /// Objects the state table of a new directory has room for.
        capacity: Option<u64>,
    },
    /// `redis://…[?ns=NAME&lease_ms=N&timeout_ms=N]` (and `rediss://`,
    /// `redis+cluster://`, `rediss+cluster://`)
    #[cfg(feature = "redis")]
    Redis(RedisOptions),
}

impl Location {
    pub(crate) fn parse(url: &str) -> Result<Location> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: url.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://…, for example memory://name"))?;
        match scheme {
            "memory" => {
                if rest.is_empty() {
                    return Err(bad("a memory store needs a name: memory://name"));
                }
                if rest.chars().any(|c| c.is_control()) {
                    return Err(bad("the store name contains control characters"));
                }
                Ok(Location::Memory {
                    name: rest.to_owned(),
                })
            }
            "file" => {
                let (path, query) = match rest.split_once('?') {
                    Some((p, q)) => (p, Some(q)),
                    None => (rest, None),
                };
                if !path.starts_with('/') {
                    return Err(bad(
                        "a file store needs an absolute path: file:///path/to/dir",
                    ));
                }
                if path.chars().any(char::is_control) || path.split('/').any(|part| part == "..") {
                    return Err(bad("the path contains a control character or '..'"));
                }
                let mut lease = DEFAULT_LEASE;
                let mut capacity = None;
                for pair in query.into_iter().flat_map(|q| q.split('&')) {
                    match pair.split_once('=') {
                        Some(("capacity", v)) => {
                            let n: u64 = v
                                .parse()
                                .ok()
                                .filter(|n| (1..=1 << 24).contains(n))
                                .ok_or_else(|| {
                                    bad("capacity must be an integer from 1 to 16777216")
                                })?;
                            capacity = Some(n);
                        }
                        Some(("lease_ms", v)) => {
                            let ms: u64 = v
                                .parse()
                                .ok()
                                .filter(|ms| *ms > 0)
                                .ok_or_else(|| bad("lease_ms must be a positive integer"))?;
                            lease = Duration::from_millis(ms);
                        }
                        _ => {
                            return Err(bad(&format!(
                                "unknown parameter {pair:?}; supported: lease_ms, capacity"
                            )));
                        }
                    }
                }
                Ok(Location::File {
                    root: PathBuf::from(path),
                    lease,
                    capacity,
                })
            }
            #[cfg(feature = "redis")]
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => RedisOptions::from_url(url)
                .map(Location::Redis)
                .map_err(|reason| bad(&reason)),
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => Err(bad(
                "this borrowstore was built without the `redis` feature, so it has no Redis connector",
            )),
            _ => Err(bad(&format!(
                "unknown scheme {scheme:?}; supported: memory, file, redis, rediss, redis+cluster, rediss+cluster"
            ))),
        }
    }

    /// The connector for this location, for a store named `name`, opened
    /// because bytes named it: like [`connect`](Location::connect), except
    /// that a file store's directory must exist and be a borrowstore
    /// directory (nothing is created).
    pub(crate) fn connect_existing(&self, name: &str) -> Result<Arc<dyn Connector>> {
        match self {
            Location::File { root, lease, .. } => Ok(Arc::new(FileConnector::open_existing(
                name,
                root.clone(),
                *lease,
            )?)),
            _ => self.connect(name),
        }
    }

    /// The connector for this location, for a store named `name`.
    pub(crate) fn connect(&self, name: &str) -> Result<Arc<dyn Connector>> {
        Ok(match self {
            Location::Memory { .. } => Arc::new(MemoryConnector::new(name)),
            Location::File {
                root,
                lease,
                capacity,
            } => Arc::new(FileConnector::with_options(
                name,
                root.clone(),
                *lease,
                *capacity,
            )?),
            #[cfg(feature = "redis")]
            Location::Redis(options) => Arc::new(RedisConnector::new(name, options.clone())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memory_urls() {
        assert_eq!(
            Location::parse("memory://demo").unwrap(),
            Location::Memory {
                name: "demo".into()
            }
        );
    }

    #[test]
    fn parses_file_urls() {
        assert_eq!(
            Location::parse("file:///tmp/x?lease_ms=250").unwrap(),
            Location::File {
                root: "/tmp/x".into(),
                lease: Duration::from_millis(250),
                capacity: None,
            }
        );
        assert_eq!(
            Location::parse("file:///data").unwrap(),
            Location::File {
                root: "/data".into(),
                lease: DEFAULT_LEASE,
                capacity: None,
            }
        );
        assert_eq!(
            Location::parse("file:///data?capacity=1000&lease_ms=5").unwrap(),
            Location::File {
                root: "/data".into(),
                lease: Duration::from_millis(5),
                capacity: Some(1000),
            }
        );
    }

    #[test]
    fn memory_urls_name_their_process_on_the_wire() {
        let config = StoreConfig {
            name: "probe".into(),
            url: "memory://probe".into(),
        };
        let bytes = postcard::to_allocvec(&config).unwrap();
        let read: StoreConfig = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(read.name, "probe");
        let (url, origin) = Origin::split(&read.url);
        assert_eq!(url, "memory://probe");
        assert_eq!(origin, Some(Origin::here()));
        // Written again, it is the same bytes (the suffix is not repeated).
        assert_eq!(postcard::to_allocvec(&read).unwrap(), bytes);
        // Shared stores are written as they are.
        let file = StoreConfig {
            name: "f".into(),
            url: "file:///x".into(),
        };
        let bytes = postcard::to_allocvec(&file).unwrap();
        assert_eq!(postcard::from_bytes::<StoreConfig>(&bytes).unwrap(), file);
    }

    #[test]
    fn only_a_well_formed_suffix_names_a_process() {
        let other = "memory://a#process=1234-00000000000000ff";
        assert_eq!(
            Origin::split(other),
            ("memory://a", Some(Origin { pid: 1234, id: 255 }))
        );
        for url in [
            "memory://a#process=1234-00ff",
            "memory://a#process=-00000000000000ff",
            "memory://a#process=12a4-00000000000000ff",
            "memory://a#process=1234-00000000000000FF",
            "memory://a#process=1234-00000000000000ff ",
            "file:///a#process=1234-00000000000000ff",
            "memory://#proc",
        ] {
            assert_eq!(Origin::split(url), (url, None), "{url}");
        }
        // A name that contains the tag keeps it: only the last one counts.
        let url = "memory://a#process=1-0000000000000001#process=2-0000000000000002";
        assert_eq!(
            Origin::split(url).0,
            "memory://a#process=1-0000000000000001"
        );
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in [
            "",
            "memory",
            "memory:/x",
            "memory://",
            "ftp://x",
            "memory://a\nb",
            "://x",
            "file://relative/dir",
            "file:///a/../etc",
            "file:///a?lease_ms=0",
            "file:///a?lease_ms=x",
            "file:///a?colour=red",
            "file:///a?capacity=0",
            "file:///a?capacity=99999999999",
        ] {
            assert!(
                matches!(Location::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn redis_urls_without_the_redis_feature_are_invalid_url_errors() {
        for url in ["redis://127.0.0.1:6379/0", "rediss://h:6380/0?ns=x"] {
            match Location::parse(url) {
                Err(Error::InvalidUrl { reason, .. }) => {
                    assert!(reason.contains("without the `redis` feature"), "{reason}")
                }
                other => panic!("{url}: expected InvalidUrl, got {other:?}"),
            }
        }
    }
}

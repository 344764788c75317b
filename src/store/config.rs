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
/// arrives in another process to find or reopen its store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoreConfig {
    /// The store's name, its key in the process-wide registry.
    pub name: String,
    /// The connector URL, as accepted by [`Store::open`](crate::Store::open).
    pub url: String,
}

/// A parsed connector URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `memory://name`, `name` not empty
    Memory { name: String },
    /// `file:///absolute/dir[?lease_ms=N]`
    File { root: PathBuf, lease: Duration },
    /// `redis://…[?ns=NAME&lease_ms=N&timeout_ms=N]` (and `rediss://`)
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
                for pair in query.into_iter().flat_map(|q| q.split('&')) {
                    match pair.split_once('=') {
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
                                "unknown parameter {pair:?}; supported: lease_ms"
                            )));
                        }
                    }
                }
                Ok(Location::File {
                    root: PathBuf::from(path),
                    lease,
                })
            }
            #[cfg(feature = "redis")]
            "redis" | "rediss" => RedisOptions::from_url(url)
                .map(Location::Redis)
                .map_err(|reason| bad(&reason)),
            #[cfg(not(feature = "redis"))]
            "redis" | "rediss" => Err(bad(
                "this borrowstore was built without the `redis` feature, so it has no Redis connector",
            )),
            _ => Err(bad(&format!(
                "unknown scheme {scheme:?}; supported: memory, file, redis, rediss"
            ))),
        }
    }

    /// The connector for this location, for a store named `name`.
    pub(crate) fn connect(&self, name: &str) -> Result<Arc<dyn Connector>> {
        Ok(match self {
            Location::Memory { .. } => Arc::new(MemoryConnector::new(name)),
            Location::File { root, lease } => {
                Arc::new(FileConnector::with_lease(name, root.clone(), *lease)?)
            }
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
                lease: Duration::from_millis(250)
            }
        );
        assert_eq!(
            Location::parse("file:///data").unwrap(),
            Location::File {
                root: "/data".into(),
                lease: DEFAULT_LEASE
            }
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

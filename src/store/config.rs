//! What a store is, as data: a name and a connector URL.

use serde::{Deserialize, Serialize};

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
    /// `memory://name`
    Memory { name: String },
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
                if rest.chars().any(|c| c.is_control()) {
                    return Err(bad("the store name contains control characters"));
                }
                Ok(Location::Memory {
                    name: rest.to_owned(),
                })
            }
            "file" | "redis" | "rediss" => Err(bad(&format!(
                "the {scheme} connector is not built into this version"
            ))),
            _ => Err(bad(&format!("unknown scheme {scheme:?}; supported: memory"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_memory_urls() {
        assert_eq!(
            Location::parse("memory://demo").unwrap(),
            Location::Memory { name: "demo".into() }
        );
    }

    #[test]
    fn rejects_malformed_urls() {
        for bad in ["", "memory", "memory:/x", "ftp://x", "memory://a\nb", "://x"] {
            assert!(
                matches!(Location::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad:?}"
            );
        }
    }
}

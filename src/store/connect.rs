//! Opening the store that arriving bytes name: the registered store, or —
//! if the trust policy allows its URL and the bound leaves room — a store
//! opened for them, shared while it is used (see [`trust`](crate::trust)).

use crate::error::{Error, Result};
use crate::trust::{self, Slot};

use super::config::{Location, Origin, StoreConfig};
use super::{Store, registry};

/// The store `config` names, for bytes that arrived: see
/// [`Store::from_config`].
pub(super) fn from_config(config: &StoreConfig) -> Result<Store> {
    // Only memory URLs carry an origin: one from another process names a
    // store that cannot be reached from here, whatever is registered.
    let (url, origin) = Origin::split(&config.url);
    if let Some(origin) = origin
        && origin != Origin::here()
    {
        return Err(Error::LocalStore {
            url: shown(url),
            pid: origin.pid,
        });
    }
    // A URL of one of the crate's schemes must parse; one of another scheme
    // can only name a registered store over a connector of its own.
    let location = Location::parse(url);
    let builtin = url.split_once("://").is_some_and(|(scheme, _)| {
        matches!(
            scheme,
            "memory" | "file" | "redis" | "rediss" | "redis+cluster" | "rediss+cluster"
        )
    });
    if builtin && let Err(e) = location {
        return Err(e);
    }
    let name = config.name.as_str();
    if let Some(s) = registry::get(name).filter(|s| s.url() == url) {
        return Ok(s);
    }
    let location = location?;
    if !trust::is_allowed(url) {
        return Err(Error::Untrusted { url: shown(url) });
    }
    registry::connected_or_open(name, url, || {
        let slot = Slot::take().ok_or_else(|| Error::TooManyStores {
            url: shown(url),
            limit: trust::max_stores(),
        })?;
        let connector = location.connect_existing(name)?;
        let config = StoreConfig {
            name: name.to_owned(),
            url: url.to_owned(),
        };
        Ok(Store::from_connector(config, connector, None, Some(slot)))
    })
}

/// A URL for an error: at most 200 characters.
fn shown(url: &str) -> String {
    url.chars().take(200).collect()
}

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
    let (url, origin) = Origin::split(&config.url);
    let location = Location::parse(url)?;
    if let (Location::Memory { .. }, Some(origin)) = (&location, origin)
        && origin != Origin::here()
    {
        return Err(Error::LocalStore {
            url: shown(url),
            pid: origin.pid,
        });
    }
    let name = config.name.as_str();
    if let Some(s) = registry::get(name).filter(|s| s.url() == url) {
        return Ok(s);
    }
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

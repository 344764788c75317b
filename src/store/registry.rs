//! The process-wide registry of stores by name, and the stores opened for
//! arriving bytes.
//!
//! Two tables:
//!
//! - **registered** stores, held strongly by name: the stores this process
//!   chose ([`Store::memory`], [`Store::open`], a builder, [`Store::register`]).
//!   Bytes that name one of them by its name and URL reach it.
//! - **connected** stores, held weakly by name and URL: the stores opened
//!   because bytes named them (see [`trust`](crate::trust)). Every handle
//!   that bytes of the same store make shares one; it closes when the last
//!   handle is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};

use super::{Inner, Store};

fn registry() -> &'static RwLock<HashMap<String, Store>> {
    static REGISTRY: OnceLock<RwLock<HashMap<String, Store>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

type Connected = Mutex<HashMap<(String, String), Weak<Inner>>>;

fn connected() -> &'static Connected {
    static CONNECTED: OnceLock<Connected> = OnceLock::new();
    CONNECTED.get_or_init(Default::default)
}

pub(crate) fn get(name: &str) -> Option<Store> {
    registry()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .cloned()
}

/// Registers `store`, returning the store it replaced.
pub(crate) fn insert(store: Store) -> Option<Store> {
    registry()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(store.name().to_owned(), store)
}

/// Returns the store registered under `store`'s name with the same URL, or
/// registers `store` under its name.
pub(crate) fn get_or_insert(store: impl FnOnce() -> Store, name: &str, url: &str) -> Store {
    let mut map = registry().write().unwrap_or_else(PoisonError::into_inner);
    if let Some(s) = map.get(name).filter(|s| s.url() == url) {
        return s.clone();
    }
    let s = store();
    map.insert(name.to_owned(), s.clone());
    s
}

/// Returns the store registered under `name` with this URL; else registers
/// `store` if the name is free; else (the name belongs to a store with
/// another URL) returns `store` unregistered, so that a store this process
/// registered is never displaced.
pub(crate) fn get_or_insert_if_free(store: impl FnOnce() -> Store, name: &str, url: &str) -> Store {
    let mut map = registry().write().unwrap_or_else(PoisonError::into_inner);
    match map.get(name) {
        Some(s) if s.url() == url => s.clone(),
        Some(_) => store(),
        None => {
            let s = store();
            map.insert(name.to_owned(), s.clone());
            s
        }
    }
}

/// Registers the store `make` returns under `name`, unless a store is
/// registered there: then `existing` decides, from the registered store,
/// whether to return it (`Ok(Some)`), or to refuse (`Err`). `make` runs
/// without the registry locked; if another thread registered a store under
/// the name meanwhile, `existing` decides about that one.
pub(crate) fn insert_unless_taken<E>(
    name: &str,
    make: impl FnOnce() -> Result<Store, E>,
    existing: impl Fn(&Store) -> Result<Store, E>,
) -> Result<Store, E> {
    if let Some(s) = get(name) {
        return existing(&s);
    }
    let fresh = make()?;
    let mut map = registry().write().unwrap_or_else(PoisonError::into_inner);
    match map.get(name) {
        Some(s) => existing(s),
        None => {
            map.insert(name.to_owned(), fresh.clone());
            Ok(fresh)
        }
    }
}

pub(crate) fn remove(name: &str) -> Option<Store> {
    registry()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(name)
}

/// The open store that arriving bytes connected for `name` and `url`, or
/// else the store `open` makes (then remembered, weakly). `open` runs with
/// the table locked, so that bytes naming the same new store on several
/// threads at once open it once.
pub(crate) fn connected_or_open<E>(
    name: &str,
    url: &str,
    open: impl FnOnce() -> Result<Store, E>,
) -> Result<Store, E> {
    let mut table = connected().lock().unwrap_or_else(PoisonError::into_inner);
    let key = (name.to_owned(), url.to_owned());
    if let Some(inner) = table.get(&key).and_then(Weak::upgrade) {
        return Ok(Store { inner });
    }
    let store = open()?;
    table.retain(|_, w| w.strong_count() > 0);
    table.insert(key, Arc::downgrade(&store.inner));
    Ok(store)
}

/// The open store that arriving bytes connected for `name` and `url`, now
/// taken out of that table (the caller registers it).
pub(crate) fn take_connected(name: &str, url: &str) -> Option<Store> {
    let mut table = connected().lock().unwrap_or_else(PoisonError::into_inner);
    let inner = table
        .remove(&(name.to_owned(), url.to_owned()))?
        .upgrade()?;
    Some(Store { inner })
}

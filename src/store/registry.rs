//! The process-wide registry of stores by name.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use super::Store;

fn registry() -> &'static RwLock<HashMap<String, Store>> {
    static REGISTRY: OnceLock<RwLock<HashMap<String, Store>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

pub(crate) fn get(name: &str) -> Option<Store> {
    registry()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(name)
        .cloned()
}

/// Registers `store`, returning the store it replaced.
pub(crate) fn insert(store: Store) -> Option<Store> {
    registry()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(store.name().to_owned(), store)
}

/// Returns the store registered under `store`'s name with the same URL, or
/// registers `store` under its name.
pub(crate) fn get_or_insert(store: impl FnOnce() -> Store, name: &str, url: &str) -> Store {
    let mut map = registry()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = map.get(name).filter(|s| s.url() == url) {
        return s.clone();
    }
    let s = store();
    map.insert(name.to_owned(), s.clone());
    s
}

/// Returns the store registered under `name` with this URL; else registers
/// `store` if the name is free; else (the name belongs to a store with
/// another URL) returns `store` unregistered, so that bytes from elsewhere
/// can never displace a store this process registered.
pub(crate) fn get_or_insert_if_free(store: impl FnOnce() -> Store, name: &str, url: &str) -> Store {
    let mut map = registry()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
    let mut map = registry()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(name)
}

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

pub(crate) fn remove(name: &str) -> Option<Store> {
    registry()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(name)
}

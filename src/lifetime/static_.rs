//! [`StaticLifetime`]: the process-wide lifetime.

use std::fmt;
use std::sync::OnceLock;

use crate::error::Result;
use crate::key::Key;
use crate::lifetime::{Core, sealed};
use crate::store::Store;

/// The process-wide lifetime: objects that should live as long as the
/// process. There is one ([`StaticLifetime::get`]); it can be closed once,
/// and is then ended for good.
///
/// # At process exit
///
/// ProxyStore evicts the static lifetime's objects from an `atexit` hook.
/// Rust runs no code at process exit without `unsafe` (and this crate
/// forbids `unsafe`), so:
///
/// - **close it yourself** at the end of `main` — [`close`](StaticLifetime::close),
///   or keep the guard of [`StaticLifetime::exit_guard`] in `main`, which
///   closes it when `main` returns or unwinds;
/// - **if the process exits without closing it**, nothing is lost for good:
///   objects in a memory store vanish with the process, and on file and
///   Redis stores the lifetime's claims are leased like every claim — the
///   lease renewer stops with the process, so the objects are reclaimed
///   (evicted) within the store's lease (30 s by default).
///
/// ```standalone_crate
/// use borrowstore::{Lifetime, StaticLifetime, Store};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let _closes_at_end_of_main = StaticLifetime::exit_guard();
/// let store = Store::memory("doc-static-lifetime");
/// let config = store.put_in(StaticLifetime::get(), &"settings".to_owned())?;
/// assert!(store.exists(&config)?);
/// # Ok(()) }
/// ```
pub struct StaticLifetime {
    core: Core,
}

impl StaticLifetime {
    /// The process's static lifetime.
    ///
    /// ```standalone_crate
    /// # use borrowstore::StaticLifetime;
    /// assert!(std::ptr::eq(StaticLifetime::get(), StaticLifetime::get()));
    /// ```
    pub fn get() -> &'static StaticLifetime {
        static STATIC: OnceLock<StaticLifetime> = OnceLock::new();
        STATIC.get_or_init(|| StaticLifetime { core: Core::new() })
    }

    /// Adds the object under `key` in `store` (the static lifetime has no
    /// store of its own). See
    /// [`ContextLifetime::add_key`](crate::ContextLifetime::add_key).
    ///
    /// ```standalone_crate
    /// # use borrowstore::{StaticLifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-static-add-key");
    /// let key = store.put(&1u8)?;
    /// StaticLifetime::get().add_key(&store, key)?;
    /// # Ok(()) }
    /// ```
    pub fn add_key(&self, store: &Store, key: Key) -> Result<()> {
        self.core.add(store, key)
    }

    /// A guard that closes the static lifetime when it is dropped: keep it
    /// in `main`, and the lifetime's objects are evicted when `main`
    /// returns (or unwinds). Unlike handles, this guard's `Drop` waits until
    /// the stores have applied the releases: it is meant for the end of
    /// `main`, where queued releases would otherwise be lost.
    ///
    /// ```standalone_crate
    /// # use borrowstore::{Lifetime, StaticLifetime};
    /// fn main() {
    ///     let _guard = StaticLifetime::exit_guard();
    ///     // ... objects put in StaticLifetime::get() live until here
    /// }
    /// ```
    pub fn exit_guard() -> StaticExitGuard {
        StaticExitGuard { _private: () }
    }
}

impl sealed::Sealed for StaticLifetime {
    fn core(&self) -> &Core {
        &self.core
    }
}

impl fmt::Debug for StaticLifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticLifetime")
            .field("done", &self.done())
            .field("claims", &self.core.len())
            .finish()
    }
}

/// Closes the [`StaticLifetime`] when dropped; see
/// [`StaticLifetime::exit_guard`].
///
/// ```standalone_crate
/// # use borrowstore::{Lifetime, StaticLifetime};
/// let guard = StaticLifetime::exit_guard();
/// drop(guard);
/// assert!(StaticLifetime::get().done());
/// ```
#[must_use = "the static lifetime is closed when the guard drops"]
pub struct StaticExitGuard {
    _private: (),
}

impl Drop for StaticExitGuard {
    fn drop(&mut self) {
        if let Err(e) = StaticLifetime::get().close() {
            tracing::warn!(error = %e, "closing the static lifetime failed");
        }
    }
}

impl fmt::Debug for StaticExitGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticExitGuard")
    }
}

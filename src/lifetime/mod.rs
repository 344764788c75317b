//! Lifetimes: owners of a set of objects that end all at once.
//!
//! A lifetime holds a *holder claim* on each of its objects, counted
//! store-side like every other owner. Ending the lifetime gives the claims
//! back: an object that nothing else owns (no [`OwnedProxy`], no scope, no
//! other lifetime) is then evicted — at once, or when its last borrow ends.
//! An object that is still owned elsewhere lives on.
//!
//! | lifetime | ends |
//! |---|---|
//! | [`ContextLifetime`] | at [`close`](ContextLifetime::close), or when dropped |
//! | [`LeaseLifetime`] | when its lease expires (it can be extended or shortened), or at [`close`](LeaseLifetime::close) |
//! | [`StaticLifetime`] | at [`close`](StaticLifetime::close) — in `main`, or through [`StaticLifetime::exit_guard`] |
//!
//! Objects join a lifetime when they are created in it
//! ([`Store::put_in`], [`Store::proxy_in`]) or later ([`add_key`](ContextLifetime::add_key),
//! [`Lifetime::add_proxy`]). Adding to a lifetime that has ended is
//! [`Error::LifetimeEnded`](crate::Error::LifetimeEnded) and writes nothing.
//!
//! ```
//! use borrowstore::{ContextLifetime, Lifetime, Store};
//! # fn main() -> Result<(), borrowstore::Error> {
//! let store = Store::memory("doc-lifetimes");
//! let lt = ContextLifetime::new(&store);
//! let k = store.put_in(&lt, &"x".to_owned())?;
//! let p = store.proxy_in(&lt, vec![1u8, 2, 3])?;
//! lt.close()?;                       // evicts what only `lt` owned
//! assert!(!store.exists(&k)?);
//! assert!(matches!(store.put_in(&lt, &1u8), Err(borrowstore::Error::LifetimeEnded)));
//! # drop(p); Ok(()) }
//! ```

mod context;
mod lease;
mod static_;

use std::fmt;

pub use context::ContextLifetime;
pub use lease::LeaseLifetime;
pub use static_::{StaticExitGuard, StaticLifetime};

use crate::codec::Storable;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::{OwnedProxy, RefMutProxy, RefProxy};
use crate::proxy::Proxy;
use crate::state::{Claim, ClaimKind, Note, Op};
use crate::store::Store;
use crate::store::manager::{self, Manager};
use crate::sync::{self, Arc, Mutex};

/// Anything that names one stored object: proxies, owners, borrows, and
/// `(store, key)` pairs. Scopes and lifetimes accept any of them.
///
/// The accessors are associated functions (`ObjectRef::key(&p)`), never
/// methods, so they cannot hide a method of the proxied value.
///
/// ```
/// use borrowstore::{ObjectRef, Store};
/// # fn main() -> Result<(), borrowstore::Error> {
/// let store = Store::memory("doc-object-ref");
/// let p = store.proxy(5u32)?;
/// let pair = (store.clone(), *borrowstore::Proxy::key(&p));
/// assert_eq!(ObjectRef::key(&p), ObjectRef::key(&pair));
/// # Ok(()) }
/// ```
pub trait ObjectRef {
    /// The object's store.
    ///
    /// ```
    /// # use borrowstore::{ObjectRef, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-object-ref-store");
    /// let owner = store.owned_proxy(1u8)?;
    /// assert!(ObjectRef::store(&owner).same_store(&store));
    /// # Ok(()) }
    /// ```
    fn store(this: &Self) -> &Store;

    /// The object's key.
    ///
    /// ```
    /// # use borrowstore::{ObjectRef, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-object-ref-key");
    /// let key = store.put(&1u8)?;
    /// assert_eq!(ObjectRef::key(&(&store, key)), key);
    /// # Ok(()) }
    /// ```
    fn key(this: &Self) -> Key;
}

impl<T: Storable> ObjectRef for Proxy<T> {
    fn store(this: &Self) -> &Store {
        Proxy::store(this)
    }
    fn key(this: &Self) -> Key {
        *Proxy::key(this)
    }
}

impl<T: Storable> ObjectRef for OwnedProxy<T> {
    fn store(this: &Self) -> &Store {
        OwnedProxy::store(this)
    }
    fn key(this: &Self) -> Key {
        *OwnedProxy::key(this)
    }
}

impl<T: Storable> ObjectRef for RefProxy<T> {
    fn store(this: &Self) -> &Store {
        RefProxy::store(this)
    }
    fn key(this: &Self) -> Key {
        *RefProxy::key(this)
    }
}

impl<T: Storable> ObjectRef for RefMutProxy<T> {
    fn store(this: &Self) -> &Store {
        RefMutProxy::store(this)
    }
    fn key(this: &Self) -> Key {
        *RefMutProxy::key(this)
    }
}

impl ObjectRef for (Store, Key) {
    fn store(this: &Self) -> &Store {
        &this.0
    }
    fn key(this: &Self) -> Key {
        this.1
    }
}

impl ObjectRef for (&Store, Key) {
    fn store(this: &Self) -> &Store {
        this.0
    }
    fn key(this: &Self) -> Key {
        this.1
    }
}

impl<P: ObjectRef + ?Sized> ObjectRef for &P {
    fn store(this: &Self) -> &Store {
        P::store(this)
    }
    fn key(this: &Self) -> Key {
        P::key(this)
    }
}

pub(crate) mod sealed {
    /// Seals [`Lifetime`](super::Lifetime): only this crate's lifetimes.
    pub trait Sealed {
        /// The lifetime's shared state.
        fn core(&self) -> &super::Core;
    }
}

/// What every lifetime can do: [`ContextLifetime`], [`LeaseLifetime`],
/// [`StaticLifetime`]. Sealed.
///
/// ```
/// use borrowstore::{ContextLifetime, Lifetime, Store};
/// # fn main() -> Result<(), borrowstore::Error> {
/// fn keep<L: Lifetime>(lt: &L, p: &borrowstore::Proxy<u8>) -> Result<(), borrowstore::Error> {
///     lt.add_proxy(p)
/// }
/// let store = Store::memory("doc-lifetime-trait");
/// let lt = ContextLifetime::new(&store);
/// let p = store.proxy(1u8)?;
/// keep(&lt, &p)?;
/// assert!(!lt.done());
/// lt.close()?;
/// assert!(lt.done());
/// assert!(!store.exists(borrowstore::Proxy::key(&p))?);
/// # Ok(()) }
/// ```
pub trait Lifetime: sealed::Sealed {
    /// Whether the lifetime has ended. Once it is true, the lifetime's
    /// releases have been made.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// let lt = ContextLifetime::new(&Store::memory("doc-lifetime-done"));
    /// assert!(!lt.done());
    /// lt.close().unwrap();
    /// assert!(lt.done());
    /// ```
    fn done(&self) -> bool {
        self.core().done()
    }

    /// Ends the lifetime now: gives back its claim on every object it holds
    /// (evicting those that nothing else owns), and waits until the store
    /// has applied that. Idempotent: closing an ended lifetime does nothing.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-lifetime-close");
    /// let lt = ContextLifetime::new(&store);
    /// let k = store.put_in(&lt, &1u8)?;
    /// lt.close()?;
    /// lt.close()?;
    /// assert!(!store.exists(&k)?);
    /// # Ok(()) }
    /// ```
    fn close(&self) -> Result<()> {
        self.core().end(true)
    }

    /// Names the claims the lifetime takes from now on: their label in
    /// [`Store::inspect`](crate::Store::inspect) and `borrowstore memory`
    /// (by default, where the lifetime was made).
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-lifetime-label");
    /// let lt = ContextLifetime::new(&store);
    /// lt.label("request 42");
    /// let k = store.put_in(&lt, &1u8)?;
    /// let info = store.inspect(&k)?.expect("held");
    /// assert_eq!(info.claims[0].label.as_deref(), Some("request 42"));
    /// # Ok(()) }
    /// ```
    fn label(&self, name: &'static str) {
        self.core().name(name);
    }

    /// Adds the object `handle` names (in its own store) to the lifetime:
    /// the lifetime becomes one of its owners. Adding the same object twice
    /// holds it twice (both claims end with the lifetime).
    ///
    /// [`Error::LifetimeEnded`] once the lifetime has ended (nothing is
    /// added); [`Error::KeyNotFound`] if the object is gone.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-lifetime-add-proxy");
    /// let lt = ContextLifetime::new(&store);
    /// let owner = store.owned_proxy(1u8)?;
    /// lt.add_proxy(&owner)?;
    /// drop(owner);                    // the lifetime still holds it
    /// assert_eq!(lt.len(), 1);
    /// # Ok(()) }
    /// ```
    fn add_proxy<P: ObjectRef + ?Sized>(&self, handle: &P) -> Result<()> {
        self.core().add(P::store(handle), P::key(handle))
    }

    /// Number of claims the lifetime holds (one per object added, more if an
    /// object was added several times).
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-lifetime-len");
    /// let lt = ContextLifetime::new(&store);
    /// store.put_in(&lt, &1u8)?;
    /// assert_eq!(lt.len(), 1);
    /// # Ok(()) }
    /// ```
    fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether the lifetime holds nothing.
    ///
    /// ```
    /// # use borrowstore::{ContextLifetime, Lifetime, Store};
    /// assert!(ContextLifetime::new(&Store::memory("doc-lifetime-is-empty")).is_empty());
    /// ```
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<L: sealed::Sealed> Lifetime for L {}

impl<L: sealed::Sealed> sealed::Sealed for &L {
    fn core(&self) -> &Core {
        (**self).core()
    }
}

/// The [`Lifetime`] methods as inherent methods of each lifetime, so they
/// work without importing the trait.
macro_rules! inherent_lifetime_methods {
    ($ty:ty, $fence:literal, $make:literal) => {
        impl $ty {
            /// Whether the lifetime has ended; see [`Lifetime::done`].
            ///
            #[doc = concat!(
                $fence, "\n# use borrowstore::*;\n# let store = Store::memory(\"doc-inherent-done\");\n",
                "let lt = ", $make, ";\nassert!(!lt.done());\nlt.close().unwrap();\nassert!(lt.done());\n```"
            )]
            pub fn done(&self) -> bool {
                Lifetime::done(self)
            }

            /// Ends the lifetime now, evicting what only it owned, and waits
            /// until the store has applied that; idempotent. See
            /// [`Lifetime::close`].
            ///
            #[doc = concat!(
                $fence, "\n# use borrowstore::*;\n# let store = Store::memory(\"doc-inherent-close\");\n",
                "let lt = ", $make, ";\nlet k = store.put_in(&lt, &1u8).unwrap();\n",
                "lt.close().unwrap();\nlt.close().unwrap();\nassert!(!store.exists(&k).unwrap());\n```"
            )]
            pub fn close(&self) -> Result<()> {
                Lifetime::close(self)
            }

            /// Adds the object `handle` names to the lifetime; see
            /// [`Lifetime::add_proxy`].
            ///
            #[doc = concat!(
                $fence, "\n# use borrowstore::*;\n# let store = Store::memory(\"doc-inherent-add-proxy\");\n",
                "let lt = ", $make, ";\nlet p = store.proxy(1u8).unwrap();\nlt.add_proxy(&p).unwrap();\n",
                "lt.close().unwrap();\nassert!(!store.exists(Proxy::key(&p)).unwrap());\n```"
            )]
            pub fn add_proxy<P: ObjectRef + ?Sized>(&self, handle: &P) -> Result<()> {
                Lifetime::add_proxy(self, handle)
            }

            /// Number of claims the lifetime holds; see [`Lifetime::len`].
            ///
            #[doc = concat!(
                $fence, "\n# use borrowstore::*;\n# let store = Store::memory(\"doc-inherent-len\");\n",
                "let lt = ", $make, ";\nstore.put_in(&lt, &1u8).unwrap();\nassert_eq!(lt.len(), 1);\n```"
            )]
            pub fn len(&self) -> usize {
                Lifetime::len(self)
            }

            /// Whether the lifetime holds nothing; see [`Lifetime::is_empty`].
            ///
            #[doc = concat!(
                $fence, "\n# use borrowstore::*;\n# let store = Store::memory(\"doc-inherent-is-empty\");\n",
                "let lt = ", $make, ";\nassert!(lt.is_empty());\n```"
            )]
            pub fn is_empty(&self) -> bool {
                Lifetime::is_empty(self)
            }
        }
    };
}

inherent_lifetime_methods!(ContextLifetime, "```", "ContextLifetime::new(&store)");
inherent_lifetime_methods!(
    LeaseLifetime,
    "```",
    "LeaseLifetime::new(&store, std::time::Duration::from_secs(60))"
);
// Doctests share a process unless standalone, and the static lifetime
// closes once: each of its examples runs in a process of its own.
inherent_lifetime_methods!(
    StaticLifetime,
    "```standalone_crate",
    "StaticLifetime::get()"
);

/// The state every lifetime shares: the claims it holds, and whether it
/// has ended. Also the [`Manager`] that `put_in` / `proxy_in` push.
#[doc(hidden)]
pub struct Core {
    inner: Arc<CoreInner>,
}

struct CoreInner {
    state: Mutex<CoreState>,
}

#[derive(Default)]
struct CoreState {
    ended: bool,
    held: Vec<(Store, Key, Claim)>,
    /// The note of the claims it takes: its name, or where it was made.
    note: Note,
}

impl Core {
    #[track_caller]
    pub(crate) fn new() -> Core {
        Core {
            inner: Arc::new(CoreInner {
                state: Mutex::new(CoreState {
                    ended: false,
                    held: Vec::new(),
                    note: Note::here(),
                }),
            }),
        }
    }

    pub(crate) fn name(&self, name: &'static str) {
        sync::lock(&self.inner.state).note = Note::named(name);
    }

    pub(crate) fn done(&self) -> bool {
        sync::lock(&self.inner.state).ended
    }

    pub(crate) fn len(&self) -> usize {
        sync::lock(&self.inner.state).held.len()
    }

    /// Acquires a holder claim on `key` for this lifetime. Under the lock, so
    /// that an `end` that runs concurrently either sees the claim or runs
    /// first and refuses it: adding never races past the end.
    pub(crate) fn add(&self, store: &Store, key: Key) -> Result<()> {
        let mut state = sync::lock(&self.inner.state);
        if state.ended {
            return Err(Error::LifetimeEnded);
        }
        let claim = Claim::noted(ClaimKind::Holder, state.note);
        store.connector().apply(&key, Op::Acquire(claim))?;
        state.held.push((store.clone(), key, claim));
        Ok(())
    }

    /// Ends the lifetime; `flush`: wait until the store applied the releases
    /// (never from `Drop`, which must not block on the network).
    ///
    /// The releases run under the lock, so that `done()` turns true only
    /// once they have been made: whoever sees the lifetime ended sees its
    /// objects released.
    pub(crate) fn end(&self, flush: bool) -> Result<()> {
        let mut state = sync::lock(&self.inner.state);
        if state.ended {
            return Ok(());
        }
        state.ended = true;
        let held = std::mem::take(&mut state.held);
        release_claims(held, flush)
    }

    /// Runs `create` with this lifetime as the innermost manager, so the
    /// object it creates is born held by the lifetime.
    pub(crate) fn create_in<R>(&self, create: impl FnOnce() -> Result<R>) -> Result<R> {
        if self.done() {
            return Err(Error::LifetimeEnded);
        }
        let _guard = manager::push(self.inner.clone());
        create()
    }
}

impl Manager for CoreInner {
    fn claim_for(&self, _store: &Store, _key: Key) -> Option<Claim> {
        let note = sync::lock(&self.state).note;
        Some(Claim::noted(ClaimKind::Holder, note))
    }

    fn adopt(&self, store: &Store, key: Key, claim: Claim) -> Result<()> {
        let mut state = sync::lock(&self.state);
        if state.ended {
            drop(state);
            // Ended while the object was being written: take it back out.
            // Nobody else has seen the new key, so this evicts it.
            store.forget_cached(&key);
            let _ = store.connector().apply(&key, Op::Release(claim));
            return Err(Error::LifetimeEnded);
        }
        state.held.push((store.clone(), key, claim));
        Ok(())
    }
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = sync::lock(&self.inner.state);
        f.debug_struct("Lifetime")
            .field("ended", &state.ended)
            .field("claims", &state.held.len())
            .finish()
    }
}

/// Gives back holder claims one by one (a loop: never recursive, whatever
/// the number of objects), then, if `flush`, waits until every store
/// involved has applied them. Returns the first flush error.
pub(crate) fn release_claims(
    claims: impl IntoIterator<Item = (Store, Key, Claim)>,
    flush: bool,
) -> Result<()> {
    let mut stores: Vec<Store> = Vec::new();
    for (store, key, claim) in claims {
        store.forget_cached(&key);
        store.connector().release(&key, claim);
        if flush && !stores.iter().any(|s| s.same_store(&store)) {
            stores.push(store);
        }
    }
    Store::flush_all(&stores)
}

impl Store {
    /// Stores a copy of `value` (encoded) under a new key, held by
    /// `lifetime`: the object is evicted when the lifetime ends, unless
    /// something else owns it then.
    ///
    /// The object is created with the lifetime's claim in place (there is
    /// no moment at which it exists unowned), and only the lifetime holds
    /// it, even while a liveness scope is open. [`Error::LifetimeEnded`]
    /// if the lifetime has ended: nothing is written.
    ///
    /// ```
    /// use borrowstore::{ContextLifetime, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-put-in");
    /// let key = {
    ///     let lt = ContextLifetime::new(&store);
    ///     let key = store.put_in(&lt, &String::from("temporary"))?;
    ///     assert!(store.exists(&key)?);
    ///     key
    /// }; // dropping the lifetime closes it
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn put_in<L: Lifetime, T: Storable>(&self, lifetime: &L, value: &T) -> Result<Key> {
        lifetime.core().create_in(|| self.put(value))
    }

    /// Stores `value` under a new key, held by `lifetime`, and returns a
    /// proxy of it. See [`Store::put_in`].
    ///
    /// ```
    /// use borrowstore::{ContextLifetime, Lifetime, Proxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-proxy-in");
    /// let lt = ContextLifetime::new(&store);
    /// let p: Proxy<Vec<u32>> = store.proxy_in(&lt, vec![1, 2, 3])?;
    /// assert_eq!(p.len(), 3);
    /// lt.close()?;
    /// assert!(!store.exists(Proxy::key(&p))?);
    /// # Ok(()) }
    /// ```
    pub fn proxy_in<L: Lifetime, T: Storable>(&self, lifetime: &L, value: T) -> Result<Proxy<T>> {
        lifetime.core().create_in(|| self.proxy(value))
    }
}

//! Making owned objects: [`Store::owned_proxy`] and its forms.

use std::future::Future;
use std::sync::Arc;

use crate::codec::Storable;
use crate::error::Result;
use crate::key::Key;
use crate::observe::{self, op_span};
use crate::ownership::object::{Object, Snapshot};
use crate::ownership::owned::OwnedProxy;
use crate::state::{Claim, ClaimKind, Init, Note, Op};
use crate::store::Store;

impl Store {
    /// Stores `value` under a new key, owned by the returned proxy. In a
    /// memory store the value is kept as it is: no copy, no encoding.
    ///
    /// While a liveness scope is open on this thread, the object is managed
    /// by it too: it is evicted once the owner is dropped *and* the scope
    /// released (and its last borrow has ended).
    ///
    /// # Errors
    ///
    /// As [`Store::put`]: [`Error::Encode`](crate::Error::Encode) and
    /// [`Error::TooLarge`](crate::Error::TooLarge) where values are encoded
    /// (file and Redis stores), [`Error::Connector`](crate::Error::Connector).
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-proxy");
    /// let owner: OwnedProxy<Vec<u64>> = store.owned_proxy(vec![1, 2, 3])?;
    /// let key = *OwnedProxy::key(&owner);
    /// let info = store.inspect(&key)?.expect("stored");
    /// assert_eq!((info.owners, info.owner), (1, true)); // the one owner
    /// assert_eq!(borrow(&owner)?.len(), 3);
    /// drop(owner);                                       // evicts it
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    #[track_caller]
    pub fn owned_proxy<T: Storable>(&self, value: T) -> Result<OwnedProxy<T>> {
        self.owned_from_arc(Arc::new(value), Note::here())
    }

    /// [`Store::owned_proxy`], naming the object `name`: its label, and its
    /// owner's, in [`Store::inspect`] and `borrowstore memory`.
    ///
    /// ```
    /// # use borrowstore::{OwnedProxy, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-named");
    /// let owner = store.owned_proxy_named(vec![1u8], "weights")?;
    /// let info = store.inspect(OwnedProxy::key(&owner))?.expect("stored");
    /// assert_eq!(info.label.as_deref(), Some("weights"));
    /// # Ok(()) }
    /// ```
    pub fn owned_proxy_named<T: Storable>(
        &self,
        value: T,
        name: &'static str,
    ) -> Result<OwnedProxy<T>> {
        self.owned_from_arc(Arc::new(value), Note::named(name))
    }

    /// [`Store::owned_proxy`], without blocking the executor: on a file or
    /// Redis store the put is awaited. On a memory store it completes in
    /// its first poll.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves nothing behind: an object already stored
    /// is evicted (its owner claim is given back).
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow_async};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-async");
    /// futures::executor::block_on(async {
    ///     let owner = store.owned_proxy_async(vec![1u64, 2]).await?;
    ///     assert_eq!(OwnedProxy::resolve_async(&owner).await?, &vec![1, 2]);
    ///     assert_eq!(borrow_async(&owner).await?.len(), 2);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    #[track_caller]
    pub fn owned_proxy_async<T: Storable>(
        &self,
        value: T,
    ) -> impl Future<Output = Result<OwnedProxy<T>>> + Send + '_ {
        self.owned_from_arc_async(Arc::new(value), Note::here())
    }

    pub(crate) async fn owned_from_arc_async<T: Storable>(
        &self,
        value: Arc<T>,
        note: Note,
    ) -> Result<OwnedProxy<T>> {
        let key = Key::random();
        let claim = Claim::noted(ClaimKind::Owner, note);
        let span = op_span!("put", self, key);
        let encoded = self.value_of(value.clone())?;
        let entry = self.insert_async(key, encoded, Init::Claimed(claim)).await;
        observe::finish(&span, || self.name(), "put", &entry);
        let entry = entry?;
        observe::objects(|| self.name(), 1.0);
        observe::claims(|| self.name(), 1.0);
        let obj = Object::new(self.clone(), key, entry);
        let owner = OwnedProxy::from_parts(obj, claim, Some(Snapshot { value, version: 1 }));
        let obj = owner.obj.clone();
        self.manage_owned_async(key, |holder| async move {
            obj.apply_async(Op::Acquire(holder)).await.map(|_| ())
        })
        .await?;
        Ok(owner)
    }

    pub(crate) fn owned_from_arc<T: Storable>(
        &self,
        value: Arc<T>,
        note: Note,
    ) -> Result<OwnedProxy<T>> {
        let key = Key::random();
        let claim = Claim::noted(ClaimKind::Owner, note);
        let insert = || {
            self.value_of(value.clone())
                .and_then(|v| self.insert(key, v, Init::Claimed(claim)))
        };
        let entry = if observe::watched() {
            let span = op_span!("put", self, key);
            let entry = span.in_scope(insert);
            observe::finish(&span, || self.name(), "put", &entry);
            entry?
        } else {
            insert()?
        };
        observe::objects(|| self.name(), 1.0);
        observe::claims(|| self.name(), 1.0);
        let obj = Object::new(self.clone(), key, entry);
        let owner = OwnedProxy::from_parts(obj, claim, Some(Snapshot { value, version: 1 }));
        // The creation hook: an open liveness scope manages it too. On
        // failure `owner` drops, which evicts the object.
        self.manage_owned(key, |holder| {
            owner.obj.apply(Op::Acquire(holder)).map(|_| ())
        })?;
        Ok(owner)
    }
}

//! [`Portable`]: how a task's arguments and results cross to another
//! process — borrows as views of the claim the sending side keeps, owners
//! as tickets, plain values as they are — and what each side keeps meanwhile
//! ([`Export`], [`Import`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, Storable};
use crate::error::{Error, Result};
use crate::key::Key;
use crate::ownership::{Borrowed, OwnedProxy, OwnerTicket, RefMutProxy, RefProxy, TaskClaim};
use crate::proxy::Proxy;
use crate::state::{Claim, ClaimKind};
use crate::store::{Store, StoreConfig};
use crate::submit::args::Plain;
use crate::submit::lists;
use crate::submit::task::TaskState;

/// A value that can cross into a task in another process, or back out of
/// it: arguments and results of remote tasks. See the [module docs](super)
/// for what each handle crosses as.
pub trait Portable: Sized {
    /// The serializable form.
    type Wire: Serialize + DeserializeOwned;

    /// The sending side: the wire form. What must stay in this process for
    /// the length of the task (the borrows) goes into `out`.
    ///
    /// ```
    /// use borrowstore::submit::remote::{Export, Portable};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let mut out = Export::default();
    /// let wire: (u32, String) = (7u32, String::from("x")).export(&mut out)?; // plain values cross as they are
    /// assert_eq!(wire, (7, String::from("x")));
    /// # Ok(()) }
    /// ```
    fn export(self, out: &mut Export) -> Result<Self::Wire>;

    /// The receiving side: the value again. Views of borrows are recorded
    /// in `into`, which ends them with the task.
    ///
    /// ```
    /// use borrowstore::submit::remote::{Import, Portable};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let v = <Vec<u8> as Portable>::import(vec![1, 2], &mut Import::default())?;
    /// assert_eq!(v, vec![1, 2]);
    /// # Ok(()) }
    /// ```
    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self>;
}

/// What the sending side keeps while a task runs in another process.
#[derive(Default)]
pub struct Export {
    kept: Vec<Box<dyn Send>>,
    stores: Vec<Store>,
    /// Cancels an owner ticket the other side may never redeem.
    tickets: Vec<Box<dyn FnOnce() + Send>>,
    /// Set when the arguments go to a job that outlives this process: its
    /// borrows are handed over to tickets instead of being kept here.
    #[cfg(feature = "apalis")]
    job: Option<Vec<crate::submit::apalis::claims::HandOver>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("kept", &self.kept.len())
            .field("stores", &self.stores)
            .field("tickets", &self.tickets.len())
            .finish()
    }
}

impl Export {
    /// Keeps `handle` in this process until the task has ended (for a
    /// [`Portable`] of your own that holds a handle the other side must not
    /// outlive).
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, Store, borrow};
    /// use borrowstore::submit::remote::Export;
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-export-keep");
    /// let owner = store.owned_proxy(1u8)?;
    /// let mut out = Export::default();
    /// out.keep(borrow(&owner)?);
    /// assert_eq!(store.inspect(OwnedProxy::key(&owner))?.unwrap().readers, 1);
    /// drop(out);                                         // the task is over
    /// assert_eq!(store.inspect(OwnedProxy::key(&owner))?.unwrap().readers, 0);
    /// # Ok(()) }
    /// ```
    pub fn keep<H: Send + 'static>(&mut self, handle: H) {
        self.kept.push(Box::new(handle));
    }

    /// Adds a store whose queued releases are waited for when the task ends.
    ///
    /// ```
    /// use borrowstore::Store;
    /// use borrowstore::submit::remote::Export;
    /// let mut out = Export::default();
    /// out.store(&Store::memory("doc-export-store"));
    /// out.store(&Store::memory("doc-export-store"));     // once is enough
    /// assert_eq!(format!("{out:?}").matches("doc-export-store").count(), 2); // name and URL
    /// ```
    pub fn store(&mut self, store: &Store) {
        push_store(&mut self.stores, store);
    }

    /// Ends what was kept, and cancels the owner tickets nobody redeemed.
    pub(super) fn abandon(&mut self) {
        self.kept.clear();
        for cancel in self.tickets.drain(..) {
            cancel();
        }
    }

    /// Ends what was kept; the other side redeemed every owner ticket, so
    /// there is none to cancel.
    pub(super) fn settle(&mut self) {
        self.tickets.clear();
        self.kept.clear();
    }

    /// The stores to wait for once the task has ended.
    pub(super) fn stores(&self) -> &[Store] {
        &self.stores
    }

    /// Takes the stores to wait for out of this export.
    pub(super) fn take_stores(&mut self) -> Vec<Store> {
        std::mem::take(&mut self.stores)
    }

    /// Keeps the borrow `b` here for the length of the task (or, for a
    /// job, until it is handed over to the job), and names it for the other
    /// side.
    fn keep_borrow<B: Borrowed + Send + 'static>(&mut self, b: B) -> Result<ClaimView> {
        let view = self.name_borrow(&b);
        #[cfg(feature = "apalis")]
        if let Some(job) = &mut self.job {
            job.push(crate::submit::apalis::claims::HandOver::new(b));
            return Ok(view);
        }
        self.keep(b);
        Ok(view)
    }

    /// Names the borrow `b` for the other side, whose store is waited for.
    fn name_borrow<B: Borrowed>(&mut self, b: &B) -> ClaimView {
        let core = b.core();
        self.store(core.store());
        ClaimView::new::<B::Value>(core.store(), *core.key(), core.claim())
    }

    /// An export for a job: borrows and owners wait to be handed over (see
    /// [`take_hand_overs`](Self::take_hand_overs)).
    #[cfg(feature = "apalis")]
    pub(crate) fn for_job() -> Export {
        Export {
            job: Some(Vec::new()),
            ..Export::default()
        }
    }

    /// The borrows a job export collected, to be handed over.
    #[cfg(feature = "apalis")]
    pub(crate) fn take_hand_overs(&mut self) -> Vec<crate::submit::apalis::claims::HandOver> {
        self.job.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// What the receiving side records while it rebuilds a task's arguments or
/// result.
#[derive(Default)]
pub struct Import {
    views: Vec<TaskClaim>,
    stores: Vec<Store>,
    /// Set for a job's arguments: its writers' changes are held back here
    /// until the job has succeeded.
    #[cfg(feature = "apalis")]
    staged: Option<Vec<crate::ownership::Staged>>,
}

impl std::fmt::Debug for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Import")
            .field("views", &self.views.len())
            .field("stores", &self.stores)
            .finish()
    }
}

impl Import {
    /// Adds a store whose queued releases are waited for when the task ends.
    ///
    /// ```
    /// use borrowstore::Store;
    /// use borrowstore::submit::remote::Import;
    /// let mut into = Import::default();
    /// into.store(&Store::memory("doc-import-store"));
    /// assert!(format!("{into:?}").contains("doc-import-store"));
    /// ```
    pub fn store(&mut self, store: &Store) {
        push_store(&mut self.stores, store);
    }

    /// An import for a job's arguments: the writers' changes are staged
    /// (see [`take_staged`](Self::take_staged)).
    #[cfg(feature = "apalis")]
    pub(crate) fn for_job() -> Import {
        Import {
            staged: Some(Vec::new()),
            ..Import::default()
        }
    }

    /// The slots of the writers' changes of a job import.
    #[cfg(feature = "apalis")]
    pub(crate) fn take_staged(&mut self) -> Vec<crate::ownership::Staged> {
        self.staged.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The task that ends the views recorded here.
    pub(crate) fn into_task(self) -> TaskState {
        TaskState::from_parts(self.views, self.stores)
    }

    /// A view of the borrow that `wire` names, recorded here so that it
    /// ends with the task.
    fn view<B: Borrowed>(&mut self, wire: ClaimView) -> Result<B> {
        let store = wire.open::<B::Value>(B::KIND)?;
        #[allow(unused_mut)]
        let (mut view, record) = B::view(store.clone(), wire.key, wire.claim)?;
        #[cfg(feature = "apalis")]
        if let Some(staged) = &mut self.staged {
            staged.extend(view.stage_changes());
        }
        self.views.push(record);
        self.store(&store);
        Ok(view)
    }
}

fn push_store(stores: &mut Vec<Store>, store: &Store) {
    if !stores.iter().any(|s| s.same_store(store)) {
        stores.push(store.clone());
    }
}

/// A borrow in flight: the claim the sending side keeps, and where.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimView {
    store: StoreConfig,
    key: Key,
    #[serde(deserialize_with = "crate::connector::wire::deserialize_claim")]
    claim: Claim,
    fingerprint: u64,
}

impl ClaimView {
    fn new<T>(store: &Store, key: Key, claim: Claim) -> ClaimView {
        ClaimView {
            store: store.config().clone(),
            key,
            claim,
            fingerprint: codec::fingerprint::<T>(),
        }
    }

    fn open<T>(&self, kind: ClaimKind) -> Result<Store> {
        codec::check_fingerprint::<T>(self.fingerprint, "a borrow of")?;
        if self.claim.kind != kind {
            return Err(Error::malformed(
                "task arguments",
                format_args!(
                    "a {:?} borrow cannot be read as a {kind:?} borrow",
                    self.claim.kind
                ),
            ));
        }
        Store::from_config(&self.store)
    }
}

impl<T: Storable> Portable for RefProxy<T> {
    type Wire = ClaimView;

    fn export(self, out: &mut Export) -> Result<ClaimView> {
        out.keep_borrow(self)
    }

    fn import(wire: ClaimView, into: &mut Import) -> Result<Self> {
        into.view(wire)
    }
}

impl<T: Storable> Portable for RefMutProxy<T> {
    type Wire = ClaimView;

    fn export(mut self, out: &mut Export) -> Result<ClaimView> {
        #[cfg(feature = "apalis")]
        if out.job.is_some() {
            // The job starts from what this borrow shows: its changes are
            // published, without blocking, as it is handed over.
            let view = out.name_borrow(&self);
            if let Some(job) = &mut out.job {
                job.push(crate::submit::apalis::claims::HandOver::writer(self));
            }
            return Ok(view);
        }
        // The other side starts from what this borrow shows.
        RefMutProxy::publish(&mut self)?;
        out.keep_borrow(self)
    }

    fn import(wire: ClaimView, into: &mut Import) -> Result<Self> {
        into.view(wire)
    }
}

/// An owner in flight: to a remote task, a ticket that the task redeems;
/// to an apalis job, a view of the owner claim that the job's ticket holds
/// (see [`submit::apalis`](crate::submit::apalis), feature `apalis`).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum OwnerWire<T> {
    /// Redeemed by the other side, which then owns the object.
    Ticket(OwnerTicket<T>),
    /// A view of an owner claim that a job holds: the object lives as long
    /// as the job.
    Job(ClaimView),
}

impl<T> std::fmt::Debug for OwnerWire<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OwnerWire::Ticket(t) => f.debug_tuple("Ticket").field(t).finish(),
            OwnerWire::Job(v) => f.debug_tuple("Job").field(v).finish(),
        }
    }
}

impl<T: Storable> Portable for OwnedProxy<T> {
    type Wire = OwnerWire<T>;

    fn export(self, out: &mut Export) -> Result<OwnerWire<T>> {
        #[cfg(feature = "apalis")]
        if let Some(job) = &mut out.job {
            let view = ClaimView::new::<T>(OwnedProxy::store(&self), self.obj.key, self.claim);
            let store = OwnedProxy::store(&self).clone();
            job.push(crate::submit::apalis::claims::HandOver::owner(self));
            out.store(&store);
            return Ok(OwnerWire::Job(view));
        }
        let ticket = OwnedProxy::into_ticket(self)?;
        let bytes = ticket.to_bytes()?;
        out.tickets.push(Box::new(move || {
            if let Ok(t) = OwnerTicket::<T>::from_bytes(&bytes) {
                match t.cancel() {
                    Ok(()) | Err(Error::TicketRedeemed { .. } | Error::KeyNotFound { .. }) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cancelling an unredeemed owner ticket failed")
                    }
                }
            }
        }));
        Ok(OwnerWire::Ticket(ticket))
    }

    fn import(wire: OwnerWire<T>, into: &mut Import) -> Result<Self> {
        match wire {
            OwnerWire::Ticket(t) => {
                let owner = t.redeem()?;
                into.store(OwnedProxy::store(&owner));
                Ok(owner)
            }
            OwnerWire::Job(view) => {
                let store = view.open::<T>(ClaimKind::Owner)?;
                let owner = OwnedProxy::job_view(store.clone(), view.key, view.claim)?;
                into.store(&store);
                Ok(owner)
            }
        }
    }
}

impl<T: Storable> Portable for Proxy<T> {
    type Wire = Proxy<T>;

    fn export(self, _: &mut Export) -> Result<Proxy<T>> {
        Ok(self)
    }

    fn import(wire: Proxy<T>, _: &mut Import) -> Result<Self> {
        Ok(wire)
    }
}

impl<T: Serialize + DeserializeOwned> Portable for Plain<T> {
    type Wire = T;

    fn export(self, _: &mut Export) -> Result<T> {
        Ok(self.0)
    }

    fn import(wire: T, _: &mut Import) -> Result<Self> {
        Ok(Plain(wire))
    }
}

macro_rules! plain_portable {
    ($($t:ty),*) => {$(
        impl Portable for $t {
            type Wire = $t;

            fn export(self, _: &mut Export) -> Result<$t> {
                Ok(self)
            }

            fn import(wire: $t, _: &mut Import) -> Result<Self> {
                Ok(wire)
            }
        }
    )*};
}

lists::with_plain_types!(plain_portable);

impl<A: Portable> Portable for Option<A> {
    type Wire = Option<A::Wire>;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        self.map(|a| a.export(out)).transpose()
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        wire.map(|w| A::import(w, into)).transpose()
    }
}

impl<A: Portable> Portable for Vec<A> {
    type Wire = Vec<A::Wire>;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        self.into_iter().map(|a| a.export(out)).collect()
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        wire.into_iter().map(|w| A::import(w, into)).collect()
    }
}

impl<A: Portable> Portable for Box<A> {
    type Wire = A::Wire;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        (*self).export(out)
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        A::import(wire, into).map(Box::new)
    }
}

impl<A: Portable, const N: usize> Portable for [A; N] {
    type Wire = Vec<A::Wire>;

    fn export(self, out: &mut Export) -> Result<Self::Wire> {
        self.into_iter().map(|a| a.export(out)).collect()
    }

    fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
        if wire.len() != N {
            return Err(Error::malformed(
                "task arguments",
                format_args!("expected an array of {N}, found {}", wire.len()),
            ));
        }
        let items = wire
            .into_iter()
            .map(|w| A::import(w, into))
            .collect::<Result<Vec<A>>>()?;
        items
            .try_into()
            .map_err(|_| Error::malformed("task arguments", "array length"))
    }
}

macro_rules! tuple_portable {
    ($($name:ident)+) => {
        impl<$($name: Portable),+> Portable for ($($name,)+) {
            type Wire = ($($name::Wire,)+);

            #[allow(non_snake_case)]
            fn export(self, out: &mut Export) -> Result<Self::Wire> {
                let ($($name,)+) = self;
                Ok(($($name.export(out)?,)+))
            }

            #[allow(non_snake_case)]
            fn import(wire: Self::Wire, into: &mut Import) -> Result<Self> {
                let ($($name,)+) = wire;
                Ok(($($name::import($name, into)?,)+))
            }
        }
    };
}

lists::with_tuples!(tuple_portable);

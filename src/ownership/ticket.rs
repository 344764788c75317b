//! Tickets: moving an owner or a borrow to another process, exactly once
//! ([`OwnedProxy::into_ticket`], [`RefProxy::into_ticket`]).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{self, Storable};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::observe::{self, op_span};
use crate::ownership::borrow_core::{BorrowCore, Borrowed};
use crate::ownership::object::Object;
use crate::ownership::owned::OwnedProxy;
use crate::ownership::ref_proxy::RefProxy;
use crate::state::{Claim, ClaimKind};
use crate::store::{Store, StoreConfig};

#[derive(Clone, Serialize, Deserialize)]
struct TicketWire {
    store: StoreConfig,
    key: Key,
    ticket: ClaimId,
    kind: ClaimKind,
    fingerprint: u64,
    /// The type's name, only to report a mismatch: the fingerprint decides.
    type_name: Cow<'static, str>,
}

impl TicketWire {
    /// Issues a ticket for `claim` store-side: from then on the ticket
    /// holds it.
    fn issue<T: Storable>(obj: &Object, claim: Claim) -> Result<TicketWire> {
        let ticket = ClaimId::random();
        obj.store.blocking().issue_ticket(&obj.key, ticket, claim)?;
        Ok(TicketWire::issued::<T>(obj, ticket, claim))
    }

    /// [`issue`](Self::issue), without blocking the executor.
    async fn issue_async<T: Storable>(obj: Arc<Object>, claim: Claim) -> Result<TicketWire> {
        let ticket = ClaimId::random();
        obj.store
            .connector()
            .issue_ticket_async(obj.key, ticket, claim)
            .await?;
        Ok(TicketWire::issued::<T>(&obj, ticket, claim))
    }

    fn issued<T: Storable>(obj: &Object, ticket: ClaimId, claim: Claim) -> TicketWire {
        TicketWire {
            store: obj.store.config().clone(),
            key: obj.key,
            ticket,
            kind: claim.kind,
            fingerprint: codec::fingerprint::<T>(),
            type_name: Cow::Borrowed(codec::recorded_type_name::<T>()),
        }
    }

    /// Checks that this is a ticket of `T` carrying a claim of `kind`,
    /// before anything is asked of the store: [`Error::TypeMismatch`] or
    /// [`Error::Malformed`] otherwise (`what`: "redeemed", "cancelled").
    fn check<T>(&self, kind: ClaimKind, what: &str) -> Result<()> {
        codec::check_type::<T>(self.fingerprint, &self.type_name, "a ticket of")?;
        if self.kind != kind {
            return Err(Error::malformed(
                "ticket",
                format_args!(
                    "a ticket for a {:?} claim cannot be {what} as a {kind:?}",
                    self.kind
                ),
            ));
        }
        Ok(())
    }

    /// Redeems store-side; returns the object and the claim it carried.
    fn redeem<T>(&self, kind: ClaimKind) -> Result<(Arc<Object>, Claim)> {
        self.check::<T>(kind, "redeemed")?;
        let store = Store::from_config(&self.store)?;
        let span = op_span!("redeem", store, self.key);
        let claim = span.in_scope(|| store.blocking().redeem_ticket(&self.key, self.ticket, kind));
        observe::finish(&span, || store.name(), "redeem", &claim);
        Ok((Object::attach(store.clone(), self.key)?, claim?))
    }

    /// [`redeem`](Self::redeem), without blocking the executor.
    async fn redeem_async<T>(&self, kind: ClaimKind) -> Result<(Arc<Object>, Claim)> {
        self.check::<T>(kind, "redeemed")?;
        let store = Store::from_config(&self.store)?;
        let span = op_span!("redeem", store, self.key);
        let claim = store
            .connector()
            .redeem_ticket_async(self.key, self.ticket, kind)
            .await;
        observe::finish(&span, || store.name(), "redeem", &claim);
        Ok((Object::attach(store.clone(), self.key)?, claim?))
    }

    /// Cancels store-side, after the same checks as [`redeem`](Self::redeem):
    /// bytes read as the wrong type or kind of ticket consume nothing. The
    /// connector checks the kind again against what it recorded.
    fn cancel<T>(&self, kind: ClaimKind) -> Result<()> {
        self.check::<T>(kind, "cancelled")?;
        Store::from_config(&self.store)?
            .blocking()
            .cancel_ticket(&self.key, self.ticket, kind)
    }

    /// [`cancel`](Self::cancel), without blocking the executor.
    async fn cancel_async<T>(&self, kind: ClaimKind) -> Result<()> {
        self.check::<T>(kind, "cancelled")?;
        Store::from_config(&self.store)?
            .connector()
            .cancel_ticket_async(self.key, self.ticket, kind)
            .await
    }
}

macro_rules! ticket_type {
    (
        $(#[$doc:meta])* $name:ident, $what:literal, $kind:expr,
        make: $make:literal, after_cancel: $after:literal
    ) => {
        $(#[$doc])*
        #[derive(Serialize, Deserialize)]
        #[serde(bound = "")]
        #[must_use = "an unredeemed ticket keeps its claim until it is cancelled or expires"]
        pub struct $name<T> {
            wire: TicketWire,
            #[serde(skip)]
            _type: PhantomData<fn() -> T>,
        }

        impl<T: Storable> $name<T> {
            fn new(wire: TicketWire) -> Self {
                $name { wire, _type: PhantomData }
            }

            /// The object's key.
            ///
            /// ```
            /// use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow, mut_borrow};
            /// # fn main() -> Result<(), Error> {
            #[doc = concat!("let store = Store::memory(\"doc-", stringify!($name), "-key\");")]
            /// let owner = store.owned_proxy(1u8)?;
            /// let key = *OwnedProxy::key(&owner);
            #[doc = concat!("let ticket = ", $make, ";")]
            /// assert_eq!(*ticket.key(), key);
            /// # ticket.cancel()?;
            /// # Ok(()) }
            /// ```
            pub fn key(&self) -> &Key {
                &self.wire.key
            }

            /// The ticket's wire form: the store's config, the key, the
            /// ticket id and the type's fingerprint and name — never the
            /// value.
            ///
            /// # Errors
            ///
            /// [`Error::Encode`] only if serialization fails.
            ///
            /// ```
            /// use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow, mut_borrow};
            /// # fn main() -> Result<(), Error> {
            #[doc = concat!("let store = Store::memory(\"doc-", stringify!($name), "-to-bytes\");")]
            /// let owner = store.owned_proxy(vec![0u8; 1 << 16])?;
            #[doc = concat!("let bytes = ", $make, ".to_bytes()?;")]
            /// assert!(bytes.len() < 300);                        // not the 64 KiB value
            #[doc = concat!("# ", stringify!($name), "::<Vec<u8>>::from_bytes(&bytes)?.cancel()?;")]
            /// # Ok(()) }
            /// ```
            pub fn to_bytes(&self) -> Result<Vec<u8>> {
                postcard::to_allocvec(self).map_err(Error::encode)
            }

            /// A ticket from its wire form. Reading bytes consumes nothing:
            /// only [`redeem`](Self::redeem) or [`cancel`](Self::cancel)
            /// does, and the type and kind are checked then.
            ///
            /// # Errors
            ///
            /// [`Error::Malformed`] for bytes that are not a ticket.
            ///
            /// ```
            /// use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow, mut_borrow};
            #[doc = concat!("let bad = ", stringify!($name), "::<u8>::from_bytes(b\"junk\");")]
            /// assert!(matches!(bad, Err(Error::Malformed { .. })));
            /// ```
            pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
                postcard::from_bytes(bytes).map_err(|e| Error::malformed($what, e))
            }

            /// Gives the claim back without redeeming: the ticket can no
            /// longer be redeemed, and the claim ends as if its handle had
            /// been dropped.
            ///
            /// # Errors
            ///
            /// [`Error::TicketRedeemed`] if it was redeemed or cancelled
            /// already. Bytes of a ticket for another type of value
            /// ([`Error::TypeMismatch`]) or of the other kind of ticket
            /// ([`Error::Malformed`]) are refused as `redeem` refuses them,
            /// with nothing consumed: the ticket stays redeemable as what
            /// it is.
            ///
            /// ```
            /// use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow, mut_borrow};
            /// # fn main() -> Result<(), Error> {
            #[doc = concat!("let store = Store::memory(\"doc-", stringify!($name), "-cancel\");")]
            /// let owner = store.owned_proxy(1u8)?;
            /// let key = *OwnedProxy::key(&owner);
            #[doc = concat!("let bytes = ", $make, ".to_bytes()?;")]
            #[doc = concat!("let wrong = ", stringify!($name), "::<String>::from_bytes(&bytes)?.cancel();")]
            /// assert!(matches!(wrong, Err(Error::TypeMismatch { .. }))); // nothing consumed
            #[doc = concat!(stringify!($name), "::<u8>::from_bytes(&bytes)?.cancel()?;")]
            #[doc = concat!("let again = ", stringify!($name), "::<u8>::from_bytes(&bytes)?.cancel();")]
            /// assert!(matches!(again, Err(Error::TicketRedeemed { .. })));
            #[doc = $after]
            /// # Ok(()) }
            /// ```
            pub fn cancel(self) -> Result<()> {
                self.wire.cancel::<T>($kind)
            }

            /// [`cancel`](Self::cancel), without blocking the executor.
            ///
            /// # Cancel safety
            ///
            /// Dropping the future may leave the ticket cancelled or not.
            pub async fn cancel_async(self) -> Result<()> {
                self.wire.cancel_async::<T>($kind).await
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("key", &self.wire.key)
                    .field("store", &self.wire.store.name)
                    .finish_non_exhaustive()
            }
        }
    };
}

ticket_type!(
    /// An owner in flight between processes: serializable, redeemable once.
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, OwnerTicket, Store, Error};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-ticket");
    /// let owner = store.owned_proxy(42u32)?;
    /// let bytes = OwnedProxy::into_ticket(owner)?.to_bytes()?;
    /// // … in another process that can reach the store …
    /// let owner = OwnerTicket::<u32>::from_bytes(&bytes)?.redeem()?;
    /// assert_eq!(*owner, 42);
    /// let again = OwnerTicket::<u32>::from_bytes(&bytes)?.redeem();
    /// assert!(matches!(again, Err(Error::TicketRedeemed { .. })));
    /// # Ok(()) }
    /// ```
    OwnerTicket,
    "owner ticket",
    ClaimKind::Owner,
    make: "OwnedProxy::into_ticket(owner)?",
    after_cancel: "assert!(!store.exists(&key)?);                     // no owner left: evicted"
);

ticket_type!(
    /// A shared borrow in flight between processes: serializable, redeemable once.
    ///
    /// Until it is redeemed (or cancelled, or its lease runs out) the
    /// ticket holds the borrow store-side: the object cannot be mutably
    /// borrowed or evicted meanwhile.
    ///
    /// ```
    /// use borrowstore::{BorrowTicket, Error, RefProxy, Store, borrow, mut_borrow};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-borrow-ticket");
    /// let owner = store.owned_proxy(vec![1u64, 2])?;
    /// let bytes = RefProxy::into_ticket(borrow(&owner)?)?.to_bytes()?;
    /// assert!(mut_borrow(&owner).is_err());              // the ticket holds the borrow
    /// // … in another process that can reach the store …
    /// let r = BorrowTicket::<Vec<u64>>::from_bytes(&bytes)?.redeem()?;
    /// assert_eq!(r.len(), 2);
    /// drop(r);
    /// assert!(mut_borrow(&owner).is_ok());
    /// # Ok(()) }
    /// ```
    BorrowTicket,
    "borrow ticket",
    ClaimKind::Reader,
    make: "RefProxy::into_ticket(borrow(&owner)?)?",
    after_cancel: "assert!(mut_borrow(&owner).is_ok());                // the borrow has ended"
);

impl<T: Storable> OwnerTicket<T> {
    /// The owner, exactly once across all processes; later redeems of the
    /// same ticket fail with [`Error::TicketRedeemed`].
    ///
    /// The ticket finds its store as a proxy does ([`Store::from_config`]):
    /// in the registry, or by opening the store from the config it carries
    /// if this process's [`trust`](crate::trust) policy allows its URL.
    ///
    /// # Errors
    ///
    /// - [`Error::TicketRedeemed`] if the ticket was redeemed, cancelled or
    ///   has expired;
    /// - [`Error::TypeMismatch`] (naming the type) for a ticket of another
    ///   type, [`Error::Malformed`] for a borrow ticket's bytes — nothing
    ///   is consumed then;
    /// - [`Store::from_config`]'s errors for its store
    ///   ([`Error::Untrusted`], [`Error::LocalStore`], …), and
    ///   [`Error::Connector`].
    ///
    /// ```
    /// use borrowstore::{Error, OwnedProxy, OwnerTicket, Store};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-owner-ticket-redeem");
    /// let bytes = OwnedProxy::into_ticket(store.owned_proxy(7u32)?)?.to_bytes()?;
    /// let wrong = OwnerTicket::<String>::from_bytes(&bytes)?.redeem();
    /// assert!(matches!(wrong, Err(Error::TypeMismatch { .. })));
    /// let owner = OwnerTicket::<u32>::from_bytes(&bytes)?.redeem()?;
    /// assert_eq!(*owner, 7);
    /// # Ok(()) }
    /// ```
    pub fn redeem(self) -> Result<OwnedProxy<T>> {
        let (obj, claim) = self.wire.redeem::<T>(ClaimKind::Owner)?;
        Ok(OwnedProxy::from_parts(obj, claim, None))
    }

    /// [`redeem`](Self::redeem), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the ticket redeemed with nobody
    /// holding the owner: on stores with leases the claim ends with its
    /// lease (the object is then evicted), as a dead process's would.
    pub async fn redeem_async(self) -> Result<OwnedProxy<T>> {
        let (obj, claim) = self.wire.redeem_async::<T>(ClaimKind::Owner).await?;
        Ok(OwnedProxy::from_parts(obj, claim, None))
    }
}

impl<T: Storable> BorrowTicket<T> {
    /// The borrow, exactly once across all processes; later redeems of the
    /// same ticket fail with [`Error::TicketRedeemed`].
    ///
    /// # Errors
    ///
    /// As [`OwnerTicket::redeem`]: [`Error::TicketRedeemed`],
    /// [`Error::TypeMismatch`], [`Error::Malformed`] (an owner ticket's
    /// bytes), the store's errors.
    ///
    /// ```
    /// use borrowstore::{BorrowTicket, Error, RefProxy, Store, borrow};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-borrow-ticket-redeem");
    /// let owner = store.owned_proxy(String::from("shared"))?;
    /// let bytes = RefProxy::into_ticket(borrow(&owner)?)?.to_bytes()?;
    /// let r = BorrowTicket::<String>::from_bytes(&bytes)?.redeem()?;
    /// assert_eq!(*r, "shared");
    /// let again = BorrowTicket::<String>::from_bytes(&bytes)?.redeem();
    /// assert!(matches!(again, Err(Error::TicketRedeemed { .. })));
    /// # Ok(()) }
    /// ```
    pub fn redeem(self) -> Result<RefProxy<T>> {
        let (obj, claim) = self.wire.redeem::<T>(ClaimKind::Reader)?;
        Ok(RefProxy::from_core(BorrowCore::new(obj, claim, None)))
    }

    /// [`redeem`](Self::redeem), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave the ticket redeemed with nobody
    /// holding the borrow: on stores with leases it ends with its lease.
    pub async fn redeem_async(self) -> Result<RefProxy<T>> {
        let (obj, claim) = self.wire.redeem_async::<T>(ClaimKind::Reader).await?;
        Ok(RefProxy::from_core(BorrowCore::new(obj, claim, None)))
    }
}

impl<T: Storable> OwnedProxy<T> {
    /// Moves ownership out of this process: returns a serializable ticket
    /// that [`OwnerTicket::redeem`] turns back into the owner, exactly once,
    /// in any process that can reach the store. Unpublished local changes
    /// are discarded.
    ///
    /// Until it is redeemed the ticket owns the object store-side; a ticket
    /// that is never redeemed can be cancelled with [`OwnerTicket::cancel`]
    /// (and, on stores with leases, expires with its lease).
    ///
    /// # Errors
    ///
    /// [`Error::Connector`] if the store cannot be reached; the owner is
    /// consumed, and its claim is released as if it had been dropped.
    /// [`Error::ClaimLost`] for the owner an apalis job hands its function
    /// (the object belongs to the job and cannot leave it).
    ///
    /// ```
    /// use borrowstore::{OwnedProxy, OwnerTicket, Store};
    /// # fn main() -> Result<(), borrowstore::Error> {
    /// let store = Store::memory("doc-owned-into-ticket");
    /// let owner = store.owned_proxy(vec![1u8, 2])?;
    /// let key = *OwnedProxy::key(&owner);
    /// let bytes = OwnedProxy::into_ticket(owner)?.to_bytes()?;
    /// assert!(store.exists(&key)?);                      // the ticket owns it now
    /// // … in another process that can reach the store …
    /// let owner = OwnerTicket::<Vec<u8>>::from_bytes(&bytes)?.redeem()?;
    /// drop(owner);
    /// assert!(!store.exists(&key)?);
    /// # Ok(()) }
    /// ```
    pub fn into_ticket(mut this: Self) -> Result<OwnerTicket<T>> {
        owner_can_leave(&this)?;
        let wire = TicketWire::issue::<T>(&this.obj, this.claim)?;
        this.live = false;
        Ok(OwnerTicket::new(wire))
    }

    /// [`into_ticket`](Self::into_ticket), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future drops the owner, which evicts the object: a
    /// ticket already issued can then no longer be redeemed.
    pub async fn into_ticket_async(mut this: Self) -> Result<OwnerTicket<T>> {
        owner_can_leave(&this)?;
        let wire = TicketWire::issue_async::<T>(this.obj.clone(), this.claim).await?;
        this.live = false;
        Ok(OwnerTicket::new(wire))
    }
}

/// Refuses to issue a ticket for a view of an owner claim that something
/// else holds (an apalis job's owner): it is not this handle's to give.
fn owner_can_leave<T>(owner: &OwnedProxy<T>) -> Result<()> {
    if owner.live {
        Ok(())
    } else {
        Err(Error::ClaimLost { key: owner.obj.key })
    }
}

impl<T: Storable> RefProxy<T> {
    /// Moves this borrow out of this process: returns a serializable ticket
    /// that [`BorrowTicket::redeem`] turns back into the borrow, exactly once.
    /// Until then the ticket holds the borrow store-side.
    ///
    /// A borrow that a submitted task turns into a ticket leaves the task:
    /// the ticket keeps it after the task ends. [`Error::ClaimLost`] if the
    /// task has already ended it.
    ///
    /// # Errors
    ///
    /// [`Error::ClaimLost`], or [`Error::Connector`] if the store cannot be
    /// reached (the borrow is then released as if it had been dropped).
    ///
    /// ```
    /// use borrowstore::{BorrowTicket, Error, RefProxy, Store, borrow};
    /// # fn main() -> Result<(), Error> {
    /// let store = Store::memory("doc-ref-into-ticket");
    /// let owner = store.owned_proxy(5u64)?;
    /// let ticket: BorrowTicket<u64> = RefProxy::into_ticket(borrow(&owner)?)?;
    /// assert_eq!(store.inspect(ticket.key())?.unwrap().readers, 1); // held by the ticket
    /// let r = ticket.redeem()?;
    /// assert_eq!(*r, 5);
    /// # Ok(()) }
    /// ```
    pub fn into_ticket(mut this: Self) -> Result<BorrowTicket<T>> {
        this.core_mut()
            .hand_over(TicketWire::issue::<T>)
            .map(BorrowTicket::new)
    }

    /// [`into_ticket`](Self::into_ticket), without blocking the executor.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future ends the borrow: a ticket already issued can
    /// then no longer be redeemed.
    pub async fn into_ticket_async(mut this: Self) -> Result<BorrowTicket<T>> {
        this.core_mut()
            .hand_over_async(TicketWire::issue_async::<T>)
            .await
            .map(BorrowTicket::new)
    }
}

//! A job's claims: each borrow of a job's arguments handed over to a
//! ticket that the job owns ([`HandOver`]), and what ends or renews it
//! ([`JobClaim`]).

use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::ownership::{Borrowed, OwnedProxy, RefMutProxy};
use crate::state::{Claim, ClaimKind};
use crate::store::{Store, StoreConfig, Vouched};

/// A borrow handed over to a job: where its claim is, and the ticket that
/// holds it for the job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct JobClaim {
    pub(super) store: StoreConfig,
    pub(super) key: Key,
    pub(super) kind: ClaimKind,
    pub(super) ticket: ClaimId,
}

impl JobClaim {
    /// Moves the deadline of the claim's ticket to `lease` from now.
    /// [`Error::TicketRedeemed`] if the ticket is gone: the job's borrow
    /// has ended. A reader claim's renewal vouches for the version it found
    /// (see [`Vouches`]).
    async fn renew(&self, lease: Duration) -> Result<Option<Vouched>> {
        let store = Store::from_config(&self.store)?;
        let sent = Instant::now();
        match store
            .connector()
            .renew_ticket_async(self.key, self.ticket, lease)
            .await
        {
            Ok(Some(version)) if self.kind == ClaimKind::Reader => {
                // The server moved the deadline to a lease after it got the
                // call, so after `sent`: the claim is held for longer than
                // half the lease from `sent` on.
                Ok(Some(store.vouch(self.key, version, sent + lease / 2)))
            }
            Ok(_) => Ok(None),
            Err(Error::KeyNotFound { .. }) => Err(Error::TicketRedeemed {
                ticket: self.ticket.to_string(),
            }),
            Err(e) => Err(e),
        }
    }
}

/// What the last renewal of a job's reader claims vouches for: that the
/// object's version it found is current for half a lease, since no writer
/// can publish while the claim is held. While the vouch lasts, the
/// attempt's reads of that version are answered from this process's cache
/// with no round trip. Dropped (the vouches withdrawn) when the attempt
/// ends, before its writers publish, and when a renewal fails.
#[derive(Default)]
pub(super) struct Vouches(#[allow(dead_code)] Vec<Vouched>);

/// Renews every claim of a job. `Err` with the first claim found gone;
/// other failures are logged (the claim lives until its deadline, and
/// vouches for nothing).
pub(super) async fn renew_claims(claims: &[JobClaim], lease: Duration) -> Result<Vouches> {
    let mut vouches = Vec::new();
    for c in claims {
        match c.renew(lease).await {
            Ok(v) => vouches.extend(v),
            Err(e @ Error::TicketRedeemed { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(key = %c.key, error = %e, "renewing a job's borrow failed");
            }
        }
    }
    Ok(Vouches(vouches))
}

/// A borrow that a job export collected, waiting to be handed over to a
/// ticket of the job.
pub(crate) struct HandOver(
    Box<dyn FnOnce(Duration) -> BoxFuture<'static, Result<JobClaim>> + Send>,
);

impl HandOver {
    pub(crate) fn new<B: Borrowed + Send + 'static>(b: B) -> HandOver {
        HandOver(Box::new(move |lease| {
            async move {
                let mut b = b;
                let core = b.core();
                // Refused before anything changes: `b` is dropped, and the
                // borrow ends.
                renews_tickets(core.store())?;
                let store = core.store().config().clone();
                let key = *core.key();
                let kind = core.claim().kind;
                let ticket = b
                    .core_mut()
                    .hand_over_async(|obj, claim| issue(obj.store.clone(), obj.key, claim, lease))
                    .await?;
                Ok(JobClaim {
                    store,
                    key,
                    kind,
                    ticket,
                })
            }
            .boxed()
        }))
    }

    /// A mutable borrow handed over to a job: its changes are published
    /// first, so the job starts from what it shows.
    pub(crate) fn writer<T: crate::codec::Storable>(w: RefMutProxy<T>) -> HandOver {
        HandOver(Box::new(move |lease| {
            async move {
                let mut w = w;
                // Refused before anything is published.
                renews_tickets(RefMutProxy::store(&w))?;
                RefMutProxy::publish_async(&mut w).await?;
                HandOver::new(w).run(lease).await
            }
            .boxed()
        }))
    }

    /// An owner moved into a job: its claim goes to a ticket of the job,
    /// so the object lives until the job's final outcome. On a failure the
    /// owner is dropped, as a moved value is, which evicts the object.
    pub(crate) fn owner<T: crate::codec::Storable>(owner: OwnedProxy<T>) -> HandOver {
        HandOver(Box::new(move |lease| {
            async move {
                let mut owner = owner;
                renews_tickets(&owner.obj.store)?;
                let ticket =
                    issue(owner.obj.store.clone(), owner.obj.key, owner.claim, lease).await?;
                // The ticket holds the claim now: the handle must not end it.
                owner.live = false;
                Ok(JobClaim {
                    store: owner.obj.store.config().clone(),
                    key: owner.obj.key,
                    kind: owner.claim.kind,
                    ticket,
                })
            }
            .boxed()
        }))
    }

    pub(super) async fn run(self, lease: Duration) -> Result<JobClaim> {
        (self.0)(lease).await
    }
}

/// A job's claims need tickets that a worker renews: [`Error::Malformed`]
/// for a store whose tickets nobody renews (memory, file).
fn renews_tickets(store: &Store) -> Result<()> {
    if store.connector().renews_tickets() {
        return Ok(());
    }
    Err(Error::Malformed {
        what: "job argument",
        reason: format!(
            "a borrow of {} cannot go to a job: a job's borrows need a store \
             whose tickets a worker renews (redis:// or redis+cluster://)",
            store.url()
        ),
    })
}

/// Issues a ticket of a job for `claim` of the object `key`, lasting
/// `lease`.
async fn issue(store: Store, key: Key, claim: Claim, lease: Duration) -> Result<ClaimId> {
    let ticket = ClaimId::random();
    store
        .connector()
        .issue_ticket_for_async(key, ticket, claim, lease)
        .await?;
    Ok(ticket)
}

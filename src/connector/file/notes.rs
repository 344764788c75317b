//! What the file store records for inspection, kept in each object's
//! ledger file after the ledger: [`Notes`].
//!
//! The format, in one place. A ledger file is `BSL1`, the postcard bytes of
//! the object's [`Ledger`], then the postcard bytes of its `Notes`:
//!
//! - `object`: the [`ObjectMeta`] recorded at the put (type name from the
//!   value's codec header, encoded size, creation time, the name it was
//!   put with);
//! - `claims`: claim id → `ClaimNote` { `pid`, `host`, `label`, `since_ms`,
//!   `ticket` } for every claim the ledger holds or a ticket carries. A
//!   claim's kind and lease deadline are the ledger's.
//!
//! A ledger written without notes (an older file) reads as empty notes.
//! Notes are changed under the same lock and written in the same rename as
//! the ledger, so they never disagree with it for long: a claim the ledger
//! no longer has loses its note at the next write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::connector::{ClaimInfo, ClaimRole, ObjectMeta, this_process};
use crate::key::ClaimId;
use crate::state::{Claim, ClaimKind, Deadline, Init, Ledger, NEVER};

/// The notes of one object; see the module docs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Notes {
    object: ObjectMeta,
    claims: BTreeMap<ClaimId, ClaimNote>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ClaimNote {
    pid: u32,
    host: String,
    label: Option<String>,
    since_ms: u64,
    ticket: bool,
}

impl ClaimNote {
    fn here(label: Option<String>) -> ClaimNote {
        let (pid, host) = this_process();
        ClaimNote {
            pid,
            host: host.to_owned(),
            label,
            since_ms: crate::connector::lease::now_ms(),
            ticket: false,
        }
    }
}

impl Notes {
    /// The notes of an object put now as `bytes`, with `init`.
    pub(super) fn at_put(bytes: &[u8], init: Init) -> Notes {
        let label = match init {
            Init::Claimed(c) if c.kind == ClaimKind::Owner => c.note.name(),
            _ => None,
        };
        let mut n = Notes {
            object: ObjectMeta::of_bytes(bytes, label),
            claims: BTreeMap::new(),
        };
        if let Init::Claimed(c) = init {
            n.taken(c);
        }
        n
    }

    /// Reads the notes that follow a ledger; empty if there are none.
    pub(super) fn decode(bytes: &[u8]) -> Notes {
        postcard::from_bytes(bytes).unwrap_or_default()
    }

    /// Records a claim this process took now (kept if already recorded: a
    /// retried acquire).
    pub(super) fn taken(&mut self, c: Claim) {
        self.claims
            .entry(c.id)
            .or_insert_with(|| ClaimNote::here(c.note.label()));
    }

    /// Shows a claim as a ticket in flight.
    pub(super) fn ticket(&mut self, c: Claim) {
        if let Some(n) = self.claims.get_mut(&c.id) {
            n.ticket = true;
        }
    }

    /// A ticket's claim, redeemed now by this process.
    pub(super) fn redeemed(&mut self, c: Claim) {
        let label = self.claims.remove(&c.id).and_then(|n| n.label);
        self.claims.insert(c.id, ClaimNote::here(label));
    }

    /// Drops the notes of claims the ledger no longer has.
    pub(super) fn keep_held(&mut self, l: &Ledger) {
        let ticketed: Vec<ClaimId> = l.tickets.values().map(|c| c.id).collect();
        self.claims.retain(|id, _| {
            l.owner.is_some_and(|(o, _)| o == *id)
                || l.writer.is_some_and(|(w, _)| w == *id)
                || l.readers.contains_key(id)
                || l.holders.contains_key(id)
                || ticketed.contains(id)
        });
    }

    /// What inspection reports: the object's record, and every claim of
    /// the ledger with its note.
    pub(super) fn report(&self, l: &Ledger) -> (ObjectMeta, Vec<ClaimInfo>) {
        let mut claims = Vec::new();
        let mut add = |kind: ClaimKind, id: &ClaimId, d: Deadline| {
            let lease = (d != NEVER).then_some(d);
            claims.push(match self.claims.get(id) {
                Some(n) => ClaimInfo::new(
                    if n.ticket {
                        ClaimRole::Ticket
                    } else {
                        kind.into()
                    },
                    n.pid,
                    n.host.clone(),
                    n.label.clone(),
                    n.since_ms,
                    lease,
                ),
                None => ClaimInfo::new(kind.into(), 0, String::new(), None, 0, lease),
            });
        };
        if let Some((id, d)) = &l.owner {
            add(ClaimKind::Owner, id, *d);
        }
        if let Some((id, d)) = &l.writer {
            add(ClaimKind::Writer, id, *d);
        }
        for (id, d) in &l.holders {
            add(ClaimKind::Holder, id, *d);
        }
        for (id, d) in &l.readers {
            add(ClaimKind::Reader, id, *d);
        }
        (self.object.clone(), claims)
    }
}

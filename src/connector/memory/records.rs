//! What the memory connector records of each object and claim for
//! inspection, beside the slot's state word: the object's creation time and
//! name, its owner's note, and the claims that are not in this process's
//! claim journal.

use std::sync::Mutex;

use crate::codec;
use crate::connector::{ClaimInfo, ClaimRole, ObjectMeta, Value};
use crate::key::ClaimId;
use crate::state::{Claim, ClaimKind, Init, Note, State, journal};
use crate::sync::unmodeled::lock;

/// What a slot records for inspection: what was recorded when its value
/// was stored, and the claims not in this process's claim journal.
pub(super) struct Records {
    meta: SlotMeta,
    /// The record of an owner claim taken after the put (read while the
    /// state says it is owned); `None`: the owner is the one it was put
    /// with, whose note is in `meta`.
    owner: Mutex<Option<Noted>>,
    /// The claims not in the journal.
    noted: Mutex<Vec<Noted>>,
}

/// What a slot records when its value is stored (the value's type and
/// size are read from the value at inspection).
struct SlotMeta {
    created_ms: u64,
    /// The note of the owner claim it was put with (or none).
    owner_note: Note,
}

/// A claim recorded beside a slot.
#[derive(Clone, Copy)]
struct Noted {
    id: ClaimId,
    kind: ClaimKind,
    ticket: bool,
    note: Note,
    since_ms: u64,
}

impl Noted {
    fn of(c: Claim) -> Noted {
        Noted {
            id: c.id,
            kind: c.kind,
            ticket: false,
            note: c.note(),
            since_ms: journal::coarse_now_ms(),
        }
    }

    fn info(&self) -> ClaimInfo {
        let role = if self.ticket {
            ClaimRole::Ticket
        } else {
            self.kind.into()
        };
        ClaimInfo::here(role, self.note.label(), self.since_ms)
    }
}

impl Records {
    /// The records of a value stored with `init`, now.
    pub(super) fn new(init: Init) -> Records {
        let (owner_note, noted) = match init {
            Init::Claimed(c) if c.kind == ClaimKind::Owner => (c.note(), Vec::new()),
            Init::Claimed(c) => (Note::NONE, vec![Noted::of(c)]),
            Init::Plain => (Note::NONE, Vec::new()),
        };
        Records {
            meta: SlotMeta {
                created_ms: journal::coarse_now_ms(),
                owner_note,
            },
            owner: Mutex::new(None),
            noted: Mutex::new(noted),
        }
    }

    /// Records a claim taken without a journal record.
    #[inline(never)]
    pub(super) fn note_taken(&self, c: Claim) {
        match c.kind {
            ClaimKind::Owner => *lock(&self.owner) = Some(Noted::of(c)),
            _ => lock(&self.noted).push(Noted::of(c)),
        }
    }

    /// Forgets a claim given back that had no journal record. (The owner's
    /// record stays: the state says whether it is held.)
    #[inline(never)]
    pub(super) fn note_given_back(&self, c: Claim) {
        if c.kind != ClaimKind::Owner {
            lock(&self.noted).retain(|n| n.id != c.id);
        }
    }

    /// Shows `c` as a ticket in flight, or as held again.
    pub(super) fn note_ticket(&self, c: Claim, ticket: bool) {
        if let Some(r) = c.record() {
            r.set_kind(if ticket {
                journal::TICKET
            } else {
                c.kind.code()
            });
            return;
        }
        let mark = |n: &mut Noted| {
            if n.id == c.id {
                n.ticket = ticket;
            }
        };
        if c.kind == ClaimKind::Owner {
            let mut owner = lock(&self.owner);
            let o = owner.get_or_insert_with(|| Noted {
                id: c.id,
                kind: ClaimKind::Owner,
                ticket: false,
                note: self.meta.owner_note,
                since_ms: self.meta.created_ms,
            });
            mark(o);
        }
        lock(&self.noted).iter_mut().for_each(mark);
    }

    /// What inspection reports of a slot in `state` holding `value`, whose
    /// claims are journaled under `me` (the slot's address).
    pub(super) fn report(
        &self,
        state: State,
        value: &Value,
        me: usize,
    ) -> (ObjectMeta, Vec<ClaimInfo>) {
        let m = &self.meta;
        let (type_name, size) = match value {
            Value::Local(l) => (Some(l.type_name().to_owned()), l.size() as u64),
            Value::Bytes(b) => (
                codec::header(b).ok().map(|h| h.type_name().to_owned()),
                b.len() as u64,
            ),
        };
        let object = ObjectMeta {
            type_name,
            size: Some(size),
            created_ms: Some(m.created_ms),
            label: m.owner_note.name().map(str::to_owned),
        };
        let mut claims = Vec::new();
        if state.owned() {
            claims.push(match *lock(&self.owner) {
                Some(o) => o.info(),
                None => ClaimInfo::here(ClaimRole::Owner, m.owner_note.label(), m.created_ms),
            });
        }
        claims.extend(lock(&self.noted).iter().map(Noted::info));
        for e in journal::claims_of(me) {
            let role = match e.kind {
                0 => ClaimRole::Owner,
                1 => ClaimRole::Holder,
                2 => ClaimRole::Reader,
                3 => ClaimRole::Writer,
                _ => ClaimRole::Ticket,
            };
            claims.push(ClaimInfo::here(role, e.note.label(), e.since_ms));
        }
        (object, claims)
    }
}

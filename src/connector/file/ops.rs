//! One store's operations on an object whose place in the state table is
//! known: what both the keyed calls and the entries a proxy keeps run.

use std::fs;

use super::files::Inner;
use super::labels;
use super::layout::{Head, Status, note_of, note_word};
use super::shared::{Held, Patience};
use super::side::Place;
use super::table::{Fail, Redeemed};
use crate::connector::{Fetch, Stored, Value};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Op};

impl Inner {
    /// This process's record in the table (registered on first use).
    #[inline]
    pub(super) fn me(&self) -> Result<u32> {
        match self.shared.me() {
            Some(i) => Ok(i),
            None => self.register(),
        }
    }

    #[cold]
    fn register(&self) -> Result<u32> {
        self.shared.register().map_err(|e| {
            self.site
                .error(e, "registering this process in", &self.root.join("procs"))
        })
    }

    /// The note word of a claim `c` this process (record `me`) takes now:
    /// the time, and the number of its label, which this process's label
    /// file has from now on.
    #[inline]
    pub(super) fn note_here(&self, c: &Claim, me: u32) -> u64 {
        let n = labels::number(c.note());
        self.shared.labels.ensure(n);
        note_word(crate::state::journal::coarse_now_ms(), n, me)
    }

    /// `claim`, if this process holds it at its home entry.
    #[inline]
    fn at_home(&self, claim: &Claim) -> Option<Held> {
        let me = self.shared.me()?;
        let e = self.shared.home(claim)?;
        let head = self.shared.table().held_word_at(e, claim, me)?;
        Some(Held { entry: e, head })
    }

    /// Where this process holds `claim`: its home, else where the cache
    /// says (checked against the table: held, by this process, this
    /// claim), else where the map says. `take`: forget it (it is being
    /// released or sent off).
    fn locate(&self, claim: &Claim, take: bool) -> Option<Held> {
        if let Some(h) = self.at_home(claim) {
            return Some(h);
        }
        let table = self.shared.table();
        let me = self.shared.me();
        let cache = &self.shared.cache;
        let cached = if take {
            cache.take(claim)
        } else {
            cache.find(claim)
        };
        let cached = cached.and_then(|e| {
            let h = table.head(e).ok()?;
            let mine = h.status == Status::Held
                && Some(h.proc) == me
                && table.claim_of(e, h.kind).ok()? == *claim;
            mine.then_some(Held {
                entry: e,
                head: h.encode(),
            })
        });
        cached.or_else(|| {
            if take {
                self.shared.claims.remove(&claim.id).map(|(_, h)| h)
            } else {
                self.shared.claims.get(&claim.id).map(|h| *h)
            }
        })
    }

    /// Applies `op` to the object `key` at `place`.
    pub(super) fn apply_at(&self, key: &Key, place: Place, op: Op) -> Result<Effect> {
        let table = self.shared.table();
        match op {
            Op::Acquire(c) => {
                let me = self.me()?;
                let fail = |f| self.fail(f, op.name(), key);
                let note = self.note_here(&c, me);
                let mut pause = Patience::new();
                // The acquire at the claim's home if it is free, else
                // wherever an entry is.
                if let Some(done) = self.shared.home(&c).and_then(|e| {
                    table.acquire_home(e, (place.slot, place.epoch), &c, me, note, &mut pause)
                }) {
                    return done.map(|_| Effect::None).map_err(fail);
                }
                let (entry, head) = table
                    .acquire(
                        place.slot,
                        place.epoch,
                        c,
                        me,
                        self.shared.hint(),
                        &mut pause,
                    )
                    .map_err(fail)?;
                table.set_note(entry, note);
                let stale = |e: u32, id_bits: u64| {
                    let held = table
                        .head(e)
                        .is_ok_and(|h| h.status == super::layout::Status::Held && h.proc == me);
                    let same = table
                        .claim_of(e, c.kind)
                        .is_ok_and(|k| (k.id().as_u128() as u64) & ((1 << 43) - 1) == id_bits);
                    !(held && same)
                };
                if !self.shared.cache.put(&c, entry, stale) {
                    self.shared.claims.insert(
                        c.id,
                        Held {
                            entry,
                            head: head.encode(),
                        },
                    );
                }
                Ok(Effect::None)
            }
            Op::Release(c) | Op::Disown(c) => {
                self.give_back(key, Some(place), c, matches!(op, Op::Disown(_)))
            }
            Op::Evict => {
                table
                    .evict(place.slot, place.epoch, &mut Patience::new())
                    .map_err(|f| self.fail(f, op.name(), key))?;
                self.shared.finish_evict(place.slot);
                self.waiters.notify(key);
                Ok(Effect::Evict)
            }
        }
    }

    /// Releases (or disowns) `claim` on `key` (at `place`, if known); a
    /// claim this process does not hold (released already, or reclaimed) is
    /// a no-op, on an object that exists. [`Error::KeyNotFound`] if the
    /// object is gone.
    pub(super) fn give_back(
        &self,
        key: &Key,
        place: Option<Place>,
        claim: Claim,
        disown: bool,
    ) -> Result<Effect> {
        let table = self.shared.table();
        // Where the claim was taken: its home, else the entry's cache
        // (checked against the table: held, by this process, this claim),
        // else the map.
        let Some(held) = self.locate(&claim, true) else {
            let place = match place {
                Some(p)
                    if table
                        .state(p.slot, p.epoch)
                        .ok()
                        .flatten()
                        .is_some_and(|s| !s.gone()) =>
                {
                    p
                }
                Some(_) => return Err(self.not_found(key)),
                None => self.find(key)?.ok_or_else(|| self.not_found(key))?,
            };
            // Another process's claim, sent here (a task's borrow): released
            // as its holder would; one released already is a no-op.
            let Some((entry, head)) = table.find_held(place.slot, place.epoch, claim) else {
                return Ok(Effect::None);
            };
            return match table.release(entry, head, claim, disown, &mut Patience::new()) {
                Ok(effect) => {
                    if effect == Effect::Evict {
                        self.shared.finish_evict(head.slot);
                    }
                    self.waiters.notify(key);
                    Ok(effect)
                }
                Err(Fail::Lost) => Ok(Effect::None),
                Err(f) => Err(self.fail(f, "release", key)),
            };
        };
        match table.release_word(held.entry, held.head, claim, disown, &mut Patience::new()) {
            Ok(effect) => {
                self.shared.freed(held.entry);
                if effect == Effect::Evict {
                    self.shared.finish_evict(Head::slot_of(held.head));
                }
                self.waiters.notify(key);
                Ok(effect)
            }
            Err(Fail::Lost) => Ok(Effect::None),
            Err(Fail::Gone) => Err(self.not_found(key)),
            Err(f) => {
                // Still held (the object stayed busy): keep it, so that a
                // later release, or this process's end, gives it back.
                self.shared.claims.insert(claim.id, held);
                Err(self.fail(f, "release", key))
            }
        }
    }

    /// A version-checked read of `key` at `place`.
    pub(super) fn fetch_at(&self, key: &Key, place: Place, known: Option<u64>) -> Result<Fetch> {
        let table = self.shared.table();
        // A publish between reading the version and reading the value
        // removes the old value: read the version again.
        for _ in 0..64 {
            match table.state(place.slot, place.epoch) {
                Ok(Some(s)) if !s.gone() => {}
                Ok(_) | Err(Fail::Gone) => return Ok(Fetch::Missing),
                Err(f) => return Err(self.fail(f, "read", key)),
            }
            let version = table
                .version(place.slot)
                .map_err(|f| self.fail(f, "read", key))?;
            if Some(version) == known {
                return Ok(Fetch::Unchanged);
            }
            if let Some(bytes) = self.read_blob(key, place, version)? {
                return Ok(Fetch::Changed(Stored {
                    value: Value::Bytes(bytes),
                    version,
                }));
            }
        }
        Err(Error::Connector {
            store: self.name.clone(),
            source: format!("value of {key} keeps changing while it is read").into(),
        })
    }

    /// Publishes `value` for `key` at `place` on behalf of `writer`.
    pub(super) fn publish_at(
        &self,
        key: &Key,
        place: Place,
        writer: Claim,
        value: Value,
    ) -> Result<u64> {
        let lost = || Error::ClaimLost { key: *key };
        let table = self.shared.table();
        let held = match self.locate(&writer, false) {
            Some(h) => h,
            // Another process's writer, sent here (a task's mutable borrow).
            None => table
                .find_held(place.slot, place.epoch, writer)
                .map(|(entry, head)| Held {
                    entry,
                    head: head.encode(),
                })
                .ok_or_else(lost)?,
        };
        if writer.kind != ClaimKind::Writer || !table.has_head(held.entry, held.head) {
            return Err(lost());
        }
        let tmp = self.write_tmp(&value.into_bytes()?)?;
        let version = table
            .version(place.slot)
            .map_err(|f| self.fail(f, "update", key))?;
        let new = version + 1;
        let path = self.blob_path(key, new);
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(self.site.rename_error(e, &tmp, &path));
        }
        let moved = table.set_version(place.slot, version, new).unwrap_or(false);
        if !moved || !table.has_head(held.entry, held.head) {
            let _ = fs::remove_file(&path);
            return Err(lost());
        }
        // The table names the new version: only now may the old value go.
        let _ = fs::remove_file(self.blob_path(key, version));
        Ok(new)
    }

    /// Moves `claim` into ticket `ticket`.
    pub(super) fn issue_at(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        let lost = || Error::ClaimLost { key: *key };
        let head = match self.locate(&claim, true) {
            Some(held) => super::layout::Head::decode(held.head)
                .map(|h| (held.entry, h))
                .ok_or_else(lost)?,
            // Taken through an entry (its cache has it), or by another
            // process: found in the table.
            None => {
                let place = self.find(key)?.ok_or_else(|| self.not_found(key))?;
                self.shared
                    .table()
                    .find_held(place.slot, place.epoch, claim)
                    .ok_or_else(lost)?
            }
        };
        let (entry, head) = head;
        self.shared
            .table()
            .issue(entry, head, ticket, self.deadline())
            .map_err(|f| self.fail(f, "into_ticket", key))
    }

    /// Redeems ticket `ticket` of `key` at `place`, exactly once.
    pub(super) fn redeem_at(
        &self,
        key: &Key,
        place: Place,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> Result<Claim> {
        let me = self.me()?;
        let table = self.shared.table();
        match table.redeem(place.slot, place.epoch, ticket, kind, me) {
            Redeemed::Claim(entry, head, id) => {
                // Redeemed now, here, with the label it was taken with.
                let (_, label, labeler) = note_of(table.note(entry));
                let label = if labeler == me {
                    label
                } else {
                    self.label_text(labeler, label)
                        .map_or(0, |t| labels::adopt(&t))
                };
                self.shared.labels.ensure(label);
                let now = crate::state::journal::coarse_now_ms();
                table.set_note(entry, note_word(now, label, me));
                self.shared.claims.insert(
                    id,
                    Held {
                        entry,
                        head: head.encode(),
                    },
                );
                Ok(Claim::rebuilt(kind, id))
            }
            Redeemed::WrongKind(found) => Err(crate::connector::wrong_ticket_kind(found, kind)),
            Redeemed::Spent => {
                let _ = key;
                Err(Error::TicketRedeemed {
                    ticket: ticket.to_string(),
                })
            }
        }
    }
}

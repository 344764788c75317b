//! What inspection reads of a file-store object: its record (the side
//! file's), its state and version (the table's), and each claim on it —
//! the claim entries that name its slot, with their holder's process id
//! (its record's), host and label (its label file's), the time each was
//! taken and its lease deadline (a held claim's is its process's heartbeat
//! plus its lease; a ticket's, its own).

use std::collections::HashMap;

use super::files::Inner;
use super::labels;
use super::layout::{E_DEADLINE, E_EPOCH, E_NOTE, Status, note_of};
use super::side::Place;
use crate::connector::{ClaimInfo, ClaimRole, Inspect, this_process};
use crate::error::Result;
use crate::key::Key;

/// What inspection knows of one process record: its pid, lease deadline,
/// host and labels.
struct Proc {
    pid: u32,
    lease_expires_ms: u64,
    file: Option<(String, Vec<String>)>,
}

impl Inner {
    /// The inspection of `key`; `None` if it is not a live object.
    pub(super) fn inspect_key(&self, key: &Key) -> Result<Option<Inspect>> {
        let Some((place, object)) = self.find_with(key, true)? else {
            return Ok(None);
        };
        let table = self.shared.table();
        let fail = |f| self.fail(f, "inspect", key);
        let Some(state) = table.state(place.slot, place.epoch).map_err(fail)? else {
            return Ok(None);
        };
        if state.gone() {
            return Ok(None);
        }
        let version = table.version(place.slot).map_err(fail)?;
        let mut inspect = Inspect::new(state, version);
        inspect.object = object;
        inspect.claims = self.claims_on(place);
        Ok(Some(inspect))
    }

    /// The text of label number `n` of process record `labeler`: this
    /// process's own, or read from the record's label file.
    pub(super) fn label_text(&self, labeler: u32, n: u32) -> Option<String> {
        if n == 0 {
            return None;
        }
        if self.shared.me() == Some(labeler) {
            return labels::text(n);
        }
        labels::read(&self.shared.labels_path(labeler))?
            .1
            .get(n as usize - 1)
            .cloned()
    }

    /// The claims held on the object at `place`, and its tickets in flight.
    fn claims_on(&self, place: Place) -> Vec<ClaimInfo> {
        let table = self.shared.table();
        let me = self.shared.me();
        let mut procs: HashMap<u32, Proc> = HashMap::new();
        let proc = |i: u32| -> Proc {
            let (_, beat, pid, lease) = table.record(i);
            let file = (Some(i) != me)
                .then(|| labels::read(&self.shared.labels_path(i)))
                .flatten();
            Proc {
                pid: pid as u32,
                lease_expires_ms: beat.saturating_add(lease),
                file,
            }
        };
        let mut claims = Vec::new();
        for e in 0..table.entry_hwm() {
            let Ok(head) = table.head(e) else { continue };
            if head.slot != place.slot || !matches!(head.status, Status::Held | Status::Ticket) {
                continue;
            }
            let word = |f| {
                table
                    .entry(e, f)
                    .map_or(0, |w| w.load(std::sync::atomic::Ordering::Acquire))
            };
            let (epoch, note, deadline) = (word(E_EPOCH), word(E_NOTE), word(E_DEADLINE));
            // Read as a sequence lock: an entry that changed meanwhile is
            // another claim's now.
            if epoch != place.epoch || table.head(e).ok() != Some(head) {
                continue;
            }
            let (since_ms, label, labeler) = note_of(note);
            let label = if Some(labeler) == me {
                labels::text(label)
            } else {
                let file = &procs.entry(labeler).or_insert_with(|| proc(labeler)).file;
                (label > 0)
                    .then(|| file.as_ref()?.1.get(label as usize - 1).cloned())
                    .flatten()
            };
            let holder = procs.entry(head.proc).or_insert_with(|| proc(head.proc));
            let host = holder
                .file
                .as_ref()
                .map_or_else(|| this_process().1.to_owned(), |(h, _)| h.clone());
            let (kind, lease) = match head.status {
                Status::Ticket => (ClaimRole::Ticket, deadline),
                _ => (head.kind.into(), holder.lease_expires_ms),
            };
            claims.push(ClaimInfo::new(
                kind,
                holder.pid,
                host,
                label,
                since_ms,
                Some(lease),
            ));
        }
        claims
    }
}

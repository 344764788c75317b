//! The store directory's files: the shard locks, the paths of ledgers and
//! values, writing by rename, and [`Inner::with_ledger`], the one place a
//! transition reads, changes and persists a ledger.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::dir::{Locks, SHARDS, ShardGuard};
use super::notes::Notes;
use super::site::{Site, rename};
use crate::connector::lease::{self, Held};
use crate::connector::{Recheck, Waiters};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Deadline, Ledger, NEVER, Op};

const LEDGER_MAGIC: &[u8; 4] = b"BSL1";

/// How many claims a ledger holds.
fn claims_in(l: &Ledger) -> usize {
    usize::from(l.owner.is_some())
        + usize::from(l.writer.is_some())
        + l.holders.len()
        + l.readers.len()
}

/// An object's [`Notes`], decoded when first asked for.
pub(super) struct LazyNotes {
    raw: Vec<u8>,
    notes: Option<Notes>,
}

impl LazyNotes {
    pub(super) fn get(&mut self) -> &mut Notes {
        self.notes.get_or_insert_with(|| Notes::decode(&self.raw))
    }
}

/// What the connector and its lease renewer share.
pub(super) struct Inner {
    pub(super) name: String,
    /// What I/O errors say about the store; see [`Site`].
    pub(super) site: Site,
    pub(super) root: PathBuf,
    pub(super) lease: Duration,
    locks: Arc<Locks>,
    pub(super) held: Held,
    pub(super) waiters: Arc<Waiters>,
}

/// How this process's waiters re-check for other processes' releases.
const RECHECK: Recheck = Recheck::Backoff {
    first: Duration::from_millis(2),
    max: Duration::from_millis(64),
};

impl Inner {
    pub(super) fn new(
        name: String,
        site: Site,
        root: PathBuf,
        lease: Duration,
        locks: Arc<Locks>,
    ) -> Inner {
        Inner {
            name,
            site,
            root,
            lease,
            locks,
            held: Held::default(),
            waiters: Waiters::new(RECHECK),
        }
    }

    pub(super) fn not_found(&self, key: &Key) -> Error {
        Error::KeyNotFound {
            key: *key,
            store: self.name.clone(),
        }
    }

    pub(super) fn deadline(&self) -> Deadline {
        lease::now_ms().saturating_add(self.lease.as_millis() as u64)
    }

    pub(super) fn lock(&self, key: &Key) -> Result<ShardGuard<'_>> {
        let shard = (key.as_u128() as usize) % SHARDS;
        self.locks
            .lock(shard)
            .map_err(|e| self.site.error(e, "locking", &self.locks.path(shard)))
    }

    pub(super) fn ledger_path(&self, key: &Key) -> PathBuf {
        self.root.join("objects").join(format!("{key}.ledger"))
    }

    pub(super) fn blob_path(&self, key: &Key, version: u64) -> PathBuf {
        self.root
            .join("objects")
            .join(format!("{key}.{version}.blob"))
    }

    /// Writes `data` to a new temporary file and returns its path.
    pub(super) fn write_tmp(&self, data: &[u8]) -> Result<PathBuf> {
        let path = self
            .root
            .join("tmp")
            .join(format!("{}.tmp", ClaimId::random()));
        let mut f = File::create(&path).map_err(|e| self.site.error(e, "creating", &path))?;
        f.write_all(data)
            .map_err(|e| self.site.error(e, "writing", &path))?;
        Ok(path)
    }

    pub(super) fn read_ledger(&self, key: &Key) -> Result<Option<Ledger>> {
        Ok(self.read_record(key)?.map(|(l, _)| l))
    }

    /// The ledger, and the bytes of its notes ([`Notes`]).
    pub(super) fn read_record(&self, key: &Key) -> Result<Option<(Ledger, Vec<u8>)>> {
        let path = self.ledger_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.site.error(e, "reading", &path)),
        };
        if bytes.len() < 4 || &bytes[..4] != LEDGER_MAGIC {
            return Err(Error::decode(format_args!("ledger of {key} is damaged")));
        }
        crate::connector::wire::decode_ledger(&bytes[4..])
            .map(|(l, rest)| Some((l, rest.to_vec())))
            .map_err(|e| Error::decode(format_args!("ledger of {key} is damaged: {e}")))
    }

    /// Writes the ledger and its notes.
    pub(super) fn write_ledger(&self, key: &Key, ledger: &Ledger, notes: &Notes) -> Result<()> {
        let mut bytes = LEDGER_MAGIC.to_vec();
        bytes = postcard::to_extend(ledger, bytes).map_err(Error::encode)?;
        bytes = postcard::to_extend(notes, bytes).map_err(Error::encode)?;
        let tmp = self.write_tmp(&bytes)?;
        rename(&self.site, &tmp, &self.ledger_path(key))
    }

    /// Removes an evicted object: the ledger first, so a process killed in
    /// between leaves an orphaned value (swept by the reap pass), never a
    /// ledger without its value.
    pub(super) fn remove_object(&self, key: &Key, version: u64) {
        let _ = fs::remove_file(self.ledger_path(key));
        let _ = fs::remove_file(self.blob_path(key, version));
        self.held.forget_key(key);
    }

    /// Runs `f` on the key's ledger under the shard lock, after releasing
    /// expired claims, and persists what changed.
    pub(super) fn with_ledger<R>(
        &self,
        key: &Key,
        f: impl FnOnce(&mut Ledger) -> Result<R>,
    ) -> Result<R> {
        self.with_record(key, |l, _| f(l))
    }

    /// The key's ledger and notes as they are, under the shard lock:
    /// expired claims are not released, and nothing is written.
    pub(super) fn peek(&self, key: &Key) -> Result<Option<(Ledger, Notes)>> {
        let _guard = self.lock(key)?;
        Ok(self
            .read_record(key)?
            .filter(|(l, _)| !l.state.gone())
            .map(|(l, raw)| (l, Notes::decode(&raw))))
    }

    /// [`with_ledger`](Self::with_ledger), with the object's [`Notes`]
    /// (read only when `f` asks for them or the ledger changed, and written
    /// with the ledger).
    pub(super) fn with_record<R>(
        &self,
        key: &Key,
        f: impl FnOnce(&mut Ledger, &mut LazyNotes) -> Result<R>,
    ) -> Result<R> {
        let (result, freed) = {
            let _guard = self.lock(key)?;
            let Some((mut ledger, raw)) = self.read_record(key)? else {
                return Err(self.not_found(key));
            };
            let mut notes = LazyNotes { raw, notes: None };
            let before = ledger.clone();
            let _ = ledger.expire(lease::now_ms());
            let reclaimed = claims_in(&before).saturating_sub(claims_in(&ledger));
            if reclaimed > 0 {
                let span = tracing::debug_span!(
                    target: "borrowstore",
                    "reclaim",
                    store = %self.name,
                    key = %key,
                    claims = reclaimed,
                    outcome = "ok"
                );
                span.in_scope(|| tracing::debug!(target: "borrowstore", "expired leases released"));
            }
            let result = if ledger.state.gone() {
                Err(self.not_found(key))
            } else {
                f(&mut ledger, &mut notes)
            };
            let touched = notes.notes.is_some();
            let (was, now) = (before.state, ledger.state);
            let freed =
                now.gone() || now.readers() < was.readers() || (was.writer() && !now.writer());
            if ledger.state.gone() {
                // Readers of the value (take) have read it inside `f`.
                self.remove_object(key, ledger.version);
            } else if ledger != before || touched {
                let was = notes.notes.clone();
                let n = notes.get();
                n.keep_held(&ledger);
                if ledger != before || was.as_ref() != Some(n) {
                    self.write_ledger(key, &ledger, n)?;
                }
            }
            (result, freed)
        };
        if freed {
            // Released here, or reclaimed from a dead process: wake this
            // process's waiters (the others' re-check).
            self.waiters.notify(key);
        }
        result
    }

    pub(super) fn read_blob(&self, key: &Key, version: u64) -> Result<Option<Bytes>> {
        let path = self.blob_path(key, version);
        match fs::read(&path) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.site.error(e, "reading", &path)),
        }
    }

    pub(super) fn deadline_for(&self, op: &Op) -> Deadline {
        match op {
            Op::Acquire(_) => self.deadline(),
            _ => NEVER,
        }
    }
}

//! The directory connector: several processes on one host.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

mod dir;
mod files;
mod notes;
mod renew;
mod site;

use crate::connector::lease;
use crate::connector::offload::{Undo, offload};
use crate::connector::{Connector, Entry, Fetch, Inspect, Stored, Value, Waiters};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Ledger, NEVER, Op, Redeem};
use dir::Locks;
use files::Inner;
use site::{Site, rename};

/// Keeps objects in a directory, shared by every process on the host that
/// opens it (`file:///path/to/dir`, optionally `?lease_ms=N`).
///
/// Layout:
///
/// - `objects/<key>.ledger` — the object's [`Ledger`] (claims with their lease
///   deadlines, tickets, version), followed by what is recorded for
///   inspection (the value's type, size, creation time and name; each
///   claim's process, host, label and time: the format is documented in
///   `src/connector/file/notes.rs`);
/// - `objects/<key>.<version>.blob` — the value, one file per version;
/// - `locks/<00..ff>.lock` — 256 lock files, never deleted;
/// - `tmp/` — files being written;
/// - `borrowstore.dir` — the marker that makes it a borrowstore directory:
///   two lines, `borrowstore file store` and `format 1`. Opening a
///   directory ([`open`](FileConnector::open), [`Store::open`](crate::Store::open))
///   creates it and its layout if needed, and writes the marker last; a
///   store that proxy or ticket bytes name is opened only if its directory
///   has the marker, and nothing is created for it.
///
/// The lock files are opened as objects need them and shared by every file
/// store of the directory in this process, so a process holds at most 256
/// files open per directory, however many stores name it.
///
/// Every state transition runs under the key's shard lock — a `std` mutex
/// between this process's threads, and an exclusive file lock
/// ([`File::lock`](std::fs::File::lock)) between processes — and writes its ledger to a temporary
/// file that is renamed into place, so a process killed at any point leaves
/// either the old ledger or the new one. Values are written the same way,
/// under a new name per version, so readers never see half a value.
///
/// Claims are leased: this process renews its claims in the background, and
/// claims whose lease ran out (a killed process) are released by the next
/// operation on the object, or by the reap pass every lease.
///
/// Waiting borrows are woken at once by the releases this process makes
/// (and the expired claims it reclaims): every transition that frees a
/// claim announces itself to the connector's [`Waiters`]. Releases made by
/// other processes leave no trace this process could wait on, so its
/// waiters also re-check, after 2 ms and then twice as long each time up to
/// 64 ms. (That backoff is the seam for a wake-up shared between processes:
/// whatever announces them calls the same [`Waiters::notify`].)
///
/// The `_async` operations run their file I/O on tokio's blocking pool
/// (`spawn_blocking`) when they are polled inside a tokio runtime, and
/// inline otherwise.
///
/// A failed file operation is an [`Error::Connector`] that names the store
/// (its URL, when the store is not named by it), the operation and the path,
/// with the OS error last: `store "file:///data" failed: creating directory
/// /data/objects: Permission denied (os error 13)`. Its source is an
/// [`std::io::Error`] of the OS error's kind.
pub struct FileConnector {
    inner: Arc<Inner>,
    /// The lease renewer; `None` in the handles made for work sent off the
    /// executor.
    renewer: Option<lease::Renewer>,
}

impl Drop for FileConnector {
    /// Ends the lease renewer now: a closed store leaves no thread behind.
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.stop();
        }
    }
}

impl FileConnector {
    /// Opens (creating if needed) the store directory `root` with the
    /// default lease ([`DEFAULT_LEASE`](crate::connector::DEFAULT_LEASE)).
    pub fn open(name: impl Into<String>, root: impl Into<PathBuf>) -> Result<Self> {
        Self::with_lease(name, root, lease::DEFAULT_LEASE)
    }

    /// Opens the store directory `root`; claims of a process that dies are
    /// reclaimed `lease` after its last renewal.
    pub fn with_lease(
        name: impl Into<String>,
        root: impl Into<PathBuf>,
        lease: Duration,
    ) -> Result<Self> {
        let name = name.into();
        let root = root.into();
        let site = Site::new(&name, &root);
        for sub in ["objects", "locks", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| site.error(e, "creating directory", &dir))?;
        }
        let locks = Locks::of(&root);
        locks
            .open_all()
            .map_err(|(e, path)| site.error(e, "opening", &path))?;
        dir::write_marker(&root).map_err(|e| site.error(e, "marking", &root.join(dir::MARKER)))?;
        Ok(Self::start(name, site, root, lease, locks))
    }

    /// Opens the store directory `root` only if it exists and is a
    /// borrowstore directory (it has the marker); creates nothing. Lock
    /// files are opened as objects use them. What stores named by arriving
    /// bytes open.
    pub(crate) fn open_existing(name: &str, root: PathBuf, lease: Duration) -> Result<Self> {
        let site = Site::new(name, &root);
        dir::check_marker(&root).map_err(|e| site.error(e, "opening store directory", &root))?;
        let locks = Locks::of(&root);
        Ok(Self::start(name.to_owned(), site, root, lease, locks))
    }

    fn start(name: String, site: Site, root: PathBuf, lease: Duration, locks: Arc<Locks>) -> Self {
        let inner = Arc::new(Inner::new(name, site, root, lease, locks));
        let renewer = Some(lease::spawn_renewer(Arc::downgrade(&inner), lease));
        FileConnector { inner, renewer }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Number of claims this process holds and renews.
    pub fn held_claims(&self) -> usize {
        self.inner.held.len()
    }

    /// Another handle on the same connector (for work sent off the
    /// executor).
    fn handle(&self) -> FileConnector {
        FileConnector {
            inner: self.inner.clone(),
            renewer: None,
        }
    }

    /// Runs `f` on this connector off the executor thread ([`offload`]).
    fn off<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FileConnector) -> Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T>> {
        let c = self.handle();
        Box::pin(offload(self.inner.name.clone(), move || f(&c)))
    }

    /// [`off`](Self::off), for a request that takes `claim` on `key`: if
    /// the caller's future is dropped before it takes the result, the claim
    /// is given back (after the request: it runs on the blocking pool).
    fn off_claiming<T: Send + 'static>(
        &self,
        key: Key,
        claim: Option<Claim>,
        f: impl FnOnce(&FileConnector) -> Result<T> + Send + 'static,
    ) -> BoxFuture<'static, Result<T>> {
        let c = self.handle();
        let work = offload(self.inner.name.clone(), move || {
            let value = f(&c)?;
            let undo = match claim {
                Some(claim) => Undo::new(move || c.release(&key, claim)),
                None => Undo::none(),
            };
            Ok((value, undo))
        });
        Box::pin(async move {
            let (value, undo) = work.await?;
            undo.disarm();
            Ok(value)
        })
    }
}

impl Connector for FileConnector {
    /// Releases are applied before `release` returns (local files).
    fn queues_releases(&self) -> bool {
        false
    }

    fn waiters(&self) -> Option<&Arc<Waiters>> {
        Some(&self.inner.waiters)
    }

    fn put_async(
        &self,
        key: Key,
        value: Value,
        init: Init,
    ) -> BoxFuture<'_, Result<Option<Arc<dyn Entry>>>> {
        let claim = match init {
            Init::Claimed(c) => Some(c),
            Init::Plain => None,
        };
        self.off_claiming(key, claim, move |c| c.put(&key, value, init))
    }

    fn fetch_async(&self, key: Key, known_version: Option<u64>) -> BoxFuture<'_, Result<Fetch>> {
        self.off(move |c| c.fetch(&key, known_version))
    }

    fn exists_async(&self, key: Key) -> BoxFuture<'_, Result<bool>> {
        self.off(move |c| c.exists(&key))
    }

    fn evict_async(&self, key: Key) -> BoxFuture<'_, Result<bool>> {
        self.off(move |c| c.evict(&key))
    }

    fn take_async(&self, key: Key) -> BoxFuture<'_, Result<Option<Stored>>> {
        self.off(move |c| c.take(&key))
    }

    fn publish_async(&self, key: Key, writer: Claim, value: Value) -> BoxFuture<'_, Result<u64>> {
        self.off(move |c| c.publish(&key, writer, value))
    }

    fn apply_async(&self, key: Key, op: Op) -> BoxFuture<'_, Result<Effect>> {
        let claim = match op {
            Op::Acquire(c) => Some(c),
            _ => None,
        };
        self.off_claiming(key, claim, move |c| c.apply(&key, op))
    }

    fn acquire_fetch_async(
        &self,
        key: Key,
        claim: Claim,
        known_version: Option<u64>,
    ) -> BoxFuture<'_, Result<Option<Fetch>>> {
        self.off_claiming(key, Some(claim), move |c| {
            c.acquire_fetch(&key, claim, known_version)
        })
    }

    fn issue_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        claim: Claim,
    ) -> BoxFuture<'_, Result<()>> {
        self.off(move |c| c.issue_ticket(&key, ticket, claim))
    }

    fn redeem_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> BoxFuture<'_, Result<Claim>> {
        let c = self.handle();
        let work = offload(self.inner.name.clone(), move || {
            let claim = c.redeem_ticket(&key, ticket, kind)?;
            Ok((claim, Undo::new(move || c.release(&key, claim))))
        });
        Box::pin(async move {
            let (claim, undo) = work.await?;
            undo.disarm();
            Ok(claim)
        })
    }

    fn cancel_ticket_async(
        &self,
        key: Key,
        ticket: ClaimId,
        kind: ClaimKind,
    ) -> BoxFuture<'_, Result<()>> {
        self.off(move |c| c.cancel_ticket(&key, ticket, kind))
    }

    fn inspect_async(&self, key: Key) -> BoxFuture<'_, Result<Option<Inspect>>> {
        self.off(move |c| c.inspect(&key))
    }

    fn keys_async(&self) -> BoxFuture<'_, Result<Vec<Key>>> {
        self.off(|c| c.keys())
    }

    fn put(&self, key: &Key, value: Value, init: Init) -> Result<Option<Arc<dyn Entry>>> {
        let inner = &self.inner;
        let bytes = value.into_bytes()?;
        let tmp = inner.write_tmp(&bytes)?;
        let _guard = inner.lock(key)?;
        if inner.ledger_path(key).exists() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Connector {
                store: inner.name.clone(),
                source: format!("key {key} already exists").into(),
            });
        }
        rename(&inner.site, &tmp, &inner.blob_path(key, 1))?;
        let notes = notes::Notes::at_put(&bytes, init);
        inner.write_ledger(key, &Ledger::new(init, inner.deadline()), &notes)?;
        if let Init::Claimed(c) = init {
            inner.held.add(*key, c);
        }
        Ok(None)
    }

    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        match self.fetch(key, None)? {
            Fetch::Changed(s) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        let inner = &self.inner;
        // A publish between reading the version and reading the blob removes
        // the old blob: read the version again.
        for _ in 0..64 {
            let version = match inner.with_ledger(key, |l| Ok(l.version)) {
                Ok(v) => v,
                Err(Error::KeyNotFound { .. }) => return Ok(Fetch::Missing),
                Err(e) => return Err(e),
            };
            if Some(version) == known_version {
                return Ok(Fetch::Unchanged);
            }
            if let Some(bytes) = inner.read_blob(key, version)? {
                return Ok(Fetch::Changed(Stored {
                    value: Value::Bytes(bytes),
                    version,
                }));
            }
        }
        Err(Error::Connector {
            store: inner.name.clone(),
            source: format!("value of {key} keeps changing while it is read").into(),
        })
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        match self.inner.with_ledger(key, |_| Ok(())) {
            Ok(()) => Ok(true),
            Err(Error::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn evict(&self, key: &Key) -> Result<bool> {
        let inner = &self.inner;
        match inner.with_ledger(key, |l| {
            l.apply(Op::Evict, NEVER)
                .map_err(|r| r.into_error(Op::Evict.name(), *key, &inner.name))
        }) {
            Ok(_) => Ok(true),
            Err(Error::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        let inner = &self.inner;
        let r = inner.with_ledger(key, |l| {
            l.apply(Op::Evict, NEVER)
                .map_err(|r| r.into_error(Op::Evict.name(), *key, &inner.name))?;
            let bytes = inner
                .read_blob(key, l.version)?
                .ok_or_else(|| inner.not_found(key))?;
            Ok(Stored {
                value: Value::Bytes(bytes),
                version: l.version,
            })
        });
        match r {
            Ok(s) => Ok(Some(s)),
            Err(Error::KeyNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        let inner = &self.inner;
        let tmp = inner.write_tmp(&value.into_bytes()?)?;
        let mut renamed: Option<u64> = None;
        let r = inner.with_ledger(key, |l| {
            if writer.kind != ClaimKind::Writer || !l.holds(writer) {
                return Err(Error::ClaimLost { key: *key });
            }
            let new = l.version + 1;
            rename(&inner.site, &tmp, &inner.blob_path(key, new))?;
            renamed = Some(new);
            l.version = new;
            Ok(new)
        });
        match r {
            // The ledger naming the new version is in place: only now may the
            // old value go. (A process killed before this line leaves an
            // orphan that the reap pass removes, never a ledger without its
            // value.)
            Ok(new) => {
                let _ = fs::remove_file(inner.blob_path(key, new - 1));
                Ok(new)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                if let Some(new) = renamed {
                    let _ = fs::remove_file(inner.blob_path(key, new));
                }
                Err(e)
            }
        }
    }

    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        let inner = &self.inner;
        let deadline = inner.deadline_for(&op);
        let effect = inner.with_record(key, |l, n| {
            let effect = l
                .apply(op, deadline)
                .map_err(|r| r.into_error(op.name(), *key, &inner.name))?;
            if let Op::Acquire(c) = op {
                n.get().taken(c);
            }
            Ok(effect)
        })?;
        match op {
            Op::Acquire(c) => inner.held.add(*key, c),
            Op::Release(c) | Op::Disown(c) => inner.held.remove(key, &c),
            Op::Evict => {}
        }
        Ok(effect)
    }

    fn release(&self, key: &Key, claim: Claim) {
        self.inner.held.remove(key, &claim);
        match self.apply(key, Op::Release(claim)) {
            Ok(_) | Err(Error::KeyNotFound { .. }) => {}
            Err(e) => tracing::warn!(%key, error = %e, "release failed"),
        }
    }

    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        let inner = &self.inner;
        inner.with_record(key, |l, n| {
            l.issue_ticket(ticket, claim)
                .map_err(|r| r.into_error("into_ticket", *key, &inner.name))?;
            n.get().ticket(claim);
            Ok(())
        })?;
        // The ticket's claim is no longer this process's to renew: if it is
        // never redeemed, its lease runs out.
        inner.held.remove(key, &claim);
        Ok(())
    }

    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        let inner = &self.inner;
        let deadline = inner.deadline();
        let redeemed = || Error::TicketRedeemed {
            ticket: ticket.to_string(),
        };
        let redeem = |l: &mut Ledger, n: &mut files::LazyNotes| {
            let r = l.redeem_ticket(ticket, kind, deadline);
            if let Redeem::Claim(c) = r {
                n.get().redeemed(c);
            }
            Ok(r)
        };
        let claim = match inner.with_record(key, redeem) {
            Ok(Redeem::Claim(c)) => c,
            Ok(Redeem::WrongKind(found)) => {
                return Err(crate::connector::wrong_ticket_kind(found, kind));
            }
            Ok(Redeem::Spent) | Err(Error::KeyNotFound { .. }) => return Err(redeemed()),
            Err(e) => return Err(e),
        };
        inner.held.add(*key, claim);
        Ok(claim)
    }

    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        let claim = self.redeem_ticket(key, ticket, kind)?;
        self.release(key, claim);
        Ok(())
    }

    /// Reads the ledger as it is: claims whose lease ran out are reported
    /// (with their deadline in the past), not released.
    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        Ok(self.inner.peek(key)?.map(|(l, n)| {
            let (object, claims) = n.report(&l);
            Inspect {
                state: l.state,
                version: l.version,
                object,
                claims,
            }
        }))
    }

    fn keys(&self) -> Result<Vec<Key>> {
        let inner = &self.inner;
        let mut keys = Vec::new();
        let objects = inner.root.join("objects");
        let listing = |e| inner.site.error(e, "listing", &objects);
        for entry in fs::read_dir(&objects).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            if let Some(key) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".ledger"))
                .and_then(|k| k.parse::<Key>().ok())
                && inner.peek(&key)?.is_some()
            {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

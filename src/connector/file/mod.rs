//! The directory connector: several processes on one host, their borrow
//! state in a memory-mapped table of atomics.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

mod cache;
mod dir;
mod entry;
mod files;
mod inspect;
mod keeper;
#[cfg(test)]
mod keeper_tests;
mod labels;
mod layout;
mod map;
mod ops;
mod queries;
mod reclaim;
mod shared;
mod side;
mod site;
mod slots;
mod table;
mod tickets;

use crate::connector::lease;
use crate::connector::offload::{Undo, offload};
use crate::connector::{Connector, Entry, Fetch, Inspect, Recheck, Stored, Value, Waiters};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Effect, Init, Op};
use entry::FileEntry;
use files::Inner;
use keeper::Keeper;
use shared::{Patience, Shared};
use side::Place;
use site::Site;

// The table's protocol, for the loom models (`src/sync/table_models.rs`),
// which run it on loom's atomics.
#[cfg(test)]
#[allow(unused_imports)]
pub(crate) use self::{
    layout::{Head, Layout, Status},
    table::{Fail, Pause, Redeemed, Table},
};

/// Keeps objects in a directory, shared by every process on the host that
/// opens it (`file:///path/to/dir`, optionally `?lease_ms=N` and
/// `capacity=N`). The directory must be on a local file system (or tmpfs):
/// its state is shared through a memory mapping, which network file
/// systems do not keep coherent between hosts.
///
/// Layout:
///
/// - `table` — the state table, mapped by every process that opens the
///   directory: a header, a record per process, a slot per object (its
///   borrow state in one atomic word, its version, its key) and an entry
///   per claim (kind, holding process, claim id, ticket, time and label). Its capacity is
///   fixed when the directory is created (`capacity=N` objects, default
///   1,048,576, and twice as many claims); a full table is an error.
/// - `objects/<key>.ledger` — the object's side file, written once at
///   creation: its slot in the table, what inspection shows of it (the
///   value's type, size, creation time and name) and, for a value of at
///   most 64 KiB encoded, the value's first version (the format is
///   documented in `src/connector/file/side.rs`);
/// - `objects/<key>.<version>.blob` — the value, one file per version
///   (but a first version that the side file holds), written to `tmp/` and
///   renamed into place, never changed after;
/// - `procs/<n>.lock` — a lock file per process record;
/// - `procs/<n>.notes` — a process record's label file: its host, and the
///   labels of the claims it took, each written the first time the process
///   takes a claim with it (a claim's entry records the label's number and
///   the time it was taken: `src/connector/file/labels.rs`);
/// - `tmp/` — files being written;
/// - `borrowstore.dir` — the marker that makes it a borrowstore directory:
///   two lines, `borrowstore file store` and `format 2`. Opening a
///   directory ([`open`](FileConnector::open), [`Store::open`](crate::Store::open))
///   creates it and its layout if needed, and writes the marker last; a
///   store that proxy or ticket bytes name is opened only if its directory
///   has the marker, and nothing is created for it.
///
/// A borrow and its release are a few atomic operations on the table (no
/// lookup, no system call, no file I/O): a compare-and-swap on the
/// object's state word, and the claim's entry — its home entry, one of a
/// block each process has, picked from the claim's id, so that the release
/// finds it there (a claim whose home is taken is recorded in a lock-free
/// cache of this process). Creating an object writes
/// its side file (holding a small value; a larger one is a file of its
/// own); evicting removes them. No operation takes a
/// lock that another process can hold for long: a transition marks the
/// object's word for the three stores that record it, and another process
/// that finds the mark waits at most two seconds (a process stopped at that
/// very instruction), then gets an error.
///
/// Each process that uses the directory registers a record in the table
/// and holds an exclusive lock ([`File::lock`](std::fs::File::lock)) on
/// its record's lock file for its life. The kernel drops the lock when the
/// process dies, however it dies, so the other processes see the death
/// within 20 ms and reclaim exactly what it held — its owners, borrows and
/// the transitions it was in the middle of — as its handles would have
/// released them. A process that lives but does not run (stopped with
/// `SIGSTOP`) keeps its claims for its lease: it renews the lease with one
/// heartbeat for all its claims, and once its heartbeat is older than the
/// lease, its claims are reclaimed. Tickets are leased on their own: an
/// unredeemed ticket's claim is released when its lease runs out.
///
/// Waiting borrows are woken at once by the releases this process makes
/// and the reclaims it does: each announces itself to the connector's
/// [`Waiters`]. Releases made by other processes are found by re-checking
/// after 2 ms, then twice as long each time up to 64 ms.
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
    /// The keeper thread; `None` in the handles made for work sent off the
    /// executor.
    keeper: Option<Keeper>,
}

impl Drop for FileConnector {
    /// Ends the keeper now: a closed store leaves no thread behind.
    fn drop(&mut self) {
        if let Some(k) = self.keeper.take() {
            k.stop();
        }
    }
}

/// How this process's waiters re-check for other processes' releases.
const RECHECK: Recheck = Recheck::Backoff {
    first: Duration::from_millis(2),
    max: Duration::from_millis(64),
};

impl FileConnector {
    /// Opens (creating if needed) the store directory `root` with the
    /// default lease ([`DEFAULT_LEASE`](crate::connector::DEFAULT_LEASE)).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("bs-doc-fc-{}", std::process::id()));
    /// let c = borrowstore::connector::FileConnector::open("demo", &dir)?;
    /// assert_eq!(c.root(), dir.as_path());
    /// # drop(c); let _ = std::fs::remove_dir_all(&dir);
    /// # Ok::<(), borrowstore::Error>(())
    /// ```
    pub fn open(name: impl Into<String>, root: impl Into<PathBuf>) -> Result<Self> {
        Self::with_lease(name, root, lease::DEFAULT_LEASE)
    }

    /// Opens the store directory `root`; claims of a process that is
    /// stopped are reclaimed `lease` after its last renewal (those of a
    /// process that dies, at once).
    pub fn with_lease(
        name: impl Into<String>,
        root: impl Into<PathBuf>,
        lease: Duration,
    ) -> Result<Self> {
        Self::with_options(name, root, lease, None)
    }

    /// [`with_lease`](Self::with_lease), with the capacity (objects) of a
    /// new directory's table; an existing table keeps its own.
    pub(crate) fn with_options(
        name: impl Into<String>,
        root: impl Into<PathBuf>,
        lease: Duration,
        capacity: Option<u64>,
    ) -> Result<Self> {
        let name = name.into();
        let root = root.into();
        let site = Site::new(&name, &root);
        for sub in ["objects", "procs", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| site.error(e, "creating directory", &dir))?;
        }
        dir::refuse_network_fs(&root).map_err(|e| site.error(e, "opening", &root))?;
        let objects = capacity.unwrap_or(shared::DEFAULT_OBJECTS);
        let shared = Shared::of(&root, objects, true)
            .map_err(|e| site.error(e, "opening the state table", &root.join(shared::TABLE)))?;
        dir::write_marker(&root).map_err(|e| site.error(e, "marking", &root.join(dir::MARKER)))?;
        Ok(Self::start(name, site, root, lease, shared))
    }

    /// Opens the store directory `root` only if it exists and is a
    /// borrowstore directory (it has the marker); creates nothing. What
    /// stores named by arriving bytes open.
    pub(crate) fn open_existing(name: &str, root: PathBuf, lease: Duration) -> Result<Self> {
        let site = Site::new(name, &root);
        dir::check_marker(&root).map_err(|e| site.error(e, "opening store directory", &root))?;
        let shared = Shared::of(&root, 0, false)
            .map_err(|e| site.error(e, "opening the state table", &root.join(shared::TABLE)))?;
        Ok(Self::start(name.to_owned(), site, root, lease, shared))
    }

    fn start(
        name: String,
        site: Site,
        root: PathBuf,
        lease: Duration,
        shared: Arc<Shared>,
    ) -> Self {
        shared.lease_ms.fetch_max(
            lease.as_millis().max(1) as u64,
            std::sync::atomic::Ordering::AcqRel,
        );
        let waiters = Waiters::new(RECHECK);
        shared.add_waiters(&waiters);
        let keeper = Some(keeper::spawn(Arc::downgrade(&shared)));
        let inner = Arc::new(Inner {
            name,
            site,
            root,
            lease,
            shared,
            waiters,
        });
        FileConnector { inner, keeper }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Number of claims this process holds on the directory (through any of
    /// its stores of it); one heartbeat renews them all. (It counts them in
    /// the state table.)
    pub fn held_claims(&self) -> usize {
        match self.inner.shared.me() {
            Some(me) => self.inner.shared.table().held_by(me),
            None => 0,
        }
    }

    /// Another handle on the same connector (for work sent off the
    /// executor).
    fn handle(&self) -> FileConnector {
        FileConnector {
            inner: self.inner.clone(),
            keeper: None,
        }
    }

    /// Where `key` lives, or [`Error::KeyNotFound`].
    fn place(&self, key: &Key) -> Result<Place> {
        self.inner
            .find(key)?
            .ok_or_else(|| self.inner.not_found(key))
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
        let me = inner.me()?;
        let table = inner.shared.table();
        let (slot, epoch, entry) = table
            .create(
                *key,
                init,
                me,
                lease::now_ms(),
                inner.shared.hint(),
                inner.shared.hint(),
            )
            .map_err(|f| inner.fail(f, "put", key))?;
        let place = Place { slot, epoch };
        if let (Init::Claimed(c), Some((e, _))) = (init, entry) {
            table.set_note(e, inner.note_here(&c, me));
        }
        let abandon = || {
            let _ = table.abandon(slot, epoch, entry);
        };
        let name = match init {
            Init::Claimed(c) if c.kind == ClaimKind::Owner => c.note().name(),
            _ => None,
        };
        let meta = crate::connector::ObjectMeta::of_bytes(&bytes, name);
        if let Err(e) = inner.write_first(key, place, &meta, &bytes) {
            abandon();
            return Err(e);
        }
        table
            .publish_slot(slot, me)
            .map_err(|f| inner.fail(f, "put", key))?;
        if let (Init::Claimed(c), Some((e, head))) = (init, entry) {
            inner.shared.claims.insert(
                c.id,
                shared::Held {
                    entry: e,
                    head: head.encode(),
                },
            );
        }
        Ok(Some(Arc::new(FileEntry::new(
            self.inner.clone(),
            *key,
            place,
        ))))
    }

    fn get(&self, key: &Key) -> Result<Option<Stored>> {
        match self.fetch(key, None)? {
            Fetch::Changed(s) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    fn fetch(&self, key: &Key, known_version: Option<u64>) -> Result<Fetch> {
        match self.inner.find(key)? {
            Some(place) => self.inner.fetch_at(key, place, known_version),
            None => Ok(Fetch::Missing),
        }
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.inner.find(key)?.is_some())
    }

    fn evict(&self, key: &Key) -> Result<bool> {
        let Some(place) = self.inner.find(key)? else {
            return Ok(false);
        };
        match self.inner.apply_at(key, place, Op::Evict) {
            Ok(_) => Ok(true),
            Err(Error::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn take(&self, key: &Key) -> Result<Option<Stored>> {
        let inner = &self.inner;
        let Some(place) = inner.find(key)? else {
            return Ok(None);
        };
        let table = inner.shared.table();
        match table.evict(place.slot, place.epoch, &mut Patience::new()) {
            Ok(()) => {}
            Err(table::Fail::Gone) => return Ok(None),
            Err(f) => return Err(inner.fail(f, Op::Evict.name(), key)),
        }
        // Evicted: the files stay until it is removed, below.
        let version = table.version(place.slot).unwrap_or(0);
        let read = inner.read_blob(key, place, version);
        inner.shared.finish_evict(place.slot);
        inner.waiters.notify(key);
        let bytes = read?.ok_or_else(|| inner.not_found(key))?;
        Ok(Some(Stored {
            value: Value::Bytes(bytes),
            version,
        }))
    }

    fn publish(&self, key: &Key, writer: Claim, value: Value) -> Result<u64> {
        let place = self.place(key)?;
        self.inner.publish_at(key, place, writer, value)
    }

    fn apply(&self, key: &Key, op: Op) -> Result<Effect> {
        match op {
            // A release needs no lookup: the claim names its entry.
            Op::Release(c) => self.inner.give_back(key, None, c, false),
            Op::Disown(c) => self.inner.give_back(key, None, c, true),
            _ => {
                let place = self.place(key)?;
                self.inner.apply_at(key, place, op)
            }
        }
    }

    fn release(&self, key: &Key, claim: Claim) {
        match self.inner.give_back(key, None, claim, false) {
            Ok(_) | Err(Error::KeyNotFound { .. }) => {}
            Err(e) => tracing::warn!(%key, error = %e, "release failed"),
        }
    }

    fn entry(&self, key: &Key) -> Result<Option<Arc<dyn Entry>>> {
        Ok(self.inner.find(key)?.map(|place| {
            Arc::new(FileEntry::new(self.inner.clone(), *key, place)) as Arc<dyn Entry>
        }))
    }

    fn issue_ticket(&self, key: &Key, ticket: ClaimId, claim: Claim) -> Result<()> {
        self.inner.issue_at(key, ticket, claim)
    }

    fn redeem_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<Claim> {
        match self.inner.find(key)? {
            Some(place) => self.inner.redeem_at(key, place, ticket, kind),
            None => Err(Error::TicketRedeemed {
                ticket: ticket.to_string(),
            }),
        }
    }

    fn cancel_ticket(&self, key: &Key, ticket: ClaimId, kind: ClaimKind) -> Result<()> {
        let claim = self.redeem_ticket(key, ticket, kind)?;
        self.release(key, claim);
        Ok(())
    }

    /// Reads the table as it is: what it reports of each claim is its
    /// entry's (kind, holder, label, time) and its holder's record (pid,
    /// heartbeat and lease).
    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        self.inner.inspect_key(key)
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
                && self.exists(&key)?
            {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

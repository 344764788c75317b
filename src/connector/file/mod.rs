//! The directory connector: several processes on one host.

mod dir;
mod site;

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::connector::lease::{self, Held, Renew};
use crate::connector::{Connector, Fetch, Inspect, Stored, Value};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};
use crate::state::{Claim, ClaimKind, Deadline, Effect, Init, Ledger, NEVER, Op, Redeem};
use site::{Site, rename};

use dir::{Locks, SHARDS, ShardGuard};

const LEDGER_MAGIC: &[u8; 4] = b"BSL1";

/// Keeps objects in a directory, shared by every process on the host that
/// opens it (`file:///path/to/dir`, optionally `?lease_ms=N`).
///
/// Layout:
///
/// - `objects/<key>.ledger` — the object's [`Ledger`] (claims with their lease
///   deadlines, tickets, version);
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
/// ([`File::lock`]) between processes — and writes its ledger to a temporary
/// file that is renamed into place, so a process killed at any point leaves
/// either the old ledger or the new one. Values are written the same way,
/// under a new name per version, so readers never see half a value.
///
/// Claims are leased: this process renews its claims in the background, and
/// claims whose lease ran out (a killed process) are released by the next
/// operation on the object, or by the reap pass every lease.
///
/// A failed file operation is an [`Error::Connector`] that names the store
/// (its URL, when the store is not named by it), the operation and the path,
/// with the OS error last: `store "file:///data" failed: creating directory
/// /data/objects: Permission denied (os error 13)`. Its source is an
/// [`std::io::Error`] of the OS error's kind.
pub struct FileConnector {
    inner: Arc<Inner>,
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

struct Inner {
    name: String,
    /// What I/O errors say about the store; see [`Site`].
    site: Site,
    root: PathBuf,
    lease: Duration,
    locks: Arc<Locks>,
    held: Held,
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
        let inner = Arc::new(Inner {
            name,
            site,
            root,
            lease,
            locks,
            held: Held::default(),
        });
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
}

impl Inner {
    fn not_found(&self, key: &Key) -> Error {
        Error::KeyNotFound {
            key: *key,
            store: self.name.clone(),
        }
    }

    fn deadline(&self) -> Deadline {
        lease::now_ms().saturating_add(self.lease.as_millis() as u64)
    }

    fn lock(&self, key: &Key) -> Result<ShardGuard<'_>> {
        let shard = (key.as_u128() as usize) % SHARDS;
        self.locks
            .lock(shard)
            .map_err(|e| self.site.error(e, "locking", &self.locks.path(shard)))
    }

    fn ledger_path(&self, key: &Key) -> PathBuf {
        self.root.join("objects").join(format!("{key}.ledger"))
    }

    fn blob_path(&self, key: &Key, version: u64) -> PathBuf {
        self.root
            .join("objects")
            .join(format!("{key}.{version}.blob"))
    }

    /// Writes `data` to a new temporary file and returns its path.
    fn write_tmp(&self, data: &[u8]) -> Result<PathBuf> {
        let path = self
            .root
            .join("tmp")
            .join(format!("{}.tmp", ClaimId::random()));
        let mut f = File::create(&path).map_err(|e| self.site.error(e, "creating", &path))?;
        f.write_all(data)
            .map_err(|e| self.site.error(e, "writing", &path))?;
        Ok(path)
    }

    fn read_ledger(&self, key: &Key) -> Result<Option<Ledger>> {
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
            .map(Some)
            .map_err(|e| Error::decode(format_args!("ledger of {key} is damaged: {e}")))
    }

    fn write_ledger(&self, key: &Key, ledger: &Ledger) -> Result<()> {
        let mut bytes = LEDGER_MAGIC.to_vec();
        bytes = postcard::to_extend(ledger, bytes).map_err(Error::encode)?;
        let tmp = self.write_tmp(&bytes)?;
        rename(&self.site, &tmp, &self.ledger_path(key))
    }

    /// Removes an evicted object: the ledger first, so a process killed in
    /// between leaves an orphaned value (swept by the reap pass), never a
    /// ledger without its value.
    fn remove_object(&self, key: &Key, version: u64) {
        let _ = fs::remove_file(self.ledger_path(key));
        let _ = fs::remove_file(self.blob_path(key, version));
        self.held.forget_key(key);
    }

    /// Runs `f` on the key's ledger under the shard lock, after releasing
    /// expired claims, and persists what changed.
    fn with_ledger<R>(&self, key: &Key, f: impl FnOnce(&mut Ledger) -> Result<R>) -> Result<R> {
        let _guard = self.lock(key)?;
        let Some(mut ledger) = self.read_ledger(key)? else {
            return Err(self.not_found(key));
        };
        let before = ledger.clone();
        let _ = ledger.expire(lease::now_ms());
        let result = if ledger.state.gone() {
            Err(self.not_found(key))
        } else {
            f(&mut ledger)
        };
        if ledger.state.gone() {
            // Readers of the value (take) have read it inside `f`.
            self.remove_object(key, ledger.version);
        } else if ledger != before {
            self.write_ledger(key, &ledger)?;
        }
        result
    }

    fn read_blob(&self, key: &Key, version: u64) -> Result<Option<Bytes>> {
        let path = self.blob_path(key, version);
        match fs::read(&path) {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.site.error(e, "reading", &path)),
        }
    }

    fn deadline_for(&self, op: &Op) -> Deadline {
        match op {
            Op::Acquire(_) => self.deadline(),
            _ => NEVER,
        }
    }
}

impl Renew for Inner {
    fn renew(&self, key: &Key, claims: &[Claim]) -> Vec<Claim> {
        let deadline = self.deadline();
        let r = self.with_ledger(key, |l| {
            Ok(claims
                .iter()
                .filter(|c| !l.renew(**c, deadline))
                .copied()
                .collect::<Vec<_>>())
        });
        match r {
            Ok(lost) => lost,
            Err(Error::KeyNotFound { .. }) => claims.to_vec(),
            Err(e) => {
                tracing::warn!(%key, error = %e, "lease renewal failed; will retry");
                Vec::new()
            }
        }
    }

    fn reap(&self) {
        let Ok(dir) = fs::read_dir(self.root.join("objects")) else {
            return;
        };
        let mut ledgers = std::collections::BTreeSet::new();
        let mut blobs: Vec<(Key, u64)> = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = name
                .strip_suffix(".ledger")
                .and_then(|k| k.parse::<Key>().ok())
            {
                ledgers.insert(key);
            } else if let Some((key, version)) = name.strip_suffix(".blob").and_then(|kv| {
                let (k, v) = kv.split_once('.')?;
                Some((k.parse::<Key>().ok()?, v.parse::<u64>().ok()?))
            }) {
                blobs.push((key, version));
            }
        }
        // Release expired claims (and evict what that frees).
        for key in &ledgers {
            let _ = self.with_ledger(key, |_| Ok(()));
        }
        // Value files that no ledger names: left by a process killed between
        // writing a value and writing (or after writing) its ledger. Checked
        // under the shard lock, which every writer holds from renaming a
        // value into place until its ledger is written.
        for (key, version) in blobs {
            let Ok(_guard) = self.lock(&key) else {
                continue;
            };
            let current = self.read_ledger(&key).ok().flatten().map(|l| l.version);
            if current != Some(version) {
                let _ = fs::remove_file(self.blob_path(&key, version));
            }
        }
        // Temporary files of writers that died mid-write.
        let stale = std::time::SystemTime::now() - Duration::from_secs(3600).max(self.lease * 10);
        if let Ok(tmp) = fs::read_dir(self.root.join("tmp")) {
            for entry in tmp.flatten() {
                if entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t < stale)
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    fn held(&self) -> &Held {
        &self.held
    }
}

impl Connector for FileConnector {
    /// Releases are applied before `release` returns (local files).
    fn queues_releases(&self) -> bool {
        false
    }

    fn put(
        &self,
        key: &Key,
        value: Value,
        init: Init,
    ) -> Result<Option<Arc<dyn crate::connector::Entry>>> {
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
        inner.write_ledger(key, &Ledger::new(init, inner.deadline()))?;
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
        let effect = inner.with_ledger(key, |l| {
            l.apply(op, deadline)
                .map_err(|r| r.into_error(op.name(), *key, &inner.name))
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
        inner.with_ledger(key, |l| {
            l.issue_ticket(ticket, claim)
                .map_err(|r| r.into_error("into_ticket", *key, &inner.name))
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
        let claim = match inner.with_ledger(key, |l| Ok(l.redeem_ticket(ticket, kind, deadline))) {
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

    fn inspect(&self, key: &Key) -> Result<Option<Inspect>> {
        match self.inner.with_ledger(key, |l| {
            Ok(Inspect {
                state: l.state,
                version: l.version,
            })
        }) {
            Ok(i) => Ok(Some(i)),
            Err(Error::KeyNotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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

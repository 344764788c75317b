//! A store directory as this process holds it, shared by every file store
//! of the directory in the process: the mapped state table, this process's
//! record in it (and the lock file that makes the record fate-share with
//! the process), the claims this process holds, and where reclaims are
//! announced.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use dashmap::DashMap;

use super::cache::ClaimCache;
use super::labels::Labels;
use super::layout::{self, Layout, PROC_FREE};
use super::map::TableMap;
use super::table::{Pause, Table};
use crate::connector::Waiters;
use crate::connector::lease::now_ms;
use crate::key::{ClaimId, Key};
use crate::state::Claim;

/// The state table's file name, in the store directory.
pub(super) const TABLE: &str = "table";

/// This process's record in the table: its index, and its lock file, held
/// with an exclusive lock for as long as the record is this process's.
struct Me {
    index: u32,
    _lock: File,
}

/// A claim this process holds: its entry, and the entry's head as this
/// process made it (a different head means the claim was reclaimed).
#[derive(Clone, Copy, Debug)]
pub(super) struct Held {
    pub(super) entry: u32,
    pub(super) head: u64,
}

/// See the module docs.
pub(super) struct Shared {
    pub(super) root: PathBuf,
    map: TableMap,
    pub(super) layout: Layout,
    me: Mutex<Option<Me>>,
    index: AtomicU32,
    /// Where this process's claims that are not at home are (most of
    /// them), by claim.
    pub(super) cache: ClaimCache,
    /// The claims this process holds that are neither at home nor in the
    /// cache, by claim id.
    pub(super) claims: DashMap<ClaimId, Held, foldhash::fast::RandomState>,
    /// Where to start looking for a free entry or slot.
    pub(super) hint: AtomicU32,
    /// The longest lease of this process's stores of the directory (ms).
    pub(super) lease_ms: AtomicU64,
    /// The waiters of every store of the directory in this process.
    waiters: Mutex<Vec<Weak<Waiters>>>,
    /// This process's label file of the directory.
    pub(super) labels: Labels,
    /// The first of this process's home entries ([`home`](Shared::home));
    /// `u32::MAX` before it registers, or in a table too small for them.
    home_base: AtomicU32,
}

/// Entries in a process's block of home entries.
const HOME_SPAN: u32 = 256;
/// Home entries of one thread's claims.
const HOME_WAYS: u64 = 4;

/// The wait of a transition for another process's tag: spins, then
/// yields, then sleeps a little, for at most `limit`.
pub(super) struct Patience {
    spins: u32,
    slept: Duration,
    limit: Duration,
}

impl Patience {
    /// The wait of a normal operation: two seconds.
    pub(super) fn new() -> Patience {
        Patience::up_to(Duration::from_secs(2))
    }

    /// A wait of at most `limit`.
    pub(super) fn up_to(limit: Duration) -> Patience {
        Patience {
            spins: 0,
            slept: Duration::ZERO,
            limit,
        }
    }
}

impl Pause for Patience {
    fn pause(&mut self) -> bool {
        self.spins += 1;
        if self.spins < 64 {
            std::hint::spin_loop();
        } else if self.spins < 128 {
            std::thread::yield_now();
        } else {
            if self.slept >= self.limit {
                return false;
            }
            let nap = Duration::from_micros(200);
            std::thread::sleep(nap);
            self.slept += nap;
        }
        true
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, what)
}

impl Shared {
    /// The directory `root` as this process holds it, shared with every
    /// other store of it in this process. Creates the table (for
    /// `objects` objects) if `create` and it does not exist.
    pub(super) fn of(root: &Path, objects: u64, create: bool) -> io::Result<Arc<Shared>> {
        type Registry = Mutex<HashMap<(PathBuf, u64, u64), Weak<Shared>>>;
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let path = root.join(TABLE);
        if create && !path.exists() {
            create_table(root, objects)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            let m = file.metadata()?;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        let canonical = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let id = (canonical, dev, ino);
        let mut registry = REGISTRY
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = registry.get(&id).and_then(Weak::upgrade) {
            return Ok(shared);
        }
        registry.retain(|_, w| w.strong_count() > 0);
        let map = TableMap::new(&file).map_err(|e| {
            invalid(format!(
                "the state table {} cannot be mapped: {e}",
                path.display()
            ))
        })?;
        drop(file);
        let words = map.words();
        let header = [0, 1, 2, 3, 4].map(|i| words[i].load(Ordering::Acquire));
        let layout = Layout::from_header(header, words.len()).map_err(|e| {
            invalid(format!(
                "the state table {} is damaged: {e}",
                path.display()
            ))
        })?;
        let shared = Arc::new(Shared {
            root: root.to_path_buf(),
            map,
            layout,
            me: Mutex::new(None),
            index: AtomicU32::new(u32::MAX),
            cache: ClaimCache::new(),
            claims: DashMap::default(),
            hint: AtomicU32::new(rand::random::<u32>() % layout.entries),
            lease_ms: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
            labels: Labels::new(),
            home_base: AtomicU32::new(u32::MAX),
        });
        registry.insert(id, Arc::downgrade(&shared));
        Ok(shared)
    }

    /// The table.
    #[inline]
    pub(super) fn table(&self) -> Table<'_, AtomicU64> {
        Table::new(self.map.words(), self.layout).expect("the mapping has the layout's length")
    }

    /// A start for a search of free entries or slots.
    #[inline]
    pub(super) fn hint(&self) -> u32 {
        self.hint.load(Ordering::Relaxed)
    }

    /// Entry `e` was just freed: the next search starts there.
    #[inline]
    pub(super) fn freed(&self, e: u32) {
        self.hint.store(e, Ordering::Relaxed);
    }

    /// Keeps `waiters` to announce reclaims to.
    pub(super) fn add_waiters(&self, waiters: &Arc<Waiters>) {
        let mut all = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(waiters));
    }

    /// Announces a release on `key` to every store's waiters here.
    pub(super) fn announce(&self, key: &crate::key::Key) {
        let all = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        for w in all.iter().filter_map(Weak::upgrade) {
            w.notify(key);
        }
    }

    /// The path of process record `i`'s lock file.
    pub(super) fn lock_path(&self, i: u32) -> PathBuf {
        self.root.join("procs").join(format!("{i}.lock"))
    }

    /// The home entry of `claim`: the entry this process takes for it when
    /// that one is free, so that its release finds it there with no lookup
    /// (a few claims taken one after the other by a thread, or by several
    /// threads, have different homes). `None` before this process
    /// registers.
    #[inline]
    pub(super) fn home(&self, claim: &Claim) -> Option<u32> {
        let base = self.home_base.load(Ordering::Acquire);
        if base == u32::MAX {
            return None;
        }
        // Ids come in per-thread blocks of 2^16 in sequence: a thread's
        // claims take turns at HOME_WAYS entries of their own (so a borrow
        // taken and dropped over and over stays on a few cache lines), and
        // the threads of a process spread over the block.
        let low = claim.id().as_u128() as u64;
        let way = (low >> 16) * HOME_WAYS + low % HOME_WAYS;
        Some(base + (way % u64::from(HOME_SPAN)) as u32)
    }

    /// The path of process record `i`'s label file ([`labels`](super::labels)).
    pub(super) fn labels_path(&self, i: u32) -> PathBuf {
        self.root.join("procs").join(format!("{i}.notes"))
    }

    /// This process's record, if it has one yet.
    #[inline]
    pub(super) fn me(&self) -> Option<u32> {
        let i = self.index.load(Ordering::Acquire);
        (i != u32::MAX).then_some(i)
    }

    /// This process's record, registering it first if needed: a free
    /// record whose lock file this process can lock. A record that is not
    /// free but whose lock file is unlocked belonged to a dead process: it
    /// is repaired first.
    pub(super) fn register(&self) -> io::Result<u32> {
        if let Some(i) = self.me() {
            return Ok(i);
        }
        let mut me = self.me.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(m) = me.as_ref() {
            return Ok(m.index);
        }
        fs::create_dir_all(self.root.join("procs"))?;
        let table = self.table();
        let lease = self.lease_ms.load(Ordering::Acquire);
        for i in 0..self.layout.procs {
            let (state, ..) = table.record(i);
            if state != PROC_FREE && self.lock_path(i).exists() {
                // Probably alive; the keeper repairs it if not.
                continue;
            }
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.lock_path(i))?;
            if file.try_lock().is_err() {
                continue;
            }
            if table.record(i).0 != PROC_FREE {
                // Its process is dead: repair as that record.
                let done = table.repair_dead(i, i, &mut Patience::new());
                if !done.complete {
                    continue;
                }
                // What it was creating or removing goes now: once the
                // record is this process's, no reclaim would find it. (Its
                // releases' evictions are finished by the keeper, which
                // finds evicted objects that nobody removes.)
                self.remove_dropped(&done.dropped);
                table.free_record(i);
                self.remove_tmp_of(i);
            }
            if !table.claim_record(i, u64::from(std::process::id()), lease, now_ms()) {
                continue;
            }
            let blocks = self.layout.entries / HOME_SPAN;
            if blocks > 0 {
                let base = (i % blocks) * HOME_SPAN;
                table.cover_entries(base + HOME_SPAN);
                self.home_base.store(base, Ordering::Release);
            }
            if let Err(e) = self.labels.start(&self.labels_path(i)) {
                // Claims are still taken and reclaimed; inspection from
                // other processes shows them without labels.
                tracing::debug!(error = %e, "cannot start this process's label file");
            }
            *me = Some(Me {
                index: i,
                _lock: file,
            });
            self.index.store(i, Ordering::Release);
            return Ok(i);
        }
        Err(io::Error::other(format!(
            "all {} process records of the state table are in use",
            self.layout.procs
        )))
    }

    /// Whether the process of record `i` is dead: its lock file can be
    /// locked. The file, locked, if so (hold it while repairing).
    pub(super) fn lock_if_dead(&self, i: u32) -> Option<File> {
        let file = match OpenOptions::new().write(true).open(self.lock_path(i)) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.lock_path(i))
                .ok()?,
            Err(_) => return None,
        };
        file.try_lock().ok().map(|()| file)
    }
}

impl Shared {
    /// The side file of `key`.
    pub(super) fn side_path(&self, key: &Key) -> PathBuf {
        self.root.join("objects").join(format!("{key}.ledger"))
    }

    /// The value file of `key` at `version`.
    pub(super) fn blob_path(&self, key: &Key, version: u64) -> PathBuf {
        self.root
            .join("objects")
            .join(format!("{key}.{version}.blob"))
    }

    /// Removes the evicted object in slot `o` and frees the slot, if no
    /// other process is doing it (see [`remove_files`](Self::remove_files)
    /// for the order). The slot was `Live` until this process's
    /// [`begin_evict`](super::table::Table::begin_evict) won, so its side
    /// file names it: nobody else removes a side file whose slot still
    /// holds its object.
    pub(super) fn finish_evict(&self, o: u32) {
        let me = self.register().unwrap_or(u32::from(u16::MAX));
        let table = self.table();
        if let Ok(Some((key, version))) = table.begin_evict(o, me) {
            self.remove_files(o, &key, version, true);
            table.free_slot(o);
        }
    }

    /// Removes the temporary files of process record `i` (dead): what it
    /// was writing.
    pub(super) fn remove_tmp_of(&self, i: u32) {
        let prefix = format!("{i}-");
        if let Ok(dir) = fs::read_dir(self.root.join("tmp")) {
            for entry in dir.flatten() {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Removes the objects in slots `dropped`, which a reclaim took from a
    /// dead process that was creating or removing them (their files, if
    /// their side files name them), and frees their slots.
    pub(super) fn remove_dropped(&self, dropped: &[u32]) {
        let table = self.table();
        for &o in dropped {
            if let Ok((key, version)) = table.key_version(o) {
                self.remove_files(o, &key, version, false);
            }
            table.free_slot(o);
        }
    }

    /// Removes the files of the object `key` in slot `o`, if its side file
    /// names that slot and its generation (`known`: the caller knows it
    /// does, else it is read): its values at `version` and the versions
    /// beside it (which a writer killed during a publish can leave: the old
    /// one after the table named the new one, or a new one the table never
    /// named), then the side file.
    ///
    /// Nothing is removed when the side file names another place (or none):
    /// the key is then another object's — a creator whose link failed
    /// because the key exists, or a new object made after this one's side
    /// file went — and its files are not this slot's to remove. The side
    /// file goes last because while it is there no other object can take
    /// the key: a process killed in between leaves the side file, which the
    /// next reclaim (or sweep) removes, never a value file of another object
    /// removed.
    pub(super) fn remove_files(&self, o: u32, key: &Key, version: u64, known: bool) {
        let table = self.table();
        let side = self.side_path(key);
        if !known {
            let epoch = table
                .slot(o, super::layout::S_GEN)
                .map(|g| g.load(std::sync::atomic::Ordering::Acquire));
            let names_it = fs::read(&side)
                .ok()
                .and_then(|b| super::side::parse_side(&b))
                .is_some_and(|p| p.slot == o && Ok(p.epoch) == epoch);
            if !names_it {
                return;
            }
        }
        // Versions start at 1 (there is never a version 0 file), and a
        // first version the side file holds has no file of its own.
        let inline = table.inline_first(o).unwrap_or(false);
        for v in [version.wrapping_sub(1), version, version.wrapping_add(1)] {
            if v == 0 || (v == 1 && inline) {
                continue;
            }
            let _ = fs::remove_file(self.blob_path(key, v));
        }
        let _ = fs::remove_file(&side);
    }
}

impl Drop for Shared {
    /// A closed directory gives its record back (its claims were released
    /// by the handles that held them; any left are repaired like a dead
    /// process's by the next survivor, once the lock is dropped).
    fn drop(&mut self) {
        if let Some(i) = self.me() {
            let table = self.table();
            if self.claims.is_empty() && table.held_by(i) == 0 {
                table.free_record(i);
            }
        }
    }
}

/// Creates the state table of `root` for `objects` objects: written to
/// `tmp/` (header, then the rest sparse) and linked into place, so that no
/// process ever maps half a header; a table another process made first
/// wins.
fn create_table(root: &Path, objects: u64) -> io::Result<()> {
    let layout = Layout::for_objects(objects).map_err(invalid)?;
    let tmp = root
        .join("tmp")
        .join(format!("{}.table", ClaimId::random()));
    let mut f = File::create(&tmp)?;
    f.write_all(&layout.header_bytes())?;
    f.set_len(layout.words() as u64 * 8)?;
    f.sync_all()?;
    drop(f);
    let linked = fs::hard_link(&tmp, root.join(TABLE));
    let _ = fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The default capacity (objects) of a new table.
pub(super) const DEFAULT_OBJECTS: u64 = layout::DEFAULT_SLOTS;

//! A store directory as this process holds it: the marker that says it is
//! one, and its lock files, shared by every file store of the directory in
//! this process.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use crate::key::ClaimId;

/// How many lock files a store directory has (`locks/00.lock` …
/// `locks/ff.lock`); an object's shard is its key modulo this.
pub(super) const SHARDS: usize = 256;

/// The marker's file name, in the store directory.
pub(super) const MARKER: &str = "borrowstore.dir";

/// The marker's first line.
const MARKER_TITLE: &str = "borrowstore file store";

/// The directory format this build reads and writes (the marker's second
/// line is `format 1`).
const FORMAT: u32 = 1;

/// Writes the marker into `root` unless it is there: written to a
/// temporary file in `root` and renamed into place, so no reader ever sees
/// half of one. Called once the directory's layout exists.
pub(super) fn write_marker(root: &Path) -> io::Result<()> {
    let path = root.join(MARKER);
    if path.exists() {
        return check_marker(root);
    }
    let tmp = root
        .join("tmp")
        .join(format!("{}.marker", ClaimId::random()));
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{MARKER_TITLE}\nformat {FORMAT}\n").as_bytes())?;
    drop(f);
    fs::rename(&tmp, &path)
}

/// Whether `root` is a borrowstore directory of a format this build reads;
/// the error says what it is instead (its kind: `NotFound` without a
/// marker, `InvalidData` for a marker that is not one of ours).
pub(super) fn check_marker(root: &Path) -> io::Result<()> {
    let path = root.join(MARKER);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!(
                    "not a borrowstore directory: it has no {MARKER}; Store::open creates \
                     one, proxies and tickets never do"
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let format = (lines.next() == Some(MARKER_TITLE))
        .then(|| lines.next()?.strip_prefix("format ")?.parse::<u32>().ok())
        .flatten();
    match format {
        Some(FORMAT) => Ok(()),
        Some(n) => Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("the directory has format {n}; this borrowstore reads format {FORMAT}"),
        )),
        None => Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("{MARKER} is not a borrowstore marker"),
        )),
    }
}

/// The lock files of one store directory. Each is opened on first use and
/// kept; a `std` mutex per shard orders this process's threads, an
/// exclusive [`File::lock`] on the file orders processes.
pub(super) struct Locks {
    root: PathBuf,
    files: Vec<Mutex<Option<File>>>,
}

/// A shard's lock, held: unlocked when dropped.
pub(super) struct ShardGuard<'a> {
    file: MutexGuard<'a, Option<File>>,
}

impl Drop for ShardGuard<'_> {
    fn drop(&mut self) {
        if let Some(f) = self.file.as_ref() {
            let _ = f.unlock();
        }
    }
}

impl Locks {
    /// The lock files of the directory `root`, shared with every other
    /// store of that directory in this process: the same canonical path,
    /// and (on Unix) the same `locks` directory — one removed and made
    /// again is another directory, with lock files of its own.
    pub(super) fn of(root: &Path) -> Arc<Locks> {
        type Table = Mutex<HashMap<(PathBuf, u64, u64), Weak<Locks>>>;
        static TABLE: OnceLock<Table> = OnceLock::new();
        let path = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(root.join("locks")).map_or((0, 0), |m| (m.dev(), m.ino()))
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        let id = (path, dev, ino);
        let mut table = TABLE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(locks) = table.get(&id).and_then(Weak::upgrade) {
            return locks;
        }
        table.retain(|_, w| w.strong_count() > 0);
        let locks = Arc::new(Locks {
            root: root.to_path_buf(),
            files: (0..SHARDS).map(|_| Mutex::new(None)).collect(),
        });
        table.insert(id, Arc::downgrade(&locks));
        locks
    }

    /// The path of `shard`'s lock file.
    pub(super) fn path(&self, shard: usize) -> PathBuf {
        self.root.join("locks").join(format!("{shard:02x}.lock"))
    }

    /// Opens every lock file now (the directory's owner does, so that a
    /// directory it cannot use fails when it is opened).
    pub(super) fn open_all(&self) -> Result<(), (io::Error, PathBuf)> {
        for shard in 0..SHARDS {
            let mut file = self.files[shard]
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if file.is_none() {
                *file = Some(self.open(shard).map_err(|e| (e, self.path(shard)))?);
            }
        }
        Ok(())
    }

    /// Locks `shard`, between this process's threads and between processes.
    pub(super) fn lock(&self, shard: usize) -> io::Result<ShardGuard<'_>> {
        let mut file = self.files[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if file.is_none() {
            *file = Some(self.open(shard)?);
        }
        if let Some(f) = file.as_ref() {
            f.lock()?;
        }
        Ok(ShardGuard { file })
    }

    fn open(&self, shard: usize) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path(shard))
    }
}

//! Claim labels across processes: [`Labels`], this process's label file of
//! a store directory, and [`number`], the number a claim's label has in
//! this process.
//!
//! A claim's label (its [`Note`]: the call site that took it, or a name) is
//! a pointer into the process that took it, so the table cannot hold it.
//! Instead each process numbers the notes it takes claims with (once per
//! distinct note: a program's call sites and names are a fixed
//! vocabulary), and writes each number's text to its label file
//! `procs/<record>.notes` the first time it takes a claim with it. A claim
//! entry records the number (see [`layout::note_word`](super::layout::note_word)),
//! so a borrow records its label with one atomic store: the number comes
//! from a per-thread cache of the last note, and the check that the file
//! has it is one atomic load.
//!
//! The format of a label file, in one place: magic `BSN1`, then records of
//! a length (u32, little-endian) and that many bytes of UTF-8: the first
//! is the process's host name, the n-th after it label number n. The
//! process writes it when it takes its record (truncating what a dead
//! process of the record left) and only appends to it after; a reader
//! ignores a record cut short (one being appended).

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::state::Note;

const MAGIC: &[u8; 4] = b"BSN1";

/// The highest label number an entry can hold; notes beyond it are
/// recorded without a label.
pub(super) const MAX_LABEL: u32 = (1 << 12) - 1;

/// This process's numbering of notes (1 is the first; 0 is none).
struct Numbers {
    list: Vec<Note>,
    by_identity: HashMap<usize, u32>,
    /// Names read from other processes' label files, kept once each.
    names: HashMap<String, &'static str>,
}

fn numbers() -> &'static Mutex<Numbers> {
    static NUMBERS: OnceLock<Mutex<Numbers>> = OnceLock::new();
    NUMBERS.get_or_init(|| {
        Mutex::new(Numbers {
            list: vec![Note::NONE],
            by_identity: HashMap::new(),
            names: HashMap::new(),
        })
    })
}

thread_local! {
    /// (note identity, number) of the last note this thread numbered.
    static LAST: Cell<(usize, u32)> = const { Cell::new((0, 0)) };
}

#[cold]
fn intern(note: Note, identity: usize) -> u32 {
    let mut n = numbers().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&i) = n.by_identity.get(&identity) {
        return i;
    }
    let i = u32::try_from(n.list.len()).unwrap_or(u32::MAX);
    if i > MAX_LABEL {
        return 0;
    }
    n.list.push(note);
    n.by_identity.insert(identity, i);
    i
}

/// The number of `note` in this process: 0 for no note (or one past
/// [`MAX_LABEL`]). A few loads when the thread's last note is `note`.
#[inline]
pub(super) fn number(note: Note) -> u32 {
    let identity = note.identity();
    if identity == 0 {
        return 0;
    }
    LAST.try_with(|last| {
        let (k, n) = last.get();
        if k == identity {
            return n;
        }
        let n = intern(note, identity);
        last.set((identity, n));
        n
    })
    .unwrap_or_else(|_| intern(note, identity))
}

/// The text of label number `n` of this process.
pub(super) fn text(n: u32) -> Option<String> {
    let numbers = numbers().lock().unwrap_or_else(PoisonError::into_inner);
    numbers.list.get(n as usize).and_then(|note| note.label())
}

/// The number, in this process, of a label `text` read from another
/// process's label file (a ticket's claim redeemed here keeps its label).
pub(super) fn adopt(text: &str) -> u32 {
    let name = {
        let mut n = numbers().lock().unwrap_or_else(PoisonError::into_inner);
        match n.names.get(text) {
            Some(name) => *name,
            None => {
                let name: &'static str = Box::leak(text.to_owned().into_boxed_str());
                n.names.insert(text.to_owned(), name);
                name
            }
        }
    };
    number(Note::named(name))
}

/// This process's label file of one directory: how many labels it holds,
/// and where it is, to append the next (opened only to append: a store
/// keeps no file open for it).
pub(super) struct Labels {
    written: AtomicU32,
    file: Mutex<Option<PathBuf>>,
}

fn record(bytes: &mut Vec<u8>, text: &str) {
    bytes.extend_from_slice(&(text.len() as u32).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
}

impl Labels {
    pub(super) fn new() -> Labels {
        Labels {
            written: AtomicU32::new(0),
            file: Mutex::new(None),
        }
    }

    /// Starts the label file at `path` (this process took its record):
    /// the magic and this host's name, nothing of what was there.
    pub(super) fn start(&self, path: &Path) -> io::Result<()> {
        let mut bytes = MAGIC.to_vec();
        record(&mut bytes, crate::connector::this_process().1);
        std::fs::write(path, &bytes)?;
        *self.file.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.to_path_buf());
        self.written.store(0, Ordering::Release);
        Ok(())
    }

    /// Makes sure the file holds label number `n` (one atomic load when
    /// it does).
    #[inline]
    pub(super) fn ensure(&self, n: u32) {
        if n > self.written.load(Ordering::Acquire) {
            self.append_up_to(n);
        }
    }

    #[cold]
    fn append_up_to(&self, n: u32) {
        let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(path) = file.as_ref() else { return };
        let from = self.written.load(Ordering::Acquire);
        if n <= from {
            return;
        }
        let mut bytes = Vec::new();
        for i in from + 1..=n {
            record(&mut bytes, &text(i).unwrap_or_default());
        }
        let appended = OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(&bytes));
        match appended {
            Ok(()) => self.written.store(n, Ordering::Release),
            Err(e) => tracing::debug!(error = %e, "cannot record a claim label"),
        }
    }
}

/// What a process's label file says: its host, and its labels (label
/// number n at index n - 1). `None` if there is no such file or it is not
/// a label file.
pub(super) fn read(path: &Path) -> Option<(String, Vec<String>)> {
    let bytes = std::fs::read(path).ok()?;
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut texts = Vec::new();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().ok()?) as usize;
        let Some(text) = rest.get(4..4 + len) else {
            break;
        };
        texts.push(String::from_utf8_lossy(text).into_owned());
        rest = &rest[4 + len..];
    }
    let mut texts = texts.into_iter();
    let host = texts.next()?;
    Some((host, texts.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_numbered_once_and_their_files_read_back() {
        let here = Note::here();
        let n = number(here);
        assert!(n > 0);
        assert_eq!(number(here), n);
        assert_eq!(number(Note::NONE), 0);
        assert_eq!(text(n), here.label());
        let named = adopt("from elsewhere");
        assert_eq!(adopt("from elsewhere"), named);
        assert_eq!(text(named).as_deref(), Some("from elsewhere"));

        let dir = std::env::temp_dir().join(format!("bs-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("0.notes");
        let labels = Labels::new();
        labels.start(&path).unwrap();
        labels.ensure(named.max(n));
        let (host, texts) = read(&path).unwrap();
        assert_eq!(host, crate::connector::this_process().1);
        assert_eq!(texts[n as usize - 1], here.label().unwrap());
        assert_eq!(texts[named as usize - 1], "from elsewhere");
        // Cut short, or not a label file: what is whole is read, or nothing.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 2);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap().1.len(), texts.len() - 1);
        std::fs::write(&path, [0xffu8; 9]).unwrap();
        assert_eq!(read(&path), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The claim journal: what the memory store records of each borrow, without
//! a lock or an allocation on the borrow's path.
//!
//! A borrow of a memory-store object takes one record from a chunk that its
//! thread owns (chunks are made once and kept for the life of the process,
//! and a thread that ends hands its chunks on): two words, written with
//! plain atomic stores (one, when its kind, label and time are those of the
//! record's last claim — a loop that borrows one object at one call site),
//! and its release marks the record free with one more. Only the owning
//! thread ever takes a free record, so taking one needs no
//! read-modify-write. The label is a small number (the note of the call
//! site, interned once per call site), and the time is a coarse clock
//! (10 ms) that a named background thread (`borrowstore-clock`) keeps.
//!
//! Inspection reads every chunk: a record is read as a sequence lock would
//! (`held`, then `word`, then `held` again), so a record that is being
//! freed meanwhile is skipped, and one freed and taken again for the same
//! object shows one of the two claims — never a word half-written.
//!
//! The format of a record, in one place:
//!
//! | field | bits |
//! |---|---|
//! | `held` | 0: free; otherwise the address of the object's slot (unique while a claim holds it) |
//! | `word` | bits 0..3: kind (owner 0, holder 1, reader 2, writer 3, ticket 4); bits 3..24: note number; bits 24..64: when the claim was taken, in ms since the journal's clock started (coarse) |

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use super::note::Note;

/// Records per chunk.
const CHUNK: usize = 256;
/// Records a thread looks at for a free one before it takes a new chunk.
const PROBES: usize = 8;
/// A thread never holds more records than this: claims beyond it are not
/// journaled (inspection still counts them).
const MAX_RECORDS: usize = 1 << 18;
/// The coarse clock's tick.
const TICK: Duration = Duration::from_millis(10);
const FREE: usize = 0;

/// The kind code of a ticket in flight.
pub(crate) const TICKET: u64 = 4;

/// Bits of a record's word below its note number (its kind).
const KIND_BITS: u32 = 3;
/// Bits of a record's word below its time (its kind and note number).
const TIME_SHIFT: u32 = 24;
/// Note numbers that fit a record (more distinct notes show no label).
const NOTES: u32 = 1 << (TIME_SHIFT - KIND_BITS);

/// The kind code in a record's word.
fn kind_in(word: u64) -> u64 {
    word & !(!0 << KIND_BITS)
}

/// The note number in a record's word.
fn note_number_in(word: u64) -> u64 {
    (word & !(!0 << TIME_SHIFT)) >> KIND_BITS
}

/// One journaled claim; see the module docs for its fields.
#[derive(Default)]
pub(crate) struct Record {
    held: AtomicUsize,
    word: AtomicU64,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Record")
    }
}

/// What inspection reads of a record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub(crate) kind: u64,
    pub(crate) note: Note,
    pub(crate) since_ms: u64,
}

impl Record {
    /// Marks the record free: its claim was given back.
    #[inline]
    pub(crate) fn free(&self) {
        self.held.store(FREE, Ordering::Release);
    }

    /// The note the record was written with.
    pub(crate) fn note(&self) -> Note {
        let n = note_number_in(self.word.load(Ordering::Relaxed));
        notes()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(n)
    }

    /// Changes the kind the record shows (a claim that left in a ticket,
    /// or came back from one).
    pub(crate) fn set_kind(&self, kind: u64) {
        let w = self.word.load(Ordering::Relaxed);
        self.word
            .store((w & (!0 << KIND_BITS)) | kind, Ordering::Relaxed);
    }
}

/// Every chunk ever made, for inspection.
static CHUNKS: Mutex<Vec<&'static [Record]>> = Mutex::new(Vec::new());
/// The chunks of threads that ended, for the next thread to take on.
static ORPHANS: Mutex<Vec<&'static [Record]>> = Mutex::new(Vec::new());

/// What a thread needs on the fast path: the record it takes next, and
/// the number of the note it used last. No destructor, so reaching it is
/// one thread-local access.
struct Hot {
    chunk: Cell<Option<&'static [Record]>>,
    index: Cell<usize>,
    /// (note key, note number) of the last note journaled.
    note: Cell<(usize, u64)>,
}

/// The chunks a thread owns (handed on when it ends), and its cache of
/// note numbers: only the slow path reaches them.
struct Owned {
    chunks: Vec<&'static [Record]>,
    notes: [(usize, u32); 32],
}

impl Drop for Owned {
    fn drop(&mut self) {
        ORPHANS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(&mut self.chunks);
    }
}

thread_local! {
    static HOT: Hot = const {
        Hot { chunk: Cell::new(None), index: Cell::new(0), note: Cell::new((0, 0)) }
    };
    static OWNED: RefCell<Owned> = const {
        RefCell::new(Owned { chunks: Vec::new(), notes: [(0, 0); 32] })
    };
}

/// The slow path of [`record`]: looks further for a free record (taking a
/// new chunk if a few are all held), and numbers a note not seen last.
#[cold]
#[inline(never)]
fn record_slow(hot: &Hot, object: usize, kind: u64, note: Note) -> Option<&'static Record> {
    start_clock();
    let key = note_key(note);
    OWNED
        .try_with(|o| {
            let mut o = o.borrow_mut();
            let n = o.note_number(note, key);
            hot.note.set((key, u64::from(n) << KIND_BITS));
            let r = o.take(hot)?;
            r.write(object, kind | (u64::from(n) << KIND_BITS));
            Some(r)
        })
        .ok()
        .flatten()
}

impl Owned {
    /// A free record of this thread's, made the next one to look at.
    fn take(&mut self, hot: &Hot) -> Option<&'static Record> {
        let mut c = self
            .chunks
            .iter()
            .position(|ch| hot.chunk.get().is_some_and(|h| std::ptr::eq(*ch, h)))
            .unwrap_or(0);
        let mut i = hot.index.get();
        for _ in 0..PROBES.min(self.chunks.len() * CHUNK) {
            let r = &self.chunks[c][i];
            if r.held.load(Ordering::Acquire) == FREE {
                hot.chunk.set(Some(self.chunks[c]));
                hot.index.set(i);
                return Some(r);
            }
            i += 1;
            if i == CHUNK {
                i = 0;
                c = (c + 1) % self.chunks.len();
            }
        }
        if self.chunks.len() * CHUNK >= MAX_RECORDS {
            return None;
        }
        let adopted = ORPHANS.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let chunk = adopted.unwrap_or_else(|| {
            let made: &'static [Record] =
                Box::leak((0..CHUNK).map(|_| Record::default()).collect());
            CHUNKS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(made);
            made
        });
        self.chunks.push(chunk);
        // An adopted chunk may still hold records of claims taken before.
        let i = chunk
            .iter()
            .position(|r| r.held.load(Ordering::Acquire) == FREE)?;
        hot.chunk.set(Some(chunk));
        hot.index.set(i);
        Some(&chunk[i])
    }

    fn note_number(&mut self, note: Note, key: usize) -> u32 {
        if key == 0 {
            return 0;
        }
        let slot = (key >> 3) % self.notes.len();
        let (k, n) = self.notes[slot];
        if k == key {
            return n;
        }
        let n = intern(note, key);
        self.notes[slot] = (key, n);
        n
    }
}

impl Record {
    /// Takes the (free) record for a claim on `object`; `word` holds the
    /// claim's kind and note number. (Its word is written only if it
    /// changes: stores, not loads, are what a borrow's atomic operations
    /// wait for.)
    #[inline(always)]
    fn write(&self, object: usize, word: u64) {
        let word = word | since_bits();
        if self.word.load(Ordering::Relaxed) != word {
            self.word.store(word, Ordering::Relaxed);
        }
        self.held.store(object, Ordering::Release);
    }
}

fn note_key(note: Note) -> usize {
    note.identity()
}

struct Notes {
    list: Vec<Note>,
    numbers: HashMap<usize, u32>,
}

fn notes() -> &'static Mutex<Notes> {
    static NOTES: OnceLock<Mutex<Notes>> = OnceLock::new();
    NOTES.get_or_init(|| {
        Mutex::new(Notes {
            list: vec![Note::NONE],
            numbers: HashMap::new(),
        })
    })
}

impl Notes {
    fn get(&self, n: u64) -> Note {
        usize::try_from(n)
            .ok()
            .and_then(|i| self.list.get(i))
            .copied()
            .unwrap_or_default()
    }
}

#[cold]
fn intern(note: Note, key: usize) -> u32 {
    let mut n = notes().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(&i) = n.numbers.get(&key) {
        return i;
    }
    let i = u32::try_from(n.list.len()).unwrap_or(NOTES);
    if i >= NOTES {
        return 0;
    }
    n.list.push(note);
    n.numbers.insert(key, i);
    i
}

/// Journals a claim (of kind code `kind`) on the object whose slot
/// is at `object`; `None` if this thread holds too many records already.
/// The caller frees the record if the claim is not taken after all.
///
/// The fast path — the record this thread took last is free again, and
/// the note is the one it journaled last — is a few loads and two stores
/// (one, when the record's word already holds this claim's kind, note and
/// time).
#[inline]
pub(crate) fn record(object: usize, kind: u64, note: Note) -> Option<&'static Record> {
    debug_assert_ne!(object, FREE);
    HOT.try_with(|hot| {
        let (key, n) = hot.note.get();
        if key == note_key(note)
            && let Some(chunk) = hot.chunk.get()
            && let Some(r) = chunk.get(hot.index.get())
            && r.held.load(Ordering::Acquire) == FREE
        {
            r.write(object, kind | n);
            return Some(r);
        }
        record_slow(hot, object, kind, note)
    })
    .ok()
    .flatten()
}

/// The journaled claims on the object whose slot is at `object`.
pub(crate) fn claims_of(object: usize) -> Vec<Entry> {
    let chunks = CHUNKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut found = Vec::new();
    for r in chunks.iter().flat_map(|c| c.iter()) {
        if r.held.load(Ordering::Acquire) != object {
            continue;
        }
        let w = r.word.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if r.held.load(Ordering::Relaxed) != object {
            continue;
        }
        found.push(w);
    }
    let n = notes().lock().unwrap_or_else(PoisonError::into_inner);
    let start = START.load(Ordering::Relaxed);
    found
        .into_iter()
        .map(|w| Entry {
            kind: kind_in(w),
            note: n.get(note_number_in(w)),
            since_ms: start + (w >> TIME_SHIFT),
        })
        .collect()
}

/// The coarse clock: ms since the Unix epoch, kept by `borrowstore-clock`.
static NOW: AtomicU64 = AtomicU64::new(0);
/// When the coarse clock started, ms since the Unix epoch.
static START: AtomicU64 = AtomicU64::new(0);
/// The coarse clock as a record's time bits: ms since [`START`], shifted
/// into place.
static SINCE: AtomicU64 = AtomicU64::new(0);

/// Moves the coarse clock to `now` (ms since the Unix epoch).
fn tick(now: u64) {
    NOW.store(now, Ordering::Relaxed);
    let since = now.saturating_sub(START.load(Ordering::Relaxed));
    SINCE.store(since << TIME_SHIFT, Ordering::Relaxed);
}

/// A record's time bits for now.
#[inline(always)]
fn since_bits() -> u64 {
    if cfg!(miri) {
        tick(now_ms());
    }
    SINCE.load(Ordering::Relaxed)
}

/// Starts the coarse clock's thread, once.
fn start_clock() {
    static TICKER: OnceLock<()> = OnceLock::new();
    TICKER.get_or_init(|| {
        let now = now_ms();
        START.store(now, Ordering::Relaxed);
        tick(now);
        if cfg!(miri) {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("borrowstore-clock".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TICK);
                    tick(now_ms());
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the claim clock; claim times stay at its start");
        }
    });
}

/// Milliseconds since the Unix epoch, to within the clock's tick: one
/// atomic load once the clock runs.
#[inline]
pub(crate) fn coarse_now_ms() -> u64 {
    if cfg!(miri) {
        return now_ms();
    }
    start_clock();
    NOW.load(Ordering::Relaxed)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_by_object_until_freed() {
        let obj = 0x1000_0008usize;
        let here = Note::here();
        let r = record(obj, 2, here).unwrap();
        let w = record(obj, 3, Note::named("w")).unwrap();
        let _other = record(obj + 8, 2, here).unwrap();
        let mut found = claims_of(obj);
        found.sort_by_key(|e| e.kind);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].kind, found[0].note), (2, here));
        assert_eq!((found[1].kind, found[1].note), (3, Note::named("w")));
        assert!(found[0].since_ms > 1_600_000_000_000);
        r.free();
        w.set_kind(TICKET);
        let found = claims_of(obj);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, TICKET);
        w.free();
        assert!(claims_of(obj).is_empty());
    }

    #[test]
    fn a_record_taken_again_shows_its_new_claim_and_time() {
        let obj = 0x2000_0008usize;
        let a = record(obj, 2, Note::named("first")).unwrap();
        a.free();
        let b = record(obj, 3, Note::named("second")).unwrap();
        let found = claims_of(obj);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].kind, found[0].note), (3, Note::named("second")));
        assert_eq!(b.note(), Note::named("second"));
        let now = coarse_now_ms();
        assert!(
            found[0].since_ms.abs_diff(now) < 1_000,
            "{} vs {now}",
            found[0].since_ms
        );
        b.free();
        assert!(claims_of(obj).is_empty());
    }

    #[test]
    fn a_freed_record_is_taken_again() {
        let a = record(1, 2, Note::NONE).unwrap();
        a.free();
        let b = record(1, 2, Note::NONE).unwrap();
        assert!(std::ptr::eq(a, b));
        b.free();
    }
}

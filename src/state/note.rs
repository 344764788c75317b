//! [`Note`]: what a claim says about where it was taken, for the store's
//! inspection (its label): a name given by the code that took it, or the
//! call site that took it.

use std::collections::HashMap;
use std::fmt;
use std::panic::Location;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Where a claim was taken: the label a store's inspection shows for it.
///
/// A claim's note is a name (an object named when it was put, a named
/// scope or lifetime), or the call site of the `#[track_caller]` function
/// that took it (`borrow`, `mut_borrow`, `owned_proxy`, …). It is one
/// pointer and a tag: taking a claim records it without allocating.
///
/// Claims rebuilt from bytes (a ticket issued by another process) carry no
/// note; the store that recorded them kept their label.
///
/// ```
/// use borrowstore::state::Note;
/// let n = Note::named("nightly batch");
/// assert_eq!(n.to_string(), "nightly batch");
/// assert_eq!(n.name(), Some("nightly batch"));
/// assert_eq!(Note::here().site().map(|l| l.file()), Some(file!()));
/// assert_eq!(Note::NONE.label(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Note(Repr);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Repr {
    #[default]
    None,
    Site(&'static Location<'static>),
    /// Names are kept once per distinct string (see [`Note::named`]), so a
    /// note stays one pointer wide.
    Named(&'static &'static str),
}

impl Note {
    /// No label.
    pub const NONE: Note = Note(Repr::None);

    /// The call site of the `#[track_caller]` chain this is called from.
    #[track_caller]
    #[inline]
    pub fn here() -> Note {
        Note(Repr::Site(Location::caller()))
    }

    /// A name. Each distinct string is kept once for the life of the
    /// process (a few bytes): names are meant to be a program's fixed
    /// vocabulary, like its call sites.
    pub fn named(name: &'static str) -> Note {
        static NAMES: OnceLock<Mutex<HashMap<&'static str, &'static &'static str>>> =
            OnceLock::new();
        let mut names = NAMES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let kept: &'static &'static str = names
            .entry(name)
            .or_insert_with(|| Box::leak(Box::new(name)));
        Note(Repr::Named(kept))
    }

    /// The call site, if the note is one.
    pub fn site(self) -> Option<&'static Location<'static>> {
        match self.0 {
            Repr::Site(l) => Some(l),
            _ => None,
        }
    }

    /// The name, if the note is one.
    pub fn name(self) -> Option<&'static str> {
        match self.0 {
            Repr::Named(n) => Some(n),
            _ => None,
        }
    }

    /// The label as text: the name, or `file:line:column` of the call site.
    pub fn label(self) -> Option<String> {
        match self.0 {
            Repr::None => None,
            _ => Some(self.to_string()),
        }
    }

    /// A number that tells notes apart (0 for none): the address the note
    /// points to.
    pub(crate) fn identity(self) -> usize {
        match self.0 {
            Repr::None => 0,
            Repr::Site(l) => std::ptr::from_ref(l) as usize,
            Repr::Named(n) => std::ptr::from_ref(n) as usize,
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Repr::None => Ok(()),
            Repr::Site(l) => write!(f, "{}:{}:{}", l.file(), l.line(), l.column()),
            Repr::Named(n) => f.write_str(n),
        }
    }
}

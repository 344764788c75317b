//! [`Note`]: what a claim says about where it was taken, for the store's
//! inspection (its label): a name given by the code that took it, or the
//! call site that took it.

use std::fmt;
use std::panic::Location;

/// Where a claim was taken: the label a store's inspection shows for it.
///
/// A claim's note is a name (an object named when it was put, a named
/// scope or lifetime), or the call site of the `#[track_caller]` function
/// that took it (`borrow`, `mut_borrow`, `owned_proxy`, …). It is a pointer
/// or two: taking a claim records it without allocating.
///
/// Claims rebuilt from bytes (a ticket issued by another process) carry no
/// note; the store that recorded them kept their label.
///
/// ```
/// use borrowstore::state::Note;
/// let n = Note::named("nightly batch");
/// assert_eq!(n.to_string(), "nightly batch");
/// assert_eq!(Note::here().site().map(|l| l.file()), Some(file!()));
/// assert_eq!(Note::NONE.label(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Note {
    /// No label is known.
    #[default]
    None,
    /// The call site that took the claim.
    Site(&'static Location<'static>),
    /// A name given by the code that took it.
    Named(&'static str),
}

impl Note {
    /// No label.
    pub const NONE: Note = Note::None;

    /// The call site of the `#[track_caller]` chain this is called from.
    #[track_caller]
    #[inline]
    pub fn here() -> Note {
        Note::Site(Location::caller())
    }

    /// A name.
    pub const fn named(name: &'static str) -> Note {
        Note::Named(name)
    }

    /// The call site, if the note is one.
    pub fn site(self) -> Option<&'static Location<'static>> {
        match self {
            Note::Site(l) => Some(l),
            _ => None,
        }
    }

    /// The name, if the note is one.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Note::Named(n) => Some(n),
            _ => None,
        }
    }

    /// The label as text: the name, or `file:line:column` of the call site.
    pub fn label(self) -> Option<String> {
        match self {
            Note::None => None,
            other => Some(other.to_string()),
        }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::None => Ok(()),
            Note::Site(l) => write!(f, "{}:{}:{}", l.file(), l.line(), l.column()),
            Note::Named(n) => f.write_str(n),
        }
    }
}

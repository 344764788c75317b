//! How the file store names what it was doing when an I/O call failed.

use std::io;
use std::path::Path;

use crate::error::Error;

/// Where a store's I/O happens, for its error messages: every I/O error
/// becomes an [`Error::Connector`] of the store whose source is an
/// [`io::Error`] of the same kind, which says what was done to which path
/// (`creating directory /data/objects: Permission denied (os error 13)`)
/// and keeps the OS error as its source. The store's URL leads the message
/// when the store's name is not already that URL.
pub(super) struct Site {
    name: String,
    url: Option<String>,
}

impl Site {
    pub(super) fn new(name: &str, root: &Path) -> Site {
        let url = format!("file://{}", root.display());
        let named_by_url = name == url
            || name
                .strip_prefix(url.as_str())
                .is_some_and(|q| q.starts_with('?'));
        Site {
            name: name.to_owned(),
            url: (!named_by_url).then_some(url),
        }
    }

    /// The error for `source`, which happened while `doing` `path`.
    pub(super) fn error(&self, source: io::Error, doing: &str, path: &Path) -> Error {
        self.wrap(source, format!("{doing} {}", path.display()))
    }

    /// The error for `source`, which happened while renaming `from` to `to`.
    pub(super) fn rename_error(&self, source: io::Error, from: &Path, to: &Path) -> Error {
        self.wrap(
            source,
            format!("renaming {} to {}", from.display(), to.display()),
        )
    }

    fn wrap(&self, source: io::Error, what: String) -> Error {
        let what = match &self.url {
            Some(url) => format!("{url}: {what}"),
            None => what,
        };
        Error::Connector {
            store: self.name.clone(),
            source: Box::new(io::Error::new(source.kind(), PathError { what, source })),
        }
    }
}

/// An I/O error and what it happened to (see [`Site`]).
#[derive(Debug)]
struct PathError {
    what: String,
    source: io::Error,
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

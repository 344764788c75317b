//! [`FileEntry`]: the handle on one object of a file store that its proxies
//! keep: the object's place in the state table, so that a borrow and its
//! release go straight to the object's words, with no lookup and no file
//! I/O.

use std::sync::Arc;

use super::files::Inner;
use super::side::Place;
use crate::connector::{Entry, Fetch, Value};
use crate::error::Result;
use crate::key::Key;
use crate::state::{Claim, Effect, Op};

/// See the module docs.
pub(super) struct FileEntry {
    inner: Arc<Inner>,
    key: Key,
    place: Place,
}

impl FileEntry {
    pub(super) fn new(inner: Arc<Inner>, key: Key, place: Place) -> FileEntry {
        FileEntry { inner, key, place }
    }
}

impl Entry for FileEntry {
    fn apply(&self, op: Op) -> Result<Effect> {
        match op {
            Op::Release(c) | Op::Disown(c) => {
                self.inner
                    .give_back(&self.key, Some(self.place), c, matches!(op, Op::Disown(_)))
            }
            _ => self.inner.apply_at(&self.key, self.place, op),
        }
    }

    fn release(&self, claim: Claim) {
        match self
            .inner
            .give_back(&self.key, Some(self.place), claim, false)
        {
            Ok(_) | Err(crate::error::Error::KeyNotFound { .. }) => {}
            Err(e) => tracing::warn!(key = %self.key, error = %e, "release failed"),
        }
    }

    fn fetch(&self, known_version: Option<u64>) -> Result<Fetch> {
        self.inner.fetch_at(&self.key, self.place, known_version)
    }

    fn publish(&self, writer: Claim, value: Value) -> Result<u64> {
        self.inner.publish_at(&self.key, self.place, writer, value)
    }
}

//! The store directory's files as one store sees them: the paths of
//! objects' side files and values, writing by rename, reading values
//! through a read-only mapping, and finding an object's slot from its key.
//!
//! - `objects/<key>.ledger` — the object's side file, written once when the
//!   object is created (to `tmp/`, then hard-linked into place, which fails
//!   if the key exists): magic `BSO2`, the object's slot and generation in
//!   the state table, the object's record for inspection (type name,
//!   size, creation time, name) and, for a value of at most
//!   [`INLINE_MAX`](super::side::INLINE_MAX) bytes, the value's first
//!   version (see [`side`](super::side); the slot's flags say so). It never
//!   changes; it goes with the object.
//! - `objects/<key>.<version>.blob` — the value, one file per version
//!   (but a first version that the side file holds), written to `tmp/` and
//!   renamed into place, never written again.

use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::map::ValueMap;
use super::shared::Shared;
use super::side::{Place, encode_side, parse, parse_side, parse_side_meta};
use super::site::Site;
use super::table::Fail;
use crate::connector::lease::now_ms;
use crate::connector::{ObjectMeta, Waiters};
use crate::error::{Error, Result};
use crate::key::{ClaimId, Key};

/// What one store shares with its entries and its keeper.
pub(super) struct Inner {
    pub(super) name: String,
    /// What I/O errors say about the store; see [`Site`].
    pub(super) site: Site,
    pub(super) root: PathBuf,
    pub(super) lease: Duration,
    pub(super) shared: Arc<Shared>,
    pub(super) waiters: Arc<Waiters>,
}

impl Inner {
    pub(super) fn not_found(&self, key: &Key) -> Error {
        Error::KeyNotFound {
            key: *key,
            store: self.name.clone(),
        }
    }

    /// The error for a table operation that did not happen, of operation
    /// `op` on `key`.
    pub(super) fn fail(&self, f: Fail, op: &'static str, key: &Key) -> Error {
        match f {
            Fail::Refused(r) => r.into_error(op, *key, &self.name),
            Fail::Gone => self.not_found(key),
            Fail::Lost => Error::ClaimLost { key: *key },
            Fail::Busy => Error::Connector {
                store: self.name.clone(),
                source: format!(
                    "{op} of {key}: the object is in the middle of another process's \
                     transition, and that process does not run (stopped?); try again"
                )
                .into(),
            },
            Fail::Full(what) => Error::Connector {
                store: self.name.clone(),
                source: format!(
                    "the state table has no room for more {what} (it was made for {} objects; \
                     a new directory takes ?capacity=N)",
                    self.shared.layout.slots
                )
                .into(),
            },
            Fail::Damaged(what) => {
                Error::decode(format_args!("the state table is damaged: {what}"))
            }
        }
    }

    /// The deadline of a claim taken now.
    pub(super) fn deadline(&self) -> u64 {
        now_ms().saturating_add(self.lease.as_millis() as u64)
    }

    pub(super) fn side_path(&self, key: &Key) -> PathBuf {
        self.shared.side_path(key)
    }

    pub(super) fn blob_path(&self, key: &Key, version: u64) -> PathBuf {
        self.shared.blob_path(key, version)
    }

    /// Writes `data` to a new temporary file and returns its path.
    pub(super) fn write_tmp(&self, data: &[u8]) -> Result<PathBuf> {
        // Named after this process's record, so that when it dies the
        // survivor that reclaims it removes what it was writing.
        let path = match self.shared.me() {
            Some(i) => self
                .root
                .join("tmp")
                .join(format!("{i}-{}.tmp", ClaimId::random())),
            None => self
                .root
                .join("tmp")
                .join(format!("{}.tmp", ClaimId::random())),
        };
        let mut f = File::create(&path).map_err(|e| self.site.error(e, "creating", &path))?;
        f.write_all(data)
            .map_err(|e| self.site.error(e, "writing", &path))?;
        Ok(path)
    }

    /// Writes the side file of `key`, naming `place`, recording `meta` and
    /// holding `inline` (the value's first version) if given; fails with
    /// "already exists" if the key has one.
    pub(super) fn write_side(
        &self,
        key: &Key,
        place: Place,
        meta: &ObjectMeta,
        inline: Option<&[u8]>,
    ) -> Result<()> {
        let tmp = self.write_tmp(&encode_side(place, meta, inline))?;
        let path = self.side_path(key);
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::Connector {
                store: self.name.clone(),
                source: format!("key {key} already exists").into(),
            }),
            Err(e) => Err(self.site.rename_error(e, &tmp, &path)),
        }
    }

    /// Writes the files of a new object `key` at `place` (being created):
    /// its side file, which claims the key (the link fails if it exists),
    /// holding `bytes` when they are at most
    /// [`INLINE_MAX`](super::side::INLINE_MAX), else beside a version file
    /// of their own, renamed into place after the side file (so no value
    /// file is ever left without one for longer than a crash). On an error
    /// it has removed what it wrote; the caller abandons the slot.
    pub(super) fn write_first(
        &self,
        key: &Key,
        place: Place,
        meta: &ObjectMeta,
        bytes: &[u8],
    ) -> Result<()> {
        if bytes.len() <= super::side::INLINE_MAX {
            self.shared
                .table()
                .set_inline_first(place.slot)
                .map_err(|f| self.fail(f, "put", key))?;
            return self.write_side(key, place, meta, Some(bytes));
        }
        let tmp = self.write_tmp(bytes)?;
        if let Err(e) = self.write_side(key, place, meta, None) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let path = self.blob_path(key, 1);
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            let _ = fs::remove_file(self.side_path(key));
            return Err(self.site.rename_error(e, &tmp, &path));
        }
        Ok(())
    }

    /// The place the side file of `key` names, and (if `meta`) the
    /// object's record; `None` if it has none.
    fn read_side(&self, key: &Key, meta: bool) -> Result<Option<(Place, ObjectMeta)>> {
        let path = self.side_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.site.error(e, "reading", &path)),
        };
        let parsed = if meta {
            parse_side_meta(&bytes)
        } else {
            parse_side(&bytes).map(|p| (p, ObjectMeta::default()))
        };
        parsed
            .map(Some)
            .ok_or_else(|| Error::decode(format_args!("the side file of {key} is damaged")))
    }

    /// Where `key` lives, if it is a live object: its side file names a
    /// slot that holds it now.
    pub(super) fn find(&self, key: &Key) -> Result<Option<Place>> {
        Ok(self.find_with(key, false)?.map(|(p, _)| p))
    }

    /// [`find`](Self::find), with the object's record (read from its side
    /// file) if `meta`.
    pub(super) fn find_with(&self, key: &Key, meta: bool) -> Result<Option<(Place, ObjectMeta)>> {
        // A process that uses an object of the directory takes its record
        // (and lock file) first, so that what it does next is reclaimed if
        // it dies.
        self.me()?;
        let Some((place, object)) = self.read_side(key, meta)? else {
            return Ok(None);
        };
        if place.slot >= self.shared.layout.slots {
            return Err(Error::decode(format_args!(
                "the side file of {key} names slot {}, which the table does not have",
                place.slot
            )));
        }
        let live = self
            .shared
            .table()
            .live(place.slot)
            .map_err(|f| self.fail(f, "open", key))?;
        Ok(match live {
            Some((k, epoch, _)) if k == *key && epoch == place.epoch => Some((place, object)),
            _ => None,
        })
    }

    /// The value of `key` (at `place`) at `version`, mapped (no copy):
    /// its version file, or for a first version that the side file holds
    /// (the slot's flags say), that part of the side file. `None` if that
    /// version's file is gone (or the side file names another place: the
    /// object is gone).
    pub(super) fn read_blob(&self, key: &Key, place: Place, version: u64) -> Result<Option<Bytes>> {
        if version == 1
            && self
                .shared
                .table()
                .inline_first(place.slot)
                .map_err(|f| self.fail(f, "read", key))?
        {
            return self.read_inline(key, place);
        }
        let path = self.blob_path(key, version);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.site.error(e, "reading", &path)),
        };
        let map = ValueMap::new(&file).map_err(|e| self.site.error(e, "mapping", &path))?;
        Ok(Some(Bytes::from_owner(map)))
    }

    /// The first version of `key`'s value that its side file holds, mapped.
    fn read_inline(&self, key: &Key, place: Place) -> Result<Option<Bytes>> {
        let path = self.side_path(key);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.site.error(e, "reading", &path)),
        };
        let map = ValueMap::new(&file).map_err(|e| self.site.error(e, "mapping", &path))?;
        let range = match parse(map.as_ref()) {
            Some(side) if side.place != place => return Ok(None),
            Some(side) => side.inline,
            None => None,
        };
        let range = range
            .ok_or_else(|| Error::decode(format_args!("the side file of {key} is damaged")))?;
        Ok(Some(Bytes::from_owner(map).slice(range)))
    }
}

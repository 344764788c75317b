//! The one module of the crate that uses `unsafe`: memory mappings of the
//! file store's files, behind a safe interface.
//!
//! - [`TableMap`]: the state table (`table` in the store directory), mapped
//!   shared and read-write, seen only as a slice of [`AtomicU64`]: every
//!   access to it, in every process, is an atomic operation.
//! - [`ValueMap`]: one version file of a value (`objects/<key>.<n>.blob`),
//!   or a side file that holds a value's first version
//!   (`objects/<key>.ledger`), mapped shared and read-only, seen as `&[u8]`.
//!   Both are written to `tmp/`, moved into place (renamed, or linked) and
//!   never written or truncated again, so the bytes never change while a
//!   mapping exists (see SAFETY.md, "The file store's mappings").
//!
//! Both mappings are made by `memmap2` (`mmap(2)` with `MAP_SHARED`), whose
//! raw mappings are safe to create: the `unsafe` here is only the step from
//! the mapping's address to a Rust slice.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::AtomicU64;

use memmap2::{MmapOptions, MmapRaw};

/// The state table, mapped: `len` words of [`AtomicU64`].
pub(super) struct TableMap {
    map: MmapRaw,
    len: usize,
}

impl TableMap {
    /// Maps the whole of `file` shared and read-write. Fails unless the
    /// file's length is a non-zero multiple of 8 bytes (one word).
    pub(super) fn new(file: &File) -> io::Result<TableMap> {
        let bytes = file.metadata()?.len();
        let bytes = usize::try_from(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "table too large"))?;
        if bytes == 0 || !bytes.is_multiple_of(8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the table is {bytes} bytes long, not a whole number of 8-byte words"),
            ));
        }
        let map = MmapOptions::new().len(bytes).map_raw(file)?;
        if map.len() != bytes || !(map.as_ptr() as usize).is_multiple_of(align_of::<AtomicU64>()) {
            return Err(io::Error::other(
                "the table's mapping is not what was asked for",
            ));
        }
        Ok(TableMap {
            map,
            len: bytes / 8,
        })
    }

    /// The table's words.
    #[inline]
    pub(super) fn words(&self) -> &[AtomicU64] {
        // SAFETY:
        // - Address and alignment: `map.as_ptr()` is the start of a live
        //   mapping of `len * 8` bytes (checked in `new`: `map.len()` equals
        //   the file length, a multiple of 8, and `len` is that divided by
        //   8), and `mmap` returns page-aligned addresses, so it is aligned
        //   for `AtomicU64` (also checked in `new`). The slice covers exactly
        //   the mapping: in bounds.
        // - Lifetime: the slice borrows `self`, which owns the `MmapRaw`;
        //   the mapping is unmapped only when `self` is dropped, after every
        //   borrow has ended.
        // - Validity: every bit pattern is a valid `u64`, so any bytes the
        //   file holds (zeros of a new sparse file, or bytes written by
        //   another process) are a valid `AtomicU64`.
        // - Aliasing: `AtomicU64` is an `UnsafeCell`, so a shared slice may
        //   be mutated through. This process touches the mapping only
        //   through this slice (no `&[u8]` or `&mut` view of it exists);
        //   other processes are bound by the table invariant (SAFETY.md):
        //   they too change it only with atomic operations, which is the
        //   same as a thread of this process doing so. A process that breaks
        //   it can change the table's values, never this process's memory
        //   outside the mapping: every index read from the table is
        //   bounds-checked before use.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.len) }
    }
}

/// One version file of a value (or a side file holding one), mapped
/// read-only.
pub(super) struct ValueMap {
    /// `None` for an empty file (`mmap` refuses a zero-length mapping).
    map: Option<MmapRaw>,
}

impl ValueMap {
    /// Maps the whole of `file` read-only.
    pub(super) fn new(file: &File) -> io::Result<ValueMap> {
        let bytes = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "value file too large"))?;
        if bytes == 0 {
            return Ok(ValueMap { map: None });
        }
        let map = MmapOptions::new().len(bytes).map_raw_read_only(file)?;
        if map.len() != bytes {
            return Err(io::Error::other(
                "the value's mapping is not what was asked for",
            ));
        }
        Ok(ValueMap { map: Some(map) })
    }
}

impl AsRef<[u8]> for ValueMap {
    fn as_ref(&self) -> &[u8] {
        match &self.map {
            None => &[],
            // SAFETY:
            // - Address and length: `map` is a live read-only mapping of
            //   exactly `map.len()` bytes (checked in `new`), so the slice
            //   is in bounds; `u8` needs no alignment and every byte is a
            //   valid `u8`.
            // - Lifetime: the slice borrows `self`, which owns the mapping
            //   until it is dropped.
            // - Immutability: the mapping is read-only in this process, and
            //   the file is a version file or a side file, which by the
            //   value-file invariant (SAFETY.md) is never written or
            //   truncated after it was renamed (or, a side file, linked)
            //   into place: removing it (`unlink`) keeps the
            //   mapped pages. A process that breaks the invariant by writing
            //   the file in place changes bytes under this slice (the reader
            //   sees other bytes; decoding checks them as untrusted input),
            //   and one that truncates it makes a later read of the lost
            //   pages raise SIGBUS, which ends this process: both are
            //   outside what borrowstore can defend against (see SAFETY.md,
            //   "Every process with write access to the store").
            Some(map) => unsafe { std::slice::from_raw_parts(map.as_ptr(), map.len()) },
        }
    }
}

//! What a store keeps about its blocking forms and the work done for `Drop`
//! (see `executor.rs`, which uses it).

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use crate::error::Error;

/// What a store keeps about its blocking forms.
pub(super) struct Blocking {
    /// Whether the connector can block (else nothing is ever checked).
    pub(super) does_io: bool,
    pub(super) warned: AtomicBool,
    /// Failures of work done for `Drop`, for the next flush.
    pub(super) deferred: Mutex<Vec<Error>>,
    pub(super) any_deferred: AtomicBool,
}

impl Blocking {
    pub(super) fn new(does_io: bool) -> Blocking {
        Blocking {
            does_io,
            warned: AtomicBool::new(false),
            deferred: Mutex::new(Vec::new()),
            any_deferred: AtomicBool::new(false),
        }
    }
}

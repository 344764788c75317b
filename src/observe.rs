//! What the crate tells a program that watches it: a `tracing` span for
//! every store operation, and (with the `metrics` feature) counters, gauges
//! and a latency histogram through the `metrics` facade.
//!
//! # Spans
//!
//! Every store operation runs in a span at `debug` level, target
//! `borrowstore`, named after the operation — `put`, `get`, `evict`,
//! `borrow`, `mut_borrow`, `release`, `publish`, `redeem`, `reclaim` —
//! with the fields `store` (its name), `key`, and `outcome`, recorded when
//! it ends: `ok`, or the error's kind (`already_borrowed`,
//! `already_mutably_borrowed`, `key_not_found`, …). A resolve served from
//! this process's cache is a `trace` event (`cache hit`). The crate never
//! installs a subscriber: without one, a span costs a load and a branch.
//!
//! # Metrics
//!
//! With the `metrics` feature, through the [`metrics`](https://docs.rs/metrics)
//! facade (the program installs the recorder and exporter it wants; the
//! crate installs none):
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `borrowstore_operations_total` | counter | `store`, `op`, `outcome` |
//! | `borrowstore_refusals_total` | counter | `store`, `op`, `kind` |
//! | `borrowstore_live_objects` | gauge | `store` (this process's puts minus its evictions) |
//! | `borrowstore_live_claims` | gauge | `store` (claims this process holds) |
//! | `borrowstore_network_seconds` | histogram | `store`, `op` (Redis round trips) |

use crate::error::Error;

/// A debug span for the store operation `$op` on `$key` of `$store`, with
/// an `outcome` to record when it ends ([`finish`]).
macro_rules! op_span {
    ($op:literal, $store:expr, $key:expr) => {
        tracing::debug_span!(
            target: "borrowstore",
            $op,
            store = %$store.name(),
            key = %$key,
            outcome = tracing::field::Empty
        )
    };
}
pub(crate) use op_span;

/// The outcome of an operation as its span records it.
pub(crate) fn outcome<T>(r: &Result<T, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.kind_name(),
    }
}

/// Records the outcome of operation `op` of store `store` in `span`, and
/// counts it.
#[inline]
pub(crate) fn finish<'a, T>(
    span: &tracing::Span,
    store: impl FnOnce() -> &'a str,
    op: &'static str,
    r: &Result<T, Error>,
) {
    if !span.is_disabled() {
        span.record("outcome", outcome(r));
    }
    count(store, op, r);
}

#[cfg(feature = "metrics")]
fn count<'a, T>(store: impl FnOnce() -> &'a str, op: &'static str, r: &Result<T, Error>) {
    let store = store();
    let out = outcome(r);
    metrics::counter!("borrowstore_operations_total", "store" => store.to_owned(), "op" => op, "outcome" => out)
        .increment(1);
    if let Err(
        e @ (Error::AlreadyBorrowed { .. }
        | Error::AlreadyMutablyBorrowed { .. }
        | Error::AlreadyOwned { .. }),
    ) = r
    {
        metrics::counter!("borrowstore_refusals_total", "store" => store.to_owned(), "op" => op, "kind" => e.kind_name())
            .increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
fn count<'a, T>(_store: impl FnOnce() -> &'a str, _op: &'static str, _r: &Result<T, Error>) {}

/// Whether anything watches the crate's operations: a subscriber that
/// wants its `debug` spans, or the `metrics` feature. The hot paths of the
/// memory store check this once and, when nothing watches, run as if the
/// crate had no spans: no span is made, no field is read.
#[inline(always)]
pub(crate) fn watched() -> bool {
    cfg!(feature = "metrics") || tracing::enabled!(target: "borrowstore", tracing::Level::DEBUG)
}

/// Moves the live-objects gauge of the store named by `store()` by `delta`.
#[inline(always)]
pub(crate) fn objects<'a>(store: impl FnOnce() -> &'a str, delta: f64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("borrowstore_live_objects", "store" => store().to_owned()).increment(delta);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, delta);
}

/// Moves the live-claims gauge of the store named by `store()` by `delta`.
#[inline(always)]
pub(crate) fn claims<'a>(store: impl FnOnce() -> &'a str, delta: f64) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("borrowstore_live_claims", "store" => store().to_owned()).increment(delta);
    #[cfg(not(feature = "metrics"))]
    let _ = (store, delta);
}

/// Times a network round trip for `borrowstore_network_seconds` (nothing
/// without the `metrics` feature).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) struct Timer {
    #[cfg(feature = "metrics")]
    start: std::time::Instant,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Timer {
    #[inline(always)]
    pub(crate) fn start() -> Timer {
        Timer {
            #[cfg(feature = "metrics")]
            start: std::time::Instant::now(),
        }
    }

    /// Records the round trip of `op` (the request's first argument) on `store`.
    #[inline(always)]
    pub(crate) fn stop(self, store: &str, op: &[u8]) {
        #[cfg(feature = "metrics")]
        metrics::histogram!(
            "borrowstore_network_seconds",
            "store" => store.to_owned(),
            "op" => String::from_utf8_lossy(op).into_owned()
        )
        .record(self.start.elapsed().as_secs_f64());
        let _ = (store, op);
    }
}

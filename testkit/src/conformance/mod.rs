//! The connector conformance suite: the rules of borrowstore's semantics
//! (`borrowstore::docs::semantics`) as checks that every connector must
//! pass.
//!
//! Each check is a `pub fn` taking a fresh [`Store`] (or, for the checks of
//! connector operations that the store API does not offer, a [`Fixture`]:
//! the store and its connector); the [`conformance_suite!`](crate::conformance_suite!)
//! macro turns every one of them into a `#[test]` for one connector:
//!
//! ```ignore
//! // tests/memory_store.rs
//! borrowstore_testkit::conformance_suite!(borrowstore_testkit::suite!("memory-store").memory_fixture());
//! ```
//!
//! The expression (a [`Fixture`]) is evaluated once per test, so every test
//! gets its own store. Checks assert on what the store really holds
//! (`Store::exists / inspect / keys`, read from the connector), never on a
//! cache or a flag, and use the `Result`-returning accessors
//! (`Proxy::resolve`, …) on error paths so that nothing panics.
//!
//! The checks, by topic: [`ownership`] (owners and the borrow rule),
//! [`publishing`], [`adoption`] (`clone`, `into_owned`), [`eviction`],
//! [`tickets`], [`bad_input`], [`plain_api`], [`inspection`] (what
//! `inspect` and `snapshot` report) and [`waiting`] (waiting
//! borrows, the `_async` forms, dropped writers). All of them are re-exported
//! here, where the macro finds them.

pub mod adoption;
pub mod bad_input;
pub mod eviction;
pub mod inspection;
pub mod ownership;
pub mod plain_api;
pub mod publishing;
pub mod tickets;
pub mod waiting;

use std::sync::Arc;

use borrowstore::codec;
use borrowstore::connector::{Connector, Value};
use borrowstore::state::Init;
use borrowstore::{Key, ObjectInfo, Store};

pub use crate::fixture::Fixture;
pub use adoption::*;
pub use bad_input::*;
pub use eviction::*;
pub use inspection::*;
pub use ownership::*;
pub use plain_api::*;
pub use publishing::*;
pub use tickets::*;
pub use waiting::*;

/// Expands to one `#[test]` per conformance check, each with a fresh
/// [`Fixture`](crate::Fixture) made by evaluating `$make` (an expression of
/// that type), at the place of the call (usually a test file's root).
///
/// A new connector is checked in one line; see the [crate docs](crate) for
/// a whole example:
///
/// ```ignore
/// borrowstore_testkit::conformance_suite!(my_fixture());
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            owner_drop_evicts,
            owner_drop_while_read_defers_eviction_in_every_release_order,
            owner_drop_while_written_defers_eviction,
            readers_refuse_a_writer,
            a_writer_refuses_readers_and_a_second_writer,
            update_of_ref_mut_publishes_and_bumps_version,
            update_of_owner_publishes_local_changes,
            update_of_owner_refused_while_borrowed_keeps_local_changes,
            changed_ref_mut_publishes_on_drop,
            unchanged_ref_mut_does_not_bump_version,
            owner_sees_changes_published_by_a_writer,
            owner_update_on_a_stale_copy_is_a_conflict_and_keeps_changes,
            owner_update_after_a_writer_keeps_the_writers_changes,
            clone_is_independent_of_its_source,
            into_owned_adopts_a_plain_proxy,
            into_owned_twice_is_already_owned,
            into_owned_of_missing_key_is_key_not_found,
            plain_objects_persist_until_evicted,
            evict_refused_while_written,
            evicting_an_owned_object_ends_its_owner,
            ephemeral_proxy_is_evicted_by_first_resolve,
            ephemeral_proxy_stays_ephemeral_through_serialization,
            owner_ticket_redeemed_twice_is_ticket_redeemed,
            owner_ticket_in_flight_keeps_the_object,
            owner_ticket_cancel_evicts,
            borrow_ticket_keeps_the_borrow_in_flight,
            borrow_ticket_cancel_releases,
            ticket_redeemed_as_wrong_type_is_type_mismatch_and_stays_valid,
            owner_ticket_redeemed_as_borrow_ticket_is_refused_without_consuming_it,
            type_mismatch_via_get,
            type_mismatch_via_proxy,
            type_mismatch_via_proxy_from_bytes,
            put_get_exists_evict,
            batch_forms,
            serialized_proxy_round_trips_and_resolves,
            malformed_proxy_bytes_are_malformed,
            malformed_ticket_bytes_are_malformed,
            missing_keys,
            readers_share_one_value_of_an_owned_proxy,
            readers_share_one_decoded_value_of_an_adopted_blob,
            blobs_read_back_as_their_bytes,
            flush_is_ok_and_releases_are_applied,
            ticket_cancelled_as_wrong_type_is_type_mismatch_and_consumes_nothing,
            ticket_cancelled_as_wrong_kind_is_malformed_and_consumes_nothing,
            reborrow_is_a_reader_of_its_own,
            reborrow_handed_to_a_task_ends_with_it,
            borrow_async_waits_for_the_writer,
            mut_borrow_async_waits_for_the_last_of_several_readers,
            borrow_async_in_another_task_is_woken_by_a_drop_on_a_thread,
            dropping_a_pending_waiter_leaves_no_claim,
            a_waiter_cancelled_while_its_request_is_in_flight_leaves_no_claim,
            a_waiting_writer_is_not_starved_by_arriving_readers,
            borrow_timeout_returns_timeout_after_its_duration,
            timeouts_succeed_when_released_in_time,
            waiting_fails_at_once_when_the_object_is_gone,
            async_forms_on_a_current_thread_runtime,
            async_futures_are_send,
            a_writer_that_panics_publishes_nothing,
            a_changed_writer_dropped_normally_is_published,
            discard_publishes_nothing,
            inspect_reports_type_size_time_and_name,
            inspect_reports_each_claim_with_its_process_label_and_time,
            every_claim_is_labelled_with_the_call_site_that_took_it,
            snapshot_lists_every_object_as_inspect_does,
        ;
            evict_refused_while_read,
            damaged_blob_truncated_is_decode_error,
            damaged_blob_bad_header_is_decode_error,
            damaged_blob_payload_is_decode_error,
            connector_batch_forms,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?; $($with_connector:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name($make.store);
            }
        )*
        $(
            #[test]
            fn $with_connector() {
                $crate::conformance::$with_connector($make);
            }
        )*
    };
}

// ---------------------------------------------------------------- helpers

/// The value type most checks store.
type V = Vec<u64>;

/// What the store holds for `key`; fails the test if it holds nothing (or
/// its eviction has begun).
fn state(store: &Store, key: &Key) -> ObjectInfo {
    match store.inspect(key) {
        Ok(Some(i)) => i,
        other => panic!("expected {key} to be stored, the store says {other:?}"),
    }
}

/// The version of what the store holds for `key`.
fn version(store: &Store, key: &Key) -> u64 {
    state(store, key).version
}

/// Asserts that the store holds `key`: it exists, is not gone, and is
/// listed.
fn assert_stored(store: &Store, key: &Key) {
    assert!(store.exists(key).unwrap(), "{key} should exist");
    assert!(
        store.inspect(key).unwrap().is_some(),
        "{key} is marked gone"
    );
    assert!(
        store.keys().unwrap().contains(key),
        "{key} missing from keys()"
    );
}

/// Asserts that the store holds nothing under `key`, by every probe.
fn assert_evicted(store: &Store, key: &Key) {
    assert!(!store.exists(key).unwrap(), "{key} should be evicted");
    let i = store.inspect(key).unwrap();
    assert!(i.is_none(), "{key} should be evicted, inspect says {i:?}");
    assert!(
        !store.keys().unwrap().contains(key),
        "{key} still listed by keys()"
    );
}

/// State of an owned object nobody borrows (and not gone: an object whose
/// eviction has begun has no `ObjectInfo`, so `state` fails first).
fn assert_idle_owned(s: ObjectInfo) {
    assert!(s.owner, "{s:?}");
    assert_eq!(s.readers, 0, "{s:?}");
    assert!(!s.writer, "{s:?}");
}

/// Stores raw bytes under a fresh key, with no owner, through the connector.
fn put_raw(connector: &Arc<dyn Connector>, bytes: Vec<u8>) -> Key {
    let key = Key::random();
    connector
        .put(&key, Value::Bytes(bytes.into()), Init::Plain)
        .unwrap();
    key
}

/// A well-formed blob of the string "hello world".
fn good_blob() -> Vec<u8> {
    codec::encode(&String::from("hello world")).unwrap()
}

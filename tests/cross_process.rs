//! Ownership across real processes.
//!
//! Every test here starts this test binary again as child processes (see
//! `borrowstore_testkit::process`; the binary's `child_entry` test is what
//! they run), which open the same store, redeem tickets and proxies sent to
//! them as bytes, hold borrows and owners, and are killed (SIGKILL) or
//! frozen (SIGSTOP) to check that leases reclaim what a dead process held.
//!
//! The scenarios live in `borrowstore_testkit::process::scenarios` and take
//! a [`Target`] (a store URL and its lease). [`cross_process_suite!`] turns
//! each of them into a `#[test]` for one kind of store:
//!
//! - `file`: file stores, each in a fresh directory under cargo's temp dir;
//! - `redis`: Redis stores, each on a `redis-server` the test starts on a
//!   free loopback port — or, when `BORROWSTORE_TEST_REDIS_URL` names a
//!   server (for example `redis://127.0.0.1:6390/0`), in a fresh namespace
//!   there;
//! - `redis_cluster`: Redis stores on a six-node Redis Cluster
//!   (`redis+cluster://`) started once for this test binary, each in a
//!   fresh namespace;
//! - `redis_tls_cluster`: the same on a cluster that speaks TLS only
//!   (`rediss+cluster://…?tls_ca=`).
//!
//! Scenarios that wait for leases to run out get a short lease, so that
//! reclaiming takes well under a second; the others get the default lease,
//! so that a busy machine cannot make a live process's lease run out.

use std::time::Duration;

use borrowstore_testkit::Suite;
use borrowstore_testkit::process::Target;

/// Names this suite's stores and directories.
const SUITE: Suite = borrowstore_testkit::suite!("cross-process");

/// The lease of stores in tests that wait for leases to run out.
const SHORT_LEASE: Duration = Duration::from_millis(500);

borrowstore_testkit::child_entry!();

/// Runs `scenario` on the target made by `make` (`None`: skipped); cleans the
/// target up if the scenario passed.
fn run(
    make: impl FnOnce(&str, Option<Duration>) -> Option<Target>,
    tag: &str,
    lease: Option<Duration>,
    scenario: impl FnOnce(&Target),
) {
    let Some(target) = make(tag, lease) else {
        eprintln!("{tag}: skipped (no store of this kind configured)");
        return;
    };
    scenario(&target);
    target.cleanup();
}

/// One `#[test]` per scenario, each on a fresh target made by `$make`, an
/// expression of type `fn(&str, Option<Duration>) -> Option<Target>` (tag,
/// lease or the default).
macro_rules! cross_process_suite {
    ($make:expr) => {
        use super::{SHORT_LEASE, run};
        use borrowstore_testkit::process::scenarios::{self, TicketKind};

        #[test]
        fn reader_in_b_blocks_writer_in_a() {
            // Short lease: also checks that B renews its borrow while it lives.
            run(
                $make,
                "reader-blocks-writer",
                Some(SHORT_LEASE),
                scenarios::reader_in_b_blocks_writer_in_a,
            );
        }

        #[test]
        fn writer_in_b_blocks_a() {
            run(
                $make,
                "writer-blocks",
                Some(SHORT_LEASE),
                scenarios::writer_in_b_blocks_a,
            );
        }

        #[test]
        fn update_in_a_is_seen_by_resolve_in_b() {
            run(
                $make,
                "update-seen",
                None,
                scenarios::update_in_a_is_seen_by_resolve_in_b,
            );
        }

        #[test]
        fn owner_ticket_moved_to_b_evicts_when_b_drops_it() {
            run(
                $make,
                "owner-moved",
                None,
                scenarios::owner_ticket_moved_to_b_evicts_when_b_drops_it,
            );
        }

        #[test]
        fn owner_dropped_in_b_waits_for_borrow_in_a() {
            run(
                $make,
                "owner-dropped-deferred",
                None,
                scenarios::owner_dropped_in_b_waits_for_borrow_in_a,
            );
        }

        #[test]
        fn owner_ticket_redeemed_at_once_succeeds_once() {
            run($make, "race-owner", None, |t| {
                scenarios::ticket_redeemed_at_once_succeeds_once(t, TicketKind::Owner, 4, 5)
            });
        }

        #[test]
        fn borrow_ticket_redeemed_at_once_succeeds_once() {
            run($make, "race-borrow", None, |t| {
                scenarios::ticket_redeemed_at_once_succeeds_once(t, TicketKind::Borrow, 4, 5)
            });
        }

        #[test]
        fn claims_name_their_process() {
            run(
                $make,
                "claims-name-process",
                None,
                scenarios::claims_name_their_process,
            );
        }

        #[test]
        fn killed_reader_is_reclaimed() {
            run(
                $make,
                "killed-reader",
                Some(SHORT_LEASE),
                scenarios::killed_reader_is_reclaimed,
            );
        }

        #[test]
        fn killed_owner_is_evicted() {
            run($make, "killed-owner", Some(SHORT_LEASE), |t| {
                scenarios::killed_owner_is_evicted(t, false)
            });
        }

        #[test]
        fn killed_owner_and_writer_is_evicted() {
            run($make, "killed-owner-writer", Some(SHORT_LEASE), |t| {
                scenarios::killed_owner_is_evicted(t, true)
            });
        }

        #[test]
        fn killed_owner_waits_for_borrow_in_a() {
            run(
                $make,
                "killed-owner-deferred",
                Some(SHORT_LEASE),
                scenarios::killed_owner_waits_for_borrow_in_a,
            );
        }

        #[test]
        fn never_redeemed_owner_ticket_expires() {
            run(
                $make,
                "unredeemed-owner",
                Some(SHORT_LEASE),
                scenarios::never_redeemed_owner_ticket_expires,
            );
        }

        #[test]
        fn never_redeemed_borrow_ticket_expires() {
            run(
                $make,
                "unredeemed-borrow",
                Some(SHORT_LEASE),
                scenarios::never_redeemed_borrow_ticket_expires,
            );
        }

        #[test]
        fn frozen_process_loses_its_claims_harmlessly() {
            run(
                $make,
                "frozen",
                Some(SHORT_LEASE),
                scenarios::frozen_process_loses_its_claims_harmlessly,
            );
        }

        #[test]
        fn frozen_process_keeps_what_it_claims_after_waking() {
            run(
                $make,
                "frozen-awake",
                Some(SHORT_LEASE),
                scenarios::frozen_process_keeps_what_it_claims_after_waking,
            );
        }
    };
}

/// Crash consistency of a publish: a publisher killed at random moments,
/// `rounds` times; the value must stay readable, with no stray value files.
/// A longer lease: the value is read right after each kill, while the dead
/// publisher's claims are still leased.
fn killed_during_publish(make: impl FnOnce(&str, Option<Duration>) -> Option<Target>) {
    run(
        make,
        "killed-publisher",
        Some(Duration::from_secs(2)),
        |t| {
            borrowstore_testkit::process::scenarios::killed_during_publish_leaves_a_readable_value(
                t, 40,
            )
        },
    );
}

mod file {
    use super::Target;

    fn make(tag: &str, lease: Option<std::time::Duration>) -> Option<Target> {
        Some(Target::file(&super::SUITE, tag, lease))
    }

    cross_process_suite!(make);

    /// Regression: `FileConnector::publish` used to delete the previous value
    /// file before the ledger naming the new one was written, so a kill in
    /// between left a ledger without its value. Roughly one kill in ten hits
    /// that window; 40 kills found it almost always.
    #[test]
    fn killed_during_publish_leaves_a_readable_value() {
        super::killed_during_publish(make);
    }

    /// The crash torture: 200 SIGKILLs of a process looping random
    /// transitions; its claims are reclaimed at once each time and nothing
    /// is left at the end. A 1 s lease: a ticket the process had issued
    /// to itself and not yet redeemed when it was killed is leased on its
    /// own (a ticket outlives its issuer) and runs out within the check's
    /// bound.
    #[test]
    fn killed_at_random_moments_leave_a_consistent_state() {
        super::run(
            make,
            "torture",
            Some(std::time::Duration::from_secs(1)),
            |t| {
                borrowstore_testkit::process::scenarios::killed_at_random_moments_leave_a_consistent_state(
                t, 200,
            )
            },
        );
    }

    /// 10,000 claims of a live process survive 10 leases of 300 ms while
    /// other processes create and evict objects.
    #[test]
    fn live_process_keeps_ten_thousand_claims_for_ten_leases() {
        super::run(
            make,
            "many-claims",
            Some(std::time::Duration::from_millis(300)),
            |t| {
                borrowstore_testkit::process::scenarios::live_process_keeps_many_claims(
                    t, 10_000, 10,
                )
            },
        );
    }

    #[test]
    fn stopped_creator_delays_others_boundedly() {
        super::run(
            make,
            "stopped-creator",
            None,
            borrowstore_testkit::process::scenarios::stopped_creator_delays_others_boundedly,
        );
    }

    /// With a 30 s lease, a waiting `mut_borrow_async` gets the object a
    /// killed reader held well within a second (typically a few tens of
    /// milliseconds: the keeper's tick).
    #[test]
    fn killed_reader_wakes_a_waiting_writer_without_waiting_for_the_lease() {
        super::run(
            make,
            "reclaim-wakes",
            Some(std::time::Duration::from_secs(30)),
            |t| {
                let took =
                    borrowstore_testkit::process::scenarios::killed_reader_wakes_a_waiting_writer(
                        t,
                    );
                assert!(took < std::time::Duration::from_secs(1), "{took:?}");
            },
        );
    }
}

#[cfg(feature = "redis")]
mod redis {
    use super::Target;

    fn make(tag: &str, lease: Option<std::time::Duration>) -> Option<Target> {
        let url = std::env::var("BORROWSTORE_TEST_REDIS_URL")
            .unwrap_or_else(|_| borrowstore_testkit::redis_server::base_url_for_this_test());
        Some(Target::redis(&url, tag, lease))
    }

    cross_process_suite!(make);

    #[test]
    fn killed_during_publish_leaves_a_readable_value() {
        super::killed_during_publish(make);
    }
}

#[cfg(feature = "redis")]
mod redis_cluster {
    use super::Target;

    fn make(tag: &str, lease: Option<std::time::Duration>) -> Option<Target> {
        let cluster = borrowstore_testkit::redis_cluster::shared();
        Some(Target::redis(&cluster.base_url(), tag, lease))
    }

    cross_process_suite!(make);

    #[test]
    fn killed_during_publish_leaves_a_readable_value() {
        super::killed_during_publish(make);
    }
}

#[cfg(feature = "redis-tls")]
mod redis_tls_cluster {
    use super::Target;

    fn make(tag: &str, lease: Option<std::time::Duration>) -> Option<Target> {
        let cluster = borrowstore_testkit::redis_cluster::shared_tls();
        Some(Target::redis(&cluster.base_url(), tag, lease))
    }

    cross_process_suite!(make);
}

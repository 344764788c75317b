//! Waiting borrows and the `_async` forms across processes and against a
//! stopped Redis server. (The store-generic checks of waiting borrows, the
//! `_async` forms and dropped writers are in the testkit's conformance
//! suite, `borrowstore_testkit::conformance::waiting`, which
//! `tests/memory_store.rs`, `tests/file_store.rs` and `tests/redis_store.rs`
//! run.)
//!
//! - `file::cross_process`, `redis::cross_process` (and the same on a
//!   Redis Cluster, `redis_cluster::cross_process`, and on one over TLS,
//!   `redis_tls_cluster::cross_process`, both started once for this test
//!   binary): the holder of the
//!   borrow a waiter waits for is another process (this test binary started
//!   again, see `borrowstore_testkit::process`), which drops it or is
//!   SIGKILLed; or the waiter is the other process;
//! - `redis`: a stopped (`SIGSTOP`) server — a current-thread runtime keeps
//!   running other tasks while an `_async` call is pending, and a changed
//!   writer dropped meanwhile returns at once and is published once, after
//!   the server resumes.

use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, RefProxy, borrow, mut_borrow, mut_borrow_async};
use borrowstore_testkit::conformance::PATIENCE;
use borrowstore_testkit::process::{ChildProc, Target, hex, inspect};
use borrowstore_testkit::{Suite, poll_until, unique_name};

/// Names this suite's stores and directories.
const SUITE: Suite = borrowstore_testkit::suite!("async-stores");

type V = Vec<u64>;

/// The lease of stores whose holders are SIGKILLed.
const SHORT_LEASE: Duration = Duration::from_millis(500);
/// How long a waiter is given to (wrongly) finish before it is released.
const PAUSE: Duration = Duration::from_millis(200);

/// Child processes run this (and only this) test; in the parent it returns
/// at once.
#[test]
fn child_entry() {
    if std::env::var(borrowstore_testkit::process::ROLE_VAR).as_deref() == Ok(waiter::ROLE) {
        waiter::run();
    } else {
        borrowstore_testkit::process::child::entry();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A child that waits: it redeems an owner and takes a borrow of it with
/// `borrow_async` in the background, answering whether it has it yet.
///
/// | command | what the child does |
/// |---|---|
/// | `REDEEM_OWNER <hex>` | redeems an owner ticket; keeps the owner |
/// | `WAIT_BORROW` | starts `borrow_async` on its owner; `OK` at once |
/// | `WAITED` | `OK pending`, `OK got <csv>`, or `ERR <kind> <message>` |
/// | `DROP_WAITED` | drops the borrow it got, then flushes |
/// | `EXIT` | drops everything, flushes, `OK`, and exits |
mod waiter {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};

    use borrowstore::{Error, OwnedProxy, OwnerTicket, RefProxy, Store, borrow_async};

    use borrowstore_testkit::process::child::{csv, kind, say};
    use borrowstore_testkit::process::{URL_VAR, unhex};

    use super::V;

    pub const ROLE: &str = "async-waiter";

    type Slot = Arc<Mutex<Option<Result<RefProxy<V>, Error>>>>;

    pub fn run() {
        let url = std::env::var(URL_VAR).expect("child without a store URL");
        let store = Store::open(&url).unwrap_or_else(|e| panic!("child: open {url}: {e}"));
        let rt = super::runtime();
        say("STARTED");
        let mut owner: Option<Arc<OwnedProxy<V>>> = None;
        let got: Slot = Arc::default();
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let line = line.trim().to_owned();
            let (cmd, arg) = line.split_once(' ').unwrap_or((&line, ""));
            let reply = match cmd {
                "" => continue,
                "REDEEM_OWNER" => unhex(arg)
                    .ok_or_else(|| "hex".to_owned())
                    .and_then(|b| {
                        OwnerTicket::<V>::from_bytes(&b)
                            .and_then(OwnerTicket::redeem)
                            .map_err(|e| format!("{} {e}", kind(&e)))
                    })
                    .map(|o| {
                        owner = Some(Arc::new(o));
                        String::new()
                    }),
                "WAIT_BORROW" => match owner.clone() {
                    Some(o) => {
                        let slot = got.clone();
                        rt.spawn(async move {
                            let r = borrow_async(&o).await;
                            *slot.lock().unwrap() = Some(r);
                        });
                        Ok(String::new())
                    }
                    None => Err("Malformed no owner".to_owned()),
                },
                "WAITED" => match &*got.lock().unwrap() {
                    None => Ok("pending".to_owned()),
                    Some(Ok(r)) => RefProxy::resolve(r)
                        .map(|v| format!("got {}", csv(v)))
                        .map_err(|e| format!("{} {e}", kind(&e))),
                    Some(Err(e)) => Err(format!("{} {e}", kind(e))),
                },
                "DROP_WAITED" => {
                    *got.lock().unwrap() = None;
                    store
                        .flush()
                        .map(|()| String::new())
                        .map_err(|e| format!("{} {e}", kind(&e)))
                }
                "EXIT" => {
                    *got.lock().unwrap() = None;
                    drop(owner.take());
                    let _ = store.flush();
                    say("OK");
                    return;
                }
                other => Err(format!("Malformed unknown command {other:?}")),
            };
            match reply {
                Ok(out) if out.is_empty() => say("OK"),
                Ok(out) => say(&format!("OK {out}")),
                Err(e) => say(&format!("ERR {e}")),
            }
        }
        drop(owner);
        let _ = store.flush();
    }
}

fn log(scenario: &str, what: impl std::fmt::Display) {
    println!("[{scenario}] {what}");
}

/// A `borrow_async` in another process waits for the writer held here, and
/// is woken when it is dropped.
fn borrow_async_in_another_process_waits_for_a_writer_here(t: &Target) {
    let store = t.open();
    let owner = store.owned_proxy(vec![1u64, 2]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut w = mut_borrow(&owner).unwrap();
    let ticket = OwnedProxy::into_ticket(owner).unwrap();
    let mut b = ChildProc::spawn("b-waiter", waiter::ROLE, &t.url, &[]);
    b.ok(&format!(
        "REDEEM_OWNER {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    b.ok("WAIT_BORROW");
    std::thread::sleep(PAUSE);
    assert_eq!(b.ok("WAITED"), "pending", "borrow_async did not wait");
    w.push(3);
    let released = Instant::now();
    drop(w);
    store.flush().unwrap();
    let mut seen = String::new();
    let took = poll_until(PATIENCE, || {
        seen = b.ok("WAITED");
        seen != "pending"
    })
    .unwrap_or_else(|| panic!("the waiter in B was not woken within {PATIENCE:?}"));
    log(
        "borrow_async_cross_process",
        format_args!(
            "woken {took:?} after the poll began ({:?} after the drop)",
            released.elapsed()
        ),
    );
    assert_eq!(seen, "got 1,2,3");
    assert_eq!(inspect(&store, &key).unwrap().readers, 1);
    b.ok("DROP_WAITED");
    b.exit();
    store.flush().unwrap();
    t.assert_empty(&store);
}

/// A `mut_borrow_async` here waits for readers held by two other processes
/// and by this one, and gets in when the last of them is dropped.
fn mut_borrow_async_here_waits_for_readers_in_other_processes(t: &Target) {
    let rt = runtime();
    let store = t.open();
    let owner = std::sync::Arc::new(store.owned_proxy(vec![5u64]).unwrap());
    let key = *OwnedProxy::key(&owner);
    let mut children: Vec<ChildProc> = ["b-reader", "c-reader"]
        .iter()
        .map(|name| {
            let mut c = ChildProc::spawn(name, "interp", &t.url, &[]);
            let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
            c.ok(&format!(
                "REDEEM_BORROW {}",
                hex(&ticket.to_bytes().unwrap())
            ));
            c
        })
        .collect();
    let here = borrow(&owner).unwrap();
    let o = owner.clone();
    let writer = rt.spawn(async move { mut_borrow_async(&o).await.map(drop) });
    std::thread::sleep(PAUSE);
    assert!(
        !writer.is_finished(),
        "mut_borrow_async got in beside 3 readers"
    );
    drop(here);
    for c in &mut children {
        std::thread::sleep(PAUSE);
        assert!(
            !writer.is_finished(),
            "mut_borrow_async got in beside a reader"
        );
        c.ok("DROP_READER");
    }
    let start = Instant::now();
    rt.block_on(async { tokio::time::timeout(PATIENCE, writer).await })
        .expect("the writer was not woken")
        .unwrap()
        .unwrap();
    log(
        "mut_borrow_async_cross_process",
        format_args!(
            "got in {:?} after the last reader was dropped",
            start.elapsed()
        ),
    );
    for mut c in children {
        c.exit();
    }
    let i = inspect(&store, &key).unwrap();
    assert!(i.readers == 0 && !i.writer, "{i:?}");
    drop(std::sync::Arc::try_unwrap(owner).unwrap());
    store.flush().unwrap();
    t.assert_empty(&store);
}

/// A waiter whose holder process is SIGKILLed gets in once the holder's
/// lease runs out.
fn a_waiter_whose_holder_is_killed_gets_in_within_the_lease(t: &Target) {
    let rt = runtime();
    let store = t.open();
    let owner = std::sync::Arc::new(store.owned_proxy(vec![2u64]).unwrap());
    let key = *OwnedProxy::key(&owner);
    let mut b = ChildProc::spawn("b-reader", "interp", &t.url, &[]);
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    let o = owner.clone();
    let writer = rt.spawn(async move { mut_borrow_async(&o).await.map(drop) });
    std::thread::sleep(PAUSE);
    assert!(
        !writer.is_finished(),
        "mut_borrow_async got in beside B's reader"
    );
    let killed = Instant::now();
    b.kill();
    rt.block_on(async { tokio::time::timeout(t.reclaim_deadline(), writer).await })
        .unwrap_or_else(|_| {
            panic!(
                "the waiter was not let in within {:?} of the kill: {:?}",
                t.reclaim_deadline(),
                inspect(&store, &key)
            )
        })
        .unwrap()
        .unwrap();
    let took = killed.elapsed();
    log(
        "killed_holder",
        format_args!(
            "the waiter got in {took:?} after SIGKILL (lease {:?})",
            t.lease
        ),
    );
    let i = inspect(&store, &key).unwrap();
    assert!(i.readers == 0 && !i.writer, "{i:?}");
    drop(std::sync::Arc::try_unwrap(owner).unwrap());
    store.flush().unwrap();
    t.assert_empty(&store);
}

/// One `#[test]` per cross-process scenario, on a fresh target made by
/// `$make` (`fn(&str, Option<Duration>) -> Target`).
macro_rules! cross_process_suite {
    ($make:expr) => {
        #[test]
        fn borrow_async_in_another_process_waits_for_a_writer_here() {
            let t = $make("xp-wait-borrow", None);
            crate::borrow_async_in_another_process_waits_for_a_writer_here(&t);
            t.cleanup();
        }

        #[test]
        fn mut_borrow_async_here_waits_for_readers_in_other_processes() {
            let t = $make("xp-wait-mut", None);
            crate::mut_borrow_async_here_waits_for_readers_in_other_processes(&t);
            t.cleanup();
        }

        #[test]
        fn a_waiter_whose_holder_is_killed_gets_in_within_the_lease() {
            let t = $make("xp-wait-killed", Some(crate::SHORT_LEASE));
            crate::a_waiter_whose_holder_is_killed_gets_in_within_the_lease(&t);
            t.cleanup();
        }
    };
}

mod file {
    mod cross_process {
        use borrowstore_testkit::process::Target;

        fn make(tag: &str, lease: Option<std::time::Duration>) -> Target {
            Target::file(&crate::SUITE, tag, lease)
        }

        cross_process_suite!(make);
    }
}

#[cfg(feature = "redis")]
mod redis_cluster {
    mod cross_process {
        use borrowstore_testkit::process::Target;
        use borrowstore_testkit::redis_cluster;

        fn make(tag: &str, lease: Option<std::time::Duration>) -> Target {
            Target::redis(&redis_cluster::shared().base_url(), tag, lease)
        }

        cross_process_suite!(make);
    }
}

#[cfg(feature = "redis-tls")]
mod redis_tls_cluster {
    mod cross_process {
        use borrowstore_testkit::process::Target;
        use borrowstore_testkit::redis_cluster;

        fn make(tag: &str, lease: Option<std::time::Duration>) -> Target {
            Target::redis(&redis_cluster::shared_tls().base_url(), tag, lease)
        }

        cross_process_suite!(make);
    }
}

#[cfg(feature = "redis")]
mod redis {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use borrowstore::{Error, OwnedProxy, Store, borrow_async, mut_borrow};
    use borrowstore_testkit::redis_server::RedisServer;

    use super::{PATIENCE, V, unique_name};

    mod cross_process {
        use borrowstore_testkit::process::Target;
        use borrowstore_testkit::redis_server;

        fn make(tag: &str, lease: Option<std::time::Duration>) -> Target {
            Target::redis(&redis_server::base_url_for_this_test(), tag, lease)
        }

        cross_process_suite!(make);
    }

    /// While the server is stopped, `_async` calls are pending, and another
    /// task on the same current-thread runtime keeps running.
    #[test]
    fn a_pending_async_call_leaves_its_current_thread_runtime_running() {
        let server = RedisServer::start();
        let store = Store::open(&server.url(&unique_name("stopped"), "timeout_ms=5000")).unwrap();
        let owner = Arc::new(store.owned_proxy(vec![1u64, 2]).unwrap());
        let key = *OwnedProxy::key(&owner);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        server.signal("STOP");
        let (s, o, server) = (store.clone(), owner.clone(), &server);
        rt.block_on(async move {
            let ticks = Arc::new(AtomicU64::new(0));
            let t = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    t.fetch_add(1, Ordering::Relaxed);
                }
            });
            let s2 = s.clone();
            let get = tokio::spawn(async move { s2.get_async::<V>(&key).await });
            let borrowed = tokio::spawn(async move { borrow_async(&o).await.map(|r| r.len()) });
            let created = tokio::spawn(async move { s.owned_proxy_async(7u8).await.map(drop) });
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let ticked = ticks.load(Ordering::Relaxed);
            assert!(
                !get.is_finished() && !borrowed.is_finished() && !created.is_finished(),
                "a call finished while the server was stopped"
            );
            assert!(
                ticked >= 20,
                "the other task ran only {ticked} times in {:?} while calls were pending",
                start.elapsed()
            );
            server.signal("CONT");
            let got = tokio::time::timeout(PATIENCE, get).await;
            assert_eq!(got.unwrap().unwrap().unwrap(), Some(vec![1, 2]));
            let got = tokio::time::timeout(PATIENCE, borrowed).await;
            assert_eq!(got.unwrap().unwrap().unwrap(), 2);
            let got = tokio::time::timeout(PATIENCE, created).await;
            got.unwrap().unwrap().unwrap();
            ticker.abort();
        });
        store.flush().unwrap();
        let i = store.inspect(&key).unwrap().unwrap();
        assert!(i.readers == 0 && !i.writer, "{i:?}");
        drop(Arc::try_unwrap(owner).unwrap());
        store.flush().unwrap();
        assert!(store.keys().unwrap().is_empty());
    }

    /// A changed writer dropped while the server is stopped: `Drop`
    /// returns at once, the next flush reports the failure, and once the
    /// server resumes the change is published exactly once.
    #[test]
    fn a_changed_writer_dropped_while_the_server_is_stopped() {
        let server = RedisServer::start();
        let store = Store::open(&server.url(&unique_name("stopped"), "timeout_ms=300")).unwrap();
        let owner = store.owned_proxy(vec![1u64]).unwrap();
        let key = *OwnedProxy::key(&owner);
        let v0 = store.inspect(&key).unwrap().unwrap().version;
        let mut w = mut_borrow(&owner).unwrap();
        w.push(2);
        server.signal("STOP");
        let start = Instant::now();
        drop(w);
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(100),
            "drop blocked for {took:?}"
        );
        let flushed = store.flush();
        assert!(
            matches!(flushed, Err(Error::Connector { .. })),
            "the flush after the drop should report the failure, got {flushed:?}"
        );
        server.signal("CONT");
        let start = Instant::now();
        while let Err(e) = store.flush() {
            assert!(start.elapsed() < PATIENCE, "still failing: {e}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let i = store.inspect(&key).unwrap().unwrap();
        assert_eq!(i.version, v0 + 1, "published {} times", i.version - v0);
        assert!(!i.writer && i.readers == 0, "{i:?}");
        assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![1, 2]));
        std::thread::sleep(Duration::from_millis(700));
        store.flush().unwrap();
        assert_eq!(store.inspect(&key).unwrap().unwrap().version, v0 + 1);
        drop(owner);
        store.flush().unwrap();
        assert!(store.keys().unwrap().is_empty());
    }
}

/// The warning a blocking form earns on a tokio worker thread: once per
/// store that does I/O, never on a `spawn_blocking` thread or a plain
/// thread, never for a memory store. Warnings are caught by a process-wide
/// `tracing` subscriber that keeps the `store` field of each one.
mod blocking_warning {
    use std::sync::{Arc, Mutex, OnceLock};

    use borrowstore::{Key, Store};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    /// The stores named by the warnings seen so far.
    #[derive(Default)]
    struct Warnings(Mutex<Vec<String>>);

    struct StoreField(Option<String>);

    impl Visit for StoreField {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "store" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }

    impl Subscriber for Warnings {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            *metadata.level() == Level::WARN
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if !event.metadata().target().starts_with("borrowstore") {
                return;
            }
            let mut store = StoreField(None);
            event.record(&mut store);
            if let Some(s) = store.0 {
                self.0.lock().unwrap().push(s);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn warnings() -> &'static Arc<Warnings> {
        static W: OnceLock<Arc<Warnings>> = OnceLock::new();
        W.get_or_init(|| {
            let w = Arc::new(Warnings::default());
            tracing::subscriber::set_global_default(w.clone())
                .expect("no other global subscriber in this test binary");
            w
        })
    }

    fn warned(store: &Store) -> usize {
        let w = warnings().0.lock().unwrap();
        w.iter().filter(|s| s.as_str() == store.name()).count()
    }

    #[test]
    fn a_blocking_form_on_a_worker_thread_warns_once_per_store() {
        warnings();
        let rt = super::runtime();
        let missing = Key::random();

        let file = crate::SUITE.file_store();
        let f = file.clone();
        rt.block_on(async move {
            tokio::spawn(async move {
                for _ in 0..3 {
                    assert!(!f.exists(&missing).unwrap());
                }
            })
            .await
            .unwrap();
        });
        assert_eq!(warned(&file), 1, "a file store's blocking call on a worker");

        let other = crate::SUITE.file_store();
        let o = other.clone();
        rt.block_on(async move {
            tokio::task::spawn_blocking(move || assert!(!o.exists(&missing).unwrap()))
                .await
                .unwrap();
        });
        assert!(!other.exists(&missing).unwrap());
        assert_eq!(
            warned(&other),
            0,
            "spawn_blocking and plain threads are fine"
        );

        let memory = Store::memory(super::unique_name("warn-memory"));
        let m = memory.clone();
        rt.block_on(async move {
            tokio::spawn(async move { assert!(!m.exists(&missing).unwrap()) })
                .await
                .unwrap();
        });
        assert_eq!(warned(&memory), 0, "a memory store never blocks");
    }
}

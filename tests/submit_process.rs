//! Tasks in real worker processes (`submit::remote`): the borrow count is
//! back at zero as soon as the result is returned, a dead worker holds
//! nothing, owners cross exactly once, and a view leaked in the worker is
//! invalid after its task.
//!
//! The workers are this test binary again: the parent re-executes it as
//! `worker_entry --exact --nocapture --test-threads=1` with
//! [`WORKER_VAR`] set; `worker_entry` then serves tasks read from stdin,
//! one per line (`<task> <request hex>`), answering each with one line
//! `@@submit@@ <reply hex>` on stdout. Without the variable `worker_entry`
//! returns at once.
//!
//! Runs on a file store (a fresh directory under cargo's temp dir, default
//! 30 s lease: nothing here waits for a lease), and on a Redis store when
//! `redis-server` is installed.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use borrowstore::submit::Plain;
use borrowstore::submit::remote::{Portable, RemoteCall, serve};
use borrowstore::{Error, OwnedProxy, RefMutProxy, RefProxy, Store, borrow, mut_borrow};
use borrowstore_testkit::process::{hex, unhex};
use borrowstore_testkit::{Suite, borrows, key_of, observed};

type V = Vec<u64>;

const WORKER_VAR: &str = "BORROWSTORE_SUBMIT_WORKER";
/// The URL of the store a worker serves, which it trusts.
const STORE_VAR: &str = "BORROWSTORE_SUBMIT_STORE";
const PREFIX: &str = "@@submit@@ ";
const TIMEOUT: Duration = Duration::from_secs(60);

/// Names this suite's stores and directories; its Redis stores come with an
/// observer, which the checks read through.
const SUITE: Suite = borrowstore_testkit::suite!("submit-process").with_observer();

// ------------------------------------------------------------ the worker

/// A view a task leaked into a global (the "leak" task).
static LEAKED: Mutex<Option<RefProxy<V>>> = Mutex::new(None);

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n{PREFIX}{line}");
    let _ = out.flush();
}

fn readers_now<T: borrowstore::Storable>(r: &RefProxy<T>) -> u32 {
    let i = RefProxy::store(r)
        .inspect(RefProxy::key(r))
        .unwrap()
        .unwrap();
    i.readers
}

/// Runs one task; returns the reply bytes.
fn run_task(task: &str, request: &[u8]) -> Vec<u8> {
    match task {
        // (sum, readers the store showed during the task)
        "sum" => serve(request, |r: RefProxy<V>| {
            (r.iter().sum::<u64>(), readers_now(&r))
        }),
        "push" => serve(request, |(mut w, n): (RefMutProxy<V>, u64)| {
            let store = RefMutProxy::store(&w).clone();
            let key = *RefMutProxy::key(&w);
            w.push(n);
            let writer = store.inspect(&key).unwrap().unwrap().writer;
            drop(w); // publishes under the submitter's writer claim
            writer
        }),
        "make" => serve(request, |r: RefProxy<V>| {
            let doubled: V = r.iter().map(|x| x * 2).collect();
            RefProxy::store(&r).owned_proxy(doubled).unwrap()
        }),
        "consume" => serve(request, |o: OwnedProxy<V>| o.len() as u64),
        "panic" => serve(request, |r: RefProxy<V>| -> u64 {
            panic!("worker task panicked with {} values", r.len())
        }),
        "hang" => serve(request, |_r: RefProxy<V>| {
            say("HANGING");
            std::thread::sleep(Duration::from_secs(3600));
        }),
        "leak" => serve(request, |r: RefProxy<V>| {
            let n = r.len() as u64;
            *LEAKED.lock().unwrap() = Some(r);
            n
        }),
        "read_leaked" => serve(request, |(): ()| {
            let guard = LEAKED.lock().unwrap();
            match guard.as_ref().map(RefProxy::resolve) {
                Some(Err(Error::ClaimLost { .. })) => "ClaimLost".to_owned(),
                Some(Err(e)) => format!("other error: {e}"),
                Some(Ok(v)) => format!("stale read: {v:?}"),
                None => "nothing leaked".to_owned(),
            }
        }),
        other => panic!("unknown task {other}"),
    }
}

/// Child processes run this (and only this) test; in the parent it returns
/// at once.
#[test]
fn worker_entry() {
    if std::env::var_os(WORKER_VAR).is_none() {
        return;
    }
    borrowstore::trust::allow(&std::env::var(STORE_VAR).unwrap()).unwrap();
    say("READY");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some((task, request)) = line.split_once(' ') else {
            continue;
        };
        let reply = run_task(task, &unhex(request).expect("a hex request"));
        say(&hex(&reply));
    }
}

// ------------------------------------------------------------ the parent

/// A worker process; killed and reaped when dropped.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Worker {
    /// A worker for the tasks of `store`.
    fn start(store: &Store) -> Worker {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["worker_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(WORKER_VAR, "1")
            .env(STORE_VAR, store.url())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a worker process");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(PREFIX)
                    && tx.send(line[at + PREFIX.len()..].to_owned()).is_err()
                {
                    break;
                }
            }
        });
        let mut w = Worker {
            child,
            stdin,
            lines,
        };
        assert_eq!(w.next_line().as_deref(), Some("READY"));
        w
    }

    /// The next protocol line; `None` once the worker is gone.
    fn next_line(&mut self) -> Option<String> {
        self.lines.recv_timeout(TIMEOUT).ok()
    }

    fn send(&mut self, task: &str, call: &RemoteCall<impl Portable>) -> bool {
        writeln!(self.stdin, "{task} {}", hex(call.request())).is_ok() && self.stdin.flush().is_ok()
    }

    /// Runs `task` on `args` in the worker: `RemoteCall` end to end.
    fn run<A: Portable, R: Portable>(&mut self, task: &str, args: A) -> borrowstore::Result<R> {
        let call = RemoteCall::<R>::new(args)?;
        if !self.send(task, &call) {
            call.abandon()?;
            panic!("the worker is gone");
        }
        match self.next_line() {
            Some(reply) => call.finish(&unhex(&reply).expect("a hex reply")),
            None => {
                call.abandon()?;
                panic!("the worker is gone");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis store with an observer, or `None` (skipped) when `redis-server`
/// is not installed.
#[cfg(feature = "redis")]
fn redis_store() -> Option<Store> {
    if !borrowstore_testkit::redis_server::installed() {
        eprintln!("redis-server is not installed: skipped");
        return None;
    }
    Some(SUITE.redis_store())
}

// ------------------------------------------------------------ the checks

fn borrow_count_is_zero_as_soon_as_the_result_returns(store: Store) {
    let mut workers = [Worker::start(&store), Worker::start(&store)];
    let owner = store.owned_proxy((1..=100).collect::<V>()).unwrap();
    let key = key_of(&owner);
    assert_eq!(borrows(&store, &key), (0, false));

    for round in 0..4 {
        let w = &mut workers[round % 2];
        let (sum, during): (u64, u32) = w.run("sum", borrow(&owner).unwrap()).unwrap();
        assert_eq!(sum, 5050);
        assert_eq!(during, 1, "the worker reads under the submitter's borrow");
        assert_eq!(borrows(&store, &key), (0, false), "right after the result");
    }

    // Two borrows at once, one in each worker's request.
    let (a, b) = (borrow(&owner).unwrap(), borrow(&owner).unwrap());
    let (s1, during1): (u64, u32) = workers[0].run("sum", a).unwrap();
    assert_eq!(borrows(&store, &key), (1, false));
    let (s2, during2): (u64, u32) = workers[1].run("sum", b).unwrap();
    assert_eq!((s1, s2, during1, during2), (5050, 5050, 2, 1));
    assert_eq!(borrows(&store, &key), (0, false));

    // A mutable borrow: the worker publishes under the submitter's claim.
    let version = observed(&store).inspect(&key).unwrap().unwrap().version;
    let writer_during: bool = workers[0]
        .run("push", (mut_borrow(&owner).unwrap(), 101u64))
        .unwrap();
    assert!(writer_during);
    assert_eq!(borrows(&store, &key), (0, false));
    let now = observed(&store).inspect(&key).unwrap().unwrap().version;
    assert_eq!(now, version + 1);
    assert_eq!(borrow(&owner).unwrap().last(), Some(&101));

    // An owner made in the worker moves to the submitter, exactly once.
    let made: OwnedProxy<V> = workers[1].run("make", borrow(&owner).unwrap()).unwrap();
    assert_eq!(made.len(), 101);
    assert_eq!(made[0], 2);
    assert_eq!(borrows(&store, &key), (0, false));
    let made_key = key_of(&made);
    assert!(store.inspect(&made_key).unwrap().unwrap().owner);
    // …and back into a worker, which drops it: evicted when the result returns.
    let n: u64 = workers[0].run("consume", made).unwrap();
    assert_eq!(n, 101);
    assert!(!observed(&store).exists(&made_key).unwrap());

    // A panicking task: reported, and the borrow has ended.
    let r: borrowstore::Result<u64> = workers[1].run("panic", borrow(&owner).unwrap());
    match r {
        Err(Error::TaskPanicked { message }) => assert!(message.contains("101 values")),
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
    assert_eq!(borrows(&store, &key), (0, false));

    // Plain arguments and containers cross too.
    let (sum, _): (u64, u32) = workers[0].run("sum", borrow(&owner).unwrap()).unwrap();
    assert_eq!(sum, 5050 + 101);
    let _ = Plain(0u8);

    drop(owner);
    store.flush().unwrap();
    assert!(observed(&store).keys().unwrap().is_empty());
}

fn dead_worker_holds_nothing(store: Store) {
    let mut worker = Worker::start(&store);
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = key_of(&owner);
    let call = RemoteCall::<()>::new(borrow(&owner).unwrap()).unwrap();
    assert!(worker.send("hang", &call));
    assert_eq!(worker.next_line().as_deref(), Some("HANGING"));
    assert_eq!(borrows(&store, &key), (1, false));
    let killed = Instant::now();
    worker.child.kill().unwrap();
    worker.child.wait().unwrap();
    assert_eq!(worker.next_line(), None, "the worker is gone");
    call.abandon().unwrap();
    // At once: the worker never held the borrow, so there is no lease to
    // wait out (the store's lease is 30 s).
    assert_eq!(borrows(&store, &key), (0, false));
    assert!(killed.elapsed() < Duration::from_secs(10));
    assert!(mut_borrow(&owner).is_ok());

    // An owner sent to a worker that died before redeeming it comes back to
    // nobody: `abandon` cancels the ticket, and the object is evicted.
    let other = store.owned_proxy(vec![9u64]).unwrap();
    let other_key = key_of(&other);
    let call = RemoteCall::<u64>::new(other).unwrap();
    call.abandon().unwrap();
    assert!(!observed(&store).exists(&other_key).unwrap());
}

fn leaked_view_is_invalid_after_the_task(store: Store) {
    let mut worker = Worker::start(&store);
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let key = key_of(&owner);
    let n: u64 = worker.run("leak", borrow(&owner).unwrap()).unwrap();
    assert_eq!(n, 3);
    assert_eq!(borrows(&store, &key), (0, false));
    // Someone changes the object; the leaked view must not read at all.
    let mut w = mut_borrow(&owner).unwrap();
    w.push(4);
    drop(w);
    let seen: String = worker.run("read_leaked", ()).unwrap();
    assert_eq!(seen, "ClaimLost");
}

#[test]
fn file_borrow_count_is_zero_as_soon_as_the_result_returns() {
    borrow_count_is_zero_as_soon_as_the_result_returns(SUITE.file_store());
}

#[test]
fn file_dead_worker_holds_nothing() {
    dead_worker_holds_nothing(SUITE.file_store());
}

#[test]
fn file_leaked_view_is_invalid_after_the_task() {
    leaked_view_is_invalid_after_the_task(SUITE.file_store());
}

#[cfg(feature = "redis")]
#[test]
fn redis_borrow_count_is_zero_as_soon_as_the_result_returns() {
    if let Some(store) = redis_store() {
        borrow_count_is_zero_as_soon_as_the_result_returns(store);
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_dead_worker_holds_nothing() {
    if let Some(store) = redis_store() {
        dead_worker_holds_nothing(store);
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_leaked_view_is_invalid_after_the_task() {
    if let Some(store) = redis_store() {
        leaked_view_is_invalid_after_the_task(store);
    }
}

//! Redis Cluster failover under load: while several processes borrow,
//! publish, release and pass borrows to each other as tickets, every
//! primary of a six-node cluster is failed over in turn (`CLUSTER
//! FAILOVER` sent to its replica). Afterwards:
//!
//! - no two writers ever overlapped, and no writer published while a
//!   reader held the object (each writer checks that the published value
//!   is the one it acquired, each reader that it does not change while it
//!   holds it; each object's counter equals the writes that succeeded, plus
//!   at most those whose publish failed);
//! - no ticket was redeemed twice (each is sent to two other processes,
//!   which race to redeem it);
//! - no release was lost: once every process has dropped its borrows, no
//!   object has a reader or a writer; once the owners are dropped, no key
//!   of the namespace is left on any node (but the records of redeemed
//!   tickets, which expire by themselves);
//! - every error happened within a failover window.
//!
//! The worker processes are this test binary started again (see
//! `borrowstore_testkit::process`), playing the role [`worker::ROLE`].
//!
//! Also here: `examples/multi_process.rs` run on a cluster.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use borrowstore_testkit::process::ChildProc;
use borrowstore_testkit::redis_cluster::RedisCluster;
use borrowstore_testkit::unique_name;

/// Worker processes.
const WORKERS: usize = 3;
/// The operation timeout of every store: an error must come within it.
const TIMEOUT_MS: u64 = 3000;
/// The lease of every store.
const LEASE_MS: u64 = 3000;
/// How long a worker keeps going before the first failover, and between
/// failovers.
const CALM: Duration = Duration::from_millis(700);

/// Child processes run this (and only this) test; in the parent it returns
/// at once.
#[test]
fn child_entry() {
    if std::env::var(borrowstore_testkit::process::ROLE_VAR).as_deref() == Ok(worker::ROLE) {
        worker::run();
    }
}

/// Milliseconds since the Unix epoch (every process of the test reads the
/// same clock).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A worker: owns a few objects, and until told to stop runs writers on
/// them, lends borrows of them as tickets to two other workers at once,
/// and redeems the tickets others lend it.
///
/// Commands (stdin), each answered with `OK` after its report lines:
///
/// | command | what the worker does |
/// |---|---|
/// | `STOP_LENDING` | lends no more tickets |
/// | `DRAIN` | stops its writers, redeems what is left in its inbox, drops every borrow, flushes |
/// | `CHECK` | reports its objects (`OBJECT`), errors (`ERROR`), tickets (`TICKET`), violations (`VIOLATION`), drops its owners, flushes, closes the store (waiting for its I/O thread to end), exits |
mod worker {
    use std::io::BufRead;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use borrowstore::{
        BorrowTicket, Error, OwnedProxy, RefProxy, Store, borrow, mut_borrow_timeout, update,
    };
    use borrowstore_testkit::poll_until;
    use borrowstore_testkit::process::child::say;
    use borrowstore_testkit::process::{URL_VAR, hex, unhex};

    use super::now_ms;

    pub const ROLE: &str = "failover-worker";
    /// This worker's number, and how many there are.
    pub const ID_VAR: &str = "BORROWSTORE_FAILOVER_ID";
    pub const COUNT_VAR: &str = "BORROWSTORE_FAILOVER_WORKERS";
    /// The directory of the workers' inboxes (`inbox-<id>/`).
    pub const DIR_VAR: &str = "BORROWSTORE_FAILOVER_DIR";

    /// Objects each worker owns.
    const OBJECTS: usize = 4;

    type V = Vec<u64>;

    #[derive(Default)]
    struct Log {
        errors: Mutex<Vec<(u64, String)>>,
        violations: Mutex<Vec<String>>,
        tickets: Mutex<Vec<(String, &'static str)>>,
    }

    impl Log {
        fn error(&self, what: &str, e: &Error) {
            let line = format!("{what}: {e}").replace('\n', " ");
            self.errors.lock().unwrap().push((now_ms(), line));
        }
        fn violation(&self, v: String) {
            self.violations.lock().unwrap().push(v);
        }
    }

    struct Object {
        owner: OwnedProxy<V>,
        /// Writes whose publish succeeded, and those whose publish failed
        /// (applied or not).
        written: AtomicU64,
        uncertain: AtomicU64,
    }

    fn inbox(dir: &Path, id: usize) -> PathBuf {
        dir.join(format!("inbox-{id}"))
    }

    pub fn run() {
        let url = std::env::var(URL_VAR).expect("child without a store URL");
        let id: usize = std::env::var(ID_VAR).unwrap().parse().unwrap();
        let count: usize = std::env::var(COUNT_VAR).unwrap().parse().unwrap();
        let dir = PathBuf::from(std::env::var(DIR_VAR).unwrap());
        let store = Store::open(&url).unwrap_or_else(|e| panic!("child: open {url}: {e}"));
        let objects: Arc<Vec<Object>> = Arc::new(
            (0..OBJECTS)
                .map(|_| Object {
                    owner: store.owned_proxy(vec![0u64]).expect("owned_proxy"),
                    written: AtomicU64::new(0),
                    uncertain: AtomicU64::new(0),
                })
                .collect(),
        );
        let log = Arc::new(Log::default());
        let writing = Arc::new(AtomicBool::new(true));
        let lending = Arc::new(AtomicBool::new(true));
        let redeeming = Arc::new(AtomicBool::new(true));
        let lent = Arc::new(AtomicU64::new(0));
        say("STARTED");

        let mut threads = Vec::new();
        for w in 0..2 {
            let (objects, log, writing, store) =
                (objects.clone(), log.clone(), writing.clone(), store.clone());
            threads.push(std::thread::spawn(move || {
                let mut i = w;
                while writing.load(Ordering::Relaxed) {
                    i = (i + 1) % objects.len();
                    write_once(&store, &objects[i], &log);
                }
            }));
        }
        let lender = {
            let (objects, log, lending, lent, dir) = (
                objects.clone(),
                log.clone(),
                lending.clone(),
                lent.clone(),
                dir.clone(),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while lending.load(Ordering::Relaxed) {
                    i = (i + 1) % objects.len();
                    let n = lent.fetch_add(1, Ordering::Relaxed);
                    lend(&objects[i], &log, &dir, id, count, n);
                    std::thread::sleep(Duration::from_millis(15));
                }
            })
        };
        let redeemer = {
            let (log, redeeming, dir, store) =
                (log.clone(), redeeming.clone(), dir.clone(), store.clone());
            std::thread::spawn(move || {
                loop {
                    let more = redeeming.load(Ordering::Relaxed);
                    let n = redeem_inbox(&store, &inbox(&dir, id), &log);
                    if !more && n == 0 {
                        return;
                    }
                    if n == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        };
        let mut lender = Some(lender);
        let mut redeemer = Some(redeemer);

        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "" => continue,
                "STOP_LENDING" => {
                    lending.store(false, Ordering::Relaxed);
                    if let Some(t) = lender.take() {
                        t.join().unwrap();
                    }
                }
                "DRAIN" => {
                    writing.store(false, Ordering::Relaxed);
                    for t in threads.drain(..) {
                        t.join().unwrap();
                    }
                    redeeming.store(false, Ordering::Relaxed);
                    if let Some(t) = redeemer.take() {
                        t.join().unwrap();
                    }
                    if let Err(e) = store.flush() {
                        log.error("flush", &e);
                    }
                }
                "CHECK" => {
                    for (i, o) in objects.iter().enumerate() {
                        let key = *OwnedProxy::key(&o.owner);
                        let state = store.inspect(&key);
                        let value = store.get::<V>(&key);
                        match (state, value) {
                            (Ok(Some(s)), Ok(Some(v))) => say(&format!(
                                "OBJECT {i} readers={} writer={} counter={} written={} uncertain={}",
                                s.readers,
                                s.writer,
                                v[0],
                                o.written.load(Ordering::Relaxed),
                                o.uncertain.load(Ordering::Relaxed),
                            )),
                            (s, v) => say(&format!("VIOLATION object {i}: {s:?} {v:?}")),
                        }
                    }
                    for (at, e) in log.errors.lock().unwrap().iter() {
                        say(&format!("ERROR {at} {e}"));
                    }
                    for v in log.violations.lock().unwrap().iter() {
                        say(&format!("VIOLATION {v}"));
                    }
                    for (t, outcome) in log.tickets.lock().unwrap().iter() {
                        say(&format!("TICKET {t} {outcome}"));
                    }
                    drop(
                        Arc::try_unwrap(objects)
                            .ok()
                            .expect("the threads have ended"),
                    );
                    if let Err(e) = store.flush() {
                        return say(&format!("ERR flush {e}"));
                    }
                    // Close the store: its connection removes its process
                    // record, and its I/O thread ends once that is sent.
                    Store::unregister(store.name());
                    drop(store);
                    let closed = poll_until(Duration::from_secs(10), || {
                        !threads_named("borrowstore-red")
                    });
                    match closed {
                        Some(_) => say("OK"),
                        None => say("ERR close the store's I/O thread is still running"),
                    }
                    return;
                }
                other => panic!("worker: unknown command {other:?}"),
            }
            say("OK");
        }
    }

    /// Whether a thread of this process has a name starting with `prefix`
    /// (the kernel keeps 15 bytes of it).
    fn threads_named(prefix: &str) -> bool {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .any(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|name| name.trim().starts_with(prefix))
            })
    }

    /// One write: takes the writer (waiting up to 1 s), checks that the
    /// published value is the one it got, adds 1 and publishes.
    fn write_once(store: &Store, o: &Object, log: &Log) {
        let key = *OwnedProxy::key(&o.owner);
        let mut w = match mut_borrow_timeout(&o.owner, Duration::from_secs(1)) {
            Ok(w) => w,
            Err(Error::Timeout { .. }) => return,
            Err(e) => return log.error("mut_borrow", &e),
        };
        let got = w[0];
        match store.get::<V>(&key) {
            Ok(Some(v)) if v[0] == got => {}
            Ok(v) => log.violation(format!("{key}: a writer got {got} but {v:?} is published")),
            Err(e) => log.error("get under a writer", &e),
        }
        w[0] = got + 1;
        match update(&mut w) {
            Ok(()) => {
                o.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                o.uncertain.fetch_add(1, Ordering::Relaxed);
                log.error("update", &e);
            }
        }
    }

    /// Lends a borrow of `o` as a ticket to the two next workers.
    fn lend(o: &Object, log: &Log, dir: &Path, id: usize, count: usize, n: u64) {
        let r = match borrow(&o.owner) {
            Ok(r) => r,
            // A writer of this worker holds it.
            Err(Error::AlreadyMutablyBorrowed { .. }) => return,
            Err(e) => return log.error("borrow", &e),
        };
        let ticket = match RefProxy::into_ticket(r) {
            Ok(t) => t,
            Err(e) => return log.error("into_ticket", &e),
        };
        let bytes = match ticket.to_bytes() {
            Ok(b) => b,
            Err(e) => return log.error("ticket to_bytes", &e),
        };
        let name = format!("w{id}-t{n}");
        for to in [(id + 1) % count, (id + 2) % count] {
            let tmp = dir.join(format!("{name}-{to}.tmp"));
            std::fs::write(&tmp, hex(&bytes)).unwrap();
            std::fs::rename(&tmp, inbox(dir, to).join(&name)).unwrap();
        }
    }

    /// Redeems every ticket in `inbox`, holds each borrow a little while
    /// checking that the published value does not change, and drops it.
    /// Returns how many tickets it found.
    fn redeem_inbox(store: &Store, inbox: &Path, log: &Log) -> usize {
        let Ok(entries) = std::fs::read_dir(inbox) else {
            return 0;
        };
        let mut n = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let _ = std::fs::remove_file(&path);
            n += 1;
            let bytes = unhex(text.trim()).expect("ticket hex");
            let outcome = match BorrowTicket::<V>::from_bytes(&bytes).and_then(|t| t.redeem()) {
                Ok(r) => {
                    hold(store, &r, log);
                    drop(r);
                    "redeemed"
                }
                Err(Error::TicketRedeemed { .. }) => "refused",
                Err(e) => {
                    log.error("redeem", &e);
                    "failed"
                }
            };
            log.tickets.lock().unwrap().push((name, outcome));
        }
        n
    }

    fn hold(store: &Store, r: &RefProxy<V>, log: &Log) {
        let key = *RefProxy::key(r);
        let got = match RefProxy::resolve(r) {
            Ok(v) => v[0],
            Err(e) => return log.error("resolve", &e),
        };
        for _ in 0..2 {
            match store.get::<V>(&key) {
                Ok(Some(v)) if v[0] == got => {}
                Ok(v) => log.violation(format!("{key}: a reader got {got} but {v:?} is published")),
                Err(e) => log.error("get under a reader", &e),
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }
}

/// One failover: `CLUSTER FAILOVER` on a replica of the primary at
/// `primary`, and the wait until the replica is the primary and every node
/// says `cluster_state:ok`. Returns the window (ms since the epoch).
fn fail_over(cluster: &RedisCluster, primary: u16) -> (u64, u64) {
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|&r| cluster.primary_of(r) == Some(primary))
        .unwrap_or_else(|| panic!("no replica follows {primary}"));
    let start = now_ms();
    let reply = cluster.cli(replica, &["CLUSTER", "FAILOVER"]);
    assert!(
        reply.contains("OK"),
        "CLUSTER FAILOVER on {replica}: {reply}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cluster.primaries().contains(&replica) {
        assert!(
            Instant::now() < deadline,
            "{replica} did not become a primary"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster
        .wait_ready(Duration::from_secs(20))
        .expect("the cluster settles after a failover");
    (start, now_ms())
}

#[test]
fn failover_of_every_primary_under_load_loses_nothing() {
    let cluster = RedisCluster::start();
    let ns = unique_name("failover");
    let url = cluster.url(&ns, &format!("timeout_ms={TIMEOUT_MS}&lease_ms={LEASE_MS}"));
    let dir = std::env::temp_dir().join(&ns);
    for i in 0..WORKERS {
        std::fs::create_dir_all(dir.join(format!("inbox-{i}"))).unwrap();
    }
    let dir_text = dir.display().to_string();
    let count = WORKERS.to_string();
    let mut workers: Vec<ChildProc> = (0..WORKERS)
        .map(|i| {
            let id = i.to_string();
            ChildProc::spawn(
                &format!("worker-{i}"),
                worker::ROLE,
                &url,
                &[
                    (worker::ID_VAR, id.as_str()),
                    (worker::COUNT_VAR, count.as_str()),
                    (worker::DIR_VAR, dir_text.as_str()),
                ],
            )
        })
        .collect();

    std::thread::sleep(CALM);
    let mut windows = Vec::new();
    for primary in cluster.primaries() {
        windows.push(fail_over(&cluster, primary));
        std::thread::sleep(CALM);
    }

    let all = |workers: &mut Vec<ChildProc>, cmd: &str| -> Vec<Vec<String>> {
        for w in workers.iter_mut() {
            w.send(cmd);
        }
        workers
            .iter_mut()
            .map(|w| {
                let mut lines = Vec::new();
                loop {
                    let l = w.line(Duration::from_secs(60));
                    if l == "OK" {
                        return lines;
                    }
                    assert!(!l.starts_with("ERR "), "{}: {cmd}: {l}", w.name());
                    lines.push(l);
                }
            })
            .collect()
    };
    all(&mut workers, "STOP_LENDING");
    all(&mut workers, "DRAIN");
    let reports = all(&mut workers, "CHECK");
    for w in &mut workers {
        assert!(w.wait_exit(Duration::from_secs(30)).success());
    }

    let grace = TIMEOUT_MS + 500;
    let in_window = |at: u64| {
        windows
            .iter()
            .any(|&(s, e)| at + 100 >= s && at <= e + grace)
    };
    let mut tickets: HashMap<String, Vec<String>> = HashMap::new();
    let (mut writes, mut errors) = (0u64, 0usize);
    for (i, lines) in reports.iter().enumerate() {
        for l in lines {
            let (kind, rest) = l.split_once(' ').unwrap_or((l, ""));
            match kind {
                "OBJECT" => {
                    let field = |name: &str| -> String {
                        rest.split(' ')
                            .find_map(|f| f.strip_prefix(&format!("{name}=")))
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let n = |name: &str| field(name).parse::<u64>().unwrap();
                    assert!(
                        n("readers") == 0 && field("writer") == "false",
                        "worker {i}: a release was lost: {l}"
                    );
                    let (counter, written, uncertain) =
                        (n("counter"), n("written"), n("uncertain"));
                    assert!(
                        written <= counter && counter <= written + uncertain,
                        "worker {i}: writes overlapped or were lost: {l}"
                    );
                    writes += written;
                }
                "ERROR" => {
                    errors += 1;
                    let (at, e) = rest.split_once(' ').unwrap();
                    let at: u64 = at.parse().unwrap();
                    assert!(
                        in_window(at),
                        "worker {i}: an error outside the failover windows {windows:?}: {at} {e}"
                    );
                }
                "VIOLATION" => panic!("worker {i}: {rest}"),
                "TICKET" => {
                    let (name, outcome) = rest.split_once(' ').unwrap();
                    tickets
                        .entry(name.to_owned())
                        .or_default()
                        .push(outcome.to_owned());
                }
                _ => panic!("worker {i}: unexpected line {l:?}"),
            }
        }
    }
    for (name, outcomes) in &tickets {
        let redeemed = outcomes.iter().filter(|o| *o == "redeemed").count();
        assert!(
            redeemed <= 1,
            "ticket {name} was redeemed twice: {outcomes:?}"
        );
        assert!(
            redeemed == 1 || outcomes.iter().any(|o| o == "failed"),
            "ticket {name} was never redeemed: {outcomes:?}"
        );
    }
    eprintln!(
        "failover: {} failovers, {writes} writes, {} tickets, {errors} errors in the windows {windows:?}",
        windows.len(),
        tickets.len()
    );
    assert_eq!(windows.len(), 3, "every primary failed over");
    assert!(
        writes > 50 && tickets.len() > 50,
        "too little load: {writes} writes, {} tickets",
        tickets.len()
    );

    // No key of the namespace on any node (the workers have closed their
    // stores: their process records are gone too), but the records of
    // redeemed tickets (`:d:`), which expire by themselves.
    for &port in cluster.ports() {
        let left = cluster.cli(port, &["--scan", "--pattern", &format!("{ns}:*")]);
        for key in left.lines().map(str::trim).filter(|k| !k.is_empty()) {
            assert!(key.contains("}:d:"), "node {port} keeps {key}");
            let ttl = cluster.cli(port, &["-c", "PTTL", key]);
            let ttl: i64 = ttl.trim().parse().unwrap_or(-3);
            assert!(ttl > 0, "node {port} keeps {key} for good ({ttl})");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `examples/multi_process.rs -- --redis <cluster URL>` runs to its end on
/// a cluster (the example checks every step itself and fails otherwise).
#[test]
fn the_multi_process_example_runs_on_a_cluster() {
    let cluster = borrowstore_testkit::redis_cluster::shared();
    let url = cluster.url(&unique_name("example"), "lease_ms=1500");
    let example = borrowstore_testkit::process::example_binary("multi_process");
    let out = std::process::Command::new(&example)
        .args(["--redis", &url])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("Done. Objects left in the store: 0."),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

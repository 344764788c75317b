//! Jobs that borrow one object, run by apalis workers in other processes —
//! one of which is killed mid-run (feature `apalis`).
//!
//! ```text
//! cargo run --release --features apalis --example apalis_jobs      # a private redis-server
//! cargo run --release --features apalis --example apalis_jobs -- --redis redis://127.0.0.1:6379/0
//! ```
//!
//! Without `--redis` the program starts a `redis-server` of its own (it must
//! be on the `PATH`) on a free loopback port, with no persistence, and stops
//! it at the end. With `--redis URL` it uses that server (a single server:
//! this example does not name its queue for a cluster) in a namespace and a
//! queue of its own, and removes the queue's keys at the end (the store's
//! namespace keeps only records that expire by themselves: those of
//! redeemed tickets, for a minute, and its table of processes).
//!
//! The producer owns a large object and submits 100 apalis-redis jobs, each
//! carrying a borrow of it (a `RefProxy`) and the number of the slice it
//! sums. The borrows belong to the jobs, not to the producer: a job holds
//! its borrow while it waits in the queue, while it runs on a worker, and —
//! when that worker is killed — until another worker has run it again; the
//! borrow ends with the job's final outcome. The workers are this same
//! program started again with `worker …`; each runs an apalis worker with
//! `JobBorrowsLayer`. After every step the producer checks what the store
//! and the queue record, and exits non-zero if anything is not as expected.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error as StdError;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use apalis_core::backend::WaitForCompletion;
use apalis_core::error::BoxDynError;
use apalis_core::task::status::Status;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{Config, RedisStorage};
use borrowstore::submit::apalis::{
    APALIS_QUEUES_KEY, Job, JobBorrowsLayer, JobHandle, submit_job_for,
};
use borrowstore::{Error, Key, OwnedProxy, RefProxy, Store, borrow_async, mut_borrow};
use tower::limit::ConcurrencyLimitLayer;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A job's arguments: the number of the slice it sums, and a borrow of the
/// object.
type Args = (u32, RefProxy<Vec<u64>>);
/// The apalis-redis queue of those jobs.
type Queue = RedisStorage<Job<Args>>;

/// How many jobs the producer submits.
const JOBS: u32 = 100;
/// The object: this many `u64`s (8 MiB).
const OBJECT_LEN: usize = 1 << 20;
/// How many worker processes.
const WORKERS: usize = 2;
/// How many jobs each worker runs at a time.
const PER_WORKER: usize = 1;
/// How long a job takes, besides summing its slice.
const JOB_TIME: Duration = Duration::from_millis(100);
/// Once this many jobs have finished, the first worker is told to hold
/// the next job it starts, and is killed while it holds it.
const KILL_AFTER: usize = 25;
/// How often a worker reports to apalis-redis that it is alive.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How many heartbeats a worker may miss before apalis-redis re-queues its
/// jobs.
const MISSED_HEARTBEATS: usize = 2;
/// How long a job's borrow lasts while no worker renews it (queued, or
/// after its worker died): long enough for every wait here, short enough
/// that an interrupted run leaves nothing behind for long.
const JOB_LEASE: Duration = Duration::from_secs(60);
/// The producer's lease on the store (its own claims, renewed while it runs).
const STORE_LEASE_MS: u64 = 5000;
/// How long any one wait may take.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        return match worker(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("ERROR {e}");
                ExitCode::FAILURE
            }
        };
    }

    let (server, redis_url) = match args.as_slice() {
        [] => match RedisServer::start() {
            Ok(s) => {
                let url = s.url();
                (Some(s), url)
            }
            Err(e) => {
                eprintln!(
                    "error: cannot start a redis-server: {e}\nhint: install redis-server, or \
                     pass --redis redis://host:port/db to use a running one."
                );
                return ExitCode::FAILURE;
            }
        },
        [flag, url] if flag == "--redis" => (None, url.clone()),
        _ => {
            eprintln!("usage: apalis_jobs [--redis redis://host:port/db]");
            return ExitCode::from(2);
        }
    };

    let result = producer(&redis_url, server.as_ref());
    drop(server);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The producer
// ---------------------------------------------------------------------------

/// A name no other run uses: `<prefix>-<pid>-<time>`.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// The apalis-redis configuration of the queue, for the producer and the
/// workers alike: short heartbeats, so that a dead worker's jobs are
/// re-queued within seconds (the default is 30 s × 2); and a worker takes
/// one job at a time from the queue (the default is 10): apalis-core 1.0
/// sends a worker's outcomes to Redis only once it has started every job
/// of the batch it took, and a killed worker's jobs whose outcomes it had
/// not sent are delivered again (and run again, under the same borrows),
/// so with larger batches a killed worker leaves more jobs to run twice.
fn queue_config(queue: &str) -> Config {
    Config::default()
        .queue(queue)
        .heartbeat_interval(HEARTBEAT)
        .missed_heartbeats(MISSED_HEARTBEATS)
        .batch_size(1)
}

/// The part of the object that job `i` sums.
fn slice_of(i: u32, len: usize) -> std::ops::Range<usize> {
    let (i, jobs) = (i as usize, JOBS as usize);
    i * len / jobs..(i + 1) * len / jobs
}

fn producer(redis_url: &str, server: Option<&RedisServer>) -> Result<(), BoxError> {
    let started = Instant::now();
    match server {
        Some(s) => println!(
            "borrowstore jobs on apalis workers — a private redis-server (pid {}) at {redis_url}\n",
            s.pid()
        ),
        None => println!("borrowstore jobs on apalis workers — redis {redis_url}\n"),
    }
    let rt = tokio::runtime::Runtime::new()?;

    // 1. The object.
    let join = if redis_url.contains('?') { '&' } else { '?' };
    let store_url = format!(
        "{redis_url}{join}ns={}&lease_ms={STORE_LEASE_MS}",
        unique("apalis-jobs")
    );
    let store = Store::open(&store_url)?;
    let object: Vec<u64> = (0..OBJECT_LEN as u64).collect();
    let total: u64 = object.iter().sum();
    let owner: OwnedProxy<Vec<u64>> = store.owned_proxy(object)?;
    let key = *OwnedProxy::key(&owner);
    println!(
        "1. The producer (pid {}) opens the store {store_url}\n   and owns an object in it: \
         {OBJECT_LEN} u64s ({} MiB), whose sum is {total}.",
        std::process::id(),
        (OBJECT_LEN * 8) >> 20
    );
    let info = show(&store, &key)?;
    check(info.owner && info.readers == 0, "one owner, no reader")?;

    // 2. The jobs.
    let queue_name = unique("apalis-jobs");
    println!(
        "\n2. It submits {JOBS} jobs to the apalis-redis queue {queue_name:?}; job i carries \
         a borrow of the object (a RefProxy) and sums its i-th hundredth."
    );
    let mut queue: Queue = rt.block_on(async {
        let conn = apalis_redis::connect(redis_url).await?;
        Ok::<_, BoxError>(RedisStorage::new(conn).with_config(queue_config(&queue_name)))
    })?;
    let mut jobs: Vec<JobHandle<Args>> = rt.block_on(async {
        let mut jobs = Vec::new();
        for i in 0..JOBS {
            let r = borrow_async(&owner).await?;
            jobs.push(submit_job_for(&mut queue, (i, r), JOB_LEASE).await?);
        }
        Ok::<_, BoxError>(jobs)
    })?;
    store.flush()?;
    println!(
        "   The producer keeps none of those borrows: each was handed over to its job. \
         The store counts them all:"
    );
    let info = show(&store, &key)?;
    check(info.readers == JOBS, "one reader per queued job")?;
    match mut_borrow(&owner) {
        Err(e @ Error::AlreadyBorrowed { .. }) => {
            println!("   The producer's mutable borrow is refused meanwhile: {e}");
        }
        Ok(_) => return Err("mut_borrow succeeded while the jobs held borrows".into()),
        Err(e) => return Err(e.into()),
    }

    // 3. The workers.
    println!(
        "\n3. {WORKERS} worker processes (this program with `worker`) run the jobs, \
         {PER_WORKER} at a time each, {} ms per job:",
        JOB_TIME.as_millis()
    );
    let (tx, events) = mpsc::channel();
    let mut workers = Vec::new();
    for n in 0..WORKERS {
        workers.push(Worker::spawn(
            n,
            &format!("worker-{}", n + 1),
            &[redis_url, &store_url, &queue_name],
            tx.clone(),
        )?);
    }
    drop(tx);
    let mut log = Log::new(WORKERS);
    let deadline = Instant::now() + TIMEOUT;
    let mut told = false;
    loop {
        let event = log.next(&events, &workers, deadline)?;
        if !told && log.finished() >= KILL_AFTER {
            // So that the kill comes mid-job, however busy the machine.
            workers[0].hold()?;
            told = true;
        }
        if event == Some((0, "HELD")) {
            // 4. A worker is killed while it runs a job.
            workers[0].kill();
            break;
        }
    }
    let finished = (log.ran[0].len(), log.ran[1].len());
    log.drain(0, &events, &workers)?;
    let interrupted = log.running(0);
    println!(
        "   {} jobs have finished ({} by worker-1, {} by worker-2). The producer tells \
         worker-1 to hold the next job it starts, so that the kill lands mid-job.",
        finished.0 + finished.1,
        finished.0,
        finished.1
    );
    println!(
        "\n4. worker-1 is killed (SIGKILL) as it runs job(s) {interrupted:?}: no destructor \
         runs, and it never tells apalis-redis that the job is over."
    );
    let info = show(&store, &key)?;
    check(interrupted.len() == 1, "worker-1 was killed mid-job")?;
    check(
        info.readers as usize >= interrupted.len(),
        "the interrupted jobs keep their borrows",
    )?;
    println!(
        "   The job(s) it was running keep their borrows. apalis-redis re-queues every job \
         the dead worker had taken once it has missed {MISSED_HEARTBEATS} heartbeats \
         ({} s each), and worker-2 runs them again — under the same borrows. (Nothing \
         restarts worker-1: one surviving worker is enough.)",
        HEARTBEAT.as_secs()
    );

    // 5. Every job done.
    println!("\n5. The producer waits for apalis-redis to record all {JOBS} jobs as done:");
    let deadline = Instant::now() + 2 * TIMEOUT;
    let mut last_report = Instant::now();
    loop {
        log.poll(&events, &workers)?;
        let results = rt.block_on(WaitForCompletion::<u64>::check_status(
            &mut queue,
            jobs.iter().map(|j| j.id().clone()),
        ))?;
        let done = results
            .iter()
            .filter(|r| *r.status() == Status::Done)
            .count();
        if let Some(r) = results.iter().find(|r| {
            !matches!(
                r.status(),
                Status::Done | Status::Pending | Status::Queued | Status::Running
            )
        }) {
            return Err(format!(
                "job {} ended {} (attempt {}): {:?}",
                r.task_id(),
                r.status(),
                r.attempt,
                r.result
            )
            .into());
        }
        if done == jobs.len() {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let readers = store.inspect(&key)?.map_or(0, |i| i.readers);
            println!("   … {done}/{JOBS} done; the store counts {readers} borrow(s)");
        }
        if Instant::now() > deadline {
            return Err(format!(
                "only {done} of {JOBS} jobs were done after {:?}",
                2 * TIMEOUT
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Each job's handle returns its outcome once the job's borrows have
    // ended store-side.
    let mut sum = 0;
    for job in &mut jobs {
        let outcome =
            rt.block_on(async { tokio::time::timeout(TIMEOUT, job.wait::<u64>()).await })??;
        sum += outcome
            .result
            .map_err(|e| format!("job {}: {e}", job.id()))?;
    }
    // worker-2's last lines (its report of the last job) may still be on
    // their way.
    let deadline = Instant::now() + TIMEOUT;
    while !(0..JOBS).all(|i| log.ran.iter().any(|r| r.contains_key(&i))) {
        log.next(&events, &workers, deadline)?;
    }
    let rerun: Vec<u32> = interrupted
        .iter()
        .copied()
        .filter(|i| log.ran[1].contains_key(i))
        .collect();
    let twice: Vec<u32> = log.ran[0]
        .keys()
        .copied()
        .filter(|i| log.ran[1].contains_key(i))
        .collect();
    println!(
        "   All {JOBS} done after {:.1} s. worker-1 finished {} before it was killed, worker-2 \
         finished {}, among them the interrupted job(s) {rerun:?}.",
        started.elapsed().as_secs_f64(),
        log.ran[0].len(),
        log.ran[1].len()
    );
    if !twice.is_empty() {
        println!(
            "   Job(s) {twice:?} ran on both: worker-1 had finished them but was killed before \
             apalis-redis recorded it (apalis delivers a job at least once)."
        );
    }
    check(rerun == interrupted, "worker-2 ran every interrupted job")?;
    println!("   The jobs' results add up to {sum}.");
    check(sum == total, "the results add up to the object's sum")?;
    println!("   The jobs' ends ended their borrows:");
    let info = show(&store, &key)?;
    if info.readers != 0 {
        println!("{info}");
    }
    check(info.readers == 0, "no borrow left")?;

    // 6. The producer writes, then lets the object go.
    println!("\n6. Now the producer may write:");
    drop(mut_borrow(&owner)?);
    println!("   its mutable borrow is granted. It drops its owner:");
    drop(owner);
    store.flush()?;
    let evicted = !store.exists(&key)?;
    println!(
        "   the object is {}.",
        if evicted {
            "evicted"
        } else {
            "STILL STORED (unexpected)"
        }
    );
    check(evicted, "dropping the owner evicts the object")?;

    for w in &mut workers {
        w.stop()?;
    }
    let removed = rt.block_on(remove_queue(&mut queue, &queue_name))?;
    println!("   worker-2 stopped; the queue's {removed} keys are removed.");
    let left = store.keys()?;
    check(left.is_empty(), "no object left in the store")?;
    println!(
        "\nDone. {JOBS} jobs run (all recorded as done), worker-1 killed mid-job, {} job(s) \
         re-run by worker-2; objects left in the store: {}.",
        rerun.len(),
        left.len()
    );
    Ok(())
}

/// An error saying which expectation failed, unless `ok`.
fn check(ok: bool, what: &str) -> Result<(), BoxError> {
    if ok {
        Ok(())
    } else {
        Err(format!("expected: {what}").into())
    }
}

/// Prints what the store records for `key`, and returns it.
fn show(store: &Store, key: &Key) -> Result<borrowstore::ObjectInfo, BoxError> {
    let info = store
        .inspect(key)?
        .ok_or_else(|| format!("no object under {key}"))?;
    println!(
        "   store-side: version {}, owner: {}, readers: {}, writer: {}",
        info.version,
        if info.owner { "yes" } else { "no" },
        info.readers,
        if info.writer { "yes" } else { "no" },
    );
    Ok(info)
}

/// Deletes the keys of queue `name` (those apalis-redis derives from it,
/// and its entry in [`APALIS_QUEUES_KEY`]); returns how many.
async fn remove_queue(queue: &mut Queue, name: &str) -> Result<usize, BoxError> {
    use redis::AsyncCommands;
    let conn = queue.get_connection();
    let mut keys: Vec<String> = Vec::new();
    {
        let mut iter: redis::AsyncIter<String> = conn.scan_match(format!("{name}:*")).await?;
        while let Some(k) = iter.next_item().await {
            keys.push(k?);
        }
    }
    for chunk in keys.chunks(500) {
        let () = conn.del(chunk).await?;
    }
    let () = conn
        .zrem(APALIS_QUEUES_KEY, format!("{name}:workers"))
        .await?;
    Ok(keys.len())
}

/// What the workers reported: per worker, the jobs started and the jobs
/// finished (with their sums).
struct Log {
    started: Vec<BTreeSet<u32>>,
    ran: Vec<BTreeMap<u32, u64>>,
    exited: Vec<bool>,
}

/// A line from worker `n`, or its end of output.
enum Event {
    Line(usize, String),
    Eof(usize),
}

impl Log {
    fn new(workers: usize) -> Log {
        Log {
            started: vec![BTreeSet::new(); workers],
            ran: vec![BTreeMap::new(); workers],
            exited: vec![false; workers],
        }
    }

    /// How many jobs the workers reported finished (a job run twice counts
    /// twice).
    fn finished(&self) -> usize {
        self.ran.iter().map(BTreeMap::len).sum()
    }

    /// The jobs worker `n` started and did not finish.
    fn running(&self, n: usize) -> Vec<u32> {
        self.started[n]
            .iter()
            .copied()
            .filter(|i| !self.ran[n].contains_key(i))
            .collect()
    }

    /// Records one event, waiting for it until `deadline`; returns the
    /// worker and the kind of a job's report.
    fn next(
        &mut self,
        events: &Receiver<Event>,
        workers: &[Worker],
        deadline: Instant,
    ) -> Result<Option<(usize, &'static str)>, BoxError> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(wait) {
            Ok(e) => self.record(e, workers),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "the workers reported no progress within {TIMEOUT:?} ({} jobs finished)",
                self.finished()
            )
            .into()),
            Err(RecvTimeoutError::Disconnected) => Err("every worker exited".into()),
        }
    }

    /// Records the events that have arrived.
    fn poll(&mut self, events: &Receiver<Event>, workers: &[Worker]) -> Result<(), BoxError> {
        while let Ok(e) = events.try_recv() {
            self.record(e, workers)?;
        }
        Ok(())
    }

    /// Records the events until worker `n`'s output ends.
    fn drain(
        &mut self,
        n: usize,
        events: &Receiver<Event>,
        workers: &[Worker],
    ) -> Result<(), BoxError> {
        let deadline = Instant::now() + TIMEOUT;
        while !self.exited[n] {
            self.next(events, workers, deadline)?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        event: Event,
        workers: &[Worker],
    ) -> Result<Option<(usize, &'static str)>, BoxError> {
        let (n, line) = match event {
            Event::Line(n, line) => (n, line),
            Event::Eof(n) => {
                self.exited[n] = true;
                if !workers[n].killed && !workers[n].stopping {
                    return Err(format!("{} exited unexpectedly", workers[n].name).into());
                }
                return Ok(None);
            }
        };
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("START"), Some(i), None) => {
                self.started[n].insert(i.parse()?);
                Ok(Some((n, "START")))
            }
            (Some("HELD"), Some(_), None) => Ok(Some((n, "HELD"))),
            (Some("RAN"), Some(i), Some(sum)) => {
                self.ran[n].insert(i.parse()?, sum.parse()?);
                Ok(Some((n, "RAN")))
            }
            (Some("ERROR"), ..) => Err(format!("{} failed: {line}", workers[n].name).into()),
            _ => {
                println!("   [{}] {line}", workers[n].name);
                Ok(None)
            }
        }
    }
}

/// A worker process: this program started with `worker <name> <redis URL>
/// <store URL> <queue>`. It exits when its stdin closes; killed if dropped.
struct Worker {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    killed: bool,
    stopping: bool,
}

impl Worker {
    fn spawn(
        n: usize,
        name: &str,
        args: &[&str],
        events: Sender<Event>,
    ) -> Result<Worker, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("worker")
            .arg(name)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if events.send(Event::Line(n, line)).is_err() {
                    return;
                }
            }
            let _ = events.send(Event::Eof(n));
        });
        println!("   [{name}] started (pid {})", child.id());
        Ok(Worker {
            name: name.to_owned(),
            child,
            stdin,
            killed: false,
            stopping: false,
        })
    }

    /// Tells it to hold the next job it starts (until it is killed).
    fn hold(&mut self) -> Result<(), BoxError> {
        let stdin = self.stdin.as_mut().ok_or("the worker's stdin is closed")?;
        stdin.write_all(b"hold\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// SIGKILL (what `Child::kill` sends on Unix).
    fn kill(&mut self) {
        self.killed = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Closes its stdin, which stops it, and waits for it to exit.
    fn stop(&mut self) -> Result<(), BoxError> {
        if self.killed {
            return Ok(());
        }
        self.stopping = true;
        self.stdin = None;
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status}", self.name).into())
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("{} did not stop within {TIMEOUT:?}", self.name).into())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if !self.killed {
            self.kill();
        }
    }
}

// ---------------------------------------------------------------------------
// The workers
// ---------------------------------------------------------------------------

/// Set when the producer tells this worker to hold its next job.
static HOLD: AtomicBool = AtomicBool::new(false);

/// The job: sums its slice of the object (read through the job's borrow),
/// taking [`JOB_TIME`]. It reports to the producer on stdout.
async fn sum_slice(job: Job<Args>) -> Result<u64, BoxDynError> {
    let (i, object) = job.into_args()?;
    println!("START {i}");
    if HOLD.load(Ordering::SeqCst) {
        // Told to: it waits here until it is killed.
        println!("HELD {i}");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let v = RefProxy::resolve_async(&object).await?;
    let part = v
        .get(slice_of(i, v.len()))
        .ok_or_else(|| format!("job {i}: the object has only {} values", v.len()))?;
    let sum: u64 = part.iter().sum();
    tokio::time::sleep(JOB_TIME).await;
    println!("RAN {i} {sum}");
    Ok(sum)
}

/// `args`: the worker's name, the Redis URL, the store's URL, the queue.
fn worker(args: &[String]) -> Result<(), BoxError> {
    let [name, redis_url, store_url, queue] = args else {
        return Err("usage: apalis_jobs worker NAME REDIS_URL STORE_URL QUEUE".into());
    };
    // The jobs' borrows name this store; opening it lets them connect (a
    // process reads borrows only of the stores it trusts).
    let _store = Store::open(store_url)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let conn = apalis_redis::connect(redis_url.as_str()).await?;
        let storage: Queue = RedisStorage::new(conn).with_config(queue_config(queue));
        // The borrows' layer first (outermost), then the others.
        let layer = JobBorrowsLayer::new(&storage);
        let worker = WorkerBuilder::new(name.as_str())
            .backend(storage)
            .layer(layer)
            .layer(ConcurrencyLimitLayer::new(PER_WORKER))
            .build(sum_slice);
        // Until the producer closes our stdin (or is gone).
        // ("hold" on stdin: hold the next job.)
        let stdin_closed = tokio::task::spawn_blocking(|| {
            for line in std::io::stdin().lock().lines() {
                match line {
                    Ok(l) if l == "hold" => HOLD.store(true, Ordering::SeqCst),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        worker
            .run_until(async move {
                let _ = stdin_closed.await;
                Ok::<(), std::io::Error>(())
            })
            .await?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// A private redis-server
// ---------------------------------------------------------------------------

/// A `redis-server` on a free loopback port, with no persistence; killed
/// when dropped.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> Result<RedisServer, BoxError> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(std::env::temp_dir())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if ping(port) {
                    return Ok(RedisServer { child, port });
                }
                if let Some(status) = child.try_wait()? {
                    last = format!("it exited with {status}");
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = "it did not answer within 5 s".to_owned();
            }
        }
        Err(last.into())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a server on `port` answers `PING`.
fn ping(port: u16) -> bool {
    let addr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

//! apalis jobs end to end: a job whose argument is a borrow of an object,
//! next to the same job with the value as a plain argument, on the same
//! kind of in-process apalis worker (and, for scale, a raw apalis job
//! without borrowstore).
//!
//! One round submits `n` jobs of one kind, then starts a worker on them and
//! waits until apalis-redis has recorded every one as done — and, for the
//! borrows, until the object's reader count is back at zero. Each setting
//! gives two rows: the submitter's time per job (one submission at a time,
//! or [`IN_FLIGHT`] at once) and the worker's time per job on the queued
//! backlog (from its start to the end of the round, divided by `n`).
//! Rounds of the kinds are interleaved; each row is the median of its
//! rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apalis_core::error::BoxDynError;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{Config, ConnectionManager, RedisStorage};
use borrowstore::submit::apalis::{Job, JobBorrowsLayer, submit_job};
use borrowstore::{OwnedProxy, RefProxy, Store, borrow_async};

use crate::measure::{Budget, Timing, emit_time};

/// How often a round asks whether its jobs are over.
const POLL: Duration = Duration::from_micros(500);
/// How many submissions are in flight at once in the concurrent rounds.
const IN_FLIGHT: usize = 16;
/// How long one round may take.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Borrow,
    Plain,
    Raw,
}

const KINDS: [Kind; 3] = [Kind::Borrow, Kind::Plain, Kind::Raw];

/// What every job does: reads its 1 KiB and adds up its bytes.
fn work(v: &[u8], sink: &AtomicU64) {
    let s: u64 = v.iter().map(|&b| u64::from(b)).sum();
    sink.fetch_add(s, Ordering::Relaxed);
}

async fn borrow_job(
    job: Job<RefProxy<Vec<u8>>>,
    sink: apalis_core::task::data::Data<Arc<AtomicU64>>,
) -> Result<(), BoxDynError> {
    let r = job.into_args()?;
    work(RefProxy::resolve_async(&r).await?, &sink);
    Ok(())
}

async fn plain_job(
    job: Job<Vec<u8>>,
    sink: apalis_core::task::data::Data<Arc<AtomicU64>>,
) -> Result<(), BoxDynError> {
    let v = job.into_args()?;
    work(&v, &sink);
    Ok(())
}

async fn raw_job(
    v: Vec<u8>,
    sink: apalis_core::task::data::Data<Arc<AtomicU64>>,
) -> Result<(), BoxDynError> {
    work(&v, &sink);
    Ok(())
}

/// The queue of one kind: a worker runs it for the whole run.
fn config(queue: &str) -> Config {
    // Short heartbeats: an idle worker looks for new jobs this often. (At
    // 10 ms apalis-redis 1.0 stalled: a job stayed `Running` and the
    // worker fetched nothing more.)
    Config::default()
        .queue(queue)
        .heartbeat_interval(Duration::from_millis(100))
        // A busy machine must not make a live worker look dead (its jobs
        // would be delivered again).
        .missed_heartbeats(20)
}

/// The sizes of the values the jobs read: 1 KiB, and 64 KiB, where a plain
/// argument is heavy (apalis-redis encodes it as JSON, a number per byte).
const SIZES: [usize; 2] = [1024, 64 * 1024];

struct Bench {
    store: Store,
    /// Per size (see [`SIZES`]): the owner of the object and its value.
    objects: Vec<(OwnedProxy<Vec<u8>>, Vec<u8>)>,
    borrows: RedisStorage<Job<RefProxy<Vec<u8>>>>,
    plains: RedisStorage<Job<Vec<u8>>>,
    raws: RedisStorage<Vec<u8>>,
    conn: ConnectionManager,
    /// Jobs of each kind submitted so far (the done sets only grow).
    submitted: [u64; 3],
    /// What the jobs add up their bytes into.
    sink: Arc<AtomicU64>,
    /// Workers started so far (each gets a name of its own).
    workers: u64,
}

/// What one round measured.
struct Round {
    /// How long submitting its jobs took.
    submit: Duration,
    /// How long the worker took per job, from its start on the queued
    /// jobs to the end of the round.
    per_job: Duration,
}

impl Bench {
    /// How many jobs of `kind` apalis-redis has recorded done.
    async fn done(&self, kind: Kind) -> u64 {
        let set = match kind {
            Kind::Borrow => self.borrows.get_config().done_jobs_set(),
            Kind::Plain => self.plains.get_config().done_jobs_set(),
            Kind::Raw => self.raws.get_config().done_jobs_set(),
        };
        redis::cmd("SCARD")
            .arg(set)
            .query_async(&mut self.conn.clone())
            .await
            .expect("SCARD of a done set")
    }

    /// Starts a worker for `kind`'s queue, with a name of its own: each
    /// round starts one once its jobs are queued (see [`Bench::round`]).
    fn start_worker(&mut self, kind: Kind) -> tokio::task::JoinHandle<()> {
        self.workers += 1;
        let name = format!("bench-{kind:?}-{}-{}", std::process::id(), self.workers);
        let sink = self.sink.clone();
        match kind {
            Kind::Borrow => {
                let w = WorkerBuilder::new(name)
                    .backend(self.borrows.clone())
                    .layer(JobBorrowsLayer::new(&self.borrows))
                    .data(sink)
                    .build(borrow_job);
                tokio::spawn(async move {
                    let _ = w.run().await;
                })
            }
            Kind::Plain => {
                let w = WorkerBuilder::new(name)
                    .backend(self.plains.clone())
                    .layer(JobBorrowsLayer::new(&self.plains))
                    .data(sink)
                    .build(plain_job);
                tokio::spawn(async move {
                    let _ = w.run().await;
                })
            }
            Kind::Raw => {
                let w = WorkerBuilder::new(name)
                    .backend(self.raws.clone())
                    .data(sink)
                    .build(raw_job);
                tokio::spawn(async move {
                    let _ = w.run().await;
                })
            }
        }
    }

    /// Submits `n` jobs of `kind` on the value of size `SIZES[size]`,
    /// `in_flight` submissions at a time, then starts a worker and waits
    /// until they are over.
    ///
    /// The worker starts once every job is queued. A worker that runs
    /// while jobs are still being submitted catches up with the submitters
    /// now and then, and an apalis-redis worker that finds its queue empty
    /// waits for its next heartbeat (100 ms here) before it looks again:
    /// rounds timed that way measured those waits more than the jobs — and
    /// more of them for the kind whose submissions are slower. Started on
    /// a full queue, the worker runs the backlog without a wait.
    async fn round(&mut self, kind: Kind, size: usize, n: u64, in_flight: usize) -> Round {
        use futures::StreamExt;
        let target = self.submitted[kind as usize] + n;
        let start = Instant::now();
        let (owner, value) = (&self.objects[size].0, &self.objects[size].1);
        let (borrows, plains, raws) = (&self.borrows, &self.plains, &self.raws);
        futures::stream::iter(0..n)
            .for_each_concurrent(in_flight, |_| async move {
                match kind {
                    Kind::Borrow => {
                        let r = borrow_async(owner).await.expect("borrow");
                        submit_job(&mut borrows.clone(), r)
                            .await
                            .expect("submit_job");
                    }
                    Kind::Plain => {
                        submit_job(&mut plains.clone(), value.clone())
                            .await
                            .expect("submit_job");
                    }
                    Kind::Raw => {
                        use apalis_core::backend::TaskSink;
                        raws.clone().push(value.clone()).await.expect("push");
                    }
                }
            })
            .await;
        let submit = start.elapsed();
        self.submitted[kind as usize] = target;
        let from = Instant::now();
        let worker = self.start_worker(kind);
        loop {
            let done = self.done(kind).await;
            let readers = match kind {
                // Asked only once the jobs are done (inspecting costs the
                // server more than counting the done set).
                Kind::Borrow if done >= target => self
                    .store
                    .inspect_async(OwnedProxy::key(&self.objects[size].0))
                    .await
                    .expect("inspect")
                    .map_or(0, |info| info.readers),
                _ => 0,
            };
            if done >= target && readers == 0 {
                let per_job = from.elapsed() / n as u32;
                // Every job is over and recorded: nothing is left to it.
                worker.abort();
                return Round { submit, per_job };
            }
            assert!(
                from.elapsed() < ROUND_LIMIT,
                "{kind:?}: {n} jobs were not over within {ROUND_LIMIT:?} \
                 ({} of them done, {readers} borrows left)",
                n + done - target
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Runs the three kinds in interleaved rounds of `n` jobs and prints the
/// rows.
pub fn run(server: &str, budget: Budget) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let quick = budget.rounds <= 3;
    // The settings measured: (size index, jobs per round, submissions in
    // flight). 64 KiB plain jobs are heavy on the server (and stay there
    // once done): fewer of them, and only at full concurrency.
    let settings: [(usize, u64, usize); 3] = if quick {
        [(0, 50, 1), (0, 50, IN_FLIGHT), (1, 20, IN_FLIGHT)]
    } else {
        [(0, 400, 1), (0, 400, IN_FLIGHT), (1, 100, IN_FLIGHT)]
    };
    let rounds = budget.rounds.max(3);
    let timings = rt.block_on(async {
        let id = std::process::id();
        let store = Store::open(&format!("{server}?ns=bench-harness-jobs-{id}"))
            .expect("open the Redis store");
        let objects = SIZES
            .iter()
            .map(|&len| {
                let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                let owner = store.owned_proxy(value.clone()).expect("owned_proxy");
                (owner, value)
            })
            .collect();
        let conn = apalis_redis::connect(server).await.expect("connect");
        let borrows: RedisStorage<Job<RefProxy<Vec<u8>>>> = RedisStorage::new(conn.clone())
            .with_config(config(&format!("bench-harness-jobs-{id}-borrow")));
        let plains: RedisStorage<Job<Vec<u8>>> = RedisStorage::new(conn.clone())
            .with_config(config(&format!("bench-harness-jobs-{id}-plain")));
        let raws: RedisStorage<Vec<u8>> = RedisStorage::new(conn.clone())
            .with_config(config(&format!("bench-harness-jobs-{id}-raw")));
        let mut bench = Bench {
            store,
            objects,
            borrows,
            plains,
            raws,
            conn,
            submitted: [0; 3],
            sink: Arc::new(AtomicU64::new(0)),
            workers: 0,
        };
        // A warm-up round of each (worker registration, script loads).
        for kind in KINDS {
            bench.round(kind, 0, 20, IN_FLIGHT).await;
        }
        // [setting][kind]
        let mut samples: [[Vec<f64>; 3]; 3] = Default::default();
        for r in 0..rounds {
            for (i, &(size, n, in_flight)) in settings.iter().enumerate() {
                for k in 0..KINDS.len() {
                    // Rotate the order, so that no kind always goes first.
                    let kind = KINDS[(r + k) % KINDS.len()];
                    let round = bench.round(kind, size, n, in_flight).await;
                    // One submission at a time: the submit latency. Many:
                    // the workers' time per job.
                    let took = if in_flight == 1 {
                        round.submit.as_nanos() as f64 / n as f64
                    } else {
                        round.per_job.as_nanos() as f64
                    };
                    samples[i][kind as usize].push(took);
                }
            }
        }
        let mut timings = samples.iter_mut().zip(settings).map(|(kinds, (_, n, _))| {
            kinds.each_mut().map(|s| {
                s.sort_by(f64::total_cmp);
                Timing {
                    median_ns: s[s.len() / 2],
                    min_ns: s[0],
                    iters: n,
                }
            })
        });
        [(); 3].map(|()| timings.next().expect("a timing per setting"))
    });
    let how = |what: &str, n: u64, in_flight: usize| {
        if in_flight == 1 {
            format!(
                "{what}: the time to submit one job (the submitter's side, no worker running), \
                 {n} submitted one after the other per round; rounds interleaved, median of \
                 {rounds}"
            )
        } else {
            format!(
                "{what}: the worker's time per job on a backlog: one round submits {n} jobs \
                 ({in_flight} submissions in flight), then starts an in-process apalis-redis \
                 worker (batch 10, heartbeat 100 ms) and is timed from its start until \
                 apalis-redis recorded every job done{}; rounds interleaved, median of {rounds}",
                if what.contains("RefProxy") {
                    " and the object's borrows ended"
                } else {
                    ""
                }
            )
        }
    };
    let names: [[&'static str; 3]; 3] = [
        [
            "job_submit_borrow_1k",
            "job_submit_plain_1k",
            "job_submit_raw_1k",
        ],
        ["job_borrow_1k", "job_plain_1k", "job_raw_1k"],
        ["job_borrow_64k", "job_plain_64k", "job_raw_64k"],
    ];
    for (([borrow, plain, raw], names), (size, n, in_flight)) in
        timings.into_iter().zip(names).zip(settings)
    {
        let size = if SIZES[size] == 1024 {
            "1 KiB"
        } else {
            "64 KiB"
        };
        emit_time(
            names[0],
            "redis",
            "borrowstore",
            borrow,
            how(
                &format!(
                    "submit_job with a RefProxy borrow of a {size} object, run with JobBorrowsLayer"
                ),
                n,
                in_flight,
            ),
        );
        emit_time(
            names[1],
            "redis",
            "reference",
            plain,
            how(
                &format!(
                    "submit_job with the {size} value as a plain argument, run with JobBorrowsLayer"
                ),
                n,
                in_flight,
            ),
        );
        emit_time(
            names[2],
            "redis",
            "reference",
            raw,
            how(
                &format!(
                    "raw apalis-redis push of the {size} value (no borrowstore), run by a plain worker"
                ),
                n,
                in_flight,
            ),
        );
        eprintln!(
            "  {} / {}: {:.2}x",
            names[0],
            names[1],
            borrow.median_ns / plain.median_ns
        );
    }
}

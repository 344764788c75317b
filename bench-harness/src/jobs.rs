//! apalis jobs end to end: a job whose argument is a borrow of a 1 KiB
//! object, next to the same job with the 1 KiB value as a plain argument,
//! on the same in-process apalis workers (and, for scale, a raw apalis job
//! without borrowstore).
//!
//! One round submits `n` jobs of one kind and waits until apalis-redis has
//! recorded every one as done — and, for the borrows, until the object's
//! reader count is back at zero. The time of the round, divided by `n`, is
//! the row. Rounds of the three kinds are interleaved; each row is the
//! median of its rounds.

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

struct Bench {
    store: Store,
    owner: OwnedProxy<Vec<u8>>,
    value: Vec<u8>,
    borrows: RedisStorage<Job<RefProxy<Vec<u8>>>>,
    plains: RedisStorage<Job<Vec<u8>>>,
    raws: RedisStorage<Vec<u8>>,
    conn: ConnectionManager,
    /// Jobs of each kind submitted so far (the done sets only grow).
    submitted: [u64; 3],
}

impl Bench {
    async fn done(&mut self, kind: Kind) -> u64 {
        let set = match kind {
            Kind::Borrow => self.borrows.get_config().done_jobs_set(),
            Kind::Plain => self.plains.get_config().done_jobs_set(),
            Kind::Raw => self.raws.get_config().done_jobs_set(),
        };
        redis::cmd("SCARD")
            .arg(set)
            .query_async(&mut self.conn)
            .await
            .expect("SCARD of a done set")
    }

    /// Submits `n` jobs of `kind` and waits until they are over.
    async fn round(&mut self, kind: Kind, n: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            match kind {
                Kind::Borrow => {
                    let r = borrow_async(&self.owner).await.expect("borrow");
                    submit_job(&mut self.borrows, r).await.expect("submit_job");
                }
                Kind::Plain => {
                    submit_job(&mut self.plains, self.value.clone())
                        .await
                        .expect("submit_job");
                }
                Kind::Raw => {
                    use apalis_core::backend::TaskSink;
                    self.raws.push(self.value.clone()).await.expect("push");
                }
            }
        }
        let i = kind as usize;
        self.submitted[i] += n;
        let target = self.submitted[i];
        loop {
            let done = self.done(kind).await;
            let readers = match kind {
                Kind::Borrow => self
                    .store
                    .inspect_async(OwnedProxy::key(&self.owner))
                    .await
                    .expect("inspect")
                    .map_or(0, |info| info.readers),
                _ => 0,
            };
            if done >= target && readers == 0 {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < ROUND_LIMIT,
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
    let n: u64 = if budget.rounds <= 3 { 50 } else { 200 };
    let rounds = budget.rounds.max(3);
    let timings = rt.block_on(async {
        let id = std::process::id();
        let store = Store::open(&format!("{server}?ns=bench-harness-jobs-{id}"))
            .expect("open the Redis store");
        let value: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        let owner = store.owned_proxy(value.clone()).expect("owned_proxy");
        let conn = apalis_redis::connect(server).await.expect("connect");
        let borrows: RedisStorage<Job<RefProxy<Vec<u8>>>> = RedisStorage::new(conn.clone())
            .with_config(config(&format!("bench-harness-jobs-{id}-borrow")));
        let plains: RedisStorage<Job<Vec<u8>>> = RedisStorage::new(conn.clone())
            .with_config(config(&format!("bench-harness-jobs-{id}-plain")));
        let raws: RedisStorage<Vec<u8>> = RedisStorage::new(conn.clone())
            .with_config(config(&format!("bench-harness-jobs-{id}-raw")));
        let sink = Arc::new(AtomicU64::new(0));
        let layer = JobBorrowsLayer::new(&borrows);
        let w1 = WorkerBuilder::new(format!("bench-borrow-{id}"))
            .backend(borrows.clone())
            .layer(layer)
            .data(sink.clone())
            .build(borrow_job);
        let layer = JobBorrowsLayer::new(&plains);
        let w2 = WorkerBuilder::new(format!("bench-plain-{id}"))
            .backend(plains.clone())
            .layer(layer)
            .data(sink.clone())
            .build(plain_job);
        let w3 = WorkerBuilder::new(format!("bench-raw-{id}"))
            .backend(raws.clone())
            .data(sink.clone())
            .build(raw_job);
        let workers = [
            tokio::spawn(async move {
                let _ = w1.run().await;
            }),
            tokio::spawn(async move {
                let _ = w2.run().await;
            }),
            tokio::spawn(async move {
                let _ = w3.run().await;
            }),
        ];
        let mut bench = Bench {
            store,
            owner,
            value,
            borrows,
            plains,
            raws,
            conn,
            submitted: [0; 3],
        };
        // A warm-up round of each (worker registration, script loads).
        for kind in KINDS {
            bench.round(kind, n / 5).await;
        }
        let mut samples: [Vec<f64>; 3] = Default::default();
        for r in 0..rounds {
            for k in 0..KINDS.len() {
                // Rotate the order, so that no kind always goes first.
                let kind = KINDS[(r + k) % KINDS.len()];
                let took = bench.round(kind, n).await;
                samples[kind as usize].push(took.as_nanos() as f64 / n as f64);
            }
        }
        for w in workers {
            w.abort();
        }
        samples.map(|mut s| {
            s.sort_by(f64::total_cmp);
            Timing {
                median_ns: s[s.len() / 2],
                min_ns: s[0],
                iters: n,
            }
        })
    });
    let how = |what: &str| {
        format!(
            "{what}; one round submits {n} jobs and waits until apalis-redis recorded them \
             done{}; same in-process apalis-redis workers (heartbeat 100 ms), rounds \
             interleaved, median of {rounds}",
            if what.contains("RefProxy") {
                " and the object's borrows ended"
            } else {
                ""
            }
        )
    };
    let [borrow, plain, raw] = timings;
    emit_time(
        "job_borrow_1k",
        "redis",
        "borrowstore",
        borrow,
        how("submit_job with a RefProxy borrow of a 1 KiB object, run with JobBorrowsLayer"),
    );
    emit_time(
        "job_plain_1k",
        "redis",
        "reference",
        plain,
        how("submit_job with the 1 KiB value as a plain argument, run with JobBorrowsLayer"),
    );
    emit_time(
        "job_raw_1k",
        "redis",
        "reference",
        raw,
        how("raw apalis-redis push of the 1 KiB value (no borrowstore), run by a plain worker"),
    );
    eprintln!(
        "  job_borrow_1k / job_plain_1k: {:.2}x",
        borrow.median_ns / plain.median_ns
    );
}

//! Jobs with borrows on real apalis workers (apalis-core 1.0 with the
//! apalis-redis 1.0 backend), on a real `redis-server` started by each test
//! on a free loopback port, and on a Redis Cluster of the test's own.
//!
//! The store's lease is two minutes, far longer than any wait here: a
//! borrow that ends within a test was ended by the worker layer, never by
//! its ticket running out.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apalis_core::backend::TaskResult;
use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::task::data::Data;
use apalis_core::task::status::Status;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{Config, ConnectionLike, RedisStorage};
use borrowstore::submit::apalis::{
    Job, JobBorrowsLayer, JobHandle, cluster_queue, submit_job, submit_job_for,
};
use borrowstore::submit::remote::Portable;
use borrowstore::{
    Error, Key, OwnedProxy, RefMutProxy, RefProxy, Store, borrow, borrow_async, mut_borrow,
    mut_borrow_async, update_async,
};
use borrowstore_testkit::process::{example_binary, hex, unhex};
use borrowstore_testkit::redis_cluster::RedisCluster;
use borrowstore_testkit::redis_server::RedisServer;
use borrowstore_testkit::unique_name;

type Storage<C = apalis_redis::ConnectionManager> = RedisStorage<Job<RefProxy<Vec<u64>>>, C>;

/// How the job behaves, and what it saw.
#[derive(Clone, Default)]
struct Script {
    /// Fail (to be retried) on the first this many attempts.
    fail_first: usize,
    /// Give up on the first attempt (an `AbortError`).
    abort: bool,
    /// Panic on the first attempt.
    panic: bool,
    /// How long each attempt takes.
    takes: Duration,
    /// Stall (for an hour) at the start of the first this many attempts:
    /// a time-out layer inside the worker's `JobBorrowsLayer` ends them.
    stall_first: usize,
    /// Attempts that started.
    started: Arc<AtomicUsize>,
    /// Do not count the object's readers (inspection returns every claim:
    /// with a thousand jobs, a thousand inspections would load the server).
    skip_inspect: bool,
    attempts: Arc<AtomicUsize>,
    /// Per attempt: the sum read, and the object's readers meanwhile.
    seen: Arc<Mutex<Vec<(u64, u32)>>>,
}

async fn sum(job: Job<RefProxy<Vec<u64>>>, script: Data<Script>) -> Result<u64, BoxDynError> {
    let v = job.into_args()?;
    if script.started.fetch_add(1, Ordering::SeqCst) < script.stall_first {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    tokio::time::sleep(script.takes).await;
    let total: u64 = v.iter().sum();
    let readers = if script.skip_inspect {
        0
    } else {
        RefProxy::store(&v)
            .inspect_async(RefProxy::key(&v))
            .await?
            .map_or(0, |i| i.readers)
    };
    script.seen.lock().unwrap().push((total, readers));
    let attempt = script.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if script.panic {
        panic!("the job panics");
    }
    if script.abort {
        return Err(AbortError::new("the job gives up").into());
    }
    if attempt <= script.fail_first {
        return Err(format!("attempt {attempt} fails").into());
    }
    Ok(total)
}

struct Setup {
    _server: RedisServer,
    store: Store,
    owner: OwnedProxy<Vec<u64>>,
    key: Key,
    storage: Storage,
}

/// A server, a store on it with an owned `[1, 2, 3, 4]`, and a queue of its
/// own whose workers beat every second (so a retry scheduled by
/// apalis-redis is fetched within a second or two).
async fn setup() -> Setup {
    let server = RedisServer::start();
    let store = Store::open(&server.url(&unique_name("apalis"), "lease_ms=120000")).unwrap();
    let owner = store.owned_proxy(vec![1u64, 2, 3, 4]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let conn = apalis_redis::connect(server.base_url()).await.unwrap();
    let config = Config::default()
        .queue(unique_name("sums"))
        .heartbeat_interval(Duration::from_secs(1));
    let storage = RedisStorage::new(conn).with_config(config);
    Setup {
        _server: server,
        store,
        owner,
        key,
        storage,
    }
}

/// Starts a worker with the layer on `storage`'s queue.
fn start_worker<C>(storage: &Storage<C>, script: &Script) -> tokio::task::JoinHandle<()>
where
    C: ConnectionLike + Send + Sync + Clone + Unpin + 'static,
{
    start_worker_with(storage, script, JobBorrowsLayer::new(storage))
}

/// [`start_worker`] with the layer `layer`.
fn start_worker_with<C>(
    storage: &Storage<C>,
    script: &Script,
    layer: JobBorrowsLayer<C>,
) -> tokio::task::JoinHandle<()>
where
    C: ConnectionLike + Send + Sync + Clone + Unpin + 'static,
{
    let worker = WorkerBuilder::new(unique_name("worker"))
        .backend(storage.clone())
        .layer(layer)
        .data(script.clone())
        .build(sum);
    tokio::spawn(async move {
        let _ = worker.run().await;
    })
}

/// Waits (up to 60 s) through `job`'s handle for its final outcome, and
/// checks that it has `status`.
async fn recorded<A, C>(job: &mut JobHandle<A, C>, status: Status) -> TaskResult<u64>
where
    A: Portable + Send + Sync + Unpin + 'static,
    A::Wire: Send + Sync + Unpin + 'static,
    C: ConnectionLike + Send + Sync + Clone + Unpin + 'static,
{
    let outcome = tokio::time::timeout(Duration::from_secs(60), job.wait::<u64>())
        .await
        .unwrap_or_else(|_| panic!("job {} had no final outcome within 60 s", job.id()))
        .unwrap();
    assert_eq!(
        outcome.status,
        status,
        "job {}: {:?} after {} attempts",
        job.id(),
        outcome.result,
        outcome.attempt
    );
    outcome
}

fn readers(s: &Setup) -> u32 {
    s.store.inspect(&s.key).unwrap().unwrap().readers
}

/// Submits one job that borrows the object; checks that the job holds the
/// borrow while it is queued (the submitter holds nothing of it).
async fn submit(s: &mut Setup) -> JobHandle<RefProxy<Vec<u64>>> {
    let mut id = submit_job(&mut s.storage, borrow(&s.owner).unwrap())
        .await
        .unwrap();
    s.store.flush().unwrap();
    assert_eq!(readers(s), 1, "the queued job holds its borrow");
    assert!(
        id.check::<u64>().await.unwrap().is_none(),
        "a queued job has no outcome"
    );
    assert!(matches!(
        mut_borrow(&s.owner),
        Err(Error::AlreadyBorrowed { .. })
    ));
    id
}

/// After the job's final outcome: the borrow has ended, the owner can
/// write, and dropped it evicts the object.
fn assert_over(s: Setup) {
    assert_eq!(
        readers(&s),
        0,
        "the borrow ended before the outcome was recorded"
    );
    drop(mut_borrow(&s.owner).unwrap());
    drop(s.owner);
    s.store.flush().unwrap();
    assert!(
        !s.store.exists(&s.key).unwrap(),
        "the owner evicts the object"
    );
}

/// A fire-and-forget job with one shared borrow: the job holds the borrow
/// while it waits and while it runs, the worker reads the value through
/// it, and the borrow ends when the job succeeds — before apalis records
/// the job as done — after which the owner can write and, dropped, evicts
/// the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_borrow_ends_when_the_job_succeeds() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script::default();
    let worker = start_worker(&s.storage, &script);

    // A waiting writer gets the object once the job is over.
    let w = tokio::time::timeout(Duration::from_secs(30), mut_borrow_async(&s.owner))
        .await
        .expect("the job's borrow did not end within 30 s")
        .unwrap();
    drop(w);
    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1)],
        "one attempt, under the borrow"
    );
    worker.abort();
    assert_over(s);
}

/// A job reads the version its borrow holds, never one its worker cached
/// before. The worker here reaches the store through the handle the job's
/// bytes name (as a worker process does), with a cache of its own: the
/// first job leaves the old value cached there, the producer then changes
/// the value through its own handle, and the next job — whose renewal
/// vouches for the new version — reads the new value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reads_the_version_its_borrow_holds_not_one_its_worker_cached_before() {
    let mut s = setup().await;
    let url = s.store.url().to_string();
    let producer = Store::builder(unique_name("apalis-producer"))
        .url(url.as_str())
        .register(false)
        .build()
        .unwrap();
    borrowstore::trust::allow(&url).unwrap();
    // Kept open, so that its cache outlives each job.
    let worker_side = Store::from_config(producer.config()).unwrap();
    assert!(!worker_side.same_store(&producer));
    let owner = producer.owned_proxy(vec![1u64, 2]).unwrap();
    let script = Script {
        skip_inspect: true,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let mut first = submit_job(&mut s.storage, borrow_async(&owner).await.unwrap())
        .await
        .unwrap();
    assert_eq!(recorded(&mut first, Status::Done).await.result, Ok(3));
    assert_eq!(
        worker_side.cached_values(),
        1,
        "the worker cached the value"
    );

    // The job's borrow ends once its outcome is recorded; the owner writes.
    let mut w = tokio::time::timeout(Duration::from_secs(30), mut_borrow_async(&owner))
        .await
        .expect("the job's borrow did not end within 30 s")
        .unwrap();
    w.clear();
    w.extend([10, 20]);
    update_async(&mut w).await.unwrap();
    drop(w);
    producer.flush_async().await.unwrap();

    let mut second = submit_job(&mut s.storage, borrow_async(&owner).await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        recorded(&mut second, Status::Done).await.result,
        Ok(30),
        "the second job read the value its borrow holds"
    );
    worker.abort();
    borrowstore::trust::disallow(&url);
}

/// A failed attempt that apalis-redis retries keeps the job's borrow: the
/// second attempt (a new delivery from the queue) reads under it, and the
/// borrow ends only when that attempt succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_keeps_its_borrow_until_it_succeeds() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script {
        fail_first: 1,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(done.attempt, 2);
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1), (10, 1)],
        "both attempts read under the job's borrow"
    );
    worker.abort();
    assert_over(s);
}

/// A job whose every attempt fails, on a layer that allows two: both
/// attempts read under the job's borrow, the second failure is final (the
/// job is dead, not scheduled again) and ends the borrow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_ends_its_borrow_when_its_attempts_are_exhausted() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script {
        fail_first: usize::MAX,
        ..Script::default()
    };
    let worker = start_worker_with(
        &s.storage,
        &script,
        JobBorrowsLayer::new(&s.storage).max_attempts(2),
    );

    let dead = recorded(&mut id, Status::Killed).await;
    assert_eq!(dead.attempt, 2);
    assert!(
        dead.result
            .as_ref()
            .is_err_and(|e| e.contains("attempt 2 fails")),
        "{:?}",
        dead.result
    );
    assert_eq!(*script.seen.lock().unwrap(), vec![(10, 1), (10, 1)]);
    assert_over(s);
    // No third attempt.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(script.attempts.load(Ordering::SeqCst), 2);
    worker.abort();
}

/// A job runs for twice its borrows' lease: the worker renews them, so
/// the job still reads under its borrow at the end; then they end with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_renews_its_borrow() {
    let mut s = setup().await;
    let mut id = submit_job_for(
        &mut s.storage,
        borrow(&s.owner).unwrap(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    // 4.5 s: the job must not end as the worker's heartbeat (every second
    // from the worker's start) falls due. When the two met (a job of
    // exactly 4 s), the worker's heartbeat request sometimes never
    // returned, and apalis-redis recorded no outcome (3 of 12 runs with
    // four of these tests at once; 0 of 20 at 4.5 s); that hang is open.
    let script = Script {
        takes: Duration::from_millis(4500),
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1)],
        "after 4.5 s the job still holds its borrow"
    );
    worker.abort();
    assert_over(s);
}

/// A job that waits in the queue past its borrows' lease (no worker
/// renews them) loses them; delivered later, it is killed without running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_borrow_ran_out_is_killed_without_running() {
    let mut s = setup().await;
    let mut id = submit_job_for(
        &mut s.storage,
        borrow(&s.owner).unwrap(),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    s.store.flush().unwrap();
    assert_eq!(readers(&s), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // An operation on the object applies the deadlines past (inspection
    // alone does not).
    drop(borrow(&s.owner).unwrap());
    s.store.flush().unwrap();
    assert_eq!(readers(&s), 0, "the borrow ends with its lease");

    let script = Script::default();
    let worker = start_worker(&s.storage, &script);
    let killed = recorded(&mut id, Status::Killed).await;
    assert!(
        killed.result.as_ref().is_err_and(|e| e.contains("ticket")),
        "{:?}",
        killed.result
    );
    assert_eq!(
        script.attempts.load(Ordering::SeqCst),
        0,
        "the job never ran"
    );
    worker.abort();
    assert_over(s);
}

/// A job that gives up (`AbortError`: killed, never retried) ends its
/// borrow.
/// A borrow of a store whose tickets no worker can renew (a file store)
/// is refused with a clear error before anything is pushed, and the
/// refused borrow ends at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrow_of_a_file_store_is_refused_and_ends() {
    let mut s = setup().await;
    let dir = std::env::temp_dir().join(unique_name("apalis-file"));
    let files = Store::open(&format!("file://{}", dir.display())).unwrap();
    let owner = files.owned_proxy(vec![5u64, 6]).unwrap();
    let storage: &mut Storage = &mut s.storage;
    match submit_job(storage, borrow(&owner).unwrap()).await {
        Err(Error::Malformed { what, reason }) => {
            assert_eq!(what, "job argument");
            assert!(reason.contains("file://"), "{reason}");
        }
        other => panic!("expected the borrow to be refused, got {other:?}"),
    }
    files.flush().unwrap();
    drop(mut_borrow(&owner).expect("the refused borrow ended"));
    drop(owner);
    drop(files);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_ends_its_borrow() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script {
        abort: true,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let killed = recorded(&mut id, Status::Killed).await;
    assert!(killed.result.is_err());
    assert_eq!(script.attempts.load(Ordering::SeqCst), 1);
    worker.abort();
    assert_over(s);
}

/// A job that panics is killed (as apalis's `catch_panic` does) and ends
/// its borrow; the worker lives on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_ends_its_borrow() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script {
        panic: true,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let killed = recorded(&mut id, Status::Killed).await;
    assert!(
        killed
            .result
            .as_ref()
            .is_err_and(|e| e.contains("the job panics")),
        "{:?}",
        killed.result
    );
    assert!(!worker.is_finished(), "the worker survives the panic");
    worker.abort();
    assert_over(s);
}

/// A job whose argument is an owner: its object belongs to the job.
type OwnerStorage = RedisStorage<Job<OwnedProxy<Vec<u64>>>>;

/// The job of an owner: sums the object; a failing attempt first checks
/// that the owner cannot leave the job.
async fn owned_sum(
    job: Job<OwnedProxy<Vec<u64>>>,
    script: Data<Script>,
) -> Result<u64, BoxDynError> {
    let owner = job.into_args()?;
    let total: u64 = OwnedProxy::resolve_async(&owner).await?.iter().sum();
    script.seen.lock().unwrap().push((total, 0));
    let attempt = script.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if attempt <= script.fail_first {
        return match OwnedProxy::into_ticket(owner) {
            Err(Error::ClaimLost { .. }) => Err(format!("attempt {attempt} fails").into()),
            other => Err(AbortError::new(format!("the owner left the job: {other:?}")).into()),
        };
    }
    Ok(total)
}

/// Moves `s`'s owner into a job on a queue of `s`'s config; the owner's
/// object is the job's from then on.
async fn submit_owner(s: &mut Setup) -> (OwnerStorage, JobHandle<OwnedProxy<Vec<u64>>>) {
    let owner = std::mem::replace(&mut s.owner, s.store.owned_proxy(Vec::new()).unwrap());
    let conn = apalis_redis::connect(s._server.base_url()).await.unwrap();
    let mut storage: OwnerStorage =
        RedisStorage::new(conn).with_config(s.storage.get_config().clone());
    let id = submit_job(&mut storage, owner).await.unwrap();
    s.store.flush().unwrap();
    assert!(
        s.store.exists(&s.key).unwrap(),
        "the queued job owns the object"
    );
    (storage, id)
}

fn start_owner_worker(
    storage: &OwnerStorage,
    script: &Script,
    layer: JobBorrowsLayer,
) -> tokio::task::JoinHandle<()> {
    let worker = WorkerBuilder::new(unique_name("worker"))
        .backend(storage.clone())
        .layer(layer)
        .data(script.clone())
        .build(owned_sum);
    tokio::spawn(async move {
        let _ = worker.run().await;
    })
}

/// After the final outcome of a job that an owner was moved into: the
/// object is gone, and the namespace is empty.
fn assert_evicted_with_the_job(s: Setup, worker: tokio::task::JoinHandle<()>) {
    s.store.flush().unwrap();
    assert!(
        !s.store.exists(&s.key).unwrap(),
        "the job's end evicts its object"
    );
    worker.abort();
    drop(s.owner);
    s.store.flush().unwrap();
    borrowstore_testkit::assert_empty(&s.store);
}

/// An owner moved into a job: the object outlives the submitter's handle
/// and a failed attempt (the retry reads it again; the job's function
/// could not turn its owner into a ticket), and is evicted when the job
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_moved_into_a_job_lives_until_the_job_succeeds() {
    let mut s = setup().await;
    let (storage, mut id) = submit_owner(&mut s).await;
    let script = Script {
        fail_first: 1,
        ..Script::default()
    };
    let worker = start_owner_worker(&storage, &script, JobBorrowsLayer::new(&storage));

    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(done.attempt, 2);
    assert_eq!(*script.seen.lock().unwrap(), vec![(10, 0), (10, 0)]);
    assert_evicted_with_the_job(s, worker);
}

/// An owner moved into a job whose attempts are exhausted: its object is
/// evicted with the job's final failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_moved_into_a_job_is_evicted_when_its_attempts_are_exhausted() {
    let mut s = setup().await;
    let (storage, mut id) = submit_owner(&mut s).await;
    let script = Script {
        fail_first: usize::MAX,
        ..Script::default()
    };
    let worker = start_owner_worker(
        &storage,
        &script,
        JobBorrowsLayer::new(&storage).max_attempts(2),
    );

    let dead = recorded(&mut id, Status::Killed).await;
    assert_eq!(dead.attempt, 2, "{:?}", dead.result);
    assert_evicted_with_the_job(s, worker);
}

/// An owner of a file store cannot go to a job: a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_of_a_file_store_is_refused() {
    let s = setup().await;
    let dir = std::env::temp_dir().join(unique_name("apalis-file-owner"));
    let files = Store::open(&format!("file://{}", dir.display())).unwrap();
    let owner = files.owned_proxy(vec![5u64, 6]).unwrap();
    let conn = apalis_redis::connect(s._server.base_url()).await.unwrap();
    let mut storage: OwnerStorage =
        RedisStorage::new(conn).with_config(s.storage.get_config().clone());
    match submit_job(&mut storage, owner).await {
        Err(Error::Malformed { what, reason }) => {
            assert_eq!(what, "job argument");
            assert!(reason.contains("file://"), "{reason}");
        }
        other => panic!("expected the owner to be refused, got {other:?}"),
    }
    drop(files);
    let _ = std::fs::remove_dir_all(&dir);
}

/// [`start_worker_with`], with a `tower` time-out of `limit` per attempt
/// inside the layer (as the module docs ask).
fn start_timed_worker(
    storage: &Storage,
    script: &Script,
    layer: JobBorrowsLayer,
    limit: Duration,
) -> tokio::task::JoinHandle<()> {
    let worker = WorkerBuilder::new(unique_name("worker"))
        .backend(storage.clone())
        .layer(layer)
        .layer(tower::timeout::TimeoutLayer::new(limit))
        .data(script.clone())
        .build(sum);
    tokio::spawn(async move {
        let _ = worker.run().await;
    })
}

/// An attempt that times out (a `tower` time-out inside the layer drops
/// it) is a failure that apalis-redis retries: the retry reads under the
/// same borrow, which ends when it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_is_retried_under_its_borrow() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script {
        stall_first: 1,
        ..Script::default()
    };
    let worker = start_timed_worker(
        &s.storage,
        &script,
        JobBorrowsLayer::new(&s.storage),
        Duration::from_millis(500),
    );

    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(done.attempt, 2, "the timed-out attempt was the first");
    assert_eq!(script.started.load(Ordering::SeqCst), 2);
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1)],
        "the retry reads under the job's borrow"
    );
    worker.abort();
    assert_over(s);
}

/// A job whose last attempt times out is dead, and its borrow ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_last_attempt_times_out_ends_its_borrow() {
    let mut s = setup().await;
    let mut id = submit(&mut s).await;
    let script = Script {
        stall_first: usize::MAX,
        ..Script::default()
    };
    let worker = start_timed_worker(
        &s.storage,
        &script,
        JobBorrowsLayer::new(&s.storage).max_attempts(1),
        Duration::from_millis(500),
    );

    let dead = recorded(&mut id, Status::Killed).await;
    assert_eq!(dead.attempt, 1);
    assert!(
        dead.result.as_ref().is_err_and(|e| e.contains("timed out")),
        "{:?}",
        dead.result
    );
    assert_over(s);
    worker.abort();
}

/// A job whose argument is a mutable borrow.
type WriterStorage = RedisStorage<Job<RefMutProxy<Vec<u64>>>>;

/// The job of a writer: records the sum it found and the length of the
/// stored value after its `update_async` (which a job's writer stages:
/// nothing is published before the job succeeds), then appends a 0 that
/// its drop publishes. Fails, or panics, as `script` says.
async fn append(job: Job<RefMutProxy<Vec<u64>>>, script: Data<Script>) -> Result<u64, BoxDynError> {
    let mut w = job.into_args()?;
    let found: u64 = RefMutProxy::resolve_async(&w).await?.iter().sum();
    let attempt = script.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    w.push(100 + attempt as u64);
    update_async(&mut w).await?;
    let stored: Vec<u64> = RefMutProxy::store(&w)
        .get_async(RefMutProxy::key(&w))
        .await?
        .unwrap_or_default();
    let own = RefMutProxy::resolve_async(&w).await?.last().copied();
    assert_eq!(own, Some(100 + attempt as u64), "a writer reads its change");
    script
        .seen
        .lock()
        .unwrap()
        .push((found, stored.len() as u32));
    w.push(0);
    if script.panic {
        panic!("the writer panics");
    }
    if attempt <= script.fail_first {
        return Err(format!("attempt {attempt} fails").into());
    }
    Ok(attempt as u64)
}

/// Hands a mutable borrow of `s`'s object, with `change` pushed onto it,
/// to a job on a queue of `s`'s config, and starts a worker for it.
/// Returns the storage, the job, the worker and the object's version
/// after the hand-over.
async fn submit_writer(
    s: &mut Setup,
    change: u64,
    script: &Script,
    layer: JobBorrowsLayer,
) -> (
    WriterStorage,
    JobHandle<RefMutProxy<Vec<u64>>>,
    tokio::task::JoinHandle<()>,
    u64,
) {
    let conn = apalis_redis::connect(s._server.base_url()).await.unwrap();
    let mut storage: WriterStorage =
        RedisStorage::new(conn).with_config(s.storage.get_config().clone());
    let mut w = mut_borrow(&s.owner).unwrap();
    w.push(change);
    let id = submit_job(&mut storage, w).await.unwrap();
    s.store.flush().unwrap();
    assert!(
        matches!(borrow(&s.owner), Err(Error::AlreadyMutablyBorrowed { .. })),
        "the queued job holds the mutable borrow"
    );
    let info = s.store.inspect(&s.key).unwrap().unwrap();
    assert_eq!(
        s.store.get::<Vec<u64>>(&s.key).unwrap().unwrap(),
        vec![1, 2, 3, 4, change],
        "the hand-over publishes the submitter's change"
    );
    let worker = WorkerBuilder::new(unique_name("worker"))
        .backend(storage.clone())
        .layer(layer)
        .data(script.clone())
        .build(append);
    let worker = tokio::spawn(async move {
        let _ = worker.run().await;
    });
    (storage, id, worker, info.version)
}

/// A job's mutable borrow publishes once, when the job succeeds: the
/// failed first attempt's change (its `update_async` and its drop) is
/// dropped, the retry starts from the value the submitter handed over,
/// and only the successful attempt's change is published — in one
/// version, before the borrow ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_writer_publishes_its_change_once_when_the_job_succeeds() {
    let mut s = setup().await;
    let script = Script {
        fail_first: 1,
        ..Script::default()
    };
    let layer = JobBorrowsLayer::new(&s.storage);
    let (_storage, mut id, worker, version) = submit_writer(&mut s, 5, &script, layer).await;

    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(2));
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(15, 5), (15, 5)],
        "each attempt starts from the handed-over value, which stays stored while it runs"
    );
    assert_eq!(
        s.store.get::<Vec<u64>>(&s.key).unwrap().unwrap(),
        vec![1, 2, 3, 4, 5, 102, 0],
        "the successful attempt's change, and only it"
    );
    assert_eq!(
        s.store.inspect(&s.key).unwrap().unwrap().version,
        version + 1,
        "published once"
    );
    worker.abort();
    assert_over(s);
}

/// A job's writer that panics publishes nothing: the object keeps the
/// version handed over, and the borrow ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_writer_publishes_nothing() {
    let mut s = setup().await;
    let script = Script {
        panic: true,
        ..Script::default()
    };
    let layer = JobBorrowsLayer::new(&s.storage);
    let (_storage, mut id, worker, version) = submit_writer(&mut s, 5, &script, layer).await;

    recorded(&mut id, Status::Killed).await;
    assert_eq!(
        s.store.get::<Vec<u64>>(&s.key).unwrap().unwrap(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(s.store.inspect(&s.key).unwrap().unwrap().version, version);
    worker.abort();
    assert_over(s);
}

/// A job's writer whose attempts are exhausted publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_writer_publishes_nothing() {
    let mut s = setup().await;
    let script = Script {
        fail_first: usize::MAX,
        ..Script::default()
    };
    let layer = JobBorrowsLayer::new(&s.storage).max_attempts(2);
    let (_storage, mut id, worker, version) = submit_writer(&mut s, 5, &script, layer).await;

    let dead = recorded(&mut id, Status::Killed).await;
    assert_eq!(dead.attempt, 2);
    assert_eq!(*script.seen.lock().unwrap(), vec![(15, 5), (15, 5)]);
    assert_eq!(
        s.store.get::<Vec<u64>>(&s.key).unwrap().unwrap(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(s.store.inspect(&s.key).unwrap().unwrap().version, version);
    worker.abort();
    assert_over(s);
}

/// On a Redis Cluster (the store's objects and the queue both on it, the
/// queue named with `cluster_queue`): the job holds its borrow while
/// queued, the worker reads through it, and the borrow ends when the job
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_job_borrow_ends_when_the_job_succeeds() {
    let cluster = RedisCluster::start();
    let store = Store::open(&cluster.url(&unique_name("apalis"), "lease_ms=120000")).unwrap();
    let owner = store.owned_proxy(vec![1u64, 2, 3, 4]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let nodes: Vec<String> = cluster
        .ports()
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}/"))
        .collect();
    let conn = redis::cluster::ClusterClient::new(nodes)
        .unwrap()
        .get_async_connection()
        .await
        .unwrap();
    let config = Config::default()
        .queue(cluster_queue(&unique_name("sums")))
        .heartbeat_interval(Duration::from_secs(1));
    let mut storage: Storage<_> = RedisStorage::new(conn).with_config(config);

    let mut id = submit_job(&mut storage, borrow(&owner).unwrap())
        .await
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 1);
    let script = Script::default();
    let worker = start_worker(&storage, &script);

    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(*script.seen.lock().unwrap(), vec![(10, 1)]);
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 0);
    drop(mut_borrow(&owner).unwrap());
    worker.abort();
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_job_is_rerun_with_the_same_borrow() {
    kill_a_worker_with_a_job(false).await;
}

/// The worker's layer has ended the job's attempt, but the worker dies
/// before it sends the outcome to the queue (apalis sends them later, in
/// batches): the job keeps its borrow, and the queue's next delivery runs
/// it under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_dies_before_its_outcome_is_recorded_is_rerun_with_the_same_borrow() {
    kill_a_worker_with_a_job(true).await;
}

/// The environment of a worker process started by
/// [`kill_a_worker_with_a_job`]: store URL, Redis URL, queue. With
/// [`CHILD_NEVER_ACKS`] set it runs its job at once, and never sends the
/// outcome to the queue.
const CHILD_ENV: [&str; 3] = [
    "BORROWSTORE_APALIS_CHILD_STORE",
    "BORROWSTORE_APALIS_CHILD_REDIS",
    "BORROWSTORE_APALIS_CHILD_QUEUE",
];

/// The job of the worker process: says that it runs (and how many readers
/// the object has), then takes a minute — it is killed meanwhile.
async fn slow_sum(job: Job<RefProxy<Vec<u64>>>) -> Result<u64, BoxDynError> {
    let v = job.into_args()?;
    let readers = RefProxy::store(&v)
        .inspect_async(RefProxy::key(&v))
        .await?
        .map_or(0, |i| i.readers);
    println!("RUNNING {readers}");
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(v.iter().sum())
}

const CHILD_NEVER_ACKS: &str = "BORROWSTORE_APALIS_CHILD_NEVER_ACKS";

/// The job of the worker process that never acknowledges: says that it
/// runs, and succeeds.
async fn quick_sum(job: Job<RefProxy<Vec<u64>>>) -> Result<u64, BoxDynError> {
    let v = job.into_args()?;
    println!("RUNNING");
    Ok(RefProxy::resolve_async(&v).await?.iter().sum())
}

/// A service outside `JobBorrowsLayer` that, once the job has succeeded,
/// says so and never returns: its worker never sends the outcome to the
/// queue, as a worker killed between the two would not.
#[derive(Clone)]
struct NeverAcks<S>(S);

impl<S, R> tower::Service<R> for NeverAcks<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            if fut.await.is_ok() {
                println!("FINISHED");
            }
            std::future::pending().await
        })
    }
}

fn orphan_config(queue: &str) -> Config {
    Config::default()
        .queue(queue)
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(2)
}

/// Not a test of its own: the worker process of
/// [`kill_a_worker_with_a_job`] (does nothing without its environment).
#[test]
#[ignore = "run as a child process by another test"]
fn child_worker() {
    let [Ok(store_url), Ok(redis_url), Ok(queue)] = CHILD_ENV.map(std::env::var) else {
        return;
    };
    let never_acks = std::env::var(CHILD_NEVER_ACKS).is_ok();
    let _store = Store::open(&store_url).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let conn = apalis_redis::connect(redis_url).await.unwrap();
        let storage: Storage = RedisStorage::new(conn).with_config(orphan_config(&queue));
        let layer = JobBorrowsLayer::new(&storage);
        let worker = WorkerBuilder::new(unique_name("child-worker")).backend(storage);
        if never_acks {
            let worker = worker
                .layer(tower::layer::layer_fn(NeverAcks))
                .layer(layer)
                .build(quick_sum);
            let _ = worker.run().await;
        } else {
            let _ = worker.layer(layer).build(slow_sum).run().await;
        }
    });
}

/// A worker process is SIGKILLed while it runs a job (`finished`: after the
/// job succeeded, before the worker sent the outcome to the queue):
/// apalis-redis re-queues the job once the worker misses its heartbeats, a
/// worker in this process runs it again under the same borrow (not a spent
/// ticket), and the borrow ends when that run succeeds.
async fn kill_a_worker_with_a_job(finished: bool) {
    let server = RedisServer::start();
    let store_url = server.url(&unique_name("apalis"), "lease_ms=120000");
    let store = Store::open(&store_url).unwrap();
    let owner = store.owned_proxy(vec![1u64, 2, 3, 4]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let queue = unique_name("orphans");
    let conn = apalis_redis::connect(server.base_url()).await.unwrap();
    let mut storage: Storage = RedisStorage::new(conn).with_config(orphan_config(&queue));
    let mut id = submit_job(&mut storage, borrow(&owner).unwrap())
        .await
        .unwrap();

    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_worker",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV[0], &store_url)
    .env(CHILD_ENV[1], server.base_url())
    .env(CHILD_ENV[2], &queue)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if finished {
        cmd.env(CHILD_NEVER_ACKS, "1");
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let marker = if finished { "FINISHED" } else { "RUNNING" };
    let running = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // (after the harness's "test child_worker ... ", on its line)
            .find_map(|l| l.find(marker).map(|at| l[at..].to_owned()))
    });
    let line = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the worker process did not get that far with the job within 60 s")
        .unwrap();
    if !finished {
        assert_eq!(
            line.as_deref(),
            Some("RUNNING 1"),
            "the first run reads under the borrow"
        );
    }
    assert!(line.is_some());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        store.inspect(&key).unwrap().unwrap().readers,
        1,
        "killed before the queue recorded the outcome, the job keeps its borrow"
    );

    let script = Script::default();
    let worker = start_worker_with(&storage, &script, JobBorrowsLayer::new(&storage));
    let done = recorded(&mut id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1)],
        "the rerun reads under the same borrow"
    );
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 0);
    drop(mut_borrow(&owner).unwrap());
    worker.abort();
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
}

/// The environment of `child_submitter`: the server, the queue, a borrow
/// ticket (hex), whether to wait to be killed, and the store (opened, so
/// that the process trusts it).
const SUBMITTER_ENV: [&str; 5] = [
    "BORROWSTORE_APALIS_SUBMITTER_REDIS",
    "BORROWSTORE_APALIS_SUBMITTER_QUEUE",
    "BORROWSTORE_APALIS_SUBMITTER_TICKET",
    "BORROWSTORE_APALIS_SUBMITTER_STAY",
    "BORROWSTORE_APALIS_SUBMITTER_STORE",
];

/// Not a test of its own: the fire-and-forget submitter process of
/// `a_fire_and_forget_submitter_*` (does nothing without its environment).
/// It redeems the borrow ticket it is given, submits a job with the
/// borrow, prints the job's id and exits — or, if told to stay, waits to
/// be killed.
#[test]
#[ignore = "run as a child process by another test"]
fn child_submitter() {
    let [Ok(redis_url), Ok(queue), Ok(ticket), Ok(store_url)] =
        [0, 1, 2, 4].map(|i| std::env::var(SUBMITTER_ENV[i]))
    else {
        return;
    };
    let _store = Store::open(&store_url).unwrap();
    let stay = std::env::var(SUBMITTER_ENV[3]).is_ok();
    let bytes = unhex(&ticket).expect("the ticket is hex");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let r = borrowstore::BorrowTicket::<Vec<u64>>::from_bytes(&bytes)
            .unwrap()
            .redeem_async()
            .await
            .unwrap();
        let conn = apalis_redis::connect(redis_url).await.unwrap();
        let mut storage: Storage =
            RedisStorage::new(conn).with_config(Config::default().queue(queue));
        let job = submit_job(&mut storage, r).await.unwrap();
        println!("SUBMITTED {}", job.id());
        if stay {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    });
}

/// A submitter process (store lease 2 s) hands a borrow to a job and
/// exits, or is SIGKILLed: the job keeps the borrow for more than two of
/// the submitter's leases while it waits for a worker, reads under it,
/// and the borrow ends with the job.
async fn a_fire_and_forget_submitter_leaves_its_job_the_borrow(killed: bool) {
    let server = RedisServer::start();
    let store_url = server.url(&unique_name("apalis"), "lease_ms=2000");
    let store = Store::open(&store_url).unwrap();
    let owner = store.owned_proxy(vec![1u64, 2, 3, 4]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let queue = unique_name("forgotten");
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_submitter",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(SUBMITTER_ENV[0], server.base_url())
    .env(SUBMITTER_ENV[1], &queue)
    .env(SUBMITTER_ENV[2], hex(&ticket))
    .env(SUBMITTER_ENV[4], &store_url)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if killed {
        cmd.env(SUBMITTER_ENV[3], "1");
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    // The id, as soon as it is printed; the rest of the output is drained
    // (a closed pipe would fail the submitter's harness as it exits).
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(at) = line.find("SUBMITTED ")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(line[at + 10..].trim().to_owned());
            }
        }
    });
    let id = tokio::time::timeout(Duration::from_secs(60), rx)
        .await
        .expect("the submitter did not submit within 60 s")
        .expect("the submitter ended without submitting");
    if killed {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    assert_eq!(status.success(), !killed, "{status}");

    // More than two of the submitter's leases: its process lease is over.
    tokio::time::sleep(Duration::from_secs(5)).await;
    drop(borrow(&owner).unwrap()); // applies the deadlines past
    store.flush().unwrap();
    assert_eq!(
        store.inspect(&key).unwrap().unwrap().readers,
        1,
        "the job holds the borrow its gone submitter gave it"
    );

    let conn = apalis_redis::connect(server.base_url()).await.unwrap();
    let storage: Storage = RedisStorage::new(conn).with_config(
        Config::default()
            .queue(queue)
            .heartbeat_interval(Duration::from_secs(1)),
    );
    let script = Script::default();
    let worker = start_worker(&storage, &script);
    let mut job = JobHandle::from_id(storage, id.parse().unwrap());
    let done = recorded(&mut job, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(*script.seen.lock().unwrap(), vec![(10, 1)]);
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 0);
    worker.abort();
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_and_forget_submitter_that_exits_leaves_its_job_the_borrow() {
    a_fire_and_forget_submitter_leaves_its_job_the_borrow(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_and_forget_submitter_that_is_killed_leaves_its_job_the_borrow() {
    a_fire_and_forget_submitter_leaves_its_job_the_borrow(true).await;
}

/// 1,000 jobs borrow one object, run by two workers: every job succeeds,
/// and once the last is over the object has no borrow, and dropping its
/// owner leaves the namespace with no object and no claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_leave_no_object_and_no_claim() {
    let mut s = setup().await;
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let r = borrow_async(&s.owner).await.unwrap();
        ids.push(submit_job(&mut s.storage, r).await.unwrap());
    }
    s.store.flush().unwrap();
    assert_eq!(readers(&s), 1000);
    let script = Script {
        skip_inspect: true,
        ..Script::default()
    };
    let workers = [
        start_worker(&s.storage, &script),
        start_worker(&s.storage, &script),
    ];
    let w = tokio::time::timeout(Duration::from_secs(120), mut_borrow_async(&s.owner))
        .await
        .expect("the jobs' borrows did not all end within 120 s")
        .unwrap();
    drop(w);
    assert_eq!(script.attempts.load(Ordering::SeqCst), 1000);
    assert!(
        script
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|&(total, _)| total == 10)
    );
    for id in &mut ids {
        assert_eq!(recorded(id, Status::Done).await.result, Ok(10));
    }
    for w in workers {
        w.abort();
    }
    drop(s.owner);
    s.store.flush().unwrap();
    borrowstore_testkit::assert_empty(&s.store);
}

/// `examples/apalis_jobs.rs` runs to its end on a private redis-server of
/// its own: 100 jobs borrow one object, one of the two worker processes is
/// killed mid-job, the other re-runs its job, and the object is evicted
/// once every job is over (the example checks every step itself and fails
/// otherwise).
#[test]
fn the_apalis_jobs_example_runs() {
    let example = example_binary("apalis_jobs");
    let out = Command::new(&example)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        out.status.success()
            && last.starts_with("Done. 100 jobs run")
            && last.ends_with("objects left in the store: 0."),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("worker-1 is killed (SIGKILL)"),
        "the example kills a worker:\n{stdout}"
    );
}

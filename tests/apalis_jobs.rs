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

use apalis_core::backend::{TaskResult, WaitForCompletion};
use apalis_core::error::{AbortError, BoxDynError};
use apalis_core::task::data::Data;
use apalis_core::task::status::Status;
use apalis_core::task::task_id::TaskId;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{Config, ConnectionLike, RedisStorage};
use borrowstore::submit::apalis::{
    Job, JobBorrowsLayer, cluster_queue, submit_job, submit_job_for,
};
use borrowstore::submit::remote::Portable;
use borrowstore::{
    Error, Key, OwnedProxy, RefProxy, Store, borrow, borrow_async, mut_borrow, mut_borrow_async,
};
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
    /// Do not count the object's readers (inspection returns every claim:
    /// with a thousand jobs, a thousand inspections would load the server).
    skip_inspect: bool,
    attempts: Arc<AtomicUsize>,
    /// Per attempt: the sum read, and the object's readers meanwhile.
    seen: Arc<Mutex<Vec<(u64, u32)>>>,
}

async fn sum(job: Job<RefProxy<Vec<u64>>>, script: Data<Script>) -> Result<u64, BoxDynError> {
    let v = job.into_args()?;
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
    start_worker_with(storage, script, JobBorrowsLayer::new())
}

/// [`start_worker`] with the layer `layer`.
fn start_worker_with<C>(
    storage: &Storage<C>,
    script: &Script,
    layer: JobBorrowsLayer,
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

/// Waits (up to 60 s) until apalis has recorded an outcome of job `id`
/// with `status`, and returns it.
async fn recorded<A, C>(
    storage: &mut RedisStorage<Job<A>, C>,
    id: &TaskId,
    status: Status,
) -> TaskResult<u64>
where
    A: Portable + Send + Sync + Unpin + 'static,
    A::Wire: Send + Sync + Unpin + 'static,
    C: ConnectionLike + Send + Sync + Clone + Unpin + 'static,
{
    let mut last = Vec::new();
    for _ in 0..600 {
        let results = WaitForCompletion::<u64>::check_status(storage, [id.clone()])
            .await
            .unwrap();
        if let Some(r) = results.iter().find(|r| *r.status() == status) {
            return r.clone();
        }
        last = results;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last: Vec<_> = last
        .iter()
        .map(|r| (r.status().clone(), r.attempt, r.result.clone()))
        .collect();
    panic!("apalis did not record job {id} as {status}; last recorded: {last:?}");
}

fn readers(s: &Setup) -> u32 {
    s.store.inspect(&s.key).unwrap().unwrap().readers
}

/// Submits one job that borrows the object; checks that the job holds the
/// borrow while it is queued (the submitter holds nothing of it).
async fn submit(s: &mut Setup) -> TaskId {
    let id = submit_job(&mut s.storage, borrow(&s.owner).unwrap())
        .await
        .unwrap();
    s.store.flush().unwrap();
    assert_eq!(readers(s), 1, "the queued job holds its borrow");
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
    let id = submit(&mut s).await;
    let script = Script::default();
    let worker = start_worker(&s.storage, &script);

    // A waiting writer gets the object once the job is over.
    let w = tokio::time::timeout(Duration::from_secs(30), mut_borrow_async(&s.owner))
        .await
        .expect("the job's borrow did not end within 30 s")
        .unwrap();
    drop(w);
    let done = recorded(&mut s.storage, &id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1)],
        "one attempt, under the borrow"
    );
    worker.abort();
    assert_over(s);
}

/// A failed attempt that apalis-redis retries keeps the job's borrow: the
/// second attempt (a new delivery from the queue) reads under it, and the
/// borrow ends only when that attempt succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_job_keeps_its_borrow_until_it_succeeds() {
    let mut s = setup().await;
    let id = submit(&mut s).await;
    let script = Script {
        fail_first: 1,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let done = recorded(&mut s.storage, &id, Status::Done).await;
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
    let id = submit(&mut s).await;
    let script = Script {
        fail_first: usize::MAX,
        ..Script::default()
    };
    let worker = start_worker_with(&s.storage, &script, JobBorrowsLayer::new().max_attempts(2));

    let dead = recorded(&mut s.storage, &id, Status::Killed).await;
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
    let id = submit_job_for(
        &mut s.storage,
        borrow(&s.owner).unwrap(),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    let script = Script {
        takes: Duration::from_secs(4),
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let done = recorded(&mut s.storage, &id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(
        *script.seen.lock().unwrap(),
        vec![(10, 1)],
        "after 4 s the job still holds its borrow"
    );
    worker.abort();
    assert_over(s);
}

/// A job that waits in the queue past its borrows' lease (no worker
/// renews them) loses them; delivered later, it is killed without running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_borrow_ran_out_is_killed_without_running() {
    let mut s = setup().await;
    let id = submit_job_for(
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
    let killed = recorded(&mut s.storage, &id, Status::Killed).await;
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
    let id = submit(&mut s).await;
    let script = Script {
        abort: true,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let killed = recorded(&mut s.storage, &id, Status::Killed).await;
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
    let id = submit(&mut s).await;
    let script = Script {
        panic: true,
        ..Script::default()
    };
    let worker = start_worker(&s.storage, &script);

    let killed = recorded(&mut s.storage, &id, Status::Killed).await;
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
async fn submit_owner(s: &mut Setup) -> (OwnerStorage, TaskId) {
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

/// An owner moved into a job: the object outlives the submitter's handle
/// and a failed attempt (the retry reads it again; the job's function
/// could not turn its owner into a ticket), and is evicted when the job
/// succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_moved_into_a_job_lives_until_the_job_succeeds() {
    let mut s = setup().await;
    let (mut storage, id) = submit_owner(&mut s).await;
    let script = Script {
        fail_first: 1,
        ..Script::default()
    };
    let worker = start_owner_worker(&storage, &script, JobBorrowsLayer::new());

    let done = recorded(&mut storage, &id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(done.attempt, 2);
    assert_eq!(*script.seen.lock().unwrap(), vec![(10, 0), (10, 0)]);
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

/// An owner moved into a job whose attempts are exhausted: its object is
/// evicted with the job's final failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_moved_into_a_job_is_evicted_when_its_attempts_are_exhausted() {
    let mut s = setup().await;
    let (mut storage, id) = submit_owner(&mut s).await;
    let script = Script {
        fail_first: usize::MAX,
        ..Script::default()
    };
    let worker = start_owner_worker(&storage, &script, JobBorrowsLayer::new().max_attempts(2));

    let dead = recorded(&mut storage, &id, Status::Killed).await;
    assert_eq!(dead.attempt, 2, "{:?}", dead.result);
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

    let id = submit_job(&mut storage, borrow(&owner).unwrap())
        .await
        .unwrap();
    store.flush().unwrap();
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 1);
    let script = Script::default();
    let worker = start_worker(&storage, &script);

    let done = recorded(&mut storage, &id, Status::Done).await;
    assert_eq!(done.result, Ok(10));
    assert_eq!(*script.seen.lock().unwrap(), vec![(10, 1)]);
    assert_eq!(store.inspect(&key).unwrap().unwrap().readers, 0);
    drop(mut_borrow(&owner).unwrap());
    worker.abort();
    drop(owner);
    store.flush().unwrap();
    assert!(!store.exists(&key).unwrap());
}

/// The environment of a worker process started by
/// `a_killed_worker_job_is_rerun_with_the_same_borrow`: store URL, Redis URL,
/// queue.
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

fn orphan_config(queue: &str) -> Config {
    Config::default()
        .queue(queue)
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(2)
}

/// Not a test of its own: the worker process of
/// `a_killed_worker_job_is_rerun_with_the_same_borrow` (does nothing
/// without its environment).
#[test]
#[ignore = "run as a child process by another test"]
fn child_worker() {
    let [Ok(store_url), Ok(redis_url), Ok(queue)] = CHILD_ENV.map(std::env::var) else {
        return;
    };
    let _store = Store::open(&store_url).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let conn = apalis_redis::connect(redis_url).await.unwrap();
        let storage: Storage = RedisStorage::new(conn).with_config(orphan_config(&queue));
        let worker = WorkerBuilder::new(unique_name("child-worker"))
            .backend(storage)
            .layer(JobBorrowsLayer::new())
            .build(slow_sum);
        let _ = worker.run().await;
    });
}

/// A worker process is SIGKILLed while it runs a job: apalis-redis
/// re-queues the job once the worker misses its heartbeats, a worker in
/// this process runs it again under the same borrow (not a spent ticket),
/// and the borrow ends when that run succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_job_is_rerun_with_the_same_borrow() {
    let server = RedisServer::start();
    let store_url = server.url(&unique_name("apalis"), "lease_ms=120000");
    let store = Store::open(&store_url).unwrap();
    let owner = store.owned_proxy(vec![1u64, 2, 3, 4]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let queue = unique_name("orphans");
    let conn = apalis_redis::connect(server.base_url()).await.unwrap();
    let mut storage: Storage = RedisStorage::new(conn).with_config(orphan_config(&queue));
    let id = submit_job(&mut storage, borrow(&owner).unwrap())
        .await
        .unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
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
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            // (after the harness's "test child_worker ... ", on its line)
            .find_map(|l| l.find("RUNNING").map(|at| l[at..].to_owned()))
    });
    let line = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .expect("the worker process did not start the job within 60 s")
        .unwrap();
    assert_eq!(
        line.as_deref(),
        Some("RUNNING 1"),
        "the first run reads under the borrow"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        store.inspect(&key).unwrap().unwrap().readers,
        1,
        "killed mid-job, the job keeps its borrow"
    );

    let script = Script::default();
    let worker = start_worker_with(&storage, &script, JobBorrowsLayer::new());
    let done = recorded(&mut storage, &id, Status::Done).await;
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
    for id in &ids {
        assert_eq!(
            recorded(&mut s.storage, id, Status::Done).await.result,
            Ok(10)
        );
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
    // Integration tests are in target/<profile>/deps/, examples in
    // target/<profile>/examples/; `cargo test` builds both.
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("apalis_jobs"))
        .unwrap();
    if !example.exists() {
        panic!(
            "{} is not built (cargo test builds the examples; or cargo build --features \
             apalis --example apalis_jobs)",
            example.display()
        );
    }
    let start = std::time::Instant::now();
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
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "the example took {:?}",
        start.elapsed()
    );
}

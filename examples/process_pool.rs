//! A process pool whose tasks get borrows — released as soon as the result
//! returns.
//!
//! ```text
//! cargo run --example process_pool                      # a file store in a temp dir
//! cargo run --example process_pool -- --redis redis://127.0.0.1:6379/0
//! cargo run --example process_pool -- --workers 4
//! ```
//!
//! The parent starts worker processes — this same program again, with
//! `--worker <store URL>` — and sends them tasks over their stdin, one line each:
//! `<task> <request hex>`; a worker answers with one line, `<reply hex>`.
//! The bytes are made and read by `borrowstore::submit::remote`:
//!
//! - the parent keeps every borrow among the arguments for the length of
//!   the task ([`RemoteCall::new`]) and sends a *view* of it;
//! - the worker reads (or, for a mutable borrow, publishes) under the
//!   parent's claim, and its view is invalid after the task ([`serve`]);
//! - when the reply arrives the parent ends the borrows and waits until the
//!   store has applied the release before it returns the result
//!   ([`RemoteCall::finish`]): the borrow count is back at zero as soon as
//!   the result is there;
//! - a worker that dies holds nothing: [`RemoteCall::abandon`] ends the
//!   borrows at once, with no lease to wait out.
//!
//! The parent prints the borrow count the store records before, during and
//! right after each task.

use std::error::Error as StdError;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use borrowstore::submit::remote::{Portable, RemoteCall, serve};
use borrowstore::{Key, OwnedProxy, RefMutProxy, RefProxy, Store, borrow, mut_borrow};

type BoxError = Box<dyn StdError + Send + Sync>;
type V = Vec<u64>;

/// How long the parent waits for a worker's reply.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long the "sum" task takes, so that the parent can look during it.
const TASK_TIME: Duration = Duration::from_millis(300);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--worker") {
        worker(args.get(1).map_or("", String::as_str))
    } else {
        parent(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

// --------------------------------------------------------------- worker

/// Serves tasks on the store at `url` from stdin until it closes.
fn worker(url: &str) -> Result<(), BoxError> {
    // Requests may connect this process to the store its parent named.
    borrowstore::trust::allow(url)?;
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let Some((task, hex)) = line.split_once(' ') else {
            continue;
        };
        let request = unhex(hex)?;
        let reply = match task {
            // The sum, and the borrow count the worker sees during the task.
            "sum" => serve(&request, |r: RefProxy<V>| {
                std::thread::sleep(TASK_TIME);
                (
                    r.iter().sum::<u64>(),
                    readers(RefProxy::store(&r), RefProxy::key(&r)),
                )
            }),
            // Appends a value under the parent's mutable borrow.
            "push" => serve(&request, |(mut w, n): (RefMutProxy<V>, u64)| {
                w.push(n);
                w.len() as u64
            }),
            // Makes a new object; its owner moves to the parent.
            "square" => serve(&request, |r: RefProxy<V>| {
                let squares: V = r.iter().map(|x| x * x).collect();
                RefProxy::store(&r)
                    .owned_proxy(squares)
                    .expect("store the squares")
            }),
            // Never answers (the parent kills this worker).
            "hang" => serve(&request, |_r: RefProxy<V>| {
                std::thread::sleep(Duration::from_secs(3600));
            }),
            other => return Err(format!("unknown task {other:?}").into()),
        };
        writeln!(out, "{}", to_hex(&reply))?;
        out.flush()?;
    }
    Ok(())
}

// --------------------------------------------------------------- parent

/// One worker process; killed and reaped when dropped.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
}

impl Worker {
    /// Starts a worker for the store at `url`.
    fn start(url: &str) -> Result<Worker, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--worker", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            replies,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the task; `false` if the worker is gone.
    fn send<R>(&mut self, task: &str, call: &RemoteCall<R>) -> bool {
        writeln!(self.stdin, "{task} {}", to_hex(call.request())).is_ok()
            && self.stdin.flush().is_ok()
    }

    /// Waits for the reply; `None` if the worker died or took too long.
    /// `during` runs once while the task is still running.
    fn reply(&mut self, mut during: impl FnMut()) -> Option<Vec<u8>> {
        let deadline = Instant::now() + TIMEOUT;
        let mut looked = false;
        loop {
            match self.replies.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => return unhex(&line).ok(),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) if Instant::now() > deadline => return None,
                Err(RecvTimeoutError::Timeout) => {
                    if !looked {
                        during();
                        looked = true;
                    }
                }
            }
        }
    }

    /// Runs `task` on `args` in this worker; the borrows among `args` have
    /// ended store-side when this returns, whatever happened.
    fn run<A: Portable, R: Portable>(
        &mut self,
        task: &str,
        args: A,
        during: impl FnMut(),
    ) -> Result<R, BoxError> {
        let call = RemoteCall::<R>::new(args)?;
        if !self.send(task, &call) {
            call.abandon()?;
            return Err("the worker is gone".into());
        }
        match self.reply(during) {
            Some(reply) => Ok(call.finish(&reply)?),
            None => {
                call.abandon()?;
                Err("the worker died or did not answer".into())
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

/// The store-side count of shared borrows of `key`.
fn readers(store: &Store, key: &Key) -> u32 {
    store.inspect(key).ok().flatten().map_or(0, |i| i.readers)
}

fn writer(store: &Store, key: &Key) -> bool {
    store.inspect(key).ok().flatten().is_some_and(|i| i.writer)
}

fn parent(args: &[String]) -> Result<(), BoxError> {
    let mut redis = None;
    let mut workers = 2usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--redis" => redis = Some(it.next().ok_or("--redis needs a URL")?.clone()),
            "--workers" => workers = it.next().ok_or("--workers needs a number")?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let pid = std::process::id();
    let (url, dir) = match &redis {
        Some(base) => {
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}ns=process-pool-{pid}"), None)
        }
        None => {
            let dir = std::env::temp_dir().join(format!("borrowstore-process-pool-{pid}"));
            (format!("file://{}", dir.display()), Some(dir))
        }
    };
    let result = run(&url, workers.max(1));
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

fn run(url: &str, workers: usize) -> Result<(), BoxError> {
    let store = Store::open(url)?;
    println!("store: {url}");
    let mut pool = (0..workers)
        .map(|_| Worker::start(url))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "workers: {}",
        pool.iter()
            .map(|w| w.pid().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let owner = store.owned_proxy((1..=1000).collect::<V>())?;
    let key = *OwnedProxy::key(&owner);
    println!("\nobject {key}: 1000 values");

    // A shared borrow, in each worker in turn.
    for (i, w) in pool.iter_mut().enumerate() {
        println!("\n[task {i}] sum in worker {}", w.pid());
        println!(
            "  before submit:                readers = {}",
            readers(&store, &key)
        );
        let (sum, seen): (u64, u32) = w.run("sum", borrow(&owner)?, || {
            println!(
                "  during the task (submitter):  readers = {}",
                readers(&store, &key)
            );
        })?;
        let after = readers(&store, &key);
        println!("  during the task (worker):     readers = {seen}");
        println!("  result:                       sum = {sum}");
        println!("  right after the result:       readers = {after}");
        assert_eq!(after, 0, "the borrow must have ended");
    }

    // A mutable borrow: the worker publishes under the submitter's claim.
    let w = &mut pool[0];
    println!("\n[push] mutable borrow in worker {}", w.pid());
    let len: u64 = w.run("push", (mut_borrow(&owner)?, 1001u64), || {})?;
    println!(
        "  result: {len} values; right after: readers = {}, writer = {}; the submitter sees {} values",
        readers(&store, &key),
        writer(&store, &key),
        borrow(&owner)?.len()
    );

    // An owner made in a worker moves to the submitter, exactly once.
    let w = &mut pool[workers - 1];
    let squares: OwnedProxy<V> = w.run("square", borrow(&owner)?, || {})?;
    let squares_key = *OwnedProxy::key(&squares);
    println!(
        "\n[square] worker {} made object {squares_key} ({} values); its owner is now in this process",
        w.pid(),
        squares.len()
    );
    drop(squares);
    store.flush()?;
    println!("  dropped here: evicted = {}", !store.exists(&squares_key)?);

    // A worker that dies mid-task holds nothing.
    let mut doomed = Worker::start(store.url())?;
    println!(
        "\n[hang] worker {} gets a task that never ends",
        doomed.pid()
    );
    let call = RemoteCall::<()>::new(borrow(&owner)?)?;
    if !doomed.send("hang", &call) {
        return Err("the worker is gone".into());
    }
    std::thread::sleep(Duration::from_millis(200));
    println!(
        "  during the task:              readers = {}",
        readers(&store, &key)
    );
    doomed.child.kill()?;
    doomed.child.wait()?;
    call.abandon()?;
    println!(
        "  worker killed; right after abandon: readers = {} (no lease to wait out)",
        readers(&store, &key)
    );

    drop(owner);
    store.flush()?;
    let left = store.keys()?;
    println!("\nobjects left in the store: {}", left.len());
    if !left.is_empty() {
        return Err(format!("the store should be empty, holds {left:?}").into());
    }
    Ok(())
}

fn to_hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

fn unhex(s: &str) -> Result<Vec<u8>, BoxError> {
    if !s.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    (0..s.len() / 2)
        .map(|i| Ok(u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?))
        .collect()
}

//! Owners and borrows shared by real processes.
//!
//! ```text
//! cargo run --example multi_process                          # a file store in a temp dir
//! cargo run --example multi_process -- --redis redis://127.0.0.1:6379/0
//! cargo run --example multi_process -- --redis 'redis+cluster://127.0.0.1:7000,127.0.0.1:7001?lease_ms=5000'
//! cargo run --example multi_process -- --redis 'rediss://redis.example:6380/0?tls_ca=/etc/ca.pem'
//! ```
//!
//! The parent process owns an object and hands borrows and ownership to
//! worker processes — this same program, started again with `--worker …` —
//! as tickets: a few bytes sent over the worker's stdin. The ticket names
//! the store, and redeeming it connects to it — to a store the worker
//! trusts: a process lets arriving bytes reach only the stores it opened
//! itself, and those it allows, so each worker allows the one store its
//! parent names on its command line (`borrowstore::trust::allow(url)`).
//!
//! The rules are enforced by the store, not by any one process, so they hold
//! between processes: while workers hold borrows the parent's `mut_borrow` is
//! refused; an owner moved to a worker evicts the object when the worker
//! drops it; and a worker that is killed loses its borrow when its lease runs
//! out. After every step the parent prints what the store itself records.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use borrowstore::{
    BorrowTicket, Error, Key, OwnedProxy, OwnerTicket, RefProxy, Store, borrow, mut_borrow,
    mut_borrow_timeout, update,
};

type BoxError = Box<dyn StdError + Send + Sync>;

/// How many reader workers the parent starts.
const READERS: usize = 3;
/// The lease of the default file store: how long a killed worker's claims
/// survive it.
const FILE_LEASE_MS: u64 = 1000;
/// How long the parent waits for any one message from a worker.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return match worker(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                say("ERROR", &e.to_string());
                ExitCode::FAILURE
            }
        };
    }

    let (url, temp_dir) = match args.as_slice() {
        [] => {
            let dir = std::env::temp_dir()
                .join(format!("borrowstore-multi-process-{}", std::process::id()));
            let url = format!("file://{}?lease_ms={FILE_LEASE_MS}", dir.display());
            (url, Some(dir))
        }
        [flag, url] if flag == "--redis" => (url.clone(), None),
        _ => {
            eprintln!(
                "usage: multi_process [--redis redis://host:port/db | redis+cluster://host1:port1,host2:port2 | rediss://…]"
            );
            return ExitCode::from(2);
        }
    };

    let result = parent(&url);
    if let Some(dir) = temp_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e}");
            if url.starts_with("redis") {
                eprintln!(
                    "hint: the Redis store needs a reachable redis-server at that URL (and a \
                     build with the Redis connector); run without --redis to use a file store \
                     in a temporary directory instead."
                );
            }
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// The parent
// ---------------------------------------------------------------------------

fn parent(url: &str) -> Result<(), BoxError> {
    println!("borrowstore across processes — store {url}\n");
    let store = Store::open(url)?;

    // 1. An owner.
    let mut owner: OwnedProxy<Vec<u64>> = store.owned_proxy((1..=10).collect())?;
    let key = *OwnedProxy::key(&owner);
    println!(
        "1. The parent (pid {}) owns {:?}.",
        std::process::id(),
        *owner
    );
    show(&store, &key);

    // 2. A borrow ticket to each reader.
    println!(
        "\n2. The parent borrows the object {READERS} times and sends each borrow to a \
         worker as a ticket. Each worker redeems its ticket — exactly once — and reads."
    );
    let mut readers = Vec::new();
    for i in 1..=READERS {
        let mut w = Worker::spawn(&format!("reader-{i}"), "reader", url)?;
        let ticket = RefProxy::into_ticket(borrow(&owner)?)?;
        w.send(&format!("TICKET {}", hex(&ticket.to_bytes()?)))?;
        readers.push(w);
    }
    for w in &mut readers {
        w.expect("READ")?;
    }
    println!("   The store records one reader per worker:");
    show(&store, &key);

    // 3. The parent's mutable borrow is refused while they read.
    println!("\n3. The parent asks for a mutable borrow while the workers hold theirs:");
    match mut_borrow(&owner) {
        Err(e @ Error::AlreadyBorrowed { .. }) => println!(
            "   refused: {e}\n   The store counted the workers' borrows; \
             no process may write while another reads."
        ),
        Ok(_) => return Err("mut_borrow succeeded while workers held borrows".into()),
        Err(e) => return Err(e.into()),
    }

    // 4. The workers finish.
    println!("\n4. The workers finish reading and drop their borrows.");
    for w in &mut readers {
        w.send("FINISH")?;
        w.expect("RELEASED")?;
    }
    for w in &mut readers {
        w.wait_exit()?;
    }
    show(&store, &key);

    // 5. Now the parent can write.
    println!("\n5. The parent asks again:");
    {
        let mut w = mut_borrow(&owner)?;
        w.push(11);
        update(&mut w)?;
        println!("   granted; it pushes 11 and publishes a new version.");
    }
    OwnedProxy::refresh(&mut owner)?;
    show(&store, &key);

    // 6. Ownership moves to a worker.
    println!(
        "\n6. The parent turns its owner into an owner ticket and sends it to a worker. \
         The parent has no owner left; the worker now decides when the object goes."
    );
    let ticket = OwnedProxy::into_ticket(owner)?;
    let bytes = ticket.to_bytes()?;
    let mut w = Worker::spawn("owner", "owner", store.url())?;
    w.send(&format!("TICKET {}", hex(&bytes)))?;
    w.expect("OWNER")?;
    println!("   The store still records one owner — now the worker's:");
    show(&store, &key);
    match OwnerTicket::<Vec<u64>>::from_bytes(&bytes)?.redeem() {
        Err(e @ Error::TicketRedeemed { .. }) => println!(
            "   The parent tries to redeem the same ticket bytes again: {e}\n   \
             (a ticket moves ownership exactly once)"
        ),
        Ok(_) => return Err("a ticket was redeemed twice".into()),
        Err(e) => return Err(e.into()),
    }
    println!("   The worker drops its owner:");
    w.send("DROP")?;
    w.expect("DROPPED")?;
    w.wait_exit()?;
    println!(
        "   The object is {}: its only owner was dropped and nobody borrows it.",
        if store.exists(&key)? {
            "STILL STORED (unexpected)"
        } else {
            "evicted"
        }
    );
    show(&store, &key);

    // 7. A worker dies holding a borrow.
    crashed_worker(&store)?;

    let left = store.keys()?;
    println!("\nDone. Objects left in the store: {}.", left.len());
    if !left.is_empty() {
        return Err(format!("objects left behind: {left:?}").into());
    }
    Ok(())
}

/// Step 7: a worker holding a borrow is killed with SIGKILL; its borrow is
/// never released, but its lease runs out.
fn crashed_worker(store: &Store) -> Result<(), BoxError> {
    println!(
        "\n7. A new object; its borrow goes to a worker that is then killed (SIGKILL): \
         no destructor runs, nothing is released."
    );
    let owner = store.owned_proxy(vec![42u64])?;
    let key = *OwnedProxy::key(&owner);
    let mut w = Worker::spawn("doomed", "reader", store.url())?;
    let ticket = RefProxy::into_ticket(borrow(&owner)?)?;
    w.send(&format!("TICKET {}", hex(&ticket.to_bytes()?)))?;
    w.expect("READ")?;
    w.kill();
    println!("   [doomed] killed.");
    show(store, &key);
    println!(
        "   The store still counts its borrow; the parent's mutable borrow waits \
         (mut_borrow_timeout) for the worker's lease to run out (nobody renews it any more; \
         the lease is set by the store URL — {FILE_LEASE_MS} ms for the default file store, \
         30 s unless configured otherwise)…"
    );
    let start = Instant::now();
    let writer = match mut_borrow_timeout(&owner, Duration::from_secs(120)) {
        Ok(writer) => writer,
        Err(e @ Error::Timeout { .. }) => {
            return Err(format!("the dead worker's borrow was never reclaimed: {e}").into());
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "   granted after {:.1} s: the dead worker's borrow was reclaimed as if it had \
         been dropped.",
        start.elapsed().as_secs_f64()
    );
    show(store, &key);
    drop(writer);
    drop(owner);
    Ok(())
}

/// Prints what the store records for `key`.
fn show(store: &Store, key: &Key) {
    match store.inspect(key) {
        Ok(Some(i)) => println!(
            "   store-side: version {}, owner: {}, readers: {}, writer: {}",
            i.version,
            if i.owner { "yes" } else { "no" },
            i.readers,
            if i.writer { "yes" } else { "no" },
        ),
        Ok(None) => println!("   store-side: no object under {key}"),
        Err(e) => println!("   store-side: cannot inspect: {e}"),
    }
}

/// A worker process: this program started with `--worker <role> <name>`.
/// Killed when dropped.
struct Worker {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Worker {
    /// Starts worker `name` in `role` for the store at `url`.
    fn spawn(name: &str, role: &str, url: &str) -> Result<Worker, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--worker", role, name, url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        println!("   [{name}] started (pid {})", child.id());
        Ok(Worker {
            name: name.to_owned(),
            child,
            stdin,
            lines,
        })
    }

    fn send(&mut self, line: &str) -> Result<(), BoxError> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin.write_all(line.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        Ok(())
    }

    /// Prints the worker's messages until one tagged `tag` arrives.
    fn expect(&mut self, tag: &str) -> Result<(), BoxError> {
        loop {
            let line = match self.lines.recv_timeout(TIMEOUT) {
                Ok(l) => l,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no message within {TIMEOUT:?}", self.name).into());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} exited before saying {tag}", self.name).into());
                }
            };
            let (t, text) = line.split_once(' ').unwrap_or((&line, ""));
            println!("   [{}] {text}", self.name);
            if t == "ERROR" {
                return Err(format!("{} failed: {text}", self.name).into());
            }
            if t == tag {
                return Ok(());
            }
        }
    }

    fn wait_exit(&mut self) -> Result<(), BoxError> {
        self.stdin = None;
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("{} exited with {status}", self.name).into())
                };
            }
            if start.elapsed() > TIMEOUT {
                return Err(format!("{} did not exit", self.name).into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------------------
// The workers
// ---------------------------------------------------------------------------

/// Prints one tagged message for the parent.
fn say(tag: &str, text: &str) {
    println!("{tag} {text}");
}

/// Reads the next command from the parent; `None` when the parent is gone.
fn command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_owned()),
    }
}

/// Waits for the command `want`; an error if the parent went away first.
fn wait_for(want: &str) -> Result<(), BoxError> {
    loop {
        match command() {
            Some(c) if c == want => return Ok(()),
            Some(_) => {}
            None => return Err(format!("the parent went away before {want}").into()),
        }
    }
}

/// The ticket bytes of a `TICKET <hex>` command.
fn ticket_bytes() -> Result<Vec<u8>, BoxError> {
    let line = command().ok_or("no ticket")?;
    let hex = line
        .strip_prefix("TICKET ")
        .ok_or("expected TICKET <hex>")?;
    unhex(hex).ok_or_else(|| BoxError::from("the ticket is not hex"))
}

/// `args`: the role, the worker's name, the store's URL.
fn worker(args: &[String]) -> Result<(), BoxError> {
    let pid = std::process::id();
    let url = args.get(2).ok_or("a worker needs its store's URL")?;
    // Tickets may connect this process to the store its parent named.
    borrowstore::trust::allow(url)?;
    match args.first().map(String::as_str) {
        Some("reader") => {
            let ticket = BorrowTicket::<Vec<u64>>::from_bytes(&ticket_bytes()?)?;
            // The ticket names its store: redeeming connects to it.
            let r = ticket.redeem()?;
            let sum: u64 = r.iter().sum();
            say(
                "READ",
                &format!(
                    "pid {pid}: redeemed a borrow ticket; it reads {} value(s), sum {sum}",
                    r.len()
                ),
            );
            wait_for("FINISH")?;
            let store = RefProxy::store(&r).clone();
            drop(r);
            store.flush()?;
            say("RELEASED", &format!("pid {pid}: dropped its borrow"));
            Ok(())
        }
        Some("owner") => {
            let owner = OwnerTicket::<Vec<u64>>::from_bytes(&ticket_bytes()?)?.redeem()?;
            say(
                "OWNER",
                &format!("pid {pid}: redeemed the owner ticket; it owns {:?}", *owner),
            );
            wait_for("DROP")?;
            let store = OwnedProxy::store(&owner).clone();
            drop(owner);
            store.flush()?;
            say("DROPPED", &format!("pid {pid}: dropped the owner"));
            Ok(())
        }
        other => Err(format!("unknown worker role {other:?}").into()),
    }
}

// ---------------------------------------------------------------------------
// Hex, for tickets on a command line
// ---------------------------------------------------------------------------

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

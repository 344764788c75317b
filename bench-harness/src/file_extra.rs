//! The file store's cross-process workloads: a raw write-then-rename of a
//! value's encoded bytes (the reference for `owned_proxy` create + drop),
//! reclaim of a killed reader's borrow under a 30 s lease, and a 100 MB
//! `Blob` read by other processes (first-byte latency, and the memory all
//! readers take together).
//!
//! The other processes are this binary again (`bench-harness child …`),
//! talking over stdin and stdout lines.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use borrowstore::{Blob, BorrowTicket, OwnedProxy, RefProxy, Store, borrow, mut_borrow_async};

use crate::measure::{Budget, Record, emit_time, time};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A child of this binary, `bench-harness child ARGS…`, with piped stdio.
struct Peer {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Peer {
    fn start(args: &[&str]) -> Peer {
        let exe = std::env::current_exe().expect("own executable");
        let mut child = Command::new(exe)
            .arg("child")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a child");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Peer { child, lines }
    }

    fn line(&mut self) -> String {
        self.lines
            .next()
            .expect("the child exited")
            .expect("read the child's line")
    }

    fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The file store's extra workloads, on the store at `url` in `dir`.
pub fn run(url: &str, dir: &Path, value_bytes: usize, budget: Budget) {
    let store = Store::open(url).expect("open the file store");
    raw_write_rename(&store, dir, budget);
    reclaim(&store, url, budget);
    blob_readers(&store, url, value_bytes);
}

/// Writing the encoded bytes of a `u64` value to a temporary file,
/// renaming it into place, and removing it: what `owned_proxy` + drop
/// does to the disk, without a store.
fn raw_write_rename(store: &Store, dir: &Path, budget: Budget) {
    let tmp = dir.join("tmp");
    let objects = dir.join("objects");
    let _ = store;
    let t = time(budget, |n| {
        let start = Instant::now();
        for i in 0..n {
            let bytes = borrowstore::codec::encode(&i).expect("encode");
            let from = tmp.join(format!("raw-{i}.tmp"));
            let to = objects.join(format!("raw-{i}.blob"));
            let mut f = std::fs::File::create(&from).expect("create");
            f.write_all(black_box(&bytes)).expect("write");
            drop(f);
            std::fs::rename(&from, &to).expect("rename");
            std::fs::remove_file(&to).expect("remove");
        }
        start.elapsed()
    });
    emit_time(
        "raw_write_rename",
        "file",
        "reference",
        t,
        "write a u64's encoded bytes to tmp/, rename into objects/, remove: the disk work of \
         owned_proxy + drop, no store",
    );
}

/// Another process holds a shared borrow and is killed (SIGKILL); a
/// waiting `mut_borrow_async` here gets the object: the time from the kill
/// to the grant, under a 30 s lease (median of the rounds).
fn reclaim(store: &Store, url: &str, budget: Budget) {
    let _ = store;
    let url = format!("{url}?lease_ms=30000");
    let store = Store::open(&url).expect("open with a 30 s lease");
    let owner: OwnedProxy<u64> = store.owned_proxy(7).expect("owned_proxy");
    let rounds = if budget.rounds > 3 { 21 } else { 5 };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let ticket = RefProxy::into_ticket(borrow(&owner).expect("borrow")).expect("ticket");
        let mut peer = Peer::start(&["hold", &url, &hex(&ticket.to_bytes().expect("bytes"))]);
        assert_eq!(peer.line(), "held");
        let took = rt.block_on(async {
            let (got, killed) = tokio::join!(
                async {
                    let w = mut_borrow_async(&owner).await.expect("mut_borrow_async");
                    let got = Instant::now();
                    drop(w);
                    got
                },
                async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let killed = Instant::now();
                    let _ = peer.child.kill();
                    killed
                }
            );
            got - killed
        });
        samples.push(took.as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    eprintln!(
        "  {:<34} {:<7} {:<12} {:>12.1} ns/op",
        "reclaim_after_kill", "file", "borrowstore", median
    );
    Record::new(
        "reclaim_after_kill",
        "file",
        "borrowstore",
        ("ns_per_op", median, "ns"),
        rounds,
    )
    .notes(
        "another process holds a borrow and is SIGKILLed; time from the kill to a waiting \
             mut_borrow_async's grant, lease_ms=30000 (median of the rounds)",
    )
    .with("min_ns", samples[0])
    .with("max_ns", samples[samples.len() - 1])
    .emit();
}

/// A `value_bytes` `Blob`, borrowed in other processes: how long after its
/// borrow (redeeming a borrow ticket) the first byte is readable, and the
/// proportional set size of 8 readers that each touched every page of it,
/// together, over the value's size (shared page-cache pages are counted
/// once, divided among the processes that map them).
fn blob_readers(store: &Store, url: &str, value_bytes: usize) {
    let owner = store
        .owned_proxy(Blob::from(vec![1u8; value_bytes]))
        .expect("owned_proxy");
    // Warm the page cache once (the write left it warm, mostly).
    let mut firsts = Vec::new();
    for _ in 0..5 {
        let ticket = RefProxy::into_ticket(borrow(&owner).expect("borrow")).expect("ticket");
        let mut peer = Peer::start(&["first-byte", url, &hex(&ticket.to_bytes().expect("bytes"))]);
        let ns: f64 = peer.line().parse().expect("ns");
        firsts.push(ns);
    }
    firsts.sort_by(f64::total_cmp);
    let median = firsts[firsts.len() / 2];
    eprintln!(
        "  {:<34} {:<7} {:<12} {:>12.1} ns/op",
        "blob_first_byte_other_process", "file", "borrowstore", median
    );
    Record::new(
        "blob_first_byte_other_process",
        "file",
        "borrowstore",
        ("ns_per_op", median, "ns"),
        5,
    )
    .notes(format!(
        "another process redeems a borrow ticket of a {value_bytes}-byte Blob and reads its \
             first byte: time from before the redeem to the byte (median of 5 fresh processes)"
    ))
    .with("min_ns", firsts[0])
    .emit();

    let mut peers: Vec<Peer> = (0..8)
        .map(|_| {
            let ticket = RefProxy::into_ticket(borrow(&owner).expect("borrow")).expect("ticket");
            Peer::start(&["blob-reader", url, &hex(&ticket.to_bytes().expect("bytes"))])
        })
        .collect();
    // All 8 have touched every page before any is measured: a process's
    // Pss counts its share of each shared page among the processes mapping
    // it at the time, so measuring each as soon as it is done would count
    // the early ones' shares while fewer others mapped the pages.
    for p in &mut peers {
        assert_eq!(p.line(), "ready", "a blob reader");
    }
    let mut pss = 0u64;
    let mut rss = 0u64;
    for p in &mut peers {
        p.say("measure");
        let line = p.line();
        let (a, b) = line.split_once(' ').expect("pss rss");
        pss += a.parse::<u64>().expect("pss");
        rss += b.parse::<u64>().expect("rss");
    }
    for p in &mut peers {
        p.say("exit");
    }
    drop(peers);
    let ratio = pss as f64 / value_bytes as f64;
    eprintln!(
        "  {:<34} {:<7} {:<12} {:>12.3} x",
        "blob_8_readers_pss", "file", "borrowstore", ratio
    );
    Record::new(
        "blob_8_readers_pss",
        "file",
        "borrowstore",
        ("peak_rss_ratio", ratio, "x"),
        8,
    )
    .notes(format!(
        "8 processes each borrow one {value_bytes}-byte Blob and touch every page; once all 8 \
             have, the sum of their Pss (shared pages counted once) over the value's size"
    ))
    .with("pss_bytes", pss)
    .with("rss_bytes_sum", rss)
    .emit();
    drop(owner);
    store.flush().expect("flush");
}

/// `bench-harness child hold URL TICKET`: redeems the borrow ticket, says
/// `held`, then waits to be killed.
pub fn child_hold(url: &str, ticket: &str) {
    let store = Store::open(url).expect("open");
    let r = BorrowTicket::<u64>::from_bytes(&unhex(ticket))
        .expect("ticket")
        .redeem()
        .expect("redeem");
    println!("held");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop((r, store));
}

/// `bench-harness child first-byte URL TICKET`: prints the nanoseconds from
/// before redeeming the borrow ticket of a `Blob` to reading its first byte.
pub fn child_first_byte(url: &str, ticket: &str) {
    let store = Store::open(url).expect("open");
    let bytes = unhex(ticket);
    let start = Instant::now();
    let r = BorrowTicket::<Blob>::from_bytes(&bytes)
        .expect("ticket")
        .redeem()
        .expect("redeem");
    black_box(r[0]);
    let took = start.elapsed();
    println!("{}", took.as_nanos());
    let _ = std::io::stdout().flush();
    drop((r, store));
}

/// `bench-harness child blob-reader URL TICKET`: borrows the `Blob`, reads
/// a byte of every page, says `ready`, and on the next line prints its
/// `Pss` and `Rss` (bytes, from `/proc/self/smaps_rollup`); it waits for
/// one more line before it exits.
pub fn child_blob_reader(url: &str, ticket: &str) {
    let store = Store::open(url).expect("open");
    let r = BorrowTicket::<Blob>::from_bytes(&unhex(ticket))
        .expect("ticket")
        .redeem()
        .expect("redeem");
    let mut sum = 0u64;
    for i in (0..r.len()).step_by(4096) {
        sum = sum.wrapping_add(u64::from(r[i]));
    }
    black_box(sum);
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut go = String::new();
    let _ = std::io::stdin().read_line(&mut go);
    let field = |name: &str| -> u64 {
        std::fs::read_to_string("/proc/self/smaps_rollup")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    let rest = l.strip_prefix(name)?.strip_prefix(':')?;
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
            })
            .unwrap_or(0)
            * 1024
    };
    println!("{} {}", field("Pss"), field("Rss"));
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop((r, store));
}

//! The borrowstore side of `./scripts/bench.sh`.
//!
//! Runs every workload of DESIGN.md's "Performance targets" on borrowstore
//! (memory, file and Redis stores) and on the plain-Rust references
//! (`Arc<RwLock<T>>`, DashMap, `tokio::spawn`, raw redis-rs), and prints one
//! JSON object per line on stdout (progress goes to stderr):
//!
//! ```text
//! {"workload":"borrow_drop","store":"memory","impl":"borrowstore","metric":"ns_per_op",
//!  "value":14.2,"unit":"ns","n":7000000,"extra":{"min_ns":13.9},"notes":"…"}
//! ```
//!
//! ```text
//! bench-harness [--quick] [--redis redis://127.0.0.1:PORT/0] [--file-dir /abs/dir]
//!               [--only GROUP,…] [--live N] [--cycles N] [--checkpoint N]
//!               [--value-bytes N] [--tasks N] [--held N]
//! ```
//!
//! Groups: `memory`, `references`, `contention`, `submit`, `file` (with its
//! cross-process workloads: reclaim after a kill, a `Blob` read by other
//! processes), `redis`, `jobs` (apalis jobs with and without a borrow),
//! `wake`, `footprint`.
//! Without `--redis` the Redis group is skipped; without `--file-dir` the
//! file store lives in the system's temporary directory. The memory
//! workloads (`footprint`) each run in a fresh child process
//! (`bench-harness child …`) so their RSS readings are their own.

mod contention;
mod file_extra;
mod footprint;
mod jobs;
mod measure;
mod redis_ref;
mod stores;
mod submit;
mod wake;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use borrowstore::Store;

use crate::measure::{Budget, Record};

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    budget: Budget,
    redis: Option<String>,
    file_dir: Option<PathBuf>,
    only: Option<Vec<String>>,
    live: usize,
    cycles: u64,
    checkpoint: u64,
    value_bytes: usize,
    tasks: usize,
    held: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            budget: Budget::FULL,
            redis: None,
            file_dir: None,
            only: None,
            live: 1_000_000,
            cycles: 1_000_000,
            checkpoint: 100_000,
            value_bytes: 100_000_000,
            tasks: 1_000,
            held: 1_000,
        }
    }
}

fn usage(code: i32) -> ! {
    eprintln!(
        "usage: bench-harness [--quick] [--redis URL] [--file-dir DIR] [--only GROUP,...] \
         [--live N] [--cycles N] [--checkpoint N] [--value-bytes N] [--tasks N] [--held N]\n\
         groups: memory, references, contention, submit, file, redis, jobs, wake, footprint"
    );
    std::process::exit(code)
}

fn number<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
    v.and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        eprintln!("bench-harness: {flag} needs a number");
        usage(2)
    })
}

fn parse(args: impl Iterator<Item = String>) -> Options {
    let mut o = Options::default();
    let mut args = args.peekable();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.budget = Budget::QUICK,
            "--redis" => o.redis = Some(args.next().unwrap_or_else(|| usage(2))),
            "--file-dir" => o.file_dir = Some(args.next().unwrap_or_else(|| usage(2)).into()),
            "--only" => {
                let list = args.next().unwrap_or_else(|| usage(2));
                o.only = Some(list.split(',').map(str::to_owned).collect());
            }
            "--live" => o.live = number(&a, args.next()),
            "--cycles" => o.cycles = number(&a, args.next()),
            "--checkpoint" => o.checkpoint = number(&a, args.next()),
            "--value-bytes" => o.value_bytes = number(&a, args.next()),
            "--tasks" => o.tasks = number(&a, args.next()),
            "--held" => o.held = number(&a, args.next()),
            "-h" | "--help" => usage(0),
            _ => {
                eprintln!("bench-harness: unknown argument {a:?}");
                usage(2)
            }
        }
    }
    o
}

/// Runs one group; a panic inside it becomes an error line, and the other
/// groups still run.
fn group(o: &Options, name: &'static str, f: impl FnOnce()) {
    if let Some(only) = &o.only
        && !only.iter().any(|g| g == name)
    {
        return;
    }
    eprintln!("bench-harness: {name}");
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned());
        error(name, &msg);
    }
}

fn error(group: &'static str, msg: &str) {
    eprintln!("bench-harness: {group} FAILED: {msg}");
    Record::new(group, "-", "borrowstore", ("error", f64::NAN, "-"), 0)
        .notes(msg.to_owned())
        .emit();
}

/// Runs `bench-harness child ARGS…` and waits for it; its stdout is ours.
fn child(group: &'static str, args: &[String]) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return error(group, &format!("cannot find own executable: {e}")),
    };
    match Command::new(exe).arg("child").args(args).status() {
        Ok(s) if s.success() => {}
        Ok(s) => error(group, &format!("child {args:?} failed: {s}")),
        Err(e) => error(group, &format!("cannot start child {args:?}: {e}")),
    }
}

fn run_child(args: &[String]) {
    let arg = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| usage(2))
    };
    match args.first().map(String::as_str) {
        Some("peak") => footprint::peak_value(arg(1) as usize, arg(2) as usize),
        Some("live") => footprint::live_objects(arg(1) as usize),
        Some("live-dashmap") => footprint::live_dashmap(arg(1) as usize),
        Some("cycles") => footprint::submit_cycles(arg(1), arg(2)),
        Some("held") => footprint::held_after_join(arg(1)),
        Some("hold") => file_extra::child_hold(&args[1], &args[2]),
        Some("first-byte") => file_extra::child_first_byte(&args[1], &args[2]),
        Some("blob-reader") => file_extra::child_blob_reader(&args[1], &args[2]),
        _ => usage(2),
    }
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("child") {
        let rest: Vec<String> = args.skip(1).collect();
        run_child(&rest);
        return;
    }
    let o = parse(args);
    let b = o.budget;

    group(&o, "memory", || {
        stores::small_value_set(&Store::memory("bench-harness-memory"), "memory", b)
    });
    group(&o, "references", || stores::references(b));
    group(&o, "contention", || contention::run(b));
    group(&o, "submit", || submit::run(b));

    group(&o, "file", || {
        let base = o.file_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("borrowstore-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the file store's directory");
        let dir = dir.canonicalize().expect("file store directory");
        let store = Store::open(&format!("file://{}", dir.display())).expect("open the file store");
        stores::small_value_set(&store, "file", b);
        drop(store);
        file_extra::run(&format!("file://{}", dir.display()), &dir, o.value_bytes, b);
        let _ = std::fs::remove_dir_all(&dir);
    });

    match &o.redis {
        Some(server) => group(&o, "redis", || {
            let namespace = format!("bench-harness-{}", std::process::id());
            let store =
                Store::open(&format!("{server}?ns={namespace}")).expect("open the Redis store");
            stores::small_value_set(&store, "redis", b);
            redis_ref::run(server, &store, &namespace, b);
        }),
        None => eprintln!("bench-harness: redis skipped (no --redis URL)"),
    }
    match &o.redis {
        Some(server) => group(&o, "jobs", || jobs::run(server, b)),
        None => eprintln!("bench-harness: jobs skipped (no --redis URL)"),
    }

    group(&o, "wake", || {
        wake::rwlock(b);
        let memory = Store::memory("bench-harness-wake");
        wake::run(&memory, "memory", Duration::from_micros(100), b);
        let base = o.file_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("borrowstore-bench-wake-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the file store's directory");
        let dir = dir.canonicalize().expect("file store directory");
        let file = Store::open(&format!("file://{}", dir.display())).expect("open the file store");
        wake::run(&file, "file", Duration::from_micros(300), b);
        drop(file);
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(server) = &o.redis {
            let url = format!("{server}?ns=bench-harness-wake-{}", std::process::id());
            let redis = Store::open(&url).expect("open the Redis store");
            wake::run(&redis, "redis", Duration::from_millis(1), b);
        }
    });

    group(&o, "footprint", || {
        let s = |v: &dyn ToString| v.to_string();
        child("footprint", &[s(&"peak"), s(&o.value_bytes), s(&o.tasks)]);
        child("footprint", &[s(&"live"), s(&o.live)]);
        child("footprint", &[s(&"live-dashmap"), s(&o.live)]);
        child(
            "footprint",
            &[s(&"cycles"), s(&o.cycles), s(&o.checkpoint.min(o.cycles))],
        );
        child("footprint", &[s(&"held"), s(&o.held)]);
    });
}

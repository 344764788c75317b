//! `borrowstore`: see who holds what in a store.
//!
//! ```text
//! borrowstore memory URL [--group-by type|process|label] [--sort-by size|age|readers] [--stats-only] [--json]
//! borrowstore inspect URL KEY [--json]
//! borrowstore reap URL
//! ```
//!
//! `memory` and `inspect` only read: a claim whose lease ran out (a killed
//! process) is listed with its deadline in the past, and counted as an
//! expired lease awaiting reclaim. `reap` runs one operation on every
//! object and reports what went. On a file store the survivors reclaim a
//! dead process's claims at once and a stopped one's when its lease runs
//! out, so there is rarely anything left for it; on Redis it releases
//! expired tickets (a dead process's claims are released by the stores'
//! own reap passes, which judge the process table).

use std::collections::BTreeMap;
use std::process::ExitCode;

use borrowstore::connector::this_process;
use borrowstore::{Key, ObjectInfo, Snapshot, Store};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "borrowstore",
    version,
    about = "See who holds what in a borrowstore store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every object of the store with its claims, and a summary.
    Memory {
        /// The store's URL (`file:///dir`, `redis://host:port/db?ns=…`).
        url: String,
        /// Print the objects in groups.
        #[arg(long, value_enum)]
        group_by: Option<GroupBy>,
        /// The order of the objects (largest, oldest, most read first).
        #[arg(long, value_enum)]
        sort_by: Option<SortBy>,
        /// Print only the summary.
        #[arg(long)]
        stats_only: bool,
        /// Print JSON: the objects (an array of ObjectInfo), or with
        /// `--stats-only` the summary.
        #[arg(long)]
        json: bool,
    },
    /// One object with its claims.
    Inspect {
        /// The store's URL.
        url: String,
        /// The object's key (32 hex digits).
        key: String,
        /// Print JSON (one ObjectInfo).
        #[arg(long)]
        json: bool,
    },
    /// Reclaims the claims whose lease ran out, and evicts what that frees.
    Reap {
        /// The store's URL.
        url: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GroupBy {
    Type,
    Process,
    Label,
}

#[derive(Clone, Copy, ValueEnum)]
enum SortBy {
    Size,
    Age,
    Readers,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("borrowstore: {e}");
            ExitCode::FAILURE
        }
    }
}

fn open(url: &str) -> Result<Store, String> {
    // A read-only tool: never create a store directory that is not there.
    if let Some(path) = url.strip_prefix("file://") {
        let dir = path.split('?').next().unwrap_or(path);
        if !std::path::Path::new(dir).join("borrowstore.dir").exists() {
            return Err(format!("{dir} is not a borrowstore store directory"));
        }
    }
    Store::open(url).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Memory {
            url,
            group_by,
            sort_by,
            stats_only,
            json,
        } => {
            let store = open(&url)?;
            let mut snap = store.snapshot().map_err(|e| e.to_string())?;
            sort(&mut snap.objects, sort_by);
            let now = now_ms();
            if json {
                let out = if stats_only {
                    serde_json::to_string_pretty(&summary_json(&snap, now))
                } else {
                    serde_json::to_string_pretty(&snap)
                };
                println!("{}", out.map_err(|e| e.to_string())?);
                return Ok(());
            }
            if !stats_only {
                match group_by {
                    None => print_objects(&snap.objects, now),
                    Some(g) => {
                        for (group, objects) in groups(&snap.objects, g) {
                            let bytes: u64 = objects.iter().map(|o| o.size.unwrap_or(0)).sum();
                            println!("== {group}: {} objects, {bytes} bytes", objects.len());
                            print_objects(&objects, now);
                        }
                    }
                }
                println!();
            }
            print_summary(&snap, now);
            Ok(())
        }
        Command::Inspect { url, key, json } => {
            let key: Key = key.parse().map_err(|e: borrowstore::Error| e.to_string())?;
            let store = open(&url)?;
            let info = store
                .inspect(&key)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no object {key} in {url}"))?;
            if json {
                let out = serde_json::to_string_pretty(&info).map_err(|e| e.to_string())?;
                println!("{out}");
            } else {
                println!("{info}");
            }
            Ok(())
        }
        Command::Reap { url } => {
            let store = open(&url)?;
            let before = store.snapshot().map_err(|e| e.to_string())?;
            let now = now_ms();
            let expired = before.summary_at(now).expired;
            for o in &before.objects {
                // Where a store releases expired claims on access, this does.
                store.exists(&o.key).map_err(|e| e.to_string())?;
            }
            let after = store.snapshot().map_err(|e| e.to_string())?;
            let left = after.summary_at(now).expired;
            println!(
                "reclaimed {} expired claims; {} objects evicted; {} objects left",
                expired.saturating_sub(left),
                before.objects.len().saturating_sub(after.objects.len()),
                after.objects.len()
            );
            Ok(())
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn sort(objects: &mut [ObjectInfo], by: Option<SortBy>) {
    match by {
        None => {}
        Some(SortBy::Size) => objects.sort_by_key(|o| std::cmp::Reverse(o.size.unwrap_or(0))),
        Some(SortBy::Age) => objects.sort_by_key(|o| o.created_ms.unwrap_or(u64::MAX)),
        Some(SortBy::Readers) => objects.sort_by_key(|o| std::cmp::Reverse(o.readers)),
    }
}

fn groups(objects: &[ObjectInfo], by: GroupBy) -> BTreeMap<String, Vec<ObjectInfo>> {
    let mut out: BTreeMap<String, Vec<ObjectInfo>> = BTreeMap::new();
    for o in objects {
        let names: Vec<String> = match by {
            GroupBy::Type => vec![o.type_name.clone().unwrap_or_else(|| "-".into())],
            GroupBy::Label => vec![o.label.clone().unwrap_or_else(|| "-".into())],
            GroupBy::Process => {
                let mut p: Vec<String> = o
                    .claims
                    .iter()
                    .map(|c| format!("{} pid {}", c.host, c.pid))
                    .collect();
                p.sort();
                p.dedup();
                if p.is_empty() {
                    p.push("no claims".into());
                }
                p
            }
        };
        for n in names {
            out.entry(n).or_default().push(o.clone());
        }
    }
    out
}

/// Whether the process `pid` on `host` is alive: known for this host only.
fn alive(host: &str, pid: u32) -> Option<bool> {
    let (_, me) = this_process();
    (host == me).then(|| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

fn print_objects(objects: &[ObjectInfo], now: u64) {
    let table = Snapshot::from_objects(objects.to_vec()).to_string();
    // The table without its summary line.
    let mut lines: Vec<&str> = table.lines().collect();
    lines.pop();
    for l in lines {
        println!("{l}");
    }
    let expired: Vec<String> = objects
        .iter()
        .flat_map(|o| {
            o.claims
                .iter()
                .filter(|c| c.lease_expires_ms.is_some_and(|d| d < now))
                .map(move |c| format!("{} {} of pid {} on {}", o.key, c.kind, c.pid, c.host))
        })
        .collect();
    for e in expired {
        println!("  expired lease awaiting reclaim: {e}");
    }
}

fn summary_json(snap: &Snapshot, now: u64) -> serde_json::Value {
    let s = snap.summary_at(now);
    let alive_count = s
        .processes
        .iter()
        .filter(|(h, p)| alive(h, *p) == Some(true))
        .count();
    serde_json::json!({
        "objects": s.objects,
        "bytes": s.bytes,
        "claims": s.claims,
        "processes": s.processes.len(),
        "processes_alive": alive_count,
        "expired_leases": s.expired,
    })
}

fn print_summary(snap: &Snapshot, now: u64) {
    let s = snap.summary_at(now);
    println!("objects   {}", s.objects);
    println!("bytes     {}", s.bytes);
    let kinds: Vec<String> = ["owner", "holder", "reader", "writer", "ticket"]
        .iter()
        .map(|k| format!("{k} {}", s.claims.get(k).copied().unwrap_or(0)))
        .collect();
    println!("claims    {}", kinds.join(", "));
    let mut alive_n = 0;
    let mut dead_n = 0;
    let mut unknown_n = 0;
    for (h, p) in &s.processes {
        match alive(h, *p) {
            Some(true) => alive_n += 1,
            Some(false) => dead_n += 1,
            None => unknown_n += 1,
        }
    }
    println!(
        "processes {} ({alive_n} alive, {dead_n} gone, {unknown_n} on other hosts)",
        s.processes.len()
    );
    println!("expired   {} leases awaiting reclaim", s.expired);
}

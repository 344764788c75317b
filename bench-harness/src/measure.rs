//! Timing loops, memory readings and the JSON records the harness prints.

use std::time::{Duration, Instant};

use serde::Serialize;

/// One result: printed as one JSON object on one line of stdout.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Workload id, shared with the ProxyStore side (`scripts/bench/ps_workloads.py`).
    pub workload: &'static str,
    /// `memory`, `file`, `redis`, or `-` for plain Rust.
    pub store: &'static str,
    /// `borrowstore`, or `reference` for the physical floor in plain Rust.
    #[serde(rename = "impl")]
    pub imp: &'static str,
    /// What `value` is: `ns_per_op`, `bytes_per_object`, `peak_rss_ratio`, …
    pub metric: &'static str,
    /// The measured figure (for times: the median round).
    pub value: f64,
    /// Unit of `value`: `ns`, `B`, `x`, `count`.
    pub unit: &'static str,
    /// Operations (or objects) per round.
    pub n: u64,
    /// Extra figures (fastest round, RSS readings, …).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// How it was measured, in a few words.
    pub notes: String,
}

impl Record {
    /// A record of `value` (in `unit`, measured over `n` operations or objects).
    pub fn new(
        workload: &'static str,
        store: &'static str,
        imp: &'static str,
        metric: (&'static str, f64, &'static str),
        n: u64,
    ) -> Self {
        Record {
            workload,
            store,
            imp,
            metric: metric.0,
            value: metric.1,
            unit: metric.2,
            n,
            extra: serde_json::Map::new(),
            notes: String::new(),
        }
    }

    /// Says how it was measured.
    pub fn notes(mut self, notes: impl Into<String>) -> Self {
        self.notes = notes.into();
        self
    }

    /// Adds an extra figure.
    pub fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(name.to_owned(), value.into());
        self
    }

    /// Prints the record as one JSON line.
    pub fn emit(&self) {
        match serde_json::to_string(self) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("bench-harness: cannot encode a record: {e}"),
        }
    }
}

/// How long rounds are, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Target duration of one timed round.
    pub round: Duration,
    /// Timed rounds (after one calibration pass); the median is reported.
    pub rounds: usize,
}

impl Budget {
    /// The full run: 7 rounds of about 100 ms per workload.
    pub const FULL: Budget = Budget {
        round: Duration::from_millis(100),
        rounds: 7,
    };
    /// `--quick`: a smoke run that only proves every workload runs.
    pub const QUICK: Budget = Budget {
        round: Duration::from_millis(10),
        rounds: 3,
    };
}

/// Median and fastest round of a timed workload.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Median ns per operation over the rounds.
    pub median_ns: f64,
    /// Fastest round, ns per operation.
    pub min_ns: f64,
    /// Operations per round.
    pub iters: u64,
}

/// Times `run(n)`, which must perform `n` operations and return the time
/// they took (so set-up and tear-down can stay outside the timed part).
///
/// Doubles `n` until one call takes at least a tenth of a round, sizes `n`
/// for one round from that, then runs `budget.rounds` rounds.
pub fn time(budget: Budget, mut run: impl FnMut(u64) -> Duration) -> Timing {
    let floor = budget.round / 10;
    let mut n: u64 = 1;
    let mut took = run(n);
    while took < floor && n < (1 << 30) {
        n *= 2;
        took = run(n);
    }
    let per_op = took.as_secs_f64() / n as f64;
    let iters = ((budget.round.as_secs_f64() / per_op.max(1e-10)) as u64).clamp(1, 1 << 30);
    let mut samples: Vec<f64> = (0..budget.rounds.max(1))
        .map(|_| run(iters).as_nanos() as f64 / iters as f64)
        .collect();
    samples.sort_by(f64::total_cmp);
    Timing {
        median_ns: samples[samples.len() / 2],
        min_ns: samples[0],
        iters,
    }
}

/// Times a plain loop of `op`, `n` times per call.
pub fn time_loop(budget: Budget, mut op: impl FnMut()) -> Timing {
    time(budget, |n| {
        let start = Instant::now();
        for _ in 0..n {
            op();
        }
        start.elapsed()
    })
}

/// Emits a timing as an `ns_per_op` record.
pub fn emit_time(
    workload: &'static str,
    store: &'static str,
    imp: &'static str,
    t: Timing,
    notes: impl Into<String>,
) {
    eprintln!(
        "  {workload:<34} {store:<7} {imp:<12} {:>12.1} ns/op",
        t.median_ns
    );
    Record::new(
        workload,
        store,
        imp,
        ("ns_per_op", t.median_ns, "ns"),
        t.iters,
    )
    .notes(notes)
    .with("min_ns", t.min_ns)
    .emit();
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), or 0 where
/// there is no such file.
pub fn proc_status_bytes(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kib * 1024)
        })
        .unwrap_or(0)
}

/// Resident set size now, in bytes.
pub fn rss() -> u64 {
    proc_status_bytes("VmRSS")
}

/// Peak resident set size (`VmHWM`), in bytes.
pub fn peak_rss() -> u64 {
    proc_status_bytes("VmHWM")
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0); false if refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

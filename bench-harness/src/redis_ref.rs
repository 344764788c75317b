//! Borrow + resolve of 1 KiB over Redis, next to raw redis-rs commands on
//! the same server.
//!
//! The workloads run in interleaved rounds — every round runs each of them
//! once, in turn — so a change in the machine's load (a build beside the
//! run) hits the references and borrowstore alike; each reports the median
//! of its rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use borrowstore::{OwnedProxy, Proxy, RefProxy, Store, borrow, borrow_async};

use crate::measure::{Budget, Timing, emit_time};

/// The 1 KiB value both sides read.
fn value_1k() -> Vec<u8> {
    (0..1024u32).map(|i| (i % 251) as u8).collect()
}

/// The process id the raw script pair's claims name (the claim record
/// `state.lua` takes).
const HOLDER: &str = "00000000000000000000000000be7c01";

/// The store's own script, for the reference that runs its two calls of a
/// borrow + drop through raw redis-rs.
const STATE_LUA: &str = include_str!("../../src/connector/redis/state.lua");

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum W {
    RawGet,
    RawGetAsync,
    RawSetDel,
    RawScriptPair,
    BorrowResolve,
    BorrowDrop,
    BorrowAsyncResolveAsync,
    ResolveAsync,
    OwnedProxyAsync,
}

const ALL: [W; 9] = [
    W::RawGet,
    W::RawGetAsync,
    W::RawSetDel,
    W::RawScriptPair,
    W::BorrowResolve,
    W::BorrowDrop,
    W::BorrowAsyncResolveAsync,
    W::ResolveAsync,
    W::OwnedProxyAsync,
];

struct Bench<'a> {
    store: &'a Store,
    con: redis::Connection,
    multiplexed: redis::aio::MultiplexedConnection,
    rt: tokio::runtime::Runtime,
    raw_key: String,
    owner: OwnedProxy<Vec<u8>>,
    value: Vec<u8>,
    script: redis::Script,
    /// The name of the store's function (`FCALL`) wrapping the script, when
    /// the server has functions (Redis 7 and later); else the pair is sent
    /// by `EVALSHA`, as the store then sends it.
    function: Option<String>,
    /// The five keys of the owner's object, and the reader claim the raw
    /// script pair holds between its rounds.
    keys: Vec<String>,
    held: Option<String>,
    next_id: u128,
    /// Whether the raw script pair got the replies a borrow gets.
    pair_ok: bool,
}

impl Bench<'_> {
    /// Runs `w` `n` times and returns the time it took.
    fn run(&mut self, w: W, n: u64) -> Duration {
        match w {
            W::RawGet => {
                let start = Instant::now();
                for _ in 0..n {
                    let v: Vec<u8> = redis::cmd("GET")
                        .arg(black_box(&self.raw_key))
                        .query(&mut self.con)
                        .expect("GET");
                    black_box(v);
                }
                start.elapsed()
            }
            W::RawGetAsync => {
                let (m, key) = (&mut self.multiplexed, &self.raw_key);
                self.rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        let v: Vec<u8> = redis::cmd("GET")
                            .arg(black_box(key))
                            .query_async(m)
                            .await
                            .expect("GET");
                        black_box(v);
                    }
                    start.elapsed()
                })
            }
            W::RawSetDel => {
                let tmp = format!("{}:tmp", self.raw_key);
                let start = Instant::now();
                for _ in 0..n {
                    let _: () = redis::cmd("SET")
                        .arg(&tmp)
                        .arg(black_box(42u64))
                        .query(&mut self.con)
                        .expect("SET");
                    let _: () = redis::cmd("DEL")
                        .arg(&tmp)
                        .query(&mut self.con)
                        .expect("DEL");
                }
                start.elapsed()
            }
            W::RawScriptPair => {
                let start = Instant::now();
                for _ in 0..n {
                    self.script_pair();
                }
                start.elapsed()
            }
            W::BorrowResolve => {
                let start = Instant::now();
                for _ in 0..n {
                    let r = borrow(&self.owner).expect("borrow");
                    black_box(RefProxy::resolve(&r).expect("resolve").len());
                    drop(r);
                }
                self.store.flush().expect("flush");
                start.elapsed()
            }
            W::BorrowDrop => {
                let start = Instant::now();
                for _ in 0..n {
                    drop(black_box(borrow(&self.owner).expect("borrow")));
                }
                self.store.flush().expect("flush");
                start.elapsed()
            }
            W::BorrowAsyncResolveAsync => {
                let (store, owner) = (self.store, &self.owner);
                self.rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        let r = borrow_async(owner).await.expect("borrow_async");
                        black_box(RefProxy::resolve_async(&r).await.expect("resolve").len());
                        drop(r);
                    }
                    store.flush_async().await.expect("flush");
                    start.elapsed()
                })
            }
            W::ResolveAsync => {
                let key = *OwnedProxy::key(&self.owner);
                let fresh: Vec<Proxy<Vec<u8>>> =
                    (0..n).map(|_| self.store.proxy_from_key(key)).collect();
                self.rt.block_on(async {
                    let start = Instant::now();
                    for p in &fresh {
                        black_box(Proxy::resolve_async(p).await.expect("resolve").len());
                    }
                    start.elapsed()
                })
            }
            W::OwnedProxyAsync => {
                let (store, value) = (self.store, &self.value);
                self.rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..n {
                        let o = store
                            .owned_proxy_async(value.clone())
                            .await
                            .expect("owned_proxy_async");
                        drop(black_box(o));
                    }
                    store.flush_async().await.expect("flush");
                    start.elapsed()
                })
            }
        }
    }

    /// Adds one call of the store's script with `args` on the owner's keys
    /// to `pipe`, as the store calls it.
    fn add_call(&self, pipe: &mut redis::Pipeline, args: &[&str]) {
        match &self.function {
            Some(f) => {
                pipe.cmd("FCALL").arg(f).arg(5).arg(&self.keys).arg(args);
            }
            None => {
                let mut inv = self.script.prepare_invoke();
                for k in &self.keys {
                    inv.key(k);
                }
                inv.arg(args);
                pipe.invoke_script(&inv);
            }
        }
    }

    /// One pipeline of the two script calls a `borrow` + drop makes: the
    /// release of the previous reader, then a new reader's `acquire_fetch`
    /// with the current version known (the arguments `state.lua` takes).
    fn script_pair(&mut self) {
        self.next_id += 1;
        let id = format!(
            "{:032x}",
            0xbe7c_0000_0000_0000_0000_0000_0000_0000u128 + self.next_id
        );
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        if let Some(prev) = self.held.take() {
            self.add_call(&mut pipe, &["release", "r", &prev]);
        }
        // The claim record (the id of the process holding the claim), the
        // version known, and the claim's note, as the store sends them.
        self.add_call(
            &mut pipe,
            &["acquire_fetch", "r", &id, HOLDER, "1", "1|bench|0|60000|"],
        );
        let replies: Vec<redis::Value> = pipe.query(&mut self.con).expect("script pair");
        let status = match replies.last() {
            Some(redis::Value::Array(a)) => a.first().cloned(),
            _ => None,
        };
        self.pair_ok &= matches!(status, Some(redis::Value::BulkString(ref s)) if s == b"ok");
        self.held = Some(id);
    }
}

/// Sizes each workload for one round, then runs interleaved rounds.
fn interleaved(bench: &mut Bench<'_>, budget: Budget) -> Vec<(W, Timing)> {
    let floor = budget.round / 10;
    let iters: Vec<u64> = ALL
        .iter()
        .map(|&w| {
            let mut n: u64 = 1;
            let mut took = bench.run(w, n);
            while took < floor && n < (1 << 30) {
                n *= 2;
                took = bench.run(w, n);
            }
            let per_op = took.as_secs_f64() / n as f64;
            ((budget.round.as_secs_f64() / per_op.max(1e-10)) as u64).clamp(1, 1 << 30)
        })
        .collect();
    let rounds = (budget.rounds * 3).max(9);
    let mut samples = vec![Vec::with_capacity(rounds); ALL.len()];
    for _ in 0..rounds {
        for (i, &w) in ALL.iter().enumerate() {
            samples[i].push(bench.run(w, iters[i]).as_nanos() as f64 / iters[i] as f64);
        }
    }
    ALL.iter()
        .zip(samples)
        .zip(iters)
        .map(|((&w, mut s), iters)| {
            s.sort_by(f64::total_cmp);
            let t = Timing {
                median_ns: s[s.len() / 2],
                min_ns: s[0],
                iters,
            };
            (w, t)
        })
        .collect()
}

/// Raw redis-rs `GET` (sync and async multiplexed), `SET` + `DEL`, the
/// store's two script calls through raw redis-rs, and borrowstore's
/// `borrow` + `RefProxy::resolve` + drop of a 1 KiB owner (and its async
/// forms), in interleaved rounds.
pub fn run(server: &str, store: &Store, namespace: &str, budget: Budget) {
    let value = value_1k();
    let client = redis::Client::open(server).expect("redis URL");
    let mut con = client.get_connection().expect("connect to redis");
    let raw_key = format!("bench-harness:raw:{}", std::process::id());
    let _: () = redis::cmd("SET")
        .arg(&raw_key)
        .arg(value.as_slice())
        .query(&mut con)
        .expect("SET");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let multiplexed = rt
        .block_on(client.get_multiplexed_async_connection())
        .expect("connect to redis");
    let owner = store.owned_proxy(value.clone()).expect("owned_proxy");
    // The first resolve moves the value into this process's cache.
    black_box(OwnedProxy::resolve(&owner).expect("resolve").len());
    let key = *OwnedProxy::key(&owner);
    let keys: Vec<String> = ["s", "r", "h", "t", "x"]
        .iter()
        .map(|p| format!("{namespace}:{{{key}}}:{p}"))
        .collect();
    let script = redis::Script::new(STATE_LUA);
    script
        .prepare_invoke()
        .load(&mut con)
        .expect("SCRIPT LOAD of state.lua");
    // The store loaded its function library with the owner's put, where
    // the server has functions.
    let function = format!("borrowstore_{}", script.get_hash());
    let has_function = redis::cmd("FCALL")
        .arg(&function)
        .arg(5)
        .arg(&keys)
        .arg("fetch")
        .arg("")
        .query::<redis::Value>(&mut con)
        .is_ok();
    let function = has_function.then_some(function);
    let mut bench = Bench {
        store,
        con,
        multiplexed,
        rt,
        raw_key,
        owner,
        value,
        script,
        function,
        keys,
        held: None,
        next_id: 0,
        pair_ok: true,
    };
    let timings = interleaved(&mut bench, budget);
    let flushed = "each round ends with store.flush(), timed";
    for (w, t) in timings {
        let (id, imp, notes): (&'static str, _, String) = match w {
            W::RawGet => (
                "raw_get_1k",
                "reference",
                "redis-rs sync Connection: GET of a 1 KiB value (one round trip)".into(),
            ),
            W::RawGetAsync => (
                "raw_get_1k_async",
                "reference",
                "redis-rs multiplexed async connection on a current-thread runtime: GET of 1 KiB"
                    .into(),
            ),
            W::RawSetDel => (
                "raw_set_del",
                "reference",
                "redis-rs sync: SET + DEL of a small value (two round trips)".into(),
            ),
            W::RawScriptPair => {
                if !bench.pair_ok {
                    eprintln!(
                        "bench-harness: the raw script pair did not get `ok` (state.lua's \
                         arguments changed?); its row is left out"
                    );
                    continue;
                }
                (
                    "raw_script_pair_1k",
                    "reference",
                    "redis-rs sync: one pipeline of the store's two script calls of a borrow + \
                     drop (FCALL of the store's function, EVALSHA of state.lua without functions: \
                     release the previous reader, acquire_fetch a new one, version current): \
                     the server's share of a borrow"
                        .into(),
                )
            }
            W::BorrowResolve => (
                "borrow_resolve_1k",
                "borrowstore",
                format!(
                    "borrow(&owner) + RefProxy::resolve + drop of a 1 KiB Vec<u8>, value cached \
                     and current; {flushed}"
                ),
            ),
            W::BorrowDrop => (
                "borrow_drop_1k",
                "borrowstore",
                format!(
                    "borrow(&owner) + drop of a 1 KiB Vec<u8> (one round trip; the release \
                     rides the next borrow's pipeline); {flushed}"
                ),
            ),
            W::BorrowAsyncResolveAsync => (
                "borrow_async_resolve_async_1k",
                "borrowstore",
                format!(
                    "borrow_async(&owner) + RefProxy::resolve_async + drop of a 1 KiB Vec<u8> on \
                     a current-thread runtime (one round trip; value cached and current); \
                     {flushed} (flush_async)"
                ),
            ),
            W::ResolveAsync => (
                "resolve_async_1k",
                "borrowstore",
                "Proxy::resolve_async of a fresh proxy (made untimed) of a 1 KiB object on a \
                 current-thread runtime: a version-checked fetch; the decoded value is cached, \
                 so no value moves"
                    .into(),
            ),
            W::OwnedProxyAsync => (
                "owned_proxy_async_1k",
                "borrowstore",
                format!(
                    "store.owned_proxy_async(1 KiB Vec<u8>) + drop (evicts; release queued) on a \
                     current-thread runtime; {flushed} (flush_async)"
                ),
            ),
        };
        emit_time(id, "redis", imp, t, format!("{notes}; interleaved rounds"));
    }
    if let Some(prev) = bench.held.take() {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        bench.add_call(&mut pipe, &["release", "r", &prev]);
        let _: redis::RedisResult<Vec<redis::Value>> = pipe.query(&mut bench.con);
    }
    let _: () = redis::cmd("DEL")
        .arg(&bench.raw_key)
        .query(&mut bench.con)
        .expect("DEL");
    drop(bench.owner);
    store.flush().expect("flush");
}

//! One million arbitrary and mutated proxy and ticket byte strings, fed to
//! one process: whatever they name, the process's open files, threads and
//! connections stay within the bound that `borrowstore::trust` documents,
//! nothing is created outside the allowed directories, nothing connects to a
//! server that is not allowed, and the process's own file and Redis stores
//! keep working throughout.
//!
//! The inputs are made from a few dozen real byte strings (proxies, owner
//! tickets and borrow tickets of the process's own stores, of allowed
//! stores it does not have open, and of stores it must refuse) by a few
//! random edits each, by splicing the store config of one onto another, by
//! renaming its store, or at random. Every input is read; some are resolved or redeemed; the last
//! few handles that came out are kept alive, so that stores opened for
//! bytes pile up to the bound.
//!
//! `BORROWSTORE_FLOOD_INPUTS` sets the number of inputs (default 1,000,000;
//! a debug build takes about half a minute on a 2-core machine).
//!
//! One test, so that no other test of this binary moves the counts.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use borrowstore::{
    BorrowTicket, Error, Key, OwnedProxy, OwnerTicket, Proxy, RefProxy, Store, StoreConfig, borrow,
    trust,
};

use borrowstore_testkit::redis_server;

type V = Vec<u64>;

fn entries(dir: &str) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Open files, of which sockets, and threads of this process.
fn resources() -> (usize, usize, usize) {
    let fds: Vec<_> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    let sockets = fds
        .iter()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count();
    (fds.len(), sockets, entries("/proc/self/task"))
}

/// A small, fast, seeded generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn with_config(wire: &[u8], name: &str, url: &str) -> Vec<u8> {
    let (_, rest) = postcard::take_from_bytes::<StoreConfig>(wire).expect("a wire form");
    let config = StoreConfig {
        name: name.to_owned(),
        url: url.to_owned(),
    };
    let mut out = postcard::to_allocvec(&config).unwrap();
    out.extend_from_slice(rest);
    out
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// What a kind of byte string is read as.
#[derive(Clone, Copy)]
enum Kind {
    Proxy,
    Owner,
    Borrow,
}

/// A proxy, an owner ticket and a borrow ticket of `store`, all real.
fn real_bytes(store: &Store) -> Vec<(Kind, Vec<u8>)> {
    let owner = store.owned_proxy(vec![1u64, 2, 3]).unwrap();
    let proxy = Proxy::to_bytes(&store.proxy(vec![4u64]).unwrap()).unwrap();
    let bt = RefProxy::into_ticket(borrow(&owner).unwrap())
        .unwrap()
        .to_bytes()
        .unwrap();
    let ot = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
    vec![(Kind::Proxy, proxy), (Kind::Owner, ot), (Kind::Borrow, bt)]
}

/// The process's own stores keep working: a value in, out, and a borrow.
fn own_store_works(store: &Store) {
    let key = store.put(&vec![7u64]).expect("put in an own store");
    assert_eq!(store.get::<V>(&key).unwrap(), Some(vec![7]));
    assert!(store.evict(&key).unwrap());
    let owner = store.owned_proxy(vec![8u64]).unwrap();
    assert_eq!(*borrow(&owner).unwrap(), vec![8]);
    drop(owner);
    store.flush().unwrap();
}

/// A handle that came out of the bytes, kept alive for a while.
#[allow(dead_code)] // kept only to be dropped later
enum Handle {
    Proxy(Proxy<V>),
    Owner(OwnedProxy<V>),
    Borrow(RefProxy<V>),
}

#[test]
fn a_million_hostile_byte_strings_stay_within_the_bound() {
    if !Path::new("/proc/self/fd").exists() {
        eprintln!("no /proc/self: skipped");
        return;
    }
    let inputs: usize = std::env::var("BORROWSTORE_FLOOD_INPUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let base: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("trust-flood")
        .join(format!("{}-{}", std::process::id(), Key::random()));

    // The process's own stores.
    let own_file = Store::open(&file_url(&base.join("own"))).unwrap();
    let own_memory = Store::memory("flood-own");
    let installed = std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let server = installed.then(redis_server::RedisServer::start);
    let own_redis = server
        .as_ref()
        .map(|s| Store::open(&s.url(&format!("flood-own-{}", std::process::id()), "")).unwrap());

    let mut seeds: Vec<(Kind, Vec<u8>)> = Vec::new();
    for s in [&own_file, &own_memory]
        .into_iter()
        .chain(own_redis.as_ref())
    {
        seeds.extend(real_bytes(s));
    }
    // Allowed stores this process does not have open: real bytes of them,
    // made by stores that are then closed.
    let allowed = base.join("allowed");
    for name in ["a", "b", "c"] {
        let maker = Store::builder(format!("flood-maker-{name}"))
            .url(file_url(&allowed.join(name)))
            .register(false)
            .build()
            .unwrap();
        seeds.extend(real_bytes(&maker));
    }
    trust::allow(&format!("{}/*", file_url(&allowed))).unwrap();
    if let Some(server) = &server {
        let url = server.url(&format!("flood-allowed-{}", std::process::id()), "");
        let maker = Store::builder("flood-maker-redis")
            .url(&url)
            .register(false)
            .build()
            .unwrap();
        seeds.extend(real_bytes(&maker));
        maker.flush().unwrap();
        trust::allow(&url).unwrap();
    }
    // Stores to refuse: a directory that must never appear, a server that
    // must never see a connection.
    let forbidden = base.join("forbidden");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let silent = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().unwrap().port()
    );
    let templates: Vec<(Kind, Vec<u8>)> = seeds[..3].to_vec();
    for (kind, bytes) in &templates {
        for (name, url) in [
            ("flood-forbidden", file_url(&forbidden.join("x"))),
            ("flood-silent", silent.clone()),
            (
                "flood-own",
                "memory://flood-own#process=1-0123456789abcdef".to_owned(),
            ),
            ("flood-elsewhere", file_url(&allowed.join("missing"))),
        ] {
            seeds.push((*kind, with_config(bytes, name, &url)));
        }
    }

    std::thread::sleep(Duration::from_millis(200));
    let idle = resources();
    let limit = trust::max_stores();
    // What stores opened for bytes may hold at once (see `trust`): a thread
    // each (two for Redis), a connection and the I/O thread's event loop
    // per Redis store, the lock files of the allowed directories; and the
    // threads of a few stores that have just closed, ending.
    let max_threads = idle.2 + 2 * limit + 4;
    let max_sockets = idle.1 + limit;
    let max_files = idle.0 + 5 * limit + 3 * 256;
    let mut peak = idle;

    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let mut kept: VecDeque<Handle> = VecDeque::new();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let started = Instant::now();
    for i in 0..inputs {
        let (kind, bytes) = make_input(&mut rng, &seeds);
        let outcome = feed(kind, &bytes, i, &mut kept);
        *outcomes.entry(outcome).or_default() += 1;
        while kept.len() > 64 {
            kept.pop_front();
        }
        if i.is_multiple_of(20_000) || i + 1 == inputs {
            let now = resources();
            peak = (peak.0.max(now.0), peak.1.max(now.1), peak.2.max(now.2));
            assert!(
                now.2 <= max_threads,
                "input {i}: {} threads (idle {})",
                now.2,
                idle.2
            );
            assert!(
                now.1 <= max_sockets,
                "input {i}: {} sockets (idle {})",
                now.1,
                idle.1
            );
            assert!(
                now.0 <= max_files,
                "input {i}: {} files (idle {})",
                now.0,
                idle.0
            );
            assert!(trust::open_stores() <= limit);
            own_store_works(&own_file);
            own_store_works(&own_memory);
            if let Some(r) = &own_redis {
                own_store_works(r);
            }
        }
    }
    let took = started.elapsed();
    drop(kept);

    assert!(!forbidden.exists(), "a refused directory was created");
    assert!(
        !allowed.join("missing").exists(),
        "an allowed name was created"
    );
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a refused server was connected to"
    );
    // Everything opened for the bytes is closed again.
    let start = Instant::now();
    while (trust::open_stores() != 0 || resources().2 > idle.2)
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(trust::open_stores(), 0);
    let end = resources();
    assert!(end.2 <= idle.2, "threads left: {end:?}, idle {idle:?}");
    assert!(end.0 <= idle.0 + 2, "files left: {end:?}, idle {idle:?}");
    own_store_works(&own_file);
    if let Some(r) = &own_redis {
        own_store_works(r);
    }
    eprintln!(
        "{inputs} inputs in {took:?}; peak (files, sockets, threads) {peak:?}, idle {idle:?}; \
         bound {limit} stores; outcomes {outcomes:?}"
    );
    for needed in [
        "Untrusted",
        "LocalStore",
        "TooManyStores",
        "Malformed",
        "ok",
    ] {
        assert!(
            outcomes.keys().any(|k| k.starts_with(needed)),
            "no input ended {needed}: {outcomes:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// One input: a seed with a few random edits, a seed's config spliced onto
/// another seed, a seed with its store renamed, or random bytes.
fn make_input(rng: &mut Rng, seeds: &[(Kind, Vec<u8>)]) -> (Kind, Vec<u8>) {
    let (kind, seed) = &seeds[rng.below(seeds.len())];
    let mut b = seed.clone();
    match rng.below(100) {
        0..=1 => {
            let n = rng.below(80);
            b = (0..n).map(|_| rng.next() as u8).collect();
        }
        2..=6 => {
            // The same store under another name: a store of its own.
            if let Ok((config, _)) = postcard::take_from_bytes::<StoreConfig>(seed) {
                let name = format!("{}-{}", config.name, rng.below(1000));
                b = with_config(seed, &name, &config.url);
            }
        }
        7..=11 => {
            let (_, other) = &seeds[rng.below(seeds.len())];
            if let (Ok((config, _)), Ok((_, rest))) = (
                postcard::take_from_bytes::<StoreConfig>(other),
                postcard::take_from_bytes::<StoreConfig>(seed),
            ) {
                b = postcard::to_allocvec(&config).unwrap();
                b.extend_from_slice(rest);
            }
        }
        _ => {
            for _ in 0..=rng.below(3) {
                let at = rng.below(b.len() + 1);
                let byte = rng.next() as u8;
                match rng.below(4) {
                    0 if at < b.len() => b[at] = byte,
                    1 => b.insert(at, byte),
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    _ if at < b.len() => b[at] ^= 1 << (byte % 8),
                    _ => b.push(byte),
                }
            }
        }
    }
    (*kind, b)
}

/// Reads (and sometimes uses) one input; returns what happened.
fn feed(kind: Kind, bytes: &[u8], i: usize, kept: &mut VecDeque<Handle>) -> String {
    let use_it = i.is_multiple_of(16);
    let r: Result<Option<Handle>, Error> = match kind {
        Kind::Proxy => Proxy::<V>::from_bytes(bytes).map(|p| {
            if use_it {
                let _ = Proxy::resolve(&p);
            }
            Some(Handle::Proxy(p))
        }),
        Kind::Owner => OwnerTicket::<V>::from_bytes(bytes).and_then(|t| {
            if use_it {
                t.redeem().map(|o| Some(Handle::Owner(o)))
            } else {
                Ok(None)
            }
        }),
        Kind::Borrow => BorrowTicket::<V>::from_bytes(bytes).and_then(|t| {
            if use_it {
                t.redeem().map(|r| Some(Handle::Borrow(r)))
            } else {
                Ok(None)
            }
        }),
    };
    match r {
        Ok(h) => {
            kept.extend(h);
            "ok".to_owned()
        }
        Err(e) => {
            let name: String = format!("{e:?}")
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            assert!(
                matches!(
                    e,
                    Error::Malformed { .. }
                        | Error::TypeMismatch { .. }
                        | Error::InvalidUrl { .. }
                        | Error::Untrusted { .. }
                        | Error::LocalStore { .. }
                        | Error::TooManyStores { .. }
                        | Error::Connector { .. }
                        | Error::TicketRedeemed { .. }
                        | Error::KeyNotFound { .. }
                ),
                "undocumented error: {e:?}"
            );
            name
        }
    }
}

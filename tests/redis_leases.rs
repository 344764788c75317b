//! Leases on Redis against a real `redis-server`: a live process keeps what
//! it holds however much it holds, whatever its clock says and however long
//! the server stalls; a dead process's claims are reclaimed; spent tickets
//! leave no record.
//!
//! Every check is a function of the deployment it runs on (a
//! [`Redis`]), and [`lease_checks!`] makes one `#[test]` of each for one
//! deployment: one server (`single_server`) and a six-node Redis Cluster
//! of the test's own (`cluster`: its pause freezes every node; all checks
//! but the 12,000-claim one, see there). Checks that take several seconds (they wait
//! out leases or a stall) are separate tests, so the harness runs them in
//! parallel.

use std::time::{Duration, Instant};

use borrowstore::{BorrowTicket, Error, OwnedProxy, OwnerTicket, RefProxy, borrow, mut_borrow};
use borrowstore_testkit::process::ChildProc;
use borrowstore_testkit::process::clock::skewed_clock_env;
use borrowstore_testkit::redis_server::Redis;
use borrowstore_testkit::{poll_until, retry_until_ok, unique_name};

borrowstore_testkit::child_entry!();

fn child(name: &str, url: &str, env: &[(&str, &str)]) -> ChildProc {
    ChildProc::spawn(name, "interp", url, env)
}

fn hex(bytes: &[u8]) -> String {
    borrowstore_testkit::process::hex(bytes)
}

/// Reads a RESP integer reply (`:N\r\n`).
fn resp_int(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.strip_prefix(':')
        .and_then(|t| t.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("not an integer reply: {text:?}"))
}

/// 6,000 owners and 6,000 borrows of one live child process survive ten
/// leases while 8,000 other objects are reaped around them: 4,000 plain
/// objects, and 4,000 owned and borrowed by a child that was killed (which
/// are evicted meanwhile).
pub fn a_live_process_keeps_12000_claims_under_a_reap_of_8000_objects(redis: &dyn Redis) {
    let lease = Duration::from_secs(1);
    let url = redis.store_url(
        &unique_name("many"),
        &format!("lease_ms={}", lease.as_millis()),
    );
    let store = borrowstore::Store::open(&url).unwrap();
    let plain: Vec<_> = (0..4000u64).map(|i| store.put(&vec![i]).unwrap()).collect();
    let mut doomed = child("doomed", &url, &[]);
    doomed.ok("HOLD_MANY 4000");
    let mut live = child("live", &url, &[]);
    live.ok("HOLD_MANY 6000");
    assert_eq!(live.ok("CHECK_MANY"), "6000");
    doomed.kill();
    let start = Instant::now();
    let mut checks = 0;
    while start.elapsed() < lease * 10 {
        std::thread::sleep(lease * 2);
        let ok = live.ok("CHECK_MANY");
        checks += 1;
        assert_eq!(
            ok,
            "6000",
            "after {:?} ({checks} checks) the live child's objects are not all owned and borrowed once",
            start.elapsed()
        );
    }
    // The killed child's objects are all gone, the plain ones all kept.
    let total = 4000 + 6000;
    let reaped = poll_until(Duration::from_secs(20), || {
        store.keys().unwrap().len() == total
    });
    assert!(
        reaped.is_some(),
        "the killed child's objects were not reaped: {} keys, expected {total}",
        store.keys().unwrap().len()
    );
    for k in &plain {
        assert!(store.exists(k).unwrap(), "plain object {k} lost");
    }
    assert_eq!(live.ok("CHECK_MANY"), "6000");
    live.exit();
    let evicted = poll_until(Duration::from_secs(10), || {
        store.keys().unwrap().len() == 4000
    });
    assert!(
        evicted.is_some(),
        "the live child's objects were not evicted when it exited"
    );
}

/// A child whose clock runs 5 s behind holds a borrow with a 2 s lease: the
/// parent's `mut_borrow` is refused for as long as the child holds it —
/// here three leases — and succeeds once the child lets it go.
pub fn a_client_clock_5s_behind_changes_nothing(redis: &dyn Redis) {
    let lease = Duration::from_secs(2);
    let env =
        skewed_clock_env(-5).unwrap_or_else(|why| panic!("cannot skew a child's clock: {why}"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let url = redis.store_url(
        &unique_name("skew"),
        &format!("lease_ms={}", lease.as_millis()),
    );
    let store = borrowstore::Store::open(&url).unwrap();
    let mut b = child("behind", &url, &env);
    let theirs: i128 = b.ok("NOW").parse().unwrap();
    let ours = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i128;
    let behind = ours - theirs;
    assert!(
        (4000..6000).contains(&behind),
        "the child's clock is {behind} ms behind, not 5 s: is libfaketime working?"
    );

    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    b.ok(&format!(
        "REDEEM_BORROW {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    assert_eq!(b.ok("READ"), "1");
    let start = Instant::now();
    while start.elapsed() < lease * 3 {
        match mut_borrow(&owner) {
            Err(Error::AlreadyBorrowed { .. }) => {}
            other => panic!(
                "{:?} after the child (clock 5 s behind) redeemed its borrow: mut_borrow gave {other:?}",
                start.elapsed()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(b.ok("READ"), "1");
    b.ok("DROP_READER");
    drop(mut_borrow(&owner).expect("mut_borrow once the child dropped its borrow"));
    b.exit();
}

/// The server is frozen (`SIGSTOP`) for 10 s, longer than the 8 s lease:
/// after it resumes, nothing a live process owns is evicted — neither this
/// process's owner and borrow nor a child's.
pub fn a_10s_server_stall_evicts_nothing_a_live_process_owns(redis: &dyn Redis) {
    let lease = Duration::from_secs(8);
    let url = redis.store_url(
        &unique_name("stall"),
        &format!("lease_ms={}&timeout_ms=1000", lease.as_millis()),
    );
    let store = borrowstore::Store::open(&url).unwrap();
    let mine = store.owned_proxy(vec![1u64]).unwrap();
    let my_key = *OwnedProxy::key(&mine);
    let my_borrow = borrow(&mine).unwrap();
    let theirs = store.owned_proxy(vec![2u64]).unwrap();
    let their_key = *OwnedProxy::key(&theirs);
    let ticket = OwnedProxy::into_ticket(theirs).unwrap();
    let mut c = child("stalled", &url, &[]);
    c.ok(&format!(
        "REDEEM_OWNER {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    c.ok("BORROW");
    // Both processes renew a few times before the stall.
    std::thread::sleep(lease / 2);
    redis.pause();
    std::thread::sleep(Duration::from_secs(10));
    redis.resume();
    // Give the renewals, and any reap pass, time to run after the stall.
    std::thread::sleep(lease / 2);
    let mine_now = retry_until_ok(Duration::from_secs(10), || store.inspect(&my_key));
    let theirs_now = retry_until_ok(Duration::from_secs(10), || store.inspect(&their_key));
    let mine_now = mine_now.expect("this process's owned object was evicted by the stall");
    let theirs_now = theirs_now.expect("the child's owned object was evicted by the stall");
    assert!(mine_now.owner && mine_now.readers == 1, "{mine_now:?}");
    assert!(
        theirs_now.owner && theirs_now.readers == 1,
        "{theirs_now:?}"
    );
    assert_eq!(c.ok("READ"), "2");
    assert_eq!(*my_borrow, vec![1]);
    c.exit();
    drop(my_borrow);
    drop(mine);
    store.flush().unwrap();
    assert!(store.keys().unwrap().is_empty());
}

/// A process killed before its first renewal (its claims name a process
/// that has no record yet) loses its claims too, once a lease runs out.
pub fn a_process_killed_before_its_first_renewal_is_reclaimed(redis: &dyn Redis) {
    // Long enough that the child's first renewal (a third of the lease
    // after it opened the store) comes after it is killed.
    let lease = Duration::from_secs(3);
    let url = redis.store_url(
        &unique_name("orphan"),
        &format!("lease_ms={}", lease.as_millis()),
    );
    let store = borrowstore::Store::open(&url).unwrap();
    let mut doomed = child("orphan", &url, &[]);
    doomed.ok("HOLD_MANY 3");
    doomed.kill();
    assert_eq!(store.keys().unwrap().len(), 3);
    let took = poll_until(lease * 6 + Duration::from_secs(2), || {
        store.keys().unwrap().is_empty()
    });
    assert!(
        took.is_some(),
        "the objects of a process killed before it renewed were not reclaimed: {:?}",
        store.keys().unwrap()
    );
}

/// 320 tickets issued and redeemed on one object — borrow tickets, and
/// owner tickets moving the owner back and forth — leave no entry in its
/// tickets hash; a spent ticket stays spent.
pub fn spent_tickets_leave_no_record(redis: &dyn Redis) {
    let ns = unique_name("spent");
    let store = borrowstore::Store::open(&redis.store_url(&ns, "")).unwrap();
    let mut owner = store.owned_proxy(vec![7u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let mut spent = Vec::new();
    for i in 0..320 {
        if i % 4 == 0 {
            let bytes = OwnedProxy::into_ticket(owner).unwrap().to_bytes().unwrap();
            owner = OwnerTicket::<Vec<u64>>::from_bytes(&bytes)
                .unwrap()
                .redeem()
                .unwrap();
            spent.push((bytes, true));
        } else {
            let bytes = RefProxy::into_ticket(borrow(&owner).unwrap())
                .unwrap()
                .to_bytes()
                .unwrap();
            let r = BorrowTicket::<Vec<u64>>::from_bytes(&bytes)
                .unwrap()
                .redeem()
                .unwrap();
            assert_eq!(*r, vec![7]);
            spent.push((bytes, false));
        }
    }
    store.flush().unwrap();
    let tickets = format!("{ns}:{{{key}}}:t");
    let left = resp_int(&redis.command_on(&tickets, &[b"HLEN", tickets.as_bytes()]));
    assert_eq!(
        left, 0,
        "320 spent tickets left {left} entries in {tickets}"
    );
    for (bytes, is_owner) in spent.iter().step_by(37) {
        let again = if *is_owner {
            OwnerTicket::<Vec<u64>>::from_bytes(bytes)
                .unwrap()
                .redeem()
                .map(drop)
        } else {
            BorrowTicket::<Vec<u64>>::from_bytes(bytes)
                .unwrap()
                .redeem()
                .map(drop)
        };
        assert!(
            matches!(again, Err(Error::TicketRedeemed { .. })),
            "{again:?}"
        );
    }
    let info = store.inspect(&key).unwrap().unwrap();
    assert!(info.owner && info.readers == 0 && !info.writer, "{info:?}");
    drop(owner);
    store.flush().unwrap();
    assert!(store.keys().unwrap().is_empty());
}

/// The dead process ids of a process table reply: `{status, time, latest
/// death, number of dead, dead ids..., live ids...}`, in RESP.
fn dead_in(reply: &str) -> Vec<String> {
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let bulk: Vec<&str> = lines
        .windows(2)
        .filter(|w| w[0].starts_with('$'))
        .map(|w| w[1])
        .collect();
    let n: usize = bulk
        .get(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a process table reply: {reply:?}"));
    bulk[4..4 + n].iter().map(|s| s.to_string()).collect()
}

/// Runs `state.lua` on an object's keys (or the process table's) by hand,
/// as a client whose reply was lost would run it again.
fn eval(redis: &dyn Redis, keys: &[String; 5], args: &[&str]) -> String {
    const SCRIPT: &str = include_str!("../src/connector/redis/state.lua");
    let mut a: Vec<&[u8]> = vec![b"EVAL", SCRIPT.as_bytes(), b"5"];
    a.extend(keys.iter().map(|k| k.as_bytes()));
    a.extend(args.iter().map(|s| s.as_bytes()));
    String::from_utf8_lossy(&redis.command_on(&keys[0], &a)).into_owned()
}

/// Every new script call gives the same answer, and changes nothing more,
/// when it is sent again (a reply lost with its connection): a redeem by
/// its token, the reap of a dead process's claims, a renewal, the adoption
/// of a process and the forgetting of a dead one.
pub fn lease_and_ticket_scripts_are_idempotent_when_retried(redis: &dyn Redis) {
    let ns = unique_name("retry");
    let store = borrowstore::Store::open(&redis.store_url(&ns, "")).unwrap();
    let owner = store.owned_proxy(vec![3u64]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let ticket = RefProxy::into_ticket(borrow(&owner).unwrap()).unwrap();
    store.flush().unwrap();
    let keys: [String; 5] = ["s", "r", "h", "t", "x"].map(|p| format!("{ns}:{{{key}}}:{p}"));
    let hkeys =
        String::from_utf8_lossy(&redis.command_on(&keys[3], &[b"HKEYS", keys[3].as_bytes()]))
            .into_owned();
    let id = hkeys
        .split("\r\n")
        .find(|l| l.len() == 32)
        .unwrap_or_else(|| panic!("no ticket in {hkeys:?}"))
        .to_owned();
    let pid = "0123456789abcdef0123456789abcdef";
    let token = "00000000000000000000000000000001";

    let first = eval(redis, &keys, &["redeem", &id, token, pid, "r"]);
    assert!(first.contains("$2\r\nok"), "{first:?}");
    assert_eq!(eval(redis, &keys, &["redeem", &id, token, pid, "r"]), first);
    let other = eval(
        redis,
        &keys,
        &["redeem", &id, "00000000000000000000000000000002", pid, "r"],
    );
    assert!(other.contains("redeemed"), "{other:?}");
    let info = store.inspect(&key).unwrap().unwrap();
    assert_eq!(info.readers, 1, "{info:?}");
    assert_eq!(
        resp_int(&redis.command_on(&keys[3], &[b"HLEN", keys[3].as_bytes()])),
        0
    );
    // The ticket's bytes are spent for the store too.
    assert!(matches!(ticket.redeem(), Err(Error::TicketRedeemed { .. })));

    // The table of processes: adopt and renew twice; then the process
    // stops renewing its 300 ms lease while another keeps calling (so the
    // table sees no stall), and it is judged dead.
    let procs: [String; 5] = std::array::from_fn(|_| format!("{ns}:{{{ns}:procs}}"));
    for _ in 0..2 {
        eval(redis, &procs, &["adopt", "60000", pid]);
    }
    for _ in 0..2 {
        let r = eval(redis, &procs, &["beat", pid, "300", "renew", "1"]);
        assert!(r.contains("$2\r\nok") && !r.contains("dead"), "{r:?}");
    }
    let witness = "fedcba9876543210fedcba9876543210";
    let mut judged = String::new();
    let found = poll_until(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(30));
        judged = eval(redis, &procs, &["beat", witness, "60000", "look", "0"]);
        dead_in(&judged) == [pid]
    });
    assert!(found.is_some(), "never judged dead: {judged:?}");
    let again = eval(redis, &procs, &["beat", pid, "300", "renew", "1"]);
    assert!(again.contains("dead"), "a dead process renewed: {again:?}");
    for _ in 0..2 {
        eval(redis, &keys, &["reap", pid]);
        let info = store.inspect(&key).unwrap().unwrap();
        assert!(info.owner && info.readers == 0, "{info:?}");
    }
    for _ in 0..2 {
        eval(redis, &procs, &["forget", pid]);
    }
    let left = String::from_utf8_lossy(
        &redis.command_on(&procs[0], &[b"HGET", procs[0].as_bytes(), pid.as_bytes()]),
    )
    .into_owned();
    assert!(
        left.starts_with("$-1"),
        "a forgotten process is still in the table: {left:?}"
    );
    drop(owner);
    store.flush().unwrap();
    assert!(store.keys().unwrap().is_empty());
}

/// The renewal window, script by script: a table untouched for longer
/// than half a lease (as after a stall) gives every record a full lease
/// before judging, so a process that renews right after the gap is not
/// dead; one that does not renew within that lease is.
pub fn the_process_table_gives_a_renewal_window_after_a_gap(redis: &dyn Redis) {
    let ns = unique_name("window");
    let procs: [String; 5] = std::array::from_fn(|_| format!("{ns}:{{{ns}:procs}}"));
    let (a, b) = (
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    );
    eval(redis, &procs, &["beat", a, "300", "renew", "0"]);
    eval(redis, &procs, &["beat", b, "300", "renew", "0"]);
    // Nobody calls for 500 ms: both deadlines pass.
    std::thread::sleep(Duration::from_millis(500));
    let after = eval(redis, &procs, &["beat", b, "300", "renew", "1"]);
    assert!(
        dead_in(&after).is_empty(),
        "judged dead right after the gap: {after:?}"
    );
    assert!(after.contains(a) && after.contains(b), "{after:?}");
    // B keeps renewing, A does not: A is dead once its new lease is over.
    // (A busy machine's longer pause between these calls is no second
    // window for A: it had its window and did not renew.)
    let mut last = String::new();
    let judged = poll_until(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(30));
        last = eval(redis, &procs, &["beat", b, "300", "renew", "1"]);
        dead_in(&last) == [a]
    });
    assert!(judged.is_some(), "A was never judged dead: {last:?}");
    eval(redis, &procs, &["beat", b, "300", "leave", "1"]);
    eval(redis, &procs, &["forget", a]);
    let exists = resp_int(&redis.command_on(&procs[0], &[b"EXISTS", procs[0].as_bytes()]));
    assert_eq!(exists, 0, "an empty process table is left behind");
}

/// The renewal window is given once until a process renews: a process
/// with a short lease that died, among processes that call the table
/// seldom (every gap looks like a stall), is judged dead after one extra
/// lease at most.
pub fn a_dead_short_lease_is_judged_among_long_ones(redis: &dyn Redis) {
    let ns = unique_name("mixed");
    let procs: [String; 5] = std::array::from_fn(|_| format!("{ns}:{{{ns}:procs}}"));
    let (short, long) = (
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    );
    eval(redis, &procs, &["beat", short, "200", "renew", "0"]);
    eval(redis, &procs, &["beat", long, "60000", "renew", "0"]);
    // The short one dies; the long one renews every 500 ms.
    let mut beats = 0;
    let mut last;
    loop {
        std::thread::sleep(Duration::from_millis(500));
        last = eval(redis, &procs, &["beat", long, "60000", "renew", "1"]);
        beats += 1;
        if beats == 6 || dead_in(&last) == [short] {
            break;
        }
    }
    assert!(
        dead_in(&last) == [short],
        "a dead process with a 200 ms lease was still alive after {beats} beats 500 ms apart: {last:?}"
    );
    assert!(beats <= 2, "judged dead only at beat {beats}");
    eval(redis, &procs, &["beat", long, "60000", "leave", "1"]);
    eval(redis, &procs, &["forget", short]);
}

/// One reaper of a namespace sweeps at a time: a turn is refused while
/// another's runs, unless the asker knows of a death the running pass does
/// not; a turn runs out after its lease.
pub fn one_reaper_sweeps_at_a_time(redis: &dyn Redis) {
    let ns = unique_name("turns");
    let procs: [String; 5] = std::array::from_fn(|_| format!("{ns}:{{{ns}:procs}}"));
    let (x, y) = (
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    );
    // A table exists while a process has a record.
    eval(redis, &procs, &["beat", x, "60000", "renew", "0"]);
    let status = |r: String| r.split("\r\n").nth(2).unwrap_or_default().to_owned();
    assert_eq!(status(eval(redis, &procs, &["turn", x, "300", "0"])), "ok");
    assert_eq!(
        status(eval(redis, &procs, &["turn", y, "300", "0"])),
        "busy"
    );
    assert_eq!(status(eval(redis, &procs, &["turn", x, "300", "0"])), "ok");
    // Y knows of a death judged at time 5: X's pass (knowing of none) does
    // not cover it; then X, knowing of nothing newer, waits for Y's pass.
    assert_eq!(status(eval(redis, &procs, &["turn", y, "300", "5"])), "ok");
    assert_eq!(
        status(eval(redis, &procs, &["turn", x, "300", "5"])),
        "busy"
    );
    assert_eq!(
        status(eval(redis, &procs, &["turn", x, "300", "0"])),
        "busy"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(status(eval(redis, &procs, &["turn", x, "300", "0"])), "ok");
    eval(redis, &procs, &["beat", x, "60000", "leave", "1"]);
    let exists = resp_int(&redis.command_on(&procs[0], &[b"EXISTS", procs[0].as_bytes()]));
    assert_eq!(exists, 0, "an empty process table is left behind");
}

/// A store connection that holds claims has a record in the process table;
/// once it holds nothing and is closed, its record is removed at once, not
/// left to its next renewal.
pub fn a_closed_store_leaves_no_process_record(redis: &dyn Redis) {
    let ns = unique_name("closed");
    let procs = format!("{ns}:{{{ns}:procs}}");
    let exists = || resp_int(&redis.command_on(&procs, &[b"EXISTS", procs.as_bytes()]));
    // Renewals every second; not registered, so that dropping it closes it.
    let store = borrowstore::Store::builder(&ns)
        .url(redis.store_url(&ns, "lease_ms=3000"))
        .register(false)
        .build()
        .unwrap();
    let owner = store.owned_proxy(vec![1u64]).unwrap();
    let registered = poll_until(Duration::from_secs(5), || exists() == 1);
    assert!(
        registered.is_some(),
        "no process record while it holds an owner"
    );
    drop(owner);
    drop(store);
    let gone = poll_until(Duration::from_millis(700), || exists() == 0);
    assert!(gone.is_some(), "a closed store left its process record");
}

/// One `#[test]` per check, on the deployment `$start` makes (an
/// expression of a type that implements [`Redis`]).
macro_rules! lease_checks {
    ($start:expr) => {
        #[test]
        fn a_live_process_keeps_12000_claims_under_a_reap_of_8000_objects() {
            super::a_live_process_keeps_12000_claims_under_a_reap_of_8000_objects(&$start);
        }

        lease_checks!(@light $start);
    };
    // Every check but the 12,000-claim one.
    (@light $start:expr) => {

        #[test]
        fn a_client_clock_5s_behind_changes_nothing() {
            super::a_client_clock_5s_behind_changes_nothing(&$start);
        }

        #[test]
        fn a_10s_server_stall_evicts_nothing_a_live_process_owns() {
            super::a_10s_server_stall_evicts_nothing_a_live_process_owns(&$start);
        }

        #[test]
        fn a_process_killed_before_its_first_renewal_is_reclaimed() {
            super::a_process_killed_before_its_first_renewal_is_reclaimed(&$start);
        }

        #[test]
        fn lease_and_ticket_scripts_are_idempotent_when_retried() {
            super::lease_and_ticket_scripts_are_idempotent_when_retried(&$start);
        }

        #[test]
        fn the_process_table_gives_a_renewal_window_after_a_gap() {
            super::the_process_table_gives_a_renewal_window_after_a_gap(&$start);
        }

        #[test]
        fn a_dead_short_lease_is_judged_among_long_ones() {
            super::a_dead_short_lease_is_judged_among_long_ones(&$start);
        }

        #[test]
        fn one_reaper_sweeps_at_a_time() {
            super::one_reaper_sweeps_at_a_time(&$start);
        }

        #[test]
        fn a_closed_store_leaves_no_process_record() {
            super::a_closed_store_leaves_no_process_record(&$start);
        }

        #[test]
        fn spent_tickets_leave_no_record() {
            super::spent_tickets_leave_no_record(&$start);
        }
    };
}

mod single_server {
    lease_checks!(borrowstore_testkit::redis_server::RedisServer::start());
}

/// Without the 12,000-claim check: its setup alone (20,000 objects and
/// claims, one round trip each through the cluster client of a debug build)
/// outlasts a child's 30 s reply timeout on a busy 2-core machine.
mod cluster {
    lease_checks!(@light borrowstore_testkit::redis_cluster::RedisCluster::start());
}

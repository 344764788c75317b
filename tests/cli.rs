//! The `borrowstore` command, run as a program against a file store and a
//! Redis store that hold known objects and claims: some of this process,
//! some of a live child process, one of a child that was killed. On Redis
//! the killed child's lease runs out and the command, which only reads,
//! lists its claims as expired, not reclaimed; on a file store the
//! survivors reclaim a killed process's claims at once (they share its
//! fate through its lock file), so the command finds them gone.
//!
//! `memory --json` is parsed and every field of every object and claim is
//! checked; the plain table, `--stats-only`, `--group-by`, `--sort-by`,
//! `inspect` and `reap` are checked too.

use std::process::Command;
use std::time::Duration;

use borrowstore::connector::this_process;
use borrowstore::{OwnedProxy, borrow, codec};
use borrowstore_testkit::Suite;
use borrowstore_testkit::process::{ChildProc, Target, hex};
use serde_json::Value;

borrowstore_testkit::child_entry!();

const SUITE: Suite = borrowstore_testkit::suite!("cli");
const LEASE: Duration = Duration::from_millis(500);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Runs the command; its stdout (it must succeed).
fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_borrowstore"))
        .args(args)
        .output()
        .expect("run borrowstore");
    assert!(
        out.status.success(),
        "borrowstore {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn object<'a>(all: &'a [Value], key: &str) -> &'a Value {
    all.iter()
        .find(|o| o["key"] == key)
        .unwrap_or_else(|| panic!("no object {key} in {all:#?}"))
}

/// The claims of `o` of `kind`.
fn claims<'a>(o: &'a Value, kind: &str) -> Vec<&'a Value> {
    o["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .filter(|c| c["kind"] == kind)
        .collect()
}

/// Checks the fields every claim has: `pid`, `host`, `label`, `since_ms`,
/// `lease_expires_ms` (and nothing else besides `kind`).
fn check_claim(c: &Value, pid: u32, label_has: &str, before: u64, expired: bool) {
    let fields: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "host",
            "kind",
            "label",
            "lease_expires_ms",
            "pid",
            "since_ms"
        ],
        "{c}"
    );
    assert_eq!(c["pid"], pid, "{c}");
    assert_eq!(c["host"], this_process().1, "{c}");
    let label = c["label"]
        .as_str()
        .unwrap_or_else(|| panic!("a label: {c}"));
    assert!(
        label.contains(label_has),
        "label {label:?} lacks {label_has:?}"
    );
    let since = c["since_ms"].as_u64().unwrap();
    assert!(since + 50 >= before && since <= now_ms(), "{c}");
    let lease = c["lease_expires_ms"].as_u64().expect("a lease deadline");
    if expired {
        assert!(lease < now_ms(), "expected an expired lease: {c}");
    } else {
        assert!(lease > since, "{c}");
    }
}

/// How a store treats the claims of a killed process.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Killed {
    /// Its claims stay until their lease runs out and an operation (or a
    /// reap pass) reclaims them: the command lists them as expired.
    /// `reaps`: whether `borrowstore reap` reclaims them.
    Expire { reaps: bool },
    /// The survivors reclaim them at once (file stores).
    ReclaimedAtOnce,
}

/// `t` opened with the default (long) lease: this process and the live
/// child, whose reap passes (once a lease) must not reclaim the killed
/// child's claims during the test; the killed child gets `short`, a URL of
/// the same store with a short lease.
fn scenario(t: &Target, short: &str, killed: Killed) {
    let at_once = killed == Killed::ReclaimedAtOnce;
    let store = t.open();
    let me = std::process::id();
    let before = now_ms();

    // A: named, owned here, borrowed here.
    let a = store.owned_proxy_named(vec![1u64, 2, 3], "model").unwrap();
    let a_reader = borrow(&a).unwrap();
    // B: owned and borrowed by a live child.
    let mut live = ChildProc::spawn("live", "interp", &t.url, &[]);
    let b = store.owned_proxy(vec![4u64]).unwrap();
    let b_key = *OwnedProxy::key(&b);
    let ticket = OwnedProxy::into_ticket(b).unwrap();
    live.ok(&format!(
        "REDEEM_OWNER {}",
        hex(&ticket.to_bytes().unwrap())
    ));
    live.ok("BORROW");
    // E: owned and borrowed by a child that is killed.
    // (It makes the object itself: a ticket names the store by its URL,
    // and the child's URL, with its short lease, is another one.)
    let mut doomed = ChildProc::spawn("doomed", "interp", short, &[]);
    let made = doomed.ok("NEW_OWNER_TICKET 5,6");
    let (e_key, ticket) = made.split_once(' ').expect("key and ticket");
    let e_key: borrowstore::Key = e_key.parse().unwrap();
    doomed.ok(&format!("REDEEM_OWNER {ticket}"));
    doomed.ok("BORROW");
    let doomed_pid = doomed.id();
    doomed.kill();
    // D: plain.
    let d = store.put(&String::from("plain")).unwrap();
    std::thread::sleep(LEASE * 2);
    if at_once {
        // Its owner was the killed child's: reclaimed, the object went.
        assert!(store.inspect(&e_key).unwrap().is_none());
    }

    let out = cli(&["memory", &t.url, "--json"]);
    let all: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(all.len(), if at_once { 3 } else { 4 }, "{out}");
    for o in &all {
        let mut fields: Vec<&str> = o.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        for f in [
            "claims",
            "created_ms",
            "key",
            "owners",
            "readers",
            "size",
            "type",
            "version",
            "writer",
        ] {
            assert!(fields.contains(&f), "no {f} in {o}");
        }
        assert_eq!(o["key"].as_str().unwrap().len(), 32, "{o}");
        assert_eq!(o["version"], 1, "{o}");
        assert_eq!(o["writer"], false, "{o}");
        let created = o["created_ms"].as_u64().unwrap();
        assert!(created + 50 >= before && created <= now_ms(), "{o}");
    }
    let cli_rs = "tests/cli.rs:";

    let oa = object(&all, &OwnedProxy::key(&a).to_string());
    assert_eq!(oa["type"], "alloc::vec::Vec<u64>");
    assert_eq!(oa["size"], codec::encode(&vec![1u64, 2, 3]).unwrap().len());
    assert_eq!(oa["label"], "model");
    assert_eq!(
        (oa["owners"].clone(), oa["readers"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(oa["claims"].as_array().unwrap().len(), 2);
    check_claim(claims(oa, "owner")[0], me, "model", before, false);
    check_claim(claims(oa, "reader")[0], me, cli_rs, before, false);

    let ob = object(&all, &b_key.to_string());
    assert_eq!(ob["type"], "alloc::vec::Vec<u64>");
    assert_eq!(ob["size"], codec::encode(&vec![4u64]).unwrap().len());
    assert_eq!(
        (ob["owners"].clone(), ob["readers"].clone()),
        (1.into(), 1.into())
    );
    // The owner moved to the child: its process, the label it was taken with.
    check_claim(claims(ob, "owner")[0], live.id(), cli_rs, before, false);
    check_claim(
        claims(ob, "reader")[0],
        live.id(),
        "process/child.rs:",
        before,
        false,
    );

    if at_once {
        assert!(all.iter().all(|o| o["key"] != e_key.to_string()), "{out}");
    } else {
        let oe = object(&all, &e_key.to_string());
        assert_eq!(
            (oe["owners"].clone(), oe["readers"].clone()),
            (1.into(), 1.into())
        );
        check_claim(
            claims(oe, "owner")[0],
            doomed_pid,
            "process/child.rs:",
            before,
            true,
        );
        check_claim(
            claims(oe, "reader")[0],
            doomed_pid,
            "process/child.rs:",
            before,
            true,
        );
    }

    let od = object(&all, &d.to_string());
    assert_eq!(od["type"], "alloc::string::String");
    assert_eq!(
        (od["owners"].clone(), od["readers"].clone()),
        (0.into(), 0.into())
    );
    assert!(od["claims"].as_array().unwrap().is_empty());

    // The plain output: a table, the expired lease, the summary.
    let plain = cli(&["memory", &t.url]);
    println!("{plain}");
    assert!(
        plain.contains("model") && plain.contains(&d.to_string()),
        "{plain}"
    );
    let (objects, claimed, processes, expired) = if at_once { (3, 2, 2, 0) } else { (4, 3, 3, 2) };
    assert_eq!(
        plain.contains("expired lease awaiting reclaim"),
        !at_once,
        "{plain}"
    );
    assert!(plain.contains(&format!("objects   {objects}")), "{plain}");
    assert!(
        plain.contains(&format!(
            "claims    owner {claimed}, holder 0, reader {claimed}, writer 0, ticket 0"
        )),
        "{plain}"
    );
    assert!(
        plain.contains(&format!(
            "processes {processes} (2 alive, {} gone",
            processes - 2
        )),
        "{plain}"
    );
    assert!(
        plain.contains(&format!("expired   {expired} leases awaiting reclaim")),
        "{plain}"
    );

    let stats: Value =
        serde_json::from_str(&cli(&["memory", &t.url, "--stats-only", "--json"])).unwrap();
    assert_eq!(stats["objects"], objects);
    assert_eq!(stats["processes"], processes);
    assert_eq!(stats["processes_alive"], 2);
    assert_eq!(stats["expired_leases"], expired);
    assert_eq!(stats["claims"]["reader"], claimed);

    let grouped = cli(&[
        "memory",
        &t.url,
        "--group-by",
        "process",
        "--sort-by",
        "size",
    ]);
    assert_eq!(
        grouped.contains(&format!("pid {doomed_pid}")),
        !at_once,
        "{grouped}"
    );
    assert!(grouped.contains(&format!("pid {}", live.id())), "{grouped}");
    let by_type = cli(&["memory", &t.url, "--group-by", "type", "--sort-by", "age"]);
    assert!(
        by_type.contains("== alloc::string::String: 1 objects"),
        "{by_type}"
    );
    cli(&["memory", &t.url, "--sort-by", "readers", "--stats-only"]);

    let one: Value = serde_json::from_str(&cli(&[
        "inspect",
        &t.url,
        &OwnedProxy::key(&a).to_string(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(one["label"], "model");
    let table = cli(&["inspect", &t.url, &OwnedProxy::key(&a).to_string()]);
    assert!(table.contains("label    model"), "{table}");

    if !at_once {
        // Only reads: the killed child's claims are still there.
        assert_eq!(store.inspect(&e_key).unwrap().unwrap().readers, 1);
    }
    let reaped = cli(&["reap", &t.url]);
    if at_once {
        assert_eq!(
            reaped.trim(),
            "reclaimed 0 expired claims; 0 objects evicted; 3 objects left"
        );
    } else if killed == (Killed::Expire { reaps: true }) {
        assert_eq!(
            reaped.trim(),
            "reclaimed 2 expired claims; 1 objects evicted; 3 objects left"
        );
        assert!(store.inspect(&e_key).unwrap().is_none());
    } else {
        // Redis: a dead process's claims are released by the stores' own
        // reap passes (which judge the process table), not by an operation
        // on the object.
        assert!(reaped.starts_with("reclaimed "), "{reaped}");
    }

    live.exit();
    drop((a_reader, a));
    store.evict(&d).unwrap();
}

#[test]
fn memory_of_a_file_store() {
    let t = Target::file(&SUITE, "cli-file", None);
    let short = format!("{}?lease_ms={}", t.url, LEASE.as_millis());
    scenario(&t, &short, Killed::ReclaimedAtOnce);
    t.cleanup();
}

#[test]
fn memory_of_a_redis_store() {
    let base = borrowstore_testkit::redis_server::base_url_for_this_test();
    let t = Target::redis(&base, "cli-redis", None);
    let short = format!("{}&lease_ms={}", t.url, LEASE.as_millis());
    scenario(&t, &short, Killed::Expire { reaps: false });
}

#[test]
fn a_directory_that_is_no_store_is_refused_and_not_created() {
    let dir = SUITE.file_dir_named("not-a-store");
    let missing = dir.join("missing");
    let out = Command::new(env!("CARGO_BIN_EXE_borrowstore"))
        .args(["memory", &format!("file://{}", missing.display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a borrowstore store directory"));
    assert!(!missing.exists());
}

//! Process plumbing for tests that use several real processes.
//!
//! The pattern: a test binary re-executes itself (`std::env::current_exe()`)
//! with `child_entry --exact --nocapture --test-threads=1`, and environment
//! variables that tell its `#[test] fn child_entry()` which role to play and
//! which store to open. Without [`ROLE_VAR`] `child_entry` returns at once,
//! so it is harmless in the parent's run.
//!
//! That test function has to be in the test binary itself — the harness of
//! the re-executed binary runs it by name — so a binary that spawns
//! children declares it with [`child_entry!`](crate::child_entry!); what it
//! runs ([`child::entry`]) and everything else lives here.
//!
//! A child talks to its parent through lines: it prints protocol lines on
//! stdout (prefixed with [`PREFIX`], so the test harness's own output is
//! ignored) and reads commands from stdin, one per line. The child side is
//! [`child`]; the command set is documented there.
//!
//! Everything is bounded: every wait has a timeout, and a [`ChildProc`] kills
//! (SIGKILL) and reaps its process when it is dropped, so a failing test
//! never leaves a child behind or hangs.
//!
//! Nothing here is specific to the file store: a [`Target`] is a store URL
//! plus what the tests need to know about it (its lease, and for a file
//! store its directory), so the scenarios in [`scenarios`] run against any
//! connector that several processes can reach.
//!
//! ```ignore
//! // tests/cross_process.rs
//! borrowstore_testkit::child_entry!();
//!
//! const SUITE: borrowstore_testkit::Suite = borrowstore_testkit::suite!("cross-process");
//!
//! #[test]
//! fn update_in_a_is_seen_by_resolve_in_b() {
//!     let target = borrowstore_testkit::process::Target::file(&SUITE, "update-seen", None);
//!     borrowstore_testkit::process::scenarios::update_in_a_is_seen_by_resolve_in_b(&target);
//!     target.cleanup();
//! }
//! ```

pub mod child;
pub mod clock;
pub mod scenarios;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use borrowstore::{Key, ObjectInfo, Store};

use crate::names::unique_name;
use crate::suite::Suite;

/// The name of the test function a child runs: the one
/// [`child_entry!`](crate::child_entry!) declares.
pub const ENTRY_TEST: &str = "child_entry";
/// The role a child plays; absent in the parent.
pub const ROLE_VAR: &str = "BORROWSTORE_CHILD_ROLE";
/// The store URL a child opens.
pub const URL_VAR: &str = "BORROWSTORE_STORE_URL";
/// The child's name, for messages.
pub const NAME_VAR: &str = "BORROWSTORE_CHILD_NAME";
/// Marks a protocol line on a child's stdout. Lines without it (the test
/// harness's "running 1 test", …) are ignored; the marker may follow other
/// text on the same line ("test child_entry ... ").
pub const PREFIX: &str = "@@borrowstore@@ ";

/// How long a child may take to start (the machine may be busy compiling).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child may take to answer one command.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The store the scenarios run against.
#[derive(Clone, Debug)]
pub struct Target {
    /// What [`Store::open`] gets, in the parent and in every child.
    pub url: String,
    /// How long a dead process's claims survive it.
    pub lease: Duration,
    /// For a file store: its directory, checked for stray files.
    pub dir: Option<PathBuf>,
}

/// The lease of file stores made without `lease_ms` (the connector default).
pub const DEFAULT_LEASE: Duration = borrowstore::connector::DEFAULT_LEASE;

impl Target {
    /// A file store in a fresh directory of `suite` (see
    /// [`Suite::file_dir`]); `lease` sets `?lease_ms=` (else the default
    /// lease).
    pub fn file(suite: &Suite, tag: &str, lease: Option<Duration>) -> Target {
        let dir = suite.file_dir_named(tag);
        let mut url = format!("file://{}", dir.display());
        if let Some(l) = lease {
            url.push_str(&format!("?lease_ms={}", l.as_millis()));
        }
        Target {
            url,
            lease: lease.unwrap_or(DEFAULT_LEASE),
            dir: Some(dir),
        }
    }

    /// A Redis store at `base` (`redis://host:port/db`) in a fresh
    /// namespace; `lease` sets `lease_ms=` (else the default lease).
    pub fn redis(base: &str, tag: &str, lease: Option<Duration>) -> Target {
        let ns = unique_name(&format!("xp-{tag}"));
        let sep = if base.contains('?') { '&' } else { '?' };
        let mut url = format!("{base}{sep}ns={ns}");
        if let Some(l) = lease {
            url.push_str(&format!("&lease_ms={}", l.as_millis()));
        }
        Target {
            url,
            lease: lease.unwrap_or(DEFAULT_LEASE),
            dir: None,
        }
    }

    /// Opens the store in this process.
    pub fn open(&self) -> Store {
        Store::open(&self.url).unwrap_or_else(|e| panic!("open {}: {e}", self.url))
    }

    /// How long to wait, at most, for a dead process's claims to be
    /// reclaimed: a few leases, plus slack for a busy machine.
    pub fn reclaim_deadline(&self) -> Duration {
        self.lease * 6 + Duration::from_secs(2)
    }

    /// Files left in the store directory's `sub` folder (file stores only).
    pub fn files_in(&self, sub: &str) -> Vec<String> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        match std::fs::read_dir(dir.join(sub)) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Asserts that the store holds nothing: no key, and (file stores) no
    /// file under `objects/` — within 2 s of the keys: an eviction that a
    /// reclaim makes on the file store's keeper thread marks the object
    /// gone in the table first, then removes its files.
    pub fn assert_empty(&self, store: &Store) {
        let keys = store.keys().expect("keys");
        assert!(keys.is_empty(), "leftover keys in {}: {keys:?}", self.url);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut files = self.files_in("objects");
        while !files.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            files = self.files_in("objects");
        }
        assert!(
            files.is_empty(),
            "stray files in objects/ of {}: {files:?}",
            self.url
        );
    }

    /// Freezes `child` (SIGSTOP) at a moment when it holds none of the file
    /// store's shard locks: a process frozen inside a transition would hold
    /// its lock — `File::lock` has no timeout — and block this one forever.
    /// (A Redis store has no such locks: its transitions run server-side.)
    pub fn freeze(&self, child: &mut ChildProc) {
        for _ in 0..100 {
            child.signal("STOP");
            if self.no_lock_is_held() {
                return;
            }
            child.signal("CONT");
            std::thread::sleep(Duration::from_millis(7));
        }
        panic!("could not freeze {} outside its store locks", child.name());
    }

    /// Whether every shard lock file of a file store can be taken now.
    fn no_lock_is_held(&self) -> bool {
        let Some(dir) = &self.dir else {
            return true;
        };
        let Ok(rd) = std::fs::read_dir(dir.join("locks")) else {
            return true;
        };
        rd.flatten().all(|e| {
            let Ok(f) = std::fs::OpenOptions::new().write(true).open(e.path()) else {
                return true;
            };
            let free = f.try_lock().is_ok();
            let _ = f.unlock();
            free
        })
    }

    /// Removes a file store's directory (best effort).
    pub fn cleanup(&self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The time in nanoseconds: a little randomness for the scenarios.
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The store-side state of `key`, or `None` if it is not stored.
pub fn inspect(store: &Store, key: &Key) -> Option<ObjectInfo> {
    store.inspect(key).expect("inspect")
}

// ---------------------------------------------------------------------------
// Hex, for bytes on a command line
// ---------------------------------------------------------------------------

/// Lower-case hex of `bytes`.
///
/// ```
/// use borrowstore_testkit::process::{hex, unhex};
/// assert_eq!(hex(&[0, 171, 255]), "00abff");
/// assert_eq!(unhex("00abff"), Some(vec![0, 171, 255]));
/// assert_eq!(unhex("0g"), None);
/// ```
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes from lower- or upper-case hex; `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The path of the example `name` built beside the running test binary:
/// integration tests are in `target/<profile>/deps/`, examples in
/// `target/<profile>/examples/`, and `cargo test` builds both.
///
/// # Panics
///
/// If the example is not built, saying how to build it.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let example = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .expect("the test binary is in target/<profile>/deps/");
    assert!(
        example.exists(),
        "{} is not built (cargo test builds the examples; or cargo build --all-features \
         --example {name})",
        example.display()
    );
    example
}

// ---------------------------------------------------------------------------
// The parent side: a child process
// ---------------------------------------------------------------------------

/// A reply from a child: `Ok(rest of an "OK" line)` or
/// `Err((error kind, message))` from an "ERR kind message" line.
pub type Reply = Result<String, (String, String)>;

/// A child process running [`ENTRY_TEST`] of this test binary. Killed
/// (SIGKILL) and reaped when dropped.
pub struct ChildProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    started: Instant,
}

impl ChildProc {
    /// Starts this test binary as a child playing `role` against the store
    /// at `url`, with extra environment `env`, and waits until it reports
    /// that it opened the store.
    pub fn spawn(name: &str, role: &str, url: &str, env: &[(&str, &str)]) -> ChildProc {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(exe);
        cmd.args([ENTRY_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role)
            .env(URL_VAR, url)
            .env(NAME_VAR, name)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn child {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr_pipe = child.stderr.take().expect("piped stderr");

        let (tx, lines) = mpsc::channel();
        let thread_name = format!("{name}-stdout");
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find(PREFIX)
                        && tx.send(line[at + PREFIX.len()..].to_owned()).is_err()
                    {
                        break;
                    }
                }
            })
            .expect("spawn reader thread");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::Builder::new()
            .name(format!("{name}-stderr"))
            .spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stderr_pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => sink
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push_str(&String::from_utf8_lossy(&buf[..n])),
                    }
                }
            })
            .expect("spawn stderr thread");

        let mut proc = ChildProc {
            name: name.to_owned(),
            child,
            stdin,
            lines,
            stderr,
            started,
        };
        let hello = proc.line(START_TIMEOUT);
        assert_eq!(hello, "STARTED", "child {name} did not start properly");
        proc
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the child wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fail(&mut self, what: &str) -> ! {
        // Give the stderr thread a moment to collect a panic message.
        std::thread::sleep(Duration::from_millis(100));
        let status = self.child.try_wait().ok().flatten();
        panic!(
            "child {} (pid {}, started {:?} ago): {what}; exit status: {status:?}\n--- child stderr ---\n{}",
            self.name,
            self.child.id(),
            self.started.elapsed(),
            self.stderr()
        )
    }

    /// Sends one command line.
    pub fn send(&mut self, line: &str) {
        let r = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(line.as_bytes())
                .and_then(|()| stdin.write_all(b"\n"))
                .and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin closed")),
        };
        if let Err(e) = r {
            self.fail(&format!("cannot send {line:?}: {e}"));
        }
    }

    /// The next protocol line, waiting at most `timeout`; panics (with the
    /// child's stderr) on timeout or if the child exits.
    pub fn line(&mut self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => self.fail(&format!("no reply within {timeout:?}")),
            Err(RecvTimeoutError::Disconnected) => self.fail("stdout closed (the child exited)"),
        }
    }

    /// The next reply line, parsed: "OK rest" or "ERR kind message".
    pub fn reply(&mut self, timeout: Duration) -> Reply {
        let l = self.line(timeout);
        if let Some(rest) = l.strip_prefix("OK") {
            return Ok(rest.trim_start().to_owned());
        }
        if let Some(rest) = l.strip_prefix("ERR ") {
            let (kind, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            return Err((kind.to_owned(), msg.to_owned()));
        }
        self.fail(&format!("unexpected line {l:?}"))
    }

    /// Sends `cmd` and returns its reply.
    pub fn call(&mut self, cmd: &str) -> Reply {
        self.send(cmd);
        self.reply(REPLY_TIMEOUT)
    }

    /// Sends `cmd` and returns the rest of its "OK" line; panics on "ERR".
    pub fn ok(&mut self, cmd: &str) -> String {
        match self.call(cmd) {
            Ok(rest) => rest,
            Err((kind, msg)) => {
                let short: String = cmd.chars().take(40).collect();
                self.fail(&format!("{short:?} failed: {kind} {msg}"))
            }
        }
    }

    /// Sends `cmd`, which must fail with error kind `kind`.
    pub fn err(&mut self, cmd: &str, kind: &str) {
        let short: String = cmd.chars().take(40).collect();
        match self.call(cmd) {
            Err((k, _)) if k == kind => {}
            other => self.fail(&format!("{short:?}: expected ERR {kind}, got {other:?}")),
        }
    }

    /// Kills the child with SIGKILL (no destructor, no lease renewal, no
    /// release runs) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (`"STOP"`, `"CONT"`, …) with the system's
    /// `kill` command: `STOP` freezes the child — its lease renewer too —
    /// without ending it.
    pub fn signal(&mut self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            self.fail(&format!("kill -{sig} failed: {status:?}"));
        }
    }

    /// Closes the child's stdin and waits (at most `timeout`) for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.stdin = None;
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => self.fail(&format!("did not exit within {timeout:?}")),
                Err(e) => self.fail(&format!("wait failed: {e}")),
            }
        }
    }

    /// Asks the child to exit normally (its handles are dropped and
    /// released) and checks that it succeeded.
    pub fn exit(&mut self) {
        self.ok("EXIT");
        let status = self.wait_exit(REPLY_TIMEOUT);
        if !status.success() {
            self.fail(&format!("exited with {status}"));
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

/// Declares the `#[test] fn child_entry()` that children spawned by
/// [`ChildProc::spawn`](crate::process::ChildProc::spawn) run: in a child it
/// plays the role it was started for ([`child::entry`](crate::process::child::entry));
/// in the parent's run it returns at once. Once per test binary that spawns
/// children, at its root.
#[macro_export]
macro_rules! child_entry {
    () => {
        /// Child processes run this (and only this) test; in the parent it
        /// returns at once.
        #[test]
        fn child_entry() {
            $crate::process::child::entry();
        }
    };
}

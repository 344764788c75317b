//! Real `redis-server` processes for the tests: each on a free loopback
//! port, with no persistence (unless asked), killed when dropped.
//!
//! ```no_run
//! use borrowstore_testkit::redis_server::RedisServer;
//! let server = RedisServer::start();
//! let url = server.url("my-namespace", "timeout_ms=300");
//! assert!(url.starts_with("redis://127.0.0.1:"));
//! ```

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether a `redis-server` binary is on the `PATH`.
pub fn installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running `redis-server`, killed (and its directory removed) when
/// dropped.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    persistent: bool,
    password: Option<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn ping(port: u16, password: Option<&str>) -> bool {
    let addr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 64];
    if let Some(p) = password {
        let auth = format!("AUTH {p}\r\n");
        let ok = s.write_all(auth.as_bytes()).is_ok()
            && s.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"+OK"));
        if !ok {
            return false;
        }
    }
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts a server that keeps its data across [`restart`](Self::restart)
    /// (append-only file, fsync always).
    pub fn start_persistent() -> RedisServer {
        Self::start_with(true)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> RedisServer {
        Self::start_full(false, Some(password.to_owned()))
    }

    fn start_with(persistent: bool) -> RedisServer {
        Self::start_full(persistent, None)
    }

    fn start_full(persistent: bool, password: Option<String>) -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir()
                .join(format!("borrowstore-redis-{}-{port}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let mut server = RedisServer {
                child: None,
                port,
                dir,
                persistent,
                password: password.clone(),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("cannot start redis-server (is it installed? ./scripts/test.sh installs it)");
    }

    /// Sends one command over RESP (for third-party writes in tests).
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        s.write_all(&req).expect("write");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).expect("read");
        buf.truncate(n);
        buf
    }

    fn spawn(&mut self) -> bool {
        let aof = if self.persistent { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", aof, "--appendfsync", "always"])
            .args(
                self.password
                    .iter()
                    .flat_map(|p| ["--requirepass", p.as_str()]),
            )
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else { return false };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if ping(self.port, self.password.as_deref()) {
                self.child = Some(child);
                return true;
            }
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A store URL on this server with its own namespace.
    pub fn url(&self, namespace: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!(
            "redis://127.0.0.1:{}/0?ns={namespace}{sep}{query}",
            self.port
        )
    }

    /// Sends a signal by name (`"STOP"`, `"CONT"`, …) to the server with the
    /// system's `kill` command: `STOP` freezes it — its connections stay
    /// open and nothing is answered — until `CONT`.
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "kill -{sig} {pid} failed: {status:?}"
        );
    }

    /// Freezes the server (`SIGSTOP`): its connections stay open and
    /// nothing is answered until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a [`pause`](Self::pause)d server run again (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the server with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (its data is gone: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "cannot restart redis-server on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a test needs of a Redis deployment — one server, or a cluster of
/// them — so that one test body runs on each: a store URL on it, a raw
/// command to a key's node, and freezing the whole deployment.
///
/// ```no_run
/// use borrowstore_testkit::redis_server::{Redis, RedisServer};
///
/// fn survives_a_stall(redis: &dyn Redis) {
///     let store = borrowstore::Store::open(&redis.store_url("stall", "lease_ms=800")).unwrap();
///     let key = store.put(&1u8).unwrap();
///     redis.pause();
///     redis.resume();
///     assert!(store.exists(&key).unwrap());
/// }
/// survives_a_stall(&RedisServer::start());
/// ```
pub trait Redis {
    /// A store URL on it with its own namespace and the extra `query`
    /// parameters (`a=1&b=2`, or empty).
    fn store_url(&self, namespace: &str, query: &str) -> String;
    /// Sends one command (over RESP) to the node that serves `key` (for
    /// looking at what the store wrote); the raw reply.
    fn command_on(&self, key: &str, args: &[&[u8]]) -> Vec<u8>;
    /// Freezes every server of it (`SIGSTOP`).
    fn pause(&self);
    /// Lets every server of it run again (`SIGCONT`).
    fn resume(&self);
}

impl Redis for RedisServer {
    fn store_url(&self, namespace: &str, query: &str) -> String {
        self.url(namespace, query)
    }

    fn command_on(&self, _key: &str, args: &[&[u8]]) -> Vec<u8> {
        self.command(args)
    }

    fn pause(&self) {
        RedisServer::pause(self)
    }

    fn resume(&self) {
        RedisServer::resume(self)
    }
}

thread_local! {
    static SERVERS: RefCell<Vec<RedisServer>> = const { RefCell::new(Vec::new()) };
}

/// Starts a server that lives until the current thread ends (each test runs
/// on its own thread), and returns a store URL on it.
pub fn url_for_this_test(namespace: &str, query: &str) -> String {
    let server = RedisServer::start();
    let url = server.url(namespace, query);
    SERVERS.with(|s| s.borrow_mut().push(server));
    url
}

/// Starts a server that lives until the current thread ends, and returns its
/// base URL (`redis://127.0.0.1:PORT/0`).
pub fn base_url_for_this_test() -> String {
    let server = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/0", server.port());
    SERVERS.with(|s| s.borrow_mut().push(server));
    url
}

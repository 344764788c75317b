//! Real `redis-server` processes for the tests: each on a free loopback
//! port, with no persistence (unless asked), killed when dropped; over
//! TLS with certificates made for it ([`RedisServer::start_tls`], feature
//! `redis-tls`); and one per test binary, shared by its tests
//! ([`shared_tls`]). Redis Clusters are in
//! [`redis_cluster`](crate::redis_cluster).
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
use std::path::{Path, PathBuf};
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
    tls: Option<Tls>,
}

/// The certificates of a TLS test server: a certificate authority made
/// for it (`ca`, which clients trust with `tls_ca=`), and the server's
/// certificate (for `127.0.0.1` and `localhost`) and key signed by it, as
/// PEM files.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The authority's certificate.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl Tls {
    /// Makes a new authority and a server certificate signed by it, in
    /// `dir` (created).
    #[cfg(feature = "redis-tls")]
    pub fn generate_in(dir: &Path) -> Tls {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

        std::fs::create_dir_all(dir).expect("create the certificates' directory");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "borrowstore test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("the CA certificate");
        let issuer = Issuer::new(ca_params, &ca_key);
        let key = KeyPair::generate().expect("a server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
        let cert = params
            .signed_by(&key, &issuer)
            .expect("the server certificate");
        let tls = Tls {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&tls.ca, ca_cert.pem()).expect("write ca.pem");
        std::fs::write(&tls.cert, cert.pem()).expect("write server.pem");
        std::fs::write(&tls.key, key.serialize_pem()).expect("write server.key");
        tls
    }

    /// The `redis-server` arguments that serve these certificates (clients
    /// are not asked for theirs).
    pub fn server_args(&self, cmd: &mut Command) {
        cmd.arg("--tls-cert-file")
            .arg(&self.cert)
            .arg("--tls-key-file")
            .arg(&self.key)
            .arg("--tls-ca-cert-file")
            .arg(&self.ca)
            .args(["--tls-auth-clients", "no"]);
    }
}

/// Kills the processes `pids` and removes `dir` once this process has
/// exited (statics are never dropped): a small shell process watches it.
pub(crate) fn kill_at_exit(pids: &[u32], dir: &Path) {
    let me = std::process::id();
    let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.2; done; kill -9 {} 2>/dev/null; sleep 0.2; rm -rf '{}'",
        pids.join(" "),
        dir.display()
    );
    let watcher = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = watcher {
        eprintln!("cannot watch the test servers {pids:?}; they outlive this process: {e}");
    }
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

    /// Starts a server that takes TLS connections only, with certificates
    /// made for it ([`Tls`]); its [`url`](Self::url)s are `rediss://…`
    /// with `tls_ca=`.
    #[cfg(feature = "redis-tls")]
    pub fn start_tls() -> RedisServer {
        Self::start_full_tls(false, None, true)
    }

    fn start_with(persistent: bool) -> RedisServer {
        Self::start_full(persistent, None)
    }

    fn start_full(persistent: bool, password: Option<String>) -> RedisServer {
        Self::start_full_tls(persistent, password, false)
    }

    fn start_full_tls(persistent: bool, password: Option<String>, tls: bool) -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir()
                .join(format!("borrowstore-redis-{}-{port}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            #[cfg(feature = "redis-tls")]
            let tls = tls.then(|| Tls::generate_in(&dir.join("tls")));
            #[cfg(not(feature = "redis-tls"))]
            let tls: Option<Tls> = {
                assert!(!tls, "TLS servers need the testkit's redis-tls feature");
                None
            };
            let mut server = RedisServer {
                child: None,
                port,
                dir,
                persistent,
                password: password.clone(),
                tls,
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("cannot start redis-server (is it installed? ./scripts/test.sh installs it)");
    }

    /// Sends one command over RESP (for third-party writes in tests).
    pub fn command(&self, args: &[&[u8]]) -> Vec<u8> {
        resp(self.port, args)
    }

    fn spawn(&mut self) -> bool {
        let aof = if self.persistent { "yes" } else { "no" };
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            Some(tls) => {
                cmd.args(["--port", "0", "--tls-port", &self.port.to_string()]);
                tls.server_args(&mut cmd);
            }
            None => {
                cmd.args(["--port", &self.port.to_string()]);
            }
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
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
            let up = match &self.tls {
                Some(tls) => tls_ping(self.port, tls),
                None => ping(self.port, self.password.as_deref()),
            };
            if up {
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
        let base = self.base_url();
        let join = if base.contains('?') { '&' } else { '?' };
        format!("{base}{join}ns={namespace}{sep}{query}")
    }

    /// The server's URL without parameters of borrowstore's:
    /// `redis://127.0.0.1:PORT/0`, or `rediss://127.0.0.1:PORT/0?tls_ca=…`.
    pub fn base_url(&self) -> String {
        match &self.tls {
            Some(tls) => format!(
                "rediss://127.0.0.1:{}/0?tls_ca={}",
                self.port,
                tls.ca.display()
            ),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    #[cfg_attr(not(feature = "redis-tls"), allow(dead_code))]
    fn into_shared(mut self) -> RedisServer {
        if let Some(c) = self.child.take() {
            kill_at_exit(&[c.id()], &self.dir);
        }
        self
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
        if self.child.is_some() {
            self.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether the TLS server on `port` answers `PING` (through `redis-cli`).
fn tls_ping(port: u16, tls: &Tls) -> bool {
    Command::new("redis-cli")
        .args(["--tls", "--cacert"])
        .arg(&tls.ca)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "PING"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"PONG"))
}

/// The TLS server this test binary's tests share: started by the first
/// test that asks, killed when the test binary exits.
#[cfg(feature = "redis-tls")]
pub fn shared_tls() -> &'static RedisServer {
    static SERVER: std::sync::OnceLock<RedisServer> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start_tls().into_shared())
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

/// Sends one command (over RESP) to the server or node on loopback `port`;
/// the raw reply (one read, up to 4 KiB, within 2 s).
pub(crate) fn resp(port: u16, args: &[&[u8]]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
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

//! A real Redis Cluster for the tests: six `redis-server --cluster-enabled
//! yes` nodes on free loopback ports (three primaries, one replica each),
//! made a cluster with `redis-cli --cluster create`, plain or over TLS.
//!
//! A cluster is a [`Redis`] deployment (raw commands follow `MOVED`; a
//! pause freezes every node). A test binary usually shares one cluster
//! between its tests
//! ([`shared`], [`shared_tls`]): it is started by the first test that asks
//! for it and killed when the test binary exits, and every test works in
//! a namespace of its own.
//!
//! ```no_run
//! use borrowstore_testkit::redis_cluster;
//! let cluster = redis_cluster::shared();
//! let url = cluster.url("my-namespace", "timeout_ms=2000");
//! assert!(url.starts_with("redis+cluster://127.0.0.1:"));
//! let store = borrowstore::Store::open(&url).unwrap();
//! # drop(store);
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis_server::{Redis, Tls, kill_at_exit};

/// How many nodes a cluster has: three primaries and their replicas.
pub const NODES: usize = 6;

/// A running Redis Cluster, its nodes killed (and its directory removed)
/// when dropped — or, for [`shared`] ones, when the test binary exits.
pub struct RedisCluster {
    nodes: Vec<Child>,
    /// The nodes' process ids (kept when a watcher owns the processes).
    pids: Vec<u32>,
    ports: Vec<u16>,
    dir: PathBuf,
    tls: Option<Tls>,
}

/// A port that is free, with its cluster bus port (`port + 10000`) free
/// too.
fn free_cluster_port(taken: &[u16]) -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = l.local_addr().expect("its address").port();
        if port > 50000 || taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts a cluster of [`NODES`] nodes and waits until every node says
    /// `cluster_state:ok` and every replica is in sync with its primary.
    pub fn start() -> RedisCluster {
        Self::start_with(false)
    }

    /// The same over TLS only (clients, the cluster bus and replication),
    /// with certificates made for it.
    #[cfg(feature = "redis-tls")]
    pub fn start_tls() -> RedisCluster {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> RedisCluster {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::try_start(tls) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("cannot start a Redis Cluster: {last}");
    }

    fn try_start(tls: bool) -> Result<RedisCluster, String> {
        let mut ports = Vec::new();
        for _ in 0..NODES {
            ports.push(free_cluster_port(&ports));
        }
        let dir = std::env::temp_dir().join(format!(
            "borrowstore-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        #[cfg(feature = "redis-tls")]
        let tls = tls.then(|| Tls::generate_in(&dir.join("tls")));
        #[cfg(not(feature = "redis-tls"))]
        let tls: Option<Tls> = tls.then(|| panic!("TLS needs the testkit's redis-tls feature"));
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            pids: Vec::new(),
            ports: ports.clone(),
            dir: dir.clone(),
            tls,
        };
        for &port in &ports {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).map_err(|e| e.to_string())?;
            let mut cmd = Command::new("redis-server");
            cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", "nodes.conf"])
                .args(["--cluster-node-timeout", "3000"])
                .arg("--dir")
                .arg(&node_dir);
            match &cluster.tls {
                Some(tls) => {
                    cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                        .args(["--tls-cluster", "yes", "--tls-replication", "yes"]);
                    tls.server_args(&mut cmd);
                }
                None => {
                    cmd.args(["--port", &port.to_string()]);
                }
            }
            let child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("redis-server: {e}"))?;
            cluster.pids.push(child.id());
            cluster.nodes.push(child);
        }
        for &port in &ports {
            cluster.wait(
                port,
                Duration::from_secs(10),
                |r| r.contains("PONG"),
                &["PING"],
            )?;
        }
        let mut create = Command::new("redis-cli");
        cluster.tls_args(&mut create);
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("redis-cli --cluster create: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        cluster.wait_ready(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Waits until every node says `cluster_state:ok`, sees three
    /// primaries each with a replica, and every replica's link to its
    /// primary is up.
    pub fn wait_ready(&self, patience: Duration) -> Result<(), String> {
        for &port in &self.ports {
            self.wait(
                port,
                patience,
                |r| r.contains("cluster_state:ok"),
                &["CLUSTER", "INFO"],
            )?;
        }
        let deadline = Instant::now() + patience;
        loop {
            let replicas = self.replicas();
            let synced = replicas.iter().all(|&p| {
                self.cli(p, &["INFO", "replication"])
                    .contains("master_link_status:up")
            });
            if replicas.len() == NODES / 2 && self.primaries().len() == NODES / 2 && synced {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the cluster's replicas are not in sync: {}",
                    self.cli(self.ports[0], &["CLUSTER", "NODES"])
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait(
        &self,
        port: u16,
        patience: Duration,
        ok: impl Fn(&str) -> bool,
        args: &[&str],
    ) -> Result<(), String> {
        let deadline = Instant::now() + patience;
        loop {
            let reply = self.cli(port, args);
            if ok(&reply) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("node {port}: {args:?} answered {reply:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tls_args(&self, cmd: &mut Command) {
        if let Some(tls) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(&tls.ca);
        }
    }

    /// Runs one command on the node at `port` with `redis-cli` (over TLS
    /// for a TLS cluster) and returns what it printed (an error, too).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        self.tls_args(&mut cmd);
        let out = cmd
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("redis-cli: {e}"),
        }
    }

    /// The ports of the nodes, in the order they were started.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// `(port, role)` of every node that answers, as `CLUSTER NODES` on
    /// that node says (`master` or `slave`).
    fn roles(&self) -> Vec<(u16, bool)> {
        self.ports
            .iter()
            .filter_map(|&p| {
                let nodes = self.cli(p, &["CLUSTER", "NODES"]);
                let me = nodes.lines().find(|l| l.contains("myself"))?;
                Some((p, me.contains("master")))
            })
            .collect()
    }

    /// The ports of the nodes that are primaries now.
    pub fn primaries(&self) -> Vec<u16> {
        self.roles()
            .into_iter()
            .filter_map(|(p, primary)| primary.then_some(p))
            .collect()
    }

    /// The ports of the nodes that are replicas now.
    pub fn replicas(&self) -> Vec<u16> {
        self.roles()
            .into_iter()
            .filter_map(|(p, primary)| (!primary).then_some(p))
            .collect()
    }

    /// The port of the primary the replica at `port` follows.
    pub fn primary_of(&self, port: u16) -> Option<u16> {
        let info = self.cli(port, &["INFO", "replication"]);
        info.lines()
            .find_map(|l| l.trim().strip_prefix("master_port:"))
            .and_then(|p| p.trim().parse().ok())
    }

    /// The URL of the cluster (every node listed), without parameters of
    /// borrowstore's: `redis+cluster://127.0.0.1:P1,…` (or
    /// `rediss+cluster://…?tls_ca=…`).
    pub fn base_url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        match &self.tls {
            Some(tls) => format!(
                "rediss+cluster://{}?tls_ca={}",
                nodes.join(","),
                tls.ca.display()
            ),
            None => format!("redis+cluster://{}", nodes.join(",")),
        }
    }

    /// A store URL on this cluster with its own namespace.
    pub fn url(&self, namespace: &str, query: &str) -> String {
        let base = self.base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let extra = if query.is_empty() {
            String::new()
        } else {
            format!("&{query}")
        };
        format!("{base}{sep}ns={namespace}{extra}")
    }

    /// Sends a signal by name to every node.
    fn signal_all(&self, sig: &str) {
        for pid in &self.pids {
            let status = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "kill -{sig} {pid} failed: {status:?}"
            );
        }
    }

    fn into_shared(mut self) -> RedisCluster {
        let pids: Vec<u32> = self.nodes.iter().map(|c| c.id()).collect();
        kill_at_exit(&pids, &self.dir);
        // The watcher kills them now.
        self.nodes.clear();
        self
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.nodes.is_empty() {
            self.nodes.clear();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The cluster this test binary's tests share: started by the first test
/// that asks, killed when the test binary exits.
pub fn shared() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start().into_shared())
}

/// The TLS cluster this test binary's tests share, like [`shared`].
#[cfg(feature = "redis-tls")]
pub fn shared_tls() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::start_tls().into_shared())
}

impl Redis for RedisCluster {
    fn store_url(&self, namespace: &str, query: &str) -> String {
        self.url(namespace, query)
    }

    /// Sends the command to a node, and again to the node a `MOVED` reply
    /// names. (Plain clusters only: raw commands do not speak TLS.)
    fn command_on(&self, _key: &str, args: &[&[u8]]) -> Vec<u8> {
        assert!(
            self.tls.is_none(),
            "raw commands need a plain cluster, not a TLS one"
        );
        let mut port = self.ports[0];
        for _ in 0..5 {
            let reply = crate::redis_server::resp(port, args);
            let text = String::from_utf8_lossy(&reply);
            match text
                .strip_prefix("-MOVED ")
                .and_then(|m| m.split_whitespace().nth(1))
                .and_then(|addr| addr.rsplit_once(':'))
                .and_then(|(_, p)| p.trim().parse().ok())
            {
                Some(moved) => port = moved,
                None => return reply,
            }
        }
        panic!("{args:?}: redirected more than 5 times");
    }

    /// Freezes every node at once (`SIGSTOP`).
    fn pause(&self) {
        self.signal_all("STOP");
    }

    /// Lets every node run again (`SIGCONT`).
    fn resume(&self) {
        self.signal_all("CONT");
    }
}

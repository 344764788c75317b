//! The connections of a Redis connector: [`Connect`] makes them from the
//! options — one server or a Redis Cluster, plain or over TLS — and
//! [`Conn`] is the one connection type the rest of the connector uses (a
//! [`ConnectionLike`]), whatever the servers are.
//!
//! Every request is bounded by the operation timeout, and every error that
//! is not the server's answer names the node (or the cluster's nodes) and
//! what was being done.

use std::collections::HashMap;
use std::time::Duration;

use futures::FutureExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::options::{Endpoint, RedisOptions};

/// What makes the connections of one connector: cheap to clone.
#[derive(Clone)]
pub(super) struct Connect {
    endpoint: Servers,
    timeout: Duration,
    /// The nodes' `host:port`, comma-separated, for errors.
    nodes: String,
}

#[derive(Clone)]
enum Servers {
    Single(Box<redis::Client>),
    Cluster {
        client: Box<ClusterClient>,
        /// A client of each listed node, for the subscriber.
        nodes: Vec<redis::Client>,
    },
}

/// A client of one node, trusting `ca` (PEM) when given.
fn node_client(info: redis::ConnectionInfo, ca: Option<&[u8]>) -> RedisResult<redis::Client> {
    match ca {
        #[cfg(feature = "redis-tls")]
        Some(ca) => redis::Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(ca.to_vec()),
            },
        ),
        _ => redis::Client::open(info),
    }
}

impl Connect {
    /// What connects to the servers of `options`, with every request bound
    /// by its timeout. Nothing is contacted yet. `Err` is the reason the
    /// options are invalid.
    pub(super) fn new(options: &RedisOptions) -> Result<Connect, String> {
        let Endpoint {
            nodes,
            cluster,
            tls_ca,
            addresses,
        } = options.endpoint()?;
        #[cfg(feature = "redis-tls")]
        if nodes
            .iter()
            .any(|n| matches!(n.addr(), redis::ConnectionAddr::TcpTls { .. }))
        {
            // redis-rs builds its rustls configurations on the process's
            // default provider: ring, unless the application chose one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let ca = tls_ca.as_deref();
        let endpoint = if cluster {
            #[cfg_attr(not(feature = "redis-tls"), allow(unused_mut))]
            let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(options.timeout)
                .response_timeout(options.timeout)
                // A failover moves slots: retry soon, a few times, all
                // within the operation's timeout.
                .retries(6)
                .min_retry_wait(20)
                .max_retry_wait(options.timeout.as_millis().clamp(20, 1000) as u64);
            #[cfg(feature = "redis-tls")]
            if let Some(ca) = ca {
                builder = builder.certs(redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                });
            }
            let client = builder.build().map_err(|e| e.to_string())?;
            let nodes = nodes
                .into_iter()
                .map(|n| node_client(n, ca))
                .collect::<RedisResult<_>>()
                .map_err(|e| e.to_string())?;
            Servers::Cluster {
                client: Box::new(client),
                nodes,
            }
        } else {
            let node = nodes.into_iter().next().ok_or("no server named")?;
            Servers::Single(Box::new(node_client(node, ca).map_err(|e| e.to_string())?))
        };
        Ok(Connect {
            endpoint,
            timeout: options.timeout,
            nodes: addresses.join(","),
        })
    }

    /// A connection, made on first use (and made again after it is lost).
    pub(super) fn connection(&self) -> Conn {
        let node = self.nodes.clone();
        match &self.endpoint {
            Servers::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(100));
                let manager = ConnectionManager::new_lazy_with_config((**client).clone(), config)
                    .map_err(|e| describe(e, &node, "creating the connection"));
                Conn {
                    inner: Inner::Single(manager),
                    node,
                    timeout: self.timeout,
                }
            }
            Servers::Cluster { client, .. } => Conn {
                inner: Inner::Cluster {
                    client: client.clone(),
                    conn: None,
                },
                node: format!("the cluster of {node}"),
                timeout: self.timeout,
            },
        }
    }

    /// A subscriber connection, subscribed to `channel`, made within the
    /// timeout. On a cluster it is made to one of the listed nodes, the
    /// `attempt`-th in turn: a `PUBLISH` reaches every node of a cluster.
    pub(super) async fn subscribe(
        &self,
        channel: &str,
        attempt: usize,
    ) -> RedisResult<redis::aio::PubSub> {
        let (client, node) = match &self.endpoint {
            Servers::Single(c) => (&**c, self.nodes.clone()),
            Servers::Cluster { nodes, .. } => {
                let i = attempt % nodes.len();
                let name = self.nodes.split(',').nth(i).unwrap_or_default().to_owned();
                (&nodes[i], name)
            }
        };
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok(pubsub)
        };
        match tokio::time::timeout(self.timeout, subscribed).await {
            Ok(r) => r.map_err(|e| describe(e, &node, &format!("subscribing to {channel}"))),
            Err(_) => Err(timed_out(
                &node,
                &format!("subscribing to {channel}"),
                self.timeout,
            )),
        }
    }
}

/// One connection to the servers: one server's connection manager, or a
/// cluster connection (connected on first use). Every request fails
/// within the timeout, with an error naming the node and the request.
pub(super) struct Conn {
    inner: Inner,
    /// `host:port`, or `the cluster of host:port,…`.
    node: String,
    timeout: Duration,
}

enum Inner {
    Single(RedisResult<ConnectionManager>),
    Cluster {
        client: Box<ClusterClient>,
        conn: Option<ClusterConnection>,
    },
}

impl Conn {
    /// The cluster connection, made now if there is none.
    async fn cluster(
        client: &ClusterClient,
        conn: &mut Option<ClusterConnection>,
    ) -> RedisResult<ClusterConnection> {
        if conn.is_none() {
            *conn = Some(client.get_async_connection().await?);
        }
        Ok(conn.clone().expect("connected"))
    }

    /// `request` bounded by the timeout; its error names the node and
    /// `what` (server replies are left as they are).
    async fn bounded<T>(
        &self,
        what: impl FnOnce() -> String,
        request: impl Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(describe(e, &self.node, &what())),
            Err(_) => Err(timed_out(&self.node, &what(), self.timeout)),
        }
    }

    /// The keys matching `pattern`: on a cluster, those of every primary.
    pub(super) async fn scan(&mut self, pattern: &str) -> RedisResult<Vec<String>> {
        let what = || format!("scanning the keys {pattern}");
        match &mut self.inner {
            Inner::Single(Ok(m)) => {
                let m = m.clone();
                let send = |cmd: Cmd| {
                    let mut m = m.clone();
                    async move { m.send_packed_command(&cmd).await }
                };
                self.bounded(what, scan_node(pattern, send)).await
            }
            Inner::Single(Err(e)) => Err(e.clone()),
            Inner::Cluster { client, conn } => {
                let client = client.clone();
                let mut slot = conn.take();
                let r = self
                    .bounded(what, async {
                        let c = Self::cluster(&client, &mut slot).await?;
                        scan_cluster(c, pattern).await
                    })
                    .await;
                if let Inner::Cluster { conn, .. } = &mut self.inner {
                    *conn = slot;
                }
                r
            }
        }
    }
}

/// Every key matching `pattern` on one node, through `send`.
async fn scan_node<F, Fut>(pattern: &str, send: F) -> RedisResult<Vec<String>>
where
    F: Fn(Cmd) -> Fut,
    Fut: Future<Output = RedisResult<Value>>,
{
    let mut cursor: u64 = 0;
    let mut out = Vec::new();
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        let (next, keys): (u64, Vec<String>) = redis::from_redis_value(send(cmd).await?)?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Every key matching `pattern` on every primary of the cluster (as
/// `CLUSTER SLOTS` names them now).
async fn scan_cluster(c: ClusterConnection, pattern: &str) -> RedisResult<Vec<String>> {
    let slots = c
        .clone()
        .route_command(
            redis::cmd("CLUSTER").arg("SLOTS").clone(),
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
        )
        .await?;
    let mut primaries: Vec<(String, u16)> = Vec::new();
    if let Value::Array(ranges) = slots {
        for range in ranges {
            let Value::Array(parts) = range else { continue };
            let Some(Value::Array(primary)) = parts.get(2) else {
                continue;
            };
            let host: Option<String> = primary
                .first()
                .and_then(|v| redis::from_redis_value(v.clone()).ok());
            let port: Option<u16> = primary
                .get(1)
                .and_then(|v| redis::from_redis_value(v.clone()).ok());
            if let (Some(host), Some(port)) = (host, port)
                && !primaries.contains(&(host.clone(), port))
            {
                primaries.push((host, port));
            }
        }
    }
    let mut out = Vec::new();
    for (host, port) in primaries {
        let keys = scan_node(pattern, |cmd| {
            let mut c = c.clone();
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port,
            });
            async move { c.route_command(cmd, routing).await }
        })
        .await
        .map_err(|e| describe(e, &format!("{host}:{port}"), "scanning"))?;
        out.extend(keys);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        async move {
            let what = || request(cmd);
            match &mut self.inner {
                Inner::Single(Ok(m)) => {
                    let mut m = m.clone();
                    self.bounded(what, m.req_packed_command(cmd)).await
                }
                Inner::Single(Err(e)) => Err(e.clone()),
                Inner::Cluster { client, conn } => {
                    let client = client.clone();
                    let mut slot = conn.take();
                    let r = self
                        .bounded(what, async {
                            let mut c = Self::cluster(&client, &mut slot).await?;
                            c.req_packed_command(cmd).await
                        })
                        .await;
                    if let Inner::Cluster { conn, .. } = &mut self.inner {
                        *conn = slot;
                    }
                    r
                }
            }
        }
        .boxed()
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        async move {
            let what = || {
                let names: Vec<String> = pipeline.cmd_iter().map(request).collect();
                format!("a pipeline of {}", names.join(", "))
            };
            match &mut self.inner {
                Inner::Single(Ok(m)) => {
                    let mut m = m.clone();
                    self.bounded(what, m.req_packed_commands(pipeline, offset, count))
                        .await
                }
                Inner::Single(Err(e)) => Err(e.clone()),
                Inner::Cluster { client, conn } => {
                    let client = client.clone();
                    let mut slot = conn.take();
                    let r = self
                        .bounded(what, async {
                            let c = Self::cluster(&client, &mut slot).await?;
                            cluster_pipeline(c, pipeline, offset, count).await
                        })
                        .await;
                    if let Inner::Cluster { conn, .. } = &mut self.inner {
                        *conn = slot;
                    }
                    r
                }
            }
        }
        .boxed()
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(Ok(m)) => m.get_db(),
            _ => 0,
        }
    }
}

/// A pipeline on a cluster: its commands grouped by the hash tag of the
/// keys of their script calls, so by slot (in their order within each group), the groups sent at once, the
/// replies put back in the pipeline's order. Commands of different objects
/// may live on different nodes; those of one object keep their order.
async fn cluster_pipeline(
    c: ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    if pipeline.is_transaction() {
        let mut c = c;
        return c.req_packed_commands(pipeline, offset, count).await;
    }
    let mut groups: Vec<(Pipeline, Vec<usize>)> = Vec::new();
    let mut by_tag = HashMap::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        let g = match hash_tag(cmd) {
            Some(tag) => *by_tag.entry(tag).or_insert_with(|| {
                groups.push((redis::pipe(), Vec::new()));
                groups.len() - 1
            }),
            None => {
                groups.push((redis::pipe(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[g].0.add_command(cmd.clone());
        groups[g].1.push(i);
    }
    if groups.len() <= 1 {
        let mut c = c;
        return c.req_packed_commands(pipeline, offset, count).await;
    }
    let sent = futures::future::join_all(groups.iter().map(|(p, _)| {
        let mut c = c.clone();
        async move { c.req_packed_commands(p, 0, p.len()).await }
    }))
    .await;
    let mut replies = vec![Value::Nil; pipeline.len()];
    for ((_, indices), r) in groups.iter().zip(sent) {
        for (i, v) in indices.iter().zip(r?) {
            replies[*i] = v;
        }
    }
    Ok(replies.into_iter().skip(offset).take(count).collect())
}

/// Argument `i` of `cmd`.
fn arg(cmd: &Cmd, i: usize) -> Option<&[u8]> {
    match cmd.args_iter().nth(i)? {
        redis::Arg::Simple(a) => Some(a),
        _ => None,
    }
}

/// Whether `cmd` is a script call (`EVALSHA`, `EVAL`, `FCALL`), and then
/// its number of keys.
fn script_keys(cmd: &Cmd) -> Option<usize> {
    let name = arg(cmd, 0)?;
    let script = [&b"EVALSHA"[..], b"EVAL", b"FCALL"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
    if !script {
        return None;
    }
    std::str::from_utf8(arg(cmd, 2)?).ok()?.parse().ok()
}

/// The hash tag of the first key of a script call (what the slot is
/// computed from: the part between the first `{` and the next `}`, if not
/// empty; else the whole key).
fn hash_tag(cmd: &Cmd) -> Option<Vec<u8>> {
    if script_keys(cmd)? == 0 {
        return None;
    }
    let key = arg(cmd, 3)?;
    let tag = key.iter().position(|b| *b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|b| *b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    Some(tag.unwrap_or(key).to_vec())
}

/// A short name of a command for errors: the script operation and the
/// object's first key of a script call, else the command's name.
fn request(cmd: &Cmd) -> String {
    let text = |i: usize| arg(cmd, i).map(|a| String::from_utf8_lossy(a).into_owned());
    match script_keys(cmd) {
        Some(keys) => {
            let op = text(3 + keys).unwrap_or_default();
            let key = if keys > 0 { text(3) } else { None };
            format!("running `{op}` on {}", key.unwrap_or_default())
        }
        None => format!(
            "sending {}",
            text(0).unwrap_or_default().to_ascii_uppercase()
        ),
    }
}

/// `e` with the node and `what` in its message, of the same kind (an I/O
/// error stays one of the same I/O kind). A server's reply to a command
/// (a script's error, NOSCRIPT, MOVED…) is left as it is.
fn describe(e: RedisError, node: &str, what: &str) -> RedisError {
    if let ErrorKind::Server(_) = e.kind()
        && !matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
    {
        return e;
    }
    let message = format!("{node}: {what}: {e}");
    if e.is_io_error() {
        let kind = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(|io| io.kind())
            .unwrap_or(std::io::ErrorKind::Other);
        return RedisError::from(std::io::Error::new(kind, message));
    }
    RedisError::from((e.kind(), "redis", message))
}

fn timed_out(node: &str, what: &str, timeout: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{node}: {what}: no answer within {timeout:?}"),
    ))
}

//! [`RedisOptions`]: the settings of a Redis connector, and the URL they
//! are read from (`redis://`, `rediss://`, `redis+cluster://`,
//! `rediss+cluster://`); and [`Endpoint`], the servers that URL names.

use std::time::Duration;

use crate::connector::DEFAULT_LEASE;

/// The default time one operation may take before it fails with
/// [`Error::Connector`](crate::Error::Connector).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`RedisConnector`](super::RedisConnector).
///
/// ```
/// use std::time::Duration;
/// use borrowstore::connector::{RedisConnector, RedisOptions};
///
/// let options = RedisOptions {
///     // A cluster, reached through any of its nodes (the connection is
///     // made on first use).
///     url: "redis+cluster://127.0.0.1:7000,127.0.0.1:7001".to_owned(),
///     namespace: "myapp".to_owned(),
///     lease: Duration::from_secs(30),
///     timeout: Duration::from_secs(2),
/// };
/// let connector = RedisConnector::new("my-store", options)?;
/// # Ok::<(), borrowstore::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// The servers, as a URL without borrowstore's own parameters:
    /// `redis://[user:pass@]host:port/db` (one server), `rediss://…` (one
    /// server over TLS), `redis+cluster://[user:pass@]host1:port1,host2:port2`
    /// (a Redis Cluster, reached through any of the nodes listed) or
    /// `rediss+cluster://…` (a cluster over TLS). Its query may hold
    /// `tls_ca=/path` (a PEM file of the certificates of the authorities to
    /// trust, instead of the system's) and redis-rs's own parameters (for
    /// example `protocol=resp3`).
    pub url: String,
    /// Prefix of every key this store writes; nothing outside it is touched.
    pub namespace: String,
    /// How long the claims of a dead process survive it.
    pub lease: Duration,
    /// How long one operation may take (connect and reply).
    pub timeout: Duration,
}

/// The servers a [`RedisOptions::url`] names, checked.
pub(super) struct Endpoint {
    /// One server's connection info, or the cluster nodes to start from.
    pub(super) nodes: Vec<redis::ConnectionInfo>,
    /// Whether the nodes are those of a Redis Cluster.
    pub(super) cluster: bool,
    /// The PEM certificates of `tls_ca`, for a TLS endpoint.
    pub(super) tls_ca: Option<Vec<u8>>,
    /// `host:port` of each node, for errors.
    pub(super) addresses: Vec<String>,
}

impl RedisOptions {
    /// The options of a `redis://…[?ns=NAME&lease_ms=N&timeout_ms=N]` (or
    /// `rediss://`, `redis+cluster://`, `rediss+cluster://`) URL. `ns`,
    /// `lease_ms` and `timeout_ms` are read here; every other parameter
    /// stays in [`url`](Self::url), which is checked now (its nodes, its
    /// `tls_ca` file, redis-rs's parameters), not at first use. `Err` is the
    /// reason the URL is invalid.
    pub(crate) fn from_url(url: &str) -> std::result::Result<RedisOptions, String> {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let mut options = RedisOptions {
            url: base.to_owned(),
            namespace: "borrowstore".to_owned(),
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
        };
        let mut passed = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let ms = |v: &str| {
                v.parse::<u64>()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .map(Duration::from_millis)
            };
            match pair.split_once('=') {
                Some(("ns", v))
                    if !v.is_empty()
                        && v.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
                {
                    options.namespace = v.to_owned()
                }
                Some(("ns", _)) => {
                    return Err("ns must be non-empty and use only [A-Za-z0-9._-]".to_owned());
                }
                Some(("lease_ms", v)) => {
                    options.lease =
                        ms(v).ok_or_else(|| "lease_ms must be a positive integer".to_owned())?
                }
                Some(("timeout_ms", v)) => {
                    options.timeout =
                        ms(v).ok_or_else(|| "timeout_ms must be a positive integer".to_owned())?
                }
                _ => passed.push(pair),
            }
        }
        if !passed.is_empty() {
            options.url = format!("{base}?{}", passed.join("&"));
        }
        // Judge the rest of the URL now, not at first use.
        options.endpoint()?;
        Ok(options)
    }

    /// The servers [`url`](Self::url) names: its scheme, its nodes (each a
    /// redis-rs connection URL of its own), and the `tls_ca` file read.
    /// `Err` is the reason the URL is invalid.
    pub(super) fn endpoint(&self) -> std::result::Result<Endpoint, String> {
        let url = self.url.as_str();
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url:?} has no scheme"))?;
        let (tls, cluster) = match scheme {
            "redis" => (false, false),
            "rediss" => (true, false),
            "redis+cluster" => (false, true),
            "rediss+cluster" => (true, true),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}; supported: redis, rediss, redis+cluster, rediss+cluster"
                ));
            }
        };
        if tls && !cfg!(feature = "redis-tls") {
            return Err(format!(
                "this borrowstore was built without the `redis-tls` feature, so it has no TLS for {scheme}://"
            ));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, q),
            None => (rest, ""),
        };
        let mut tls_ca = None;
        let mut passed = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls_ca", path)) if !tls => {
                    let _ = path;
                    return Err(format!(
                        "tls_ca is for TLS URLs (rediss://, rediss+cluster://), not {scheme}://"
                    ));
                }
                Some(("tls_ca", path)) => tls_ca = Some(read_ca(path)?),
                _ => passed.push(pair),
            }
        }
        let query = if passed.is_empty() {
            String::new()
        } else {
            format!("?{}", passed.join("&"))
        };
        // `[user:pass@]host:port[,host:port…][/db]`: the user part ends at
        // the last `@` of the authority.
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, hosts) = match authority.rfind('@') {
            Some(i) => (&authority[..=i], &authority[i + 1..]),
            None => ("", authority),
        };
        let hosts: Vec<&str> = hosts.split(',').collect();
        if hosts.iter().any(|h| h.is_empty()) {
            return Err(format!("{url:?} names an empty host"));
        }
        if !cluster && hosts.len() > 1 {
            return Err(format!(
                "{scheme}:// names one server; for a Redis Cluster use {scheme}+cluster://host1:port1,host2:port2"
            ));
        }
        if cluster && !matches!(path, "" | "/" | "/0") {
            return Err(format!("a Redis Cluster has only database 0, not {path:?}"));
        }
        let base_scheme = if tls { "rediss" } else { "redis" };
        let mut nodes = Vec::new();
        let mut addresses = Vec::new();
        for host in hosts {
            let node = format!("{base_scheme}://{user}{host}{path}{query}");
            let info = redis::IntoConnectionInfo::into_connection_info(node.as_str())
                .map_err(|e| format!("node {host}: {e}"))?;
            addresses.push(info.addr().to_string());
            nodes.push(info);
        }
        Ok(Endpoint {
            nodes,
            cluster,
            tls_ca,
            addresses,
        })
    }
}

/// The PEM file at `path`, which must hold at least one certificate.
fn read_ca(path: &str) -> std::result::Result<Vec<u8>, String> {
    if path.is_empty() {
        return Err("tls_ca must name a PEM file".to_owned());
    }
    let pem = std::fs::read(path).map_err(|e| format!("tls_ca {path:?}: cannot read it: {e}"))?;
    #[cfg(feature = "redis-tls")]
    {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| format!("tls_ca {path:?}: not a PEM file of certificates: {e}"))?;
        if certs.is_empty() {
            return Err(format!("tls_ca {path:?}: holds no certificate"));
        }
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> std::result::Result<Endpoint, String> {
        RedisOptions::from_url(url)?.endpoint()
    }

    #[test]
    fn a_cluster_url_names_every_node() {
        let e =
            endpoint("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001?ns=a&lease_ms=100").unwrap();
        assert!(e.cluster);
        assert_eq!(e.addresses, ["10.0.0.1:7000", "10.0.0.2:7001"]);
        assert!(
            e.nodes
                .iter()
                .all(|n| n.redis_settings().password() == Some("p"))
        );
        let o = RedisOptions::from_url("redis+cluster://h:1,h:2/0?ns=x&protocol=resp3").unwrap();
        assert_eq!(o.url, "redis+cluster://h:1,h:2/0?protocol=resp3");
        assert_eq!(o.namespace, "x");
    }

    #[test]
    fn bad_server_urls_say_why() {
        for (url, why) in [
            ("redis://a:1,b:2/0", "+cluster"),
            ("redis+cluster://a:1/3", "database 0"),
            ("redis+cluster://a:1,,b:2", "empty host"),
            ("redis://a:1/0?tls_ca=/x.pem", "tls_ca is for TLS"),
            ("rediss://a:1/0?tls_ca=", "PEM file"),
            ("rediss://a:1/0?tls_ca=/nonexistent/ca.pem", "cannot read"),
        ] {
            let e = endpoint(url)
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            #[cfg(not(feature = "redis-tls"))]
            if url.starts_with("rediss") {
                assert!(e.contains("redis-tls"), "{url}: {e}");
                continue;
            }
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[cfg(feature = "redis-tls")]
    #[test]
    fn a_tls_ca_file_must_hold_certificates() {
        let path = std::env::temp_dir().join(format!("borrowstore-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate").unwrap();
        let url = format!("rediss://h:1/0?tls_ca={}", path.display());
        let e = endpoint(&url).err().unwrap();
        assert!(e.contains("holds no certificate"), "{e}");
        std::fs::remove_file(&path).ok();
        let e = endpoint("rediss+cluster://h:1,h:2").unwrap();
        assert!(e.cluster && e.tls_ca.is_none());
    }
}

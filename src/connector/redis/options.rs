//! [`RedisOptions`]: the settings of a Redis connector, and the
//! `redis://` URL they are read from.

use std::time::Duration;

use crate::connector::DEFAULT_LEASE;

/// The default time one operation may take before it fails with
/// [`Error::Connector`](crate::Error::Connector).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a [`RedisConnector`](super::RedisConnector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisOptions {
    /// The redis-rs connection URL (`redis://[user:pass@]host:port/db`).
    pub url: String,
    /// Prefix of every key this store writes; nothing outside it is touched.
    pub namespace: String,
    /// How long the claims of a dead process survive it.
    pub lease: Duration,
    /// How long one operation may take (waiting for its turn behind queued
    /// releases, connecting, and the reply), each on its own however many
    /// are in flight.
    pub timeout: Duration,
}

impl RedisOptions {
    /// The options of a `redis://…[?ns=NAME&lease_ms=N&timeout_ms=N]` (or
    /// `rediss://`) URL. `ns`, `lease_ms` and `timeout_ms` are read here;
    /// every other parameter stays in [`url`](Self::url) for redis-rs, which
    /// judges the rest of the URL now, not at first use. `Err` is the reason
    /// the URL is invalid.
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
        // Let redis-rs judge the rest of the URL now, not at first use.
        redis::Client::open(options.url.as_str()).map_err(|e| e.to_string())?;
        Ok(options)
    }
}

//! The Redis connector: several machines.
//!
//! - `connector` — [`RedisConnector`] and its
//!   [`Connector`](crate::connector::Connector) impl;
//! - `calls` — the script call of each operation (its arguments and how
//!   its reply is read, shared by the blocking and the async form);
//! - `client` — what the connector and its lease renewer share: script
//!   calls, queued releases, and replies turned into results;
//! - `send` — how a request reaches the server: blocking calls on the
//!   caller's thread, async calls on the caller's task, a broken
//!   connection replaced and the request sent again;
//! - `outbox` — the queued releases (and the publishes of dropped writers)
//!   and the order they keep with every other request;
//! - `pool` — where connections come from (one function per kind) and
//!   where idle ones wait;
//! - `io` — the I/O thread: releases nobody carried, the subscriber, and
//!   the async calls polled outside tokio;
//! - `liveness` — leases: this connection's record in the namespace's
//!   process table, and the lease thread that renews it and, between
//!   renewals, releases the claims of dead processes on every object (its
//!   module docs give the design);
//! - `subscribe` — the one subscriber connection that wakes this process's
//!   waiting borrows when the release script announces a release;
//! - `script` — the Lua script (`state.lua`: every object's transitions and
//!   the process table; the claim records it stores are documented at its
//!   top), called as a function (`FCALL`) or by `EVALSHA`, its arguments,
//!   and the helpers that read its replies;
//! - `options` — [`RedisOptions`] and the URL they are read from
//!   (`redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`);
//! - `conn` — the connections of a Redis Cluster (and the one server's
//!   client, plain or over TLS): one connection type over a cluster, each
//!   request bounded by the timeout and its errors naming the node and the
//!   request;
//! - `notes` — what inspection reads: the claims and their notes.

mod calls;
mod client;
mod conn;
mod connector;
mod io;
mod liveness;
mod notes;
mod options;
mod outbox;
mod pool;
mod script;
mod send;
mod subscribe;

pub use connector::RedisConnector;
pub use options::{DEFAULT_TIMEOUT, RedisOptions};

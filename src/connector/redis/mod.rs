//! The Redis connector: several machines.
//!
//! - `connector` — [`RedisConnector`] and its
//!   [`Connector`](crate::connector::Connector) impl;
//! - `calls` — the script call of each operation (its arguments and how
//!   its reply is read, shared by the blocking and the async form);
//! - `client` — what the connector and its lease renewer share: requests
//!   sent to the I/O thread, and their replies turned into results;
//! - `io` — the I/O thread: the ordered request queue, the pipeline that
//!   carries queued releases (and the publishes of dropped writers), and
//!   their retries;
//! - `liveness` — leases: this connection's record in the namespace's
//!   process table, and the lease thread that renews it and, between
//!   renewals, releases the claims of dead processes on every object (its
//!   module docs give the design);
//! - `subscribe` — the one subscriber connection that wakes this process's
//!   waiting borrows when the release script announces a release;
//! - `script` — the Lua script (`state.lua`: every object's transitions and
//!   the process table; the claim records it stores are documented at its
//!   top), its invocation, its arguments, and the helpers that read its
//!   replies;
//! - `options` — [`RedisOptions`] and the URL they are read from
//!   (`redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`);
//! - `conn` — the connections: one server or a Redis Cluster, plain or
//!   over TLS, behind one connection type, each request bounded by the
//!   timeout and its errors naming the node and the request;
//! - `notes` — what inspection reads: the claims and their notes.

mod calls;
mod client;
mod conn;
mod connector;
mod io;
mod liveness;
mod notes;
mod options;
mod script;
mod subscribe;

pub use connector::RedisConnector;
pub use options::{DEFAULT_TIMEOUT, RedisOptions};

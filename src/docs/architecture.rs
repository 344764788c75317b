//! # How borrowstore is built
//!
//! Each layer uses only the layers above it in this list.
//!
//! 1. `sync` (`src/sync/`) — the std / loom switch: the facade `mod.rs` over
//!    a std half (`std.rs`) and a loom half (`loom.rs`), picked by the loom
//!    cfg (see `sync`; nothing outside it names the cfg). The concurrent map
//!    (`map.rs`) is written once over a small closure-based primitive
//!    (`raw_map.rs`) that each half implements: the [`dashmap`] on std, a
//!    loom `Mutex<HashMap>` under loom, so the loom models in `loom-tests/`
//!    check the real code. The locks of state loom never models (file
//!    locks, lease threads) are std's in both builds (`unmodeled.rs`).
//! 2. [`codec`](crate::codec) — serde + postcard behind a small header
//!    (magic, format version, type fingerprint, type name).
//! 3. [`state`](crate::state) (`src/state/`) — the pure per-object state
//!    machine (`machine.rs`: [`State`](crate::state::State) and
//!    [`State::apply`](crate::state::State::apply) with the claims, ops,
//!    effects and refusals), and its id-keeping
//!    [`Ledger`](crate::state::Ledger) with leases and tickets
//!    (`ledger.rs`).
//! 4. [`connector`](crate::connector) — the [`Connector`](crate::connector::Connector)
//!    trait and its implementations:
//!    [`MemoryConnector`](crate::connector::MemoryConnector) packs an object's
//!    state in one `AtomicU64` and applies transitions by compare-and-swap;
//!    proxies keep an [`Entry`](crate::connector::Entry) to the object's slot,
//!    so a borrow is one atomic operation, not a map lookup. Beside the
//!    connectors: [`Waiters`](crate::connector::Waiters) (`wait.rs`), this
//!    process's waiting borrows per object in arrival order, woken by the
//!    releases a connector announces; the timer thread their re-checks use
//!    (`timer.rs`); and `offload.rs`, which runs blocking I/O on tokio's
//!    blocking pool for the `_async` forms and gives back the claim of a
//!    request whose future was dropped.
//! 5. `store` — [`Store`](crate::Store): a name, a connector, this process's
//!    cache of decoded values (`Arc<T>` per version), the registry by name,
//!    and a serializable [`StoreConfig`](crate::StoreConfig). The connector
//!    stays inside: users read what is stored through
//!    [`Store::inspect`](crate::Store::inspect) ([`ObjectInfo`](crate::ObjectInfo))
//!    and [`Store::keys`](crate::Store::keys), and the store alone decides
//!    whether an object's operations go through its entry or the keyed calls.
//!    `src/store/`: the handle and its builder (`mod.rs`), encoding and
//!    resolving through the cache (`resolve.rs`, `cache.rs`), the
//!    entry-or-keyed dispatch (`target.rs`), what inspection reports
//!    (`info.rs`), flushing several stores (`flush.rs`), URLs (`config.rs`),
//!    the registry (`registry.rs`) and the manager hook (`manager.rs`). The
//!    `_async` forms are in `async_ops.rs`; `executor.rs` tells a tokio
//!    worker thread from a blocking one (the warning a blocking form earns
//!    there) and keeps the failures of work done for `Drop` for the next
//!    flush (`blocking.rs` holds what it keeps).
//! 6. `proxy` — [`Proxy<T>`](crate::Proxy): lazy, plain, serializable.
//! 7. `ownership` — [`OwnedProxy`](crate::OwnedProxy),
//!    [`RefProxy`](crate::RefProxy), [`RefMutProxy`](crate::RefMutProxy), the
//!    free functions, and tickets. The two borrows wrap one core (the claim,
//!    the resolved value, the task guard, the release on drop) and add what
//!    differs; the task guard, which ends a borrow moved into a submitted
//!    task exactly once, has a file of its own; tickets are made from the
//!    handles (`into_ticket` lives with the tickets), never the reverse.
//!    The waiting borrows (`borrow_async`, `mut_borrow_timeout`, …) are in
//!    `waiting.rs`: one loop of tries and waits in line, driven by the
//!    executor (async forms) or by a parked thread (the `_timeout` forms).
//! 8. `lifetime` — [`ContextLifetime`](crate::ContextLifetime),
//!    [`LeaseLifetime`](crate::LeaseLifetime),
//!    [`StaticLifetime`](crate::StaticLifetime): holders of objects, counted
//!    store-side as holder claims.
//! 9. `scope` — [`LivenessScope`](crate::LivenessScope) and
//!    [`liveness_scope`](crate::liveness_scope): the objects created while a
//!    scope is current are managed by it (holder claims). The store layer
//!    only knows a small "manager" hook; it never names scopes or lifetimes.
//! 10. [`submit`](mod@crate::submit) — executor wrappers that end a task's
//!     borrows store-side, and flush queued releases, before the task's
//!     handle resolves; worker processes get views of the submitter's
//!     borrows. [`remote`](crate::submit::remote) is in four parts: how
//!     values cross ([`Portable`](crate::submit::remote::Portable)), the
//!     request and reply bytes, the submitting side
//!     ([`RemoteCall`](crate::submit::remote::RemoteCall)) and the worker's
//!     ([`serve`](fn@crate::submit::remote::serve)). One list of plain types
//!     and tuple arities generates both `TaskArgs` and `Portable`.
//!
//! ## Connectors
//!
//! - [`MemoryConnector`](crate::connector::MemoryConnector): a concurrent
//!   map of slots; a transition is a compare-and-swap on the slot's packed
//!   state; values stay undecoded.
//! - [`FileConnector`](crate::connector::FileConnector): a state table
//!   mapped by every process of the directory (a word of atomics per
//!   object, an entry per claim, a record per process), a side file (which
//!   holds a small value's first version) and versioned value files per
//!   object, every file write a rename (or link)
//!   of a finished file; a borrow is a compare-and-swap on the object's
//!   word; a dead process is seen through its lock file and repaired by a
//!   survivor; async forms run on tokio's blocking pool.
//!   `src/connector/file/`: the connector (`mod.rs`), operations on an
//!   object's place (`ops.rs`), the entry proxies keep (`entry.rs`) and its
//!   claim cache (`cache.rs`), the table's layout (`layout.rs`) and
//!   protocol (`table.rs`, `reclaim.rs`: written against `sync::Word`, so
//!   the loom models run it), the one `unsafe` module, the mappings
//!   (`map.rs`), the directory as a process holds it (`shared.rs`), the
//!   keeper thread (`keeper.rs`), side files (`side.rs`), the store's files
//!   (`files.rs`), the marker (`dir.rs`) and how a failed I/O call names the
//!   store, the operation and the path (`site.rs`).
//! - [`RedisConnector`](crate::connector::RedisConnector), behind the
//!   default-on `redis` feature: one Lua script per transition (one round
//!   trip; idempotent by claim id or token; `FCALL` of a function library
//!   on Redis 7 and later, `EVALSHA` before), sent on the caller's thread
//!   (blocking forms, over a small connection pool) or the caller's task
//!   (async forms, over a connection of the polling tokio runtime);
//!   releases (and a dropped writer's publish) are queued and ride at the
//!   front of the next request's pipeline, one batch in flight at a time so
//!   they land before later requests; the release script publishes each
//!   release, and one subscriber per store wakes this process's waiters.
//!   `src/connector/redis/` holds the connector and its `Connector` impl
//!   (`connector.rs`), the script call of each operation (`calls.rs`), what
//!   it shares with its lease renewer (`client.rs`), how a request reaches
//!   the server with its deadline and its resend after a broken connection
//!   (`send.rs`), the release outbox and its order (`outbox.rs`), where
//!   connections come from (`pool.rs`), the subscriber (`subscribe.rs`),
//!   the I/O thread for releases nobody carried, async calls outside
//!   tokio, and every call on a cluster (`io.rs`), the script with its
//!   invocation and reply helpers (`script.rs`, `state.lua`), the URL
//!   options and the servers they name (`options.rs`: one server or a
//!   Redis Cluster, plain or TLS), and the cluster's connection
//!   (`conn.rs`: each request bounded by the timeout, its errors naming
//!   the node and the request; pipelines split by hash tag and the key
//!   scan run on every primary). One server, plain or TLS, is reached
//!   over the caller's-thread pool and the per-runtime connections; a
//!   cluster over the I/O thread. Without the feature, a `redis://` URL is
//!   an [`Error::InvalidUrl`](crate::Error::InvalidUrl); TLS is the
//!   `redis-tls` feature (rustls).
//!
//! File and Redis claims are leased: a background thread renews the claims
//! this process holds; claims whose lease ran out (a dead process) are
//! released by the next operation on the object or by the reap pass.
//!
//! ## The hot path
//!
//! An owner and its borrows share one anchor (store, key, connector entry).
//! [`borrow`](crate::borrow) takes a fresh [`ClaimId`](crate::ClaimId) (a
//! thread-local counter), applies `Acquire(Reader)` to the slot's atomic
//! state, and clones the anchor; dropping the borrow applies
//! `Release(Reader)`. Nothing is looked up and nothing is decoded until the
//! value is first used.
//!
//! ## Values
//!
//! A memory store keeps values put by value ([`Store::proxy`](crate::Store::proxy),
//! [`Store::owned_proxy`](crate::Store::owned_proxy)) undecoded, as
//! `Arc<T>`: readers share it, nothing is serialized. Values put by
//! reference ([`Store::put`](crate::Store::put)) are encoded (that is the
//! copy), and decoded once per version into the store's cache.
//!
//! ## Tests
//!
//! Unit tests sit next to the code, integration tests in `tests/`, one
//! binary per file. `tests/layout.rs` holds the layout to its rules: the
//! loom cfg is named only under `src/sync/` (which also holds the loom
//! models that need crate-private items, `models.rs`), no file of `src/` is
//! over 600 lines, and no two files of `src/` import each other, directly
//! or through others (`error.rs` and `key.rs` aside). What several of them share is the workspace crate
//! `borrowstore-testkit` (`testkit/`, a dev-dependency):
//!
//! - the connector conformance suite (`testkit/src/conformance/`, a file per
//!   topic), every check a `pub fn` taking a fresh store, and the
//!   `conformance_suite!` macro that makes them `#[test]`s for one
//!   connector — `tests/memory_store.rs`, `tests/file_store.rs`,
//!   `tests/redis_store.rs`, `tests/redis_cluster_store.rs` and
//!   `tests/redis_tls_store.rs` are one call each, and a connector from outside
//!   the crate is checked the same way (`testkit/tests/custom_connector.rs`);
//! - the fixtures: unique names, fresh memory / file / Redis stores of a
//!   test binary's `Suite` (file stores under cargo's per-target temp dir)
//!   and `on_every_store!`, which runs checks on all three; the
//!   `redis-server` harness (a real server on a free loopback port per
//!   test, or a TLS one with certificates it makes, shared by a test
//!   binary) and a six-node Redis Cluster, plain or TLS, shared by a test
//!   binary (`redis_cluster.rs`); probes of what a store holds; bounded
//!   waits; `assert_err!`;
//! - child processes (`testkit/src/process/`): a test binary re-executes
//!   itself as a child, which runs the binary's `child_entry` test (declared
//!   with `child_entry!`, the one piece that has to live in the binary) and
//!   obeys commands on stdin; the cross-process scenarios that
//!   `tests/cross_process.rs` runs on file and Redis stores drive such
//!   children.

// Without the `redis` feature the Redis links above have nothing to point at.
#![cfg_attr(not(feature = "redis"), allow(rustdoc::broken_intra_doc_links))]

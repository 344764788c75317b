//! Inspection: what `Store::inspect` and `Store::snapshot` report of an
//! object (its type, size, creation time and name) and of each claim on it
//! (kind, process, host, label, time taken, lease deadline).
//!
//! Claims taken in another process (the child's pid) are checked by the
//! cross-process scenarios (`process::scenarios::claims_name_their_process`).

use borrowstore::connector::{ClaimInfo, ClaimRole, this_process};
use borrowstore::{
    ContextLifetime, Lifetime, LivenessScope, ObjectInfo, OwnedProxy, RefProxy, Store, borrow,
    borrow_async, borrow_timeout, clone, clone_async, into_owned, into_owned_async, mut_borrow,
    mut_borrow_async, mut_borrow_timeout,
};

use super::state;

/// Whether the store's claims have leases (file and Redis stores).
fn leased(store: &Store) -> bool {
    store.url().starts_with("file:") || store.url().starts_with("redis")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The claims of `kind`.
fn of(info: &ObjectInfo, kind: ClaimRole) -> Vec<&ClaimInfo> {
    info.claims.iter().filter(|c| c.kind == kind).collect()
}

/// A claim of this process, taken between `before` and `after` (ms; the
/// memory store's clock is coarse, to 10 ms), with a lease on stores that
/// have them.
fn assert_mine(store: &Store, c: &ClaimInfo, before: u64, after: u64) {
    let (pid, host) = this_process();
    assert_eq!((c.pid, c.host.as_str()), (pid, host), "{c:?}");
    assert!(
        c.since_ms + 50 >= before && c.since_ms <= after + 50,
        "taken at {} outside [{before}, {after}]: {c:?}",
        c.since_ms
    );
    match c.lease_expires_ms {
        Some(d) => {
            assert!(leased(store), "a lease on a store without leases: {c:?}");
            assert!(d > c.since_ms && d > after, "{c:?}");
        }
        None => assert!(!leased(store), "no lease on a leased store: {c:?}"),
    }
}

/// The label of a claim taken on line `line` of this file.
fn site(line: u32) -> String {
    format!("{}:{line}:", file!())
}

/// An object records its type, its size, when it was stored, and the name
/// it was stored with; a plain object has no name and no claims.
pub fn inspect_reports_type_size_time_and_name(store: Store) {
    let before = now_ms();
    let owner = store
        .owned_proxy_named(vec![7u64; 16], "sixteen sevens")
        .unwrap();
    let plain = store.put(&String::from("plain")).unwrap();
    let after = now_ms();

    let i = state(&store, OwnedProxy::key(&owner));
    assert_eq!(
        i.type_name.as_deref(),
        Some("alloc::vec::Vec<u64>"),
        "{i:?}"
    );
    assert_eq!(i.label.as_deref(), Some("sixteen sevens"));
    let size = i.size.expect("a size");
    // Encoded: header + length + 16 varints of 7; in memory: the Vec itself.
    assert!((16..=128).contains(&size), "{i:?}");
    let created = i.created_ms.expect("a creation time");
    assert!(created + 50 >= before && created <= after + 50, "{i:?}");

    let p = state(&store, &plain);
    assert_eq!(p.type_name.as_deref(), Some("alloc::string::String"));
    assert_eq!(p.label, None);
    assert!(p.claims.is_empty(), "{p:?}");
    assert!(p.plain);
}

/// Each claim is reported with its kind, this process, its label (the
/// object's or scope's or lifetime's name, else the call site that took
/// it), when it was taken and its lease deadline; a claim sent off in a
/// ticket is a `ticket` until it is redeemed.
pub fn inspect_reports_each_claim_with_its_process_label_and_time(store: Store) {
    let before = now_ms();
    let owner = store.owned_proxy_named(vec![1u64, 2], "pair").unwrap();
    let key = *OwnedProxy::key(&owner);
    let (r1, r1_line) = (borrow(&owner).unwrap(), line!());
    let (r2, r2_line) = (borrow(&owner).unwrap(), line!());
    let scope = LivenessScope::new();
    scope.label("nightly batch");
    scope.manage(&owner).unwrap();
    let lifetime = ContextLifetime::new(&store);
    lifetime.label("request 7");
    lifetime.add_proxy(&owner).unwrap();
    let after = now_ms();

    let i = state(&store, &key);
    assert_eq!((i.owners, i.holders, i.readers, i.writer), (3, 2, 2, false));
    assert_eq!(i.claims.len(), 5, "{:#?}", i.claims);
    for c in &i.claims {
        assert_mine(&store, c, before, after);
    }
    let o = of(&i, ClaimRole::Owner);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].label.as_deref(), Some("pair"));
    let mut readers: Vec<String> = of(&i, ClaimRole::Reader)
        .iter()
        .map(|c| c.label.clone().expect("a call site"))
        .collect();
    readers.sort();
    assert!(readers[0].starts_with(&site(r1_line)), "{readers:?}");
    assert!(readers[1].starts_with(&site(r2_line)), "{readers:?}");
    let mut holders: Vec<Option<String>> = of(&i, ClaimRole::Holder)
        .iter()
        .map(|c| c.label.clone())
        .collect();
    holders.sort();
    assert_eq!(
        holders,
        [
            Some("nightly batch".to_owned()),
            Some("request 7".to_owned())
        ]
    );

    // A borrow in flight is a ticket, with the process that issued it.
    let ticket = RefProxy::into_ticket(r2).unwrap();
    let i = state(&store, &key);
    assert_eq!(i.readers, 2, "a ticket in flight keeps its borrow");
    let t = of(&i, ClaimRole::Ticket);
    assert_eq!(t.len(), 1, "{:#?}", i.claims);
    assert_eq!(t[0].pid, std::process::id());
    assert_eq!(of(&i, ClaimRole::Reader).len(), 1);
    let r2 = ticket.redeem().unwrap();
    let i = state(&store, &key);
    assert_eq!(of(&i, ClaimRole::Ticket).len(), 0, "{:#?}", i.claims);
    assert_eq!(of(&i, ClaimRole::Reader).len(), 2, "{:#?}", i.claims);

    // Released claims leave the report; a writer shows its call site.
    drop((r1, r2));
    scope.release().unwrap();
    lifetime.close().unwrap();
    let (w, w_line) = (mut_borrow(&owner).unwrap(), line!());
    let i = state(&store, &key);
    assert_eq!(i.claims.len(), 2, "{:#?}", i.claims);
    let wc = of(&i, ClaimRole::Writer);
    assert!(
        wc[0]
            .label
            .as_deref()
            .is_some_and(|l| l.starts_with(&site(w_line))),
        "{wc:?}"
    );
    assert!(i.to_string().contains("writer"), "{i}");
    drop(w);
    let i = state(&store, &key);
    assert_eq!(i.claims.len(), 1, "{:#?}", i.claims);
    assert_eq!(i.claims[0].kind, ClaimRole::Owner);
}

/// Asserts that `key`'s only claim of role `role` (beside its owner) is
/// labelled with a call site of this file at most 3 lines above line
/// `line` (where a formatted call may begin).
fn labelled_at(store: &Store, key: &borrowstore::Key, role: ClaimRole, line: u32, what: &str) {
    let i = state(store, key);
    let found = of(&i, role);
    assert_eq!(found.len(), 1, "{what}: {:#?}", i.claims);
    let label = found[0].label.as_deref().unwrap_or_default();
    let at = label
        .strip_prefix(concat!(file!(), ":"))
        .and_then(|rest| rest.split(':').next())
        .and_then(|l| l.parse::<u32>().ok());
    assert!(
        at.is_some_and(|l| l <= line && l + 3 >= line),
        "{what}: labelled {label:?}, not with its call site ({}:{line})",
        file!()
    );
}

/// Every call that takes a claim — blocking, waiting or async, borrow or
/// owner — labels it with the caller's own line, not a line inside the
/// crate.
pub fn every_claim_is_labelled_with_the_call_site_that_took_it(store: Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let owner = store.owned_proxy(vec![5u8; 8]).unwrap();
    let key = *OwnedProxy::key(&owner);
    let wait = std::time::Duration::from_secs(5);

    let (r, line) = (borrow_timeout(&owner, wait).unwrap(), line!());
    labelled_at(&store, &key, ClaimRole::Reader, line, "borrow_timeout");
    drop(r);
    let (w, line) = (mut_borrow_timeout(&owner, wait).unwrap(), line!());
    labelled_at(&store, &key, ClaimRole::Writer, line, "mut_borrow_timeout");
    drop(w);
    let (r, line) = (rt.block_on(borrow_async(&owner)).unwrap(), line!());
    labelled_at(&store, &key, ClaimRole::Reader, line, "borrow_async");
    let (r2, line) = (RefProxy::reborrow(&r).unwrap(), line!());
    drop(r);
    labelled_at(&store, &key, ClaimRole::Reader, line, "reborrow");
    drop(r2);
    let (w, line) = (rt.block_on(mut_borrow_async(&owner)).unwrap(), line!());
    labelled_at(&store, &key, ClaimRole::Writer, line, "mut_borrow_async");
    drop(w);
    store.flush().unwrap();

    let (p2, p3) = (
        store.proxy(vec![2u8]).unwrap(),
        store.proxy(vec![3u8]).unwrap(),
    );
    let owners = [
        (
            rt.block_on(store.owned_proxy_async(vec![1u8])).unwrap(),
            line!(),
            "owned_proxy_async",
        ),
        (clone(&owner).unwrap(), line!(), "clone"),
        (
            rt.block_on(clone_async(&owner)).unwrap(),
            line!(),
            "clone_async",
        ),
        (into_owned(p2).unwrap(), line!(), "into_owned"),
        (
            rt.block_on(into_owned_async(p3)).unwrap(),
            line!(),
            "into_owned_async",
        ),
    ];
    for (o, line, what) in &owners {
        labelled_at(&store, OwnedProxy::key(o), ClaimRole::Owner, *line, what);
    }
}

/// A snapshot lists every object of the store, as `inspect` reports it,
/// in key order, and adds them up.
pub fn snapshot_lists_every_object_as_inspect_does(store: Store) {
    let a = store.owned_proxy_named(vec![1u64], "a").unwrap();
    let b = store.owned_proxy(vec![2u64, 3]).unwrap();
    let r = borrow(&b).unwrap();
    let c = store.put(&9u8).unwrap();
    let snap = store.snapshot().unwrap();
    let keys: Vec<_> = snap.objects.iter().map(|o| o.key).collect();
    let mut expected = vec![*OwnedProxy::key(&a), *OwnedProxy::key(&b), c];
    expected.sort();
    assert_eq!(keys, expected);
    for o in &snap.objects {
        let i = state(&store, &o.key);
        assert_eq!(
            (
                o.type_name.as_ref(),
                o.size,
                o.version,
                o.created_ms,
                o.label.as_ref()
            ),
            (
                i.type_name.as_ref(),
                i.size,
                i.version,
                i.created_ms,
                i.label.as_ref()
            )
        );
        assert_eq!(o.claims.len(), i.claims.len());
    }
    let s = snap.summary();
    assert_eq!(s.objects, 3);
    assert_eq!(s.claims.get("owner"), Some(&2));
    assert_eq!(s.claims.get("reader"), Some(&1));
    assert_eq!(
        s.processes,
        vec![(this_process().1.to_owned(), std::process::id())]
    );
    assert_eq!(s.expired, 0);
    assert_eq!(
        s.bytes,
        snap.objects.iter().map(|o| o.size.unwrap()).sum::<u64>()
    );
    let json = format!("{snap}");
    assert!(json.contains(&OwnedProxy::key(&a).to_string()), "{json}");
    drop((r, a, b));
}

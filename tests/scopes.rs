//! Liveness scopes (issue 5): Deephaven's liveness tests, the QueryScope
//! worked example, mixed ownership in every order, a 10,000-object chain,
//! a concurrency stress test, and a scope in another process.
//!
//! Every check looks at what the store really holds (`Store::exists /
//! inspect / keys`, read from the connector), after `store.flush()`.
//! The behavioural tests run against the memory, file and Redis stores.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use borrowstore::{
    ContextLifetime, Error, Key, LivenessScope, OwnedProxy, Proxy, Store, borrow, into_owned,
    liveness_scope, mut_borrow,
};
use borrowstore_testkit::{Suite, contents, exists, holders, key, on_every_store, set};

/// Names this suite's stores and directories.
const SUITE: Suite = borrowstore_testkit::suite!("scopes");

// ---------------------------------------------------------------- helpers --

/// A "table": what the Deephaven and QueryScope examples create.
type Table = Vec<(String, i64)>;

fn table(store: &Store, name: &str) -> Proxy<Table> {
    store
        .proxy(vec![(name.to_owned(), name.len() as i64)])
        .expect("create table")
}

on_every_store!(SUITE;
    deephaven_simple,
    deephaven_nested,
    deephaven_siblings,
    deephaven_reopen,
    deephaven_preserve_on_the_wrong_scope,
    design_md_scope_block,
    deephaven_one_shot_scope,
    preserve_in_the_outermost_scope_leaves_other_owners_in_charge,
    preserve_in_the_outermost_scope_makes_a_sole_owned_object_plain,
    query_scope_worked_example,
    manage_twice_holds_two_references,
    unmanage_of_what_is_not_managed_is_a_no_op,
    manage_of_a_missing_object_is_key_not_found,
    nothing_is_managed_without_an_open_scope,
    everything_created_in_an_open_scope_is_managed,
    owned_proxy_in_a_scope_lives_until_both_are_gone,
    ephemeral_proxy_in_a_scope,
    liveness_scope_releases_on_return_error_and_panic,
    open_pops_the_scope_even_on_panic,
    dropping_the_last_handle_releases_the_scope,
    release_while_borrowed_defers_eviction,
    mixed_ownership_in_every_order,
    stress_small,
);

// ---------------------------------------------------- Deephaven liveness --

/// Deephaven `test_liveness`: in a one-shot scope, what is preserved
/// survives, the rest is released; what no scope managed is untouched.
fn deephaven_simple(store: Store) {
    let not_managed = table(&store, "not_managed");
    let enclosing = LivenessScope::new();
    let (to_discard, must_keep) = enclosing
        .open(|| {
            liveness_scope(|s| -> Result<_, Error> {
                let to_discard = table(&store, "to_discard");
                let must_keep = table(&store, "must_keep");
                s.preserve(&must_keep)?;
                assert_eq!(s.references(&to_discard), 1);
                assert_eq!(s.references(&must_keep), 0);
                Ok((key(&to_discard), must_keep))
            })
        })
        .expect("release")
        .expect("scope body");

    assert!(exists(&store, &key(&not_managed)));
    assert!(exists(&store, &key(&must_keep)));
    assert!(!exists(&store, &to_discard));
    assert_eq!(contents(&store), set(&[key(&not_managed), key(&must_keep)]));
    assert_eq!(holders(&store, &key(&must_keep)), 1);
    assert_eq!(*must_keep, vec![("must_keep".to_owned(), 9)]);

    enclosing.release().unwrap();
    assert_eq!(contents(&store), set(&[key(&not_managed)]));
}

/// Deephaven `test_liveness_nested`: an inner scope preserves into the
/// outer one, which later releases what it was handed.
fn deephaven_nested(store: Store) {
    let base = LivenessScope::new();
    let (must_keep, nested_must_keep) = base
        .open(|| {
            liveness_scope(|l| -> Result<_, Error> {
                let to_discard = table(&store, "to_discard");
                let (nested_to_discard, nested_must_keep) = liveness_scope(|n| {
                    let nested_to_discard = table(&store, "nested_to_discard");
                    let nested_must_keep = table(&store, "nested_must_keep");
                    n.preserve(&nested_must_keep)?;
                    Ok::<_, Error>((key(&nested_to_discard), nested_must_keep))
                })??;
                // The nested scope is gone: what it preserved is `l`'s now.
                assert!(!exists(&store, &nested_to_discard));
                assert!(exists(&store, &key(&nested_must_keep)));
                assert_eq!(l.references(&nested_must_keep), 1);
                assert!(exists(&store, &key(&to_discard)));

                let must_keep = table(&store, "must_keep");
                l.preserve(&must_keep)?;
                Ok((must_keep, key(&nested_must_keep)))
            })
        })
        .expect("release")
        .expect("scope body");

    // `l` released: only what it preserved into `base` is left.
    assert!(!exists(&store, &nested_must_keep));
    assert_eq!(contents(&store), set(&[key(&must_keep)]));
    assert_eq!(base.references(&must_keep), 1);
    base.release().unwrap();
    assert!(contents(&store).is_empty());
}

/// Deephaven `test_liveness_siblings`: sibling scopes are independent and
/// release in any order; an object both manage lives until both let go.
fn deephaven_siblings(store: Store) {
    for first_released in [0, 1] {
        let scopes = [LivenessScope::new(), LivenessScope::new()];
        let a = scopes[0].open(|| table(&store, "a"));
        let b = scopes[1].open(|| table(&store, "b"));
        let shared = scopes[0].open(|| table(&store, "shared"));
        scopes[1].manage(&shared).unwrap();
        assert_eq!(holders(&store, &key(&shared)), 2);
        assert_eq!(contents(&store), set(&[key(&a), key(&b), key(&shared)]));

        scopes[first_released].release().unwrap();
        let (gone, kept) = if first_released == 0 {
            (&a, &b)
        } else {
            (&b, &a)
        };
        assert!(!exists(&store, &key(gone)));
        assert_eq!(contents(&store), set(&[key(kept), key(&shared)]));
        assert_eq!(holders(&store, &key(&shared)), 1);

        scopes[1 - first_released].release().unwrap();
        assert!(contents(&store).is_empty());
    }
}

/// Deephaven reopen: a scope opened several times before its release
/// manages what every opening created; nothing made between openings.
fn deephaven_reopen(store: Store) {
    let scope = LivenessScope::new();
    let first = scope.open(|| table(&store, "first"));
    let between = table(&store, "between");
    let second = scope.open(|| table(&store, "second"));
    assert_eq!(scope.len(), 2);
    assert_eq!(holders(&store, &key(&between)), 0);
    scope.release().unwrap();
    assert!(!exists(&store, &key(&first)));
    assert!(!exists(&store, &key(&second)));
    assert_eq!(contents(&store), set(&[key(&between)]));

    // Released scopes can be used again.
    let third = scope.open(|| table(&store, "third"));
    scope.release().unwrap();
    assert!(!exists(&store, &key(&third)));
}

/// Deephaven: preserving from a scope that is not the innermost open one is
/// an error that changes nothing. (Preserving from the outermost scope is
/// not an error: see `preserve_in_the_outermost_scope_*`.)
fn deephaven_preserve_on_the_wrong_scope(store: Store) {
    let outer = LivenessScope::new();
    let inner = LivenessScope::new();
    let t = outer.open(|| {
        let t = table(&store, "t");
        inner.open(|| {
            let before = holders(&store, &key(&t));
            match outer.preserve(&t) {
                Err(Error::NotInnermostScope) => {}
                other => panic!("expected NotInnermostScope, got {other:?}"),
            }
            assert_eq!(holders(&store, &key(&t)), before);
            assert_eq!((outer.references(&t), inner.references(&t)), (1, 0));
        });
        assert_eq!(outer.references(&t), 1);
        t
    });
    // A scope that is not open at all.
    assert!(matches!(
        LivenessScope::new().preserve(&t),
        Err(Error::NotInnermostScope)
    ));
    assert!(matches!(outer.preserve(&t), Err(Error::NotInnermostScope)));
    assert_eq!(holders(&store, &key(&t)), 1);
    outer.release().unwrap();
    assert!(contents(&store).is_empty());
}

// ---------------------------------------- preserve in the outermost scope --

/// The store-side (owned, holders, had an owner) of `key`.
fn ownership(store: &Store, key: &Key) -> (bool, u32, bool) {
    store.flush().expect("flush");
    let info = store
        .inspect(key)
        .expect("inspect")
        .expect("the object exists");
    (info.owner, info.holders, !info.plain)
}

/// An object without an owner, as a plain `put` makes it: no owner proxy,
/// no holder, and no record of ever having had one (so nothing evicts it
/// but an explicit eviction).
const PLAIN: (bool, u32, bool) = (false, 0, false);

/// DESIGN.md's "Scopes and lifetimes" block as a user writes it: in a
/// function of their own, with no scope open around it. `out` lives on
/// after the release, as an object without an owner; `tmp` is evicted.
fn design_md_scope_block(store: Store) {
    let (kept, value) = design_md_scope_block_as_written(&store).expect("the block as written");
    assert_eq!(*kept, 1024);
    assert_eq!(*value, 3);
    assert_eq!(contents(&store), set(&[key(&kept), key(&value)]));
    assert_eq!(ownership(&store, &key(&kept)), PLAIN);
    assert_eq!(ownership(&store, &key(&value)), PLAIN);
    // They persist until evicted.
    store.evict(Proxy::key(&kept)).unwrap();
    store.evict(Proxy::key(&value)).unwrap();
    assert!(contents(&store).is_empty());
}

/// The block, copied from DESIGN.md; only the one-shot scope's body is
/// filled in (DESIGN.md leaves it as a comment).
#[rustfmt::skip] // kept as DESIGN.md lays it out
fn design_md_scope_block_as_written(store: &Store) -> Result<(Proxy<usize>, Proxy<u64>), Error> {
    let scope = LivenessScope::new();
    let kept = scope.open(|| -> Result<_, Error> {        // objects created inside are managed by `scope`
        let tmp = store.proxy(vec![0u8; 1024])?;           //   (async: scope.open_async(fut))
        let out = store.proxy(tmp.len())?;
        scope.preserve(&out)?;                             // also owned by the enclosing scope
        Ok(out)
    })?;
    scope.release()?;                                      // `tmp` evicted; `out` lives on
    let value = liveness_scope(|s| { /* one-shot scope, released on return */
        let parts = store.proxy(vec![1u64, 2])?;
        let out = store.proxy(parts.iter().sum::<u64>())?;
        s.preserve(&out)?;
        Ok::<_, Error>(out)
    })??;
    Ok((kept, value))
}

/// Deephaven's one-shot scope, as its documentation writes it:
///
/// ```python
/// def make_table():
///     with liveness_scope() as scope:
///         t = source.update(...)
///         scope.preserve(t)
///         return t
/// ```
///
/// called with no scope open: the table outlives the scope, what was made
/// on the way does not.
fn deephaven_one_shot_scope(store: Store) {
    fn make_table(store: &Store) -> Result<Proxy<Table>, Error> {
        liveness_scope(|scope| {
            let source = table(store, "source");
            let t = store.proxy(
                source
                    .iter()
                    .map(|(name, n)| (format!("{name}-updated"), n * 2))
                    .collect::<Table>(),
            )?;
            scope.preserve(&t)?;
            Ok(t)
        })?
    }

    let t = make_table(&store).expect("make_table");
    assert_eq!(*t, vec![("source-updated".to_owned(), 12)]);
    assert_eq!(contents(&store), set(&[key(&t)]), "only the table is left");
    assert_eq!(ownership(&store, &key(&t)), PLAIN);
    // Called again, from inside a scope, it hands the table to that scope.
    let app = LivenessScope::new();
    let u = app
        .open(|| make_table(&store))
        .expect("make_table in a scope");
    assert_eq!(app.references(&u), 1);
    app.release().unwrap();
    assert_eq!(contents(&store), set(&[key(&t)]));
    store.evict(Proxy::key(&t)).unwrap();
    assert!(contents(&store).is_empty());
}

/// With no enclosing scope, `preserve` takes this scope out of the object's
/// owners; the owners it still has decide, by the usual rule: an owner
/// proxy (and its borrows), a peer scope, a lifetime.
fn preserve_in_the_outermost_scope_leaves_other_owners_in_charge(store: Store) {
    // An owner proxy.
    let scope = LivenessScope::new();
    let owner = scope.open(|| store.owned_proxy(vec![1u8])).unwrap();
    let k = *OwnedProxy::key(&owner);
    assert_eq!(ownership(&store, &k), (true, 1, true));
    scope.open(|| scope.preserve(&owner)).unwrap();
    assert_eq!(scope.references(&owner), 0);
    assert_eq!(ownership(&store, &k), (true, 0, true));
    scope.release().unwrap();
    assert!(exists(&store, &k));
    let r = borrow(&owner).unwrap();
    drop(owner);
    assert!(exists(&store, &k), "still borrowed");
    drop(r);
    assert!(!exists(&store, &k), "its last owner and borrow are gone");

    // A peer scope.
    let (a, b) = (LivenessScope::new(), LivenessScope::new());
    let p = a.open(|| table(&store, "shared"));
    b.manage(&p).unwrap();
    a.open(|| a.preserve(&p)).unwrap();
    a.release().unwrap();
    assert_eq!(ownership(&store, &key(&p)), (false, 1, true));
    b.release().unwrap();
    assert!(!exists(&store, &key(&p)));

    // A lifetime.
    let lt = ContextLifetime::new(&store);
    let scope = LivenessScope::new();
    let p = scope.open(|| table(&store, "in a lifetime"));
    lt.add_proxy(&p).unwrap();
    scope.open(|| scope.preserve(&p)).unwrap();
    scope.release().unwrap();
    assert_eq!(ownership(&store, &key(&p)), (false, 1, true));
    lt.close().unwrap();
    assert!(!exists(&store, &key(&p)));

    assert!(contents(&store).is_empty());
}

/// When this scope was the object's only owner, `preserve` with no
/// enclosing scope leaves an object without an owner, the same as a plain
/// `put`: it persists until evicted, and an owner it gets later owns it by
/// the usual rule.
fn preserve_in_the_outermost_scope_makes_a_sole_owned_object_plain(store: Store) {
    // All of this scope's references go, so its release cannot evict it.
    let scope = LivenessScope::new();
    let p = scope.open(|| table(&store, "twice"));
    scope.manage(&p).unwrap();
    assert_eq!(ownership(&store, &key(&p)), (false, 2, true));
    scope.open(|| scope.preserve(&p)).unwrap();
    assert_eq!(scope.references(&p), 0);
    assert_eq!(ownership(&store, &key(&p)), PLAIN);
    scope.release().unwrap();
    assert!(exists(&store, &key(&p)));
    // A later owner: managed, then released, it is evicted like any object.
    let later = LivenessScope::new();
    later.manage(&p).unwrap();
    later.release().unwrap();
    assert!(!exists(&store, &key(&p)));

    // The same with an owner proxy adopted later.
    let scope = LivenessScope::new();
    let q = scope.open(|| table(&store, "adopted"));
    scope.open(|| scope.preserve(&q)).unwrap();
    scope.release().unwrap();
    let qk = key(&q);
    let owner = into_owned(q).unwrap();
    drop(owner);
    assert!(!exists(&store, &qk));

    // Preserving what the scope does not manage changes nothing; a plain
    // object stays plain.
    let plain = table(&store, "plain");
    let scope = LivenessScope::new();
    scope.open(|| scope.preserve(&plain)).unwrap();
    assert_eq!(ownership(&store, &key(&plain)), PLAIN);
    store.evict(Proxy::key(&plain)).unwrap();

    // A gone object is `KeyNotFound`, managed or not.
    let scope = LivenessScope::new();
    let (gone, other) = scope.open(|| (table(&store, "gone"), table(&store, "other")));
    store.evict(Proxy::key(&gone)).unwrap();
    store.evict(Proxy::key(&other)).unwrap();
    scope.unmanage(&other);
    for p in [&gone, &other] {
        match scope.open(|| scope.preserve(p)) {
            Err(Error::KeyNotFound { key: k, .. }) => assert_eq!(k, key(p)),
            r => panic!("expected KeyNotFound, got {r:?}"),
        }
    }
    scope.release().unwrap();
    assert!(contents(&store).is_empty());
}

// ------------------------------------------------- QueryScope peer scopes --

/// The QueryScope worked example: tables T1, T2; scopes S1, S2, S3 holding
/// (T1,S1), (T1,S2), (T2,S2), (T2,S3). Disposing S2 releases nothing, then
/// S3 releases T2, then S1 releases T1.
fn query_scope_worked_example(store: Store) {
    let (s1, s2, s3) = (
        LivenessScope::new(),
        LivenessScope::new(),
        LivenessScope::new(),
    );
    let t1 = s1.open(|| table(&store, "T1"));
    s2.manage(&t1).unwrap();
    let t2 = s2.open(|| table(&store, "T2"));
    s3.manage(&t2).unwrap();
    assert_eq!(contents(&store), set(&[key(&t1), key(&t2)]));
    assert_eq!(holders(&store, &key(&t1)), 2);
    assert_eq!(holders(&store, &key(&t2)), 2);

    s2.release().unwrap();
    assert_eq!(contents(&store), set(&[key(&t1), key(&t2)]));
    s3.release().unwrap();
    assert_eq!(contents(&store), set(&[key(&t1)]));
    s1.release().unwrap();
    assert!(contents(&store).is_empty());
}

// ----------------------------------------------------- counting and hooks --

fn manage_twice_holds_two_references(store: Store) {
    let p = store.proxy(1u32).unwrap();
    let scope = LivenessScope::new();
    scope.manage(&p).unwrap();
    scope.manage(&(&store, key(&p))).unwrap();
    assert_eq!(scope.references(&p), 2);
    assert_eq!(scope.len(), 1);
    assert_eq!(holders(&store, &key(&p)), 2);
    assert!(scope.unmanage(&p));
    assert!(exists(&store, &key(&p)));
    assert_eq!(holders(&store, &key(&p)), 1);
    assert!(scope.unmanage(&(store.clone(), key(&p))));
    assert!(!exists(&store, &key(&p)));
    assert!(scope.is_empty());
}

fn unmanage_of_what_is_not_managed_is_a_no_op(store: Store) {
    let p = store.proxy(1u32).unwrap();
    let other = LivenessScope::new();
    other.manage(&p).unwrap();
    let scope = LivenessScope::new();
    assert!(!scope.unmanage(&p));
    assert!(!scope.unmanage(&(&store, Key::random())));
    assert_eq!(holders(&store, &key(&p)), 1);
    other.release().unwrap();
    assert!(contents(&store).is_empty());
}

fn manage_of_a_missing_object_is_key_not_found(store: Store) {
    let scope = LivenessScope::new();
    let missing = Key::random();
    assert!(matches!(
        scope.manage(&(&store, missing)),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(scope.is_empty());
    assert!(contents(&store).is_empty());
}

/// With no scope open nothing is managed: no base scope keeps anything.
fn nothing_is_managed_without_an_open_scope(store: Store) {
    let k = store.put(&1u8).unwrap();
    let p = store.proxy(2u8).unwrap();
    let owner = store.owned_proxy(3u8).unwrap();
    for key in [k, key(&p), *OwnedProxy::key(&owner)] {
        assert_eq!(holders(&store, &key), 0);
    }
    let owned_key = *OwnedProxy::key(&owner);
    drop(owner);
    assert!(!exists(&store, &owned_key));
    assert_eq!(contents(&store), set(&[k, key(&p)]));
}

/// Every creation function is hooked: put, put_batch, proxy,
/// ephemeral_proxy, owned_proxy, clone.
fn everything_created_in_an_open_scope_is_managed(store: Store) {
    let scope = LivenessScope::new();
    let (owner, copy, keys) = scope.open(|| {
        let mut keys = vec![store.put(&1u8).unwrap()];
        keys.extend(store.put_batch(&[2u8, 3, 4]).unwrap());
        keys.push(key(&store.proxy(5u8).unwrap()));
        keys.push(key(&store.ephemeral_proxy(6u8).unwrap()));
        let owner = store.owned_proxy(7u8).unwrap();
        let copy = borrowstore::clone(&owner).unwrap();
        (owner, copy, keys)
    });
    let mut all = keys.clone();
    all.push(*OwnedProxy::key(&owner));
    all.push(*OwnedProxy::key(&copy));
    assert_eq!(scope.len(), all.len());
    assert_eq!(contents(&store), set(&all));
    for k in &all {
        assert_eq!(holders(&store, k), 1, "{k} is held by the scope");
    }
    scope.release().unwrap();
    // Plain objects had only the scope; the owned ones still have owners.
    assert_eq!(
        contents(&store),
        set(&[*OwnedProxy::key(&owner), *OwnedProxy::key(&copy)])
    );
    drop((owner, copy));
    assert!(contents(&store).is_empty());
}

fn owned_proxy_in_a_scope_lives_until_both_are_gone(store: Store) {
    // Owner first, then the scope.
    let scope = LivenessScope::new();
    let owner = scope.open(|| store.owned_proxy(vec![1u64]).unwrap());
    let k = *OwnedProxy::key(&owner);
    drop(owner);
    assert!(exists(&store, &k));
    scope.release().unwrap();
    assert!(!exists(&store, &k));
    // The scope first, then the owner.
    let owner = scope.open(|| store.owned_proxy(vec![2u64]).unwrap());
    let k = *OwnedProxy::key(&owner);
    scope.release().unwrap();
    assert!(exists(&store, &k));
    assert_eq!(*owner, vec![2]);
    drop(owner);
    assert!(!exists(&store, &k));
}

/// Ephemeral proxies are managed too: the first resolve still evicts them,
/// and the scope evicts those that nobody resolved.
fn ephemeral_proxy_in_a_scope(store: Store) {
    let scope = LivenessScope::new();
    let (resolved, unresolved) = scope.open(|| {
        (
            store.ephemeral_proxy(1u8).unwrap(),
            store.ephemeral_proxy(2u8).unwrap(),
        )
    });
    assert_eq!(*Proxy::resolve(&resolved).unwrap(), 1);
    assert!(!exists(&store, &key(&resolved)));
    assert!(exists(&store, &key(&unresolved)));
    scope.release().unwrap();
    assert!(contents(&store).is_empty());
}

fn liveness_scope_releases_on_return_error_and_panic(store: Store) {
    // Return.
    let k = liveness_scope(|_| store.put(&1u8).unwrap()).unwrap();
    assert!(!exists(&store, &k));
    // Error.
    let mut made = None;
    let r: Result<Result<(), Error>, Error> = liveness_scope(|_| {
        made = Some(store.put(&2u8)?);
        Err(Error::LifetimeEnded)
    });
    assert!(matches!(r, Ok(Err(Error::LifetimeEnded))));
    assert!(!exists(&store, &made.unwrap()));
    // Panic.
    let made = std::sync::Mutex::new(None);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        liveness_scope(|_| {
            *made.lock().unwrap() = Some(store.put(&3u8).unwrap());
            panic!("boom");
        })
    }));
    assert!(r.is_err());
    let k = made.lock().unwrap().unwrap();
    assert!(!exists(&store, &k));
    // Nothing is left on the scope stack.
    let after = store.put(&4u8).unwrap();
    assert_eq!(holders(&store, &after), 0);
    assert_eq!(contents(&store), set(&[after]));
}

fn open_pops_the_scope_even_on_panic(store: Store) {
    let scope = LivenessScope::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scope.open(|| {
            store.put(&1u8).unwrap();
            panic!("boom");
        })
    }));
    assert!(r.is_err());
    assert!(!scope.is_open());
    let after = store.put(&2u8).unwrap();
    assert_eq!(holders(&store, &after), 0);
    assert_eq!(scope.len(), 1);
    scope.release().unwrap();
    assert_eq!(contents(&store), set(&[after]));
}

fn dropping_the_last_handle_releases_the_scope(store: Store) {
    let scope = LivenessScope::new();
    let clone = scope.clone();
    let k = scope.open(|| store.put(&1u8).unwrap());
    drop(scope);
    assert!(exists(&store, &k));
    assert_eq!(clone.references(&(&store, k)), 1);
    drop(clone);
    assert!(!exists(&store, &k));
}

fn release_while_borrowed_defers_eviction(store: Store) {
    let scope = LivenessScope::new();
    let owner = scope.open(|| store.owned_proxy(vec![1u64, 2]).unwrap());
    let k = *OwnedProxy::key(&owner);
    let r = borrow(&owner).unwrap();
    drop(owner);
    scope.release().unwrap();
    assert!(exists(&store, &k), "references are always valid");
    assert_eq!(r.len(), 2);
    drop(r);
    assert!(!exists(&store, &k));
}

// ------------------------------------------------------- mixed ownership --

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    DropOwner,
    ReleaseScope,
    CloseLifetime,
    EndBorrow,
}

fn permutations(items: &[Event]) -> Vec<Vec<Event>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first);
            out.push(p);
        }
    }
    out
}

enum Borrow {
    Reader(borrowstore::RefProxy<Vec<u64>>),
    Writer(borrowstore::RefMutProxy<Vec<u64>>),
}

/// An object owned by an `OwnedProxy`, a scope and a lifetime, and
/// borrowed, is evicted only after all three owners are gone and the borrow
/// has ended — in each of the 24 orders, with a shared and with a mutable
/// borrow.
fn mixed_ownership_in_every_order(store: Store) {
    use Event::*;
    let orders = permutations(&[DropOwner, ReleaseScope, CloseLifetime, EndBorrow]);
    assert_eq!(orders.len(), 24);
    for writer in [false, true] {
        for order in &orders {
            let scope = LivenessScope::new();
            let lifetime = ContextLifetime::new(&store);
            let mut owner = Some(scope.open(|| store.owned_proxy(vec![1u64, 2, 3]).unwrap()));
            let k = *OwnedProxy::key(owner.as_ref().unwrap());
            lifetime.add_proxy(owner.as_ref().unwrap()).unwrap();
            let mut held = Some(if writer {
                Borrow::Writer(mut_borrow(owner.as_ref().unwrap()).unwrap())
            } else {
                Borrow::Reader(borrow(owner.as_ref().unwrap()).unwrap())
            });
            let inspect = |store: &Store| store.inspect(&k).unwrap();
            store.flush().unwrap();
            let s = inspect(&store).unwrap();
            assert!(
                s.owner && s.holders == 2 && (s.readers > 0 || s.writer),
                "{s:?}"
            );

            for (step, event) in order.iter().enumerate() {
                match event {
                    DropOwner => drop(owner.take()),
                    ReleaseScope => scope.release().unwrap(),
                    CloseLifetime => lifetime.close().unwrap(),
                    EndBorrow => match held.take() {
                        Some(Borrow::Writer(mut w)) => {
                            w.push(4); // published as it ends
                            drop(w);
                        }
                        Some(Borrow::Reader(r)) => {
                            assert_eq!(r.len(), 3, "the reader still sees the value");
                            drop(r);
                        }
                        None => unreachable!("each event happens once"),
                    },
                }
                store.flush().unwrap();
                let done = &order[..=step];
                let last = step == order.len() - 1;
                match inspect(&store) {
                    Some(i) => {
                        assert!(
                            !last,
                            "{order:?}: still stored after every owner and borrow"
                        );
                        let s = &i;
                        assert_eq!(s.owner, !done.contains(&DropOwner), "{order:?} {s:?}");
                        let expected_holders = u32::from(!done.contains(&ReleaseScope))
                            + u32::from(!done.contains(&CloseLifetime));
                        assert_eq!(s.holders, expected_holders, "{order:?} {s:?}");
                        assert_eq!(
                            s.readers > 0 || s.writer,
                            !done.contains(&EndBorrow),
                            "{order:?} {s:?}"
                        );
                        if writer && done.contains(&EndBorrow) {
                            assert_eq!(i.version, 2, "the writer published");
                        }
                    }
                    None => assert!(last, "{order:?}: evicted after only {done:?}"),
                }
            }
            assert!(!exists(&store, &k));
        }
    }
    assert!(contents(&store).is_empty());
}

// ------------------------------------------------------------ the chain --

/// One link of a chain: each object depends on (names) the previous one.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Link {
    id: u64,
    prev: Option<Key>,
}

/// A chain of 10,000 dependent objects releases on a 256 KiB stack: the
/// release is a loop, not a recursion.
#[test]
fn a_chain_of_10000_objects_releases_without_growing_the_stack() {
    const N: u64 = 10_000;
    let store = SUITE.memory_store();
    let scope = LivenessScope::new();
    let mut owners = Vec::new();
    scope.open(|| {
        let mut prev = None;
        for id in 0..N {
            // Alternate plain objects and owned ones whose owners go first.
            if id % 2 == 0 {
                prev = Some(store.put(&Link { id, prev }).unwrap());
            } else {
                let o = store.owned_proxy(Link { id, prev }).unwrap();
                prev = Some(*OwnedProxy::key(&o));
                owners.push(o);
            }
        }
    });
    drop(owners);
    assert_eq!(contents(&store).len(), N as usize);
    assert_eq!(scope.len(), N as usize);

    let s = scope.clone();
    let released = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            s.release().unwrap();
            drop(s);
        })
        .unwrap()
        .join();
    assert!(released.is_ok(), "release overflowed a 256 KiB stack");
    assert!(scope.is_empty());
    assert!(contents(&store).is_empty());

    // The same through the last handle's drop.
    let scope = LivenessScope::new();
    scope.open(|| {
        for id in 0..N {
            store.put(&Link { id, prev: None }).unwrap();
        }
    });
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || drop(scope))
        .unwrap()
        .join()
        .expect("drop overflowed a 256 KiB stack");
    assert!(contents(&store).is_empty());
}

// ------------------------------------------------------------ async --

/// A scope stays current across `.await`s on a multi-threaded runtime,
/// where tasks move between threads and interleave on each worker: every
/// task's scope manages exactly what that task created.
#[test]
fn open_async_keeps_each_scope_current_across_awaits_and_threads() {
    let store = SUITE.memory_store();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let store = store.clone();
            let scope = LivenessScope::new();
            let fut = scope.clone().open_async(async move {
                let mut made = Vec::new();
                for i in 0..20u64 {
                    made.push(store.put(&(t, i)).unwrap());
                    tokio::task::yield_now().await;
                    tokio::time::sleep(Duration::from_micros(50)).await;
                }
                made
            });
            (scope, rt.spawn(fut))
        })
        .collect();
    let mut all = Vec::new();
    for (scope, task) in tasks {
        let made = rt.block_on(task).unwrap();
        let mut managed = scope.keys();
        managed.sort();
        let mut expected = made.clone();
        expected.sort();
        assert_eq!(managed, expected);
        all.push((scope, made));
    }
    // Nothing leaked onto the workers' stacks.
    let outside = rt
        .block_on(rt.spawn({
            let store = store.clone();
            async move { store.put(&0u8).unwrap() }
        }))
        .unwrap();
    assert_eq!(holders(&store, &outside), 0);
    for (scope, made) in all {
        scope.release().unwrap();
        assert!(made.iter().all(|k| !exists(&store, k)));
    }
    assert_eq!(contents(&store), set(&[outside]));
}

// ------------------------------------------------------------ stress --

/// A tiny deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Manage / unmanage / release / create-in-scope from 8 threads on shared
/// and private scopes. At the end every object's store-side holder count
/// equals the references the scopes record, and releasing everything
/// empties the store.
fn stress(store: Store, ops_per_thread: usize) {
    const THREADS: usize = 8;
    let owners: Vec<OwnedProxy<u64>> = (0..16).map(|i| store.owned_proxy(i).unwrap()).collect();
    let owned: Vec<Key> = owners.iter().map(|o| *OwnedProxy::key(o)).collect();
    let shared: Vec<LivenessScope> = (0..3).map(|_| LivenessScope::new()).collect();
    let barrier = Arc::new(Barrier::new(THREADS));
    let results: Vec<(LivenessScope, Vec<Key>)> = std::thread::scope(|ts| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, owned, shared, barrier) = (&store, &owned, &shared, barrier.clone());
                ts.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                    let private = LivenessScope::new();
                    let mut created: Vec<Key> = Vec::new();
                    barrier.wait();
                    for _ in 0..ops_per_thread {
                        let scope = match rng.below(4) {
                            3 => &private,
                            i => &shared[i],
                        };
                        match rng.below(100) {
                            0..=39 => scope
                                .manage(&(store, owned[rng.below(owned.len())]))
                                .unwrap(),
                            40..=69 => {
                                scope.unmanage(&(store, owned[rng.below(owned.len())]));
                            }
                            70..=84 => {
                                let k = scope.open(|| store.put(&(t as u64)).unwrap());
                                created.push(k);
                            }
                            85..=94 => {
                                // Manage something another thread may be releasing.
                                if let Some(k) = created.get(rng.below(created.len().max(1))) {
                                    match scope.manage(&(store, *k)) {
                                        Ok(()) | Err(Error::KeyNotFound { .. }) => {}
                                        Err(e) => panic!("{e}"),
                                    }
                                }
                            }
                            _ => scope.release().unwrap(),
                        }
                    }
                    (private, created)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut scopes: Vec<LivenessScope> = shared;
    let mut every_key: Vec<Key> = owned.clone();
    for (private, created) in results {
        scopes.push(private);
        every_key.extend(created);
    }
    store.flush().unwrap();
    for k in &every_key {
        let references: usize = scopes.iter().map(|s| s.references(&(&store, *k))).sum();
        let state = store.inspect(k).unwrap();
        match &state {
            Some(s) => assert_eq!(s.holders as usize, references, "{k}: {s:?}"),
            None => assert_eq!(references, 0, "{k} is gone but still referenced"),
        }
        if !owned.contains(k) {
            assert_eq!(
                state.is_some(),
                references > 0,
                "{k}: plain objects live while held"
            );
        }
    }
    for s in &scopes {
        s.release().unwrap();
    }
    assert_eq!(contents(&store), set(&owned));
    drop(owners);
    assert!(contents(&store).is_empty());
}

fn stress_small(store: Store) {
    stress(store, 150);
}

#[test]
fn stress_memory_many_ops() {
    stress(SUITE.memory_store(), 20_000);
}

// ------------------------------------------------------ cross-process --

const CHILD_ENV: &str = "BORROWSTORE_SCOPES_CHILD";

/// The child half of the cross-process test (does nothing unless the
/// parent started this binary with `CHILD_ENV` set).
#[test]
fn child_process_scope() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let url = parts.next().unwrap();
    let x: Key = parts.next().unwrap().parse().unwrap();
    let y: Key = parts.next().unwrap().parse().unwrap();
    let store = Store::open(url).unwrap();
    let (b1, b2) = (LivenessScope::new(), LivenessScope::new());
    b1.manage(&(store.clone(), x)).unwrap();
    b2.manage(&(&store, y)).unwrap();
    println!("@@MANAGED");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    b2.release().unwrap(); // `y` still has the parent's scope
    assert!(store.exists(&y).unwrap());
    b1.release().unwrap(); // the parent released `x` already: evicted
    assert!(!store.exists(&x).unwrap());
    println!("@@RELEASED");
    std::io::stdout().flush().unwrap();
}

/// A scope in this process and a scope in another share objects through
/// the file store; each object is evicted when both scopes have released
/// it, whichever releases first.
#[test]
fn a_scope_in_another_process_shares_objects_through_the_file_store() {
    let store = SUITE.file_store();
    let (a1, a2) = (LivenessScope::new(), LivenessScope::new());
    let x = a1.open(|| table(&store, "X"));
    let y = a2.open(|| table(&store, "Y"));

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_process_scope", "--exact", "--nocapture"])
        .env(
            CHILD_ENV,
            format!("{} {} {}", store.url(), key(&x), key(&y)),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut wait_for = |marker: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            assert!(n > 0, "child exited before {marker}");
            if line.contains(marker) {
                return;
            }
        }
    };
    wait_for("@@MANAGED");
    assert_eq!(holders(&store, &key(&x)), 2);
    assert_eq!(holders(&store, &key(&y)), 2);

    // This process lets go of `x` first: the child still holds it.
    a1.release().unwrap();
    assert!(exists(&store, &key(&x)));
    assert_eq!(holders(&store, &key(&x)), 1);

    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
    wait_for("@@RELEASED");
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");

    // The child released both: `x` is gone, `y` is this process's alone.
    assert!(!exists(&store, &key(&x)));
    assert_eq!(holders(&store, &key(&y)), 1);
    a2.release().unwrap();
    assert!(contents(&store).is_empty());
}

const PRESERVE_CHILD_ENV: &str = "BORROWSTORE_SCOPES_PRESERVE_CHILD";

/// The child half of the next test: a top-level one-shot scope that
/// preserves its result, then the process exits.
#[test]
fn child_process_preserve() {
    let Ok(url) = std::env::var(PRESERVE_CHILD_ENV) else {
        return;
    };
    let store = Store::open(&url).unwrap();
    let out = liveness_scope(|s| {
        let tmp = table(&store, "tmp");
        let out = store.proxy(tmp.len() as u64 + 41)?;
        s.preserve(&out)?;
        Ok::<_, Error>(out)
    })
    .unwrap()
    .unwrap();
    println!("@@KEY {}", key(&out));
}

/// What a top-level scope preserves on the file store is an object without
/// an owner, not a claim of the process that made it: it outlives that
/// process by more than the lease.
#[test]
fn a_preserved_object_outlives_the_process_that_made_it() {
    let url = format!("file://{}?lease_ms=100", SUITE.file_dir().display());
    let store = Store::open(&url).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_process_preserve", "--exact", "--nocapture"])
        .env(PRESERVE_CHILD_ENV, &url)
        .output()
        .unwrap();
    assert!(child.status.success(), "child failed: {child:?}");
    let stdout = String::from_utf8_lossy(&child.stdout);
    let k: Key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("@@KEY "))
        .expect("the child printed its key")
        .trim()
        .parse()
        .unwrap();
    // Several leases and reap passes later.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(contents(&store), set(&[k]));
    assert_eq!(ownership(&store, &k), PLAIN);
    assert_eq!(store.get::<u64>(&k).unwrap(), Some(42));
    store.evict(&k).unwrap();
}

// ------------------------------------------------------------ misc --

#[test]
fn scopes_are_send_sync_and_cheap_to_clone() {
    fn send_sync<T: Send + Sync + Clone>() {}
    send_sync::<LivenessScope>();
    fn send<T: Send>(_: &T) {}
    let scope = LivenessScope::new();
    send(&scope.open_async(async {}));
    assert!(scope.clone().same_scope(&scope));
}

#[test]
fn objects_made_in_a_lifetime_inside_an_open_scope_belong_to_the_lifetime() {
    let store = SUITE.memory_store();
    let scope = LivenessScope::new();
    let lt = ContextLifetime::new(&store);
    let (in_lifetime, in_scope) =
        scope.open(|| (store.put_in(&lt, &1u8).unwrap(), store.put(&2u8).unwrap()));
    assert_eq!(holders(&store, &in_lifetime), 1);
    assert_eq!(scope.references(&(&store, in_lifetime)), 0);
    assert_eq!(scope.references(&(&store, in_scope)), 1);
    lt.close().unwrap();
    assert_eq!(contents(&store), set(&[in_scope]));
    scope.release().unwrap();
    assert!(contents(&store).is_empty());
}

/// The "Scopes and lifetimes" block of DESIGN.md, inside an enclosing
/// scope (and with `String` for the `&str` literal, which is not
/// `Storable`); `design_md_scope_block` runs it with no scope around it.
#[test]
fn the_design_api_block_works() -> Result<(), Error> {
    use borrowstore::LeaseLifetime;
    let store = SUITE.memory_store();
    let enclosing = LivenessScope::new();
    let (kept, tmp_key) = enclosing.open(|| {
        let scope = LivenessScope::new();
        let kept = scope.open(|| -> Result<_, Error> {
            let tmp = store.proxy(vec![0u8; 1024])?;
            let out = store.proxy(tmp.len())?;
            scope.preserve(&out)?;
            Ok((out, key(&tmp)))
        })?;
        scope.release()?;
        Ok::<_, Error>(kept)
    })?;
    assert!(!exists(&store, &tmp_key));
    assert_eq!(*kept, 1024);
    let value = liveness_scope(|_s| 7)?;
    assert_eq!(value, 7);

    let lt = ContextLifetime::new(&store);
    let k = store.put_in(&lt, &"x".to_owned())?;
    lt.close()?;
    assert!(!exists(&store, &k));
    let lease = LeaseLifetime::new(&store, Duration::from_secs(10));
    lease.extend(Duration::from_secs(5))?;
    assert!(lease.remaining() > Duration::from_secs(14));
    enclosing.release()?;
    assert!(contents(&store).is_empty());
    Ok(())
}

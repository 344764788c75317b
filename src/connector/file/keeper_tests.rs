//! Unit tests of the keeper's repairs that open a real store (a keeper
//! thread, std locks, file mappings): the loom build returns from them at
//! once, Miri ignores them.

use std::fs;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::FileConnector;
use super::layout::{FREE, S_PHASE, phase_of};
use super::shared::Patience;
use super::side::Place;
use crate::connector::lease::now_ms;
use crate::connector::{Connector, ObjectMeta, Value};
use crate::key::{ClaimId, Key};
use crate::state::Init;

/// A fresh directory for one test.
fn dir(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "bs-keeper-{name}-{}-{}",
        std::process::id(),
        ClaimId::random()
    ))
}

/// A creator that dies after its side file's link failed (the key was
/// another live object's) leaves a `Creating` slot with that key: its
/// reclaim must not remove the live object's files.
#[test]
#[cfg_attr(
    miri,
    ignore = "opens a real store: file mappings and locks, which Miri cannot run"
)]
fn reclaiming_a_dead_creator_of_an_existing_key_keeps_the_live_object() {
    if crate::sync::LOOM {
        return;
    }
    let dir = dir("dup");
    let c = FileConnector::open("dup", &dir).unwrap();
    let key = Key::random();
    let value = Bytes::from_static(b"the live object's value");
    c.put(&key, Value::Bytes(value.clone()), Init::Plain)
        .unwrap();
    let shared = c.inner.shared.clone();
    let table = shared.table();
    let me = shared.me().unwrap();
    // Another process record (`dead`) took a slot for the same key, and
    // died there (its link failed; it never abandoned the slot).
    let dead = me + 1;
    let (slot, _, _) = table
        .create(key, Init::Plain, dead, now_ms(), 0, 0)
        .unwrap();
    let out = table.repair_dead(dead, me, &mut Patience::new());
    assert_eq!(out.dropped, vec![slot]);
    shared.finish(out);
    match c.get(&key).unwrap() {
        Some(stored) => match stored.value {
            Value::Bytes(b) => assert_eq!(b, value),
            Value::Local(_) => panic!("a file store holds bytes"),
        },
        None => panic!("the live object lost its value"),
    }
    assert!(c.exists(&key).unwrap());
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

/// A process that registers as a dead process's record repairs it: an
/// object the dead process was creating is removed (its files too) and
/// its slot freed, not left `Creating` under the new owner of the
/// record, where no reclaim would ever find it.
#[test]
#[cfg_attr(
    miri,
    ignore = "opens a real store: file mappings and locks, which Miri cannot run"
)]
fn registering_as_a_dead_record_removes_what_it_was_creating() {
    if crate::sync::LOOM {
        return;
    }
    let dir = dir("reg");
    let c = FileConnector::open("reg", &dir).unwrap();
    let shared = c.inner.shared.clone();
    let table = shared.table();
    assert_eq!(shared.me(), None);
    // Record 0 is a dead process's: live in the table, its lock free.
    assert!(table.claim_record(0, 1, 1000, now_ms()));
    let key = Key::random();
    let (slot, epoch, _) = table.create(key, Init::Plain, 0, now_ms(), 0, 0).unwrap();
    let place = Place { slot, epoch };
    c.inner
        .write_side(&key, place, &ObjectMeta::default(), Some(b"value"))
        .unwrap();
    let me = c.inner.me().unwrap();
    assert_eq!(me, 0, "the dead record is taken over");
    let phase = table.slot(slot, S_PHASE).unwrap();
    assert_eq!(phase_of(phase.load(Ordering::Acquire)), FREE);
    assert!(!c.inner.side_path(&key).exists());
    c.put(
        &key,
        Value::Bytes(bytes::Bytes::from_static(b"again")),
        Init::Plain,
    )
    .unwrap();
    assert!(c.exists(&key).unwrap());
    drop(c);
    let _ = fs::remove_dir_all(&dir);
}

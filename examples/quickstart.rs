//! A tour of borrowstore on the embedded in-memory store.
//!
//! Run with `cargo run --release --example quickstart`.
//!
//! It walks through one object's life: an owner; four shared borrows, all
//! taken on the main thread and then read on four threads (each thread
//! reads one borrow through a reference; the borrows stay on the main
//! thread, which drops them); a writer that is refused while they exist; a
//! writer that updates; and an eviction that waits for the last borrow after
//! the owner is gone. Every step prints what the store itself records for
//! the object.

use std::thread;

use borrowstore::{Error, OwnedProxy, RefProxy, Store, borrow, mut_borrow, update};

/// One line describing what the store records for `key` right now.
fn store_side(store: &Store, key: &borrowstore::Key) -> String {
    match store.inspect(key) {
        Ok(Some(i)) => format!(
            "stored (version {}), owner proxy: {}, readers: {}, writer: {}",
            i.version,
            if i.owner { "yes" } else { "no" },
            i.readers,
            if i.writer { "yes" } else { "no" },
        ),
        Ok(None) => "not stored (evicted)".to_owned(),
        Err(e) => format!("cannot inspect: {e}"),
    }
}

fn main() -> Result<(), Error> {
    let store = Store::memory("quickstart");
    println!(
        "borrowstore quickstart — store {:?} at {}\n",
        store.name(),
        store.url()
    );

    // 1. An owner. The store keeps the value; the owner proxy is its only owner.
    let owner: OwnedProxy<Vec<u64>> = store.owned_proxy((1..=5).collect())?;
    let key = *OwnedProxy::key(&owner);
    println!("1. owned_proxy stored {:?} under key {key}", *owner);
    println!("   store: {}\n", store_side(&store, &key));

    // 2. Four shared borrows, taken here on the main thread; the store counts
    //    them. Then four scoped threads each read one of them through a
    //    reference: the RefProxy values stay on this thread, which drops them.
    println!("2. four shared borrows taken on the main thread, each read on a thread of its own:");
    let readers: Vec<RefProxy<Vec<u64>>> =
        (0..4).map(|_| borrow(&owner)).collect::<Result<_, _>>()?;
    println!("   store: {}", store_side(&store, &key));
    let sums: Vec<u64> = thread::scope(|s| {
        let handles: Vec<_> = readers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                s.spawn(move || {
                    let sum: u64 = r.iter().sum();
                    println!(
                        "   reader {i} on {:?} sums to {sum}",
                        thread::current().id()
                    );
                    sum
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .collect()
    });
    let first = RefProxy::shared(&readers[0])?;
    let all_share = readers
        .iter()
        .all(|r| RefProxy::shared(r).is_ok_and(|v| std::sync::Arc::ptr_eq(v, first)));
    println!("   all readers share one value in memory (no copy per borrow): {all_share}");
    assert!(sums.iter().all(|&s| s == 15));

    // 3. A writer is refused while anyone reads: many readers OR one writer.
    match mut_borrow(&owner) {
        Err(e @ Error::AlreadyBorrowed { .. }) => {
            println!("\n3. mut_borrow while 4 readers exist is refused: {e}")
        }
        Ok(_) => unreachable!("a writer beside readers would break the rules"),
        Err(e) => return Err(e),
    }
    drop(readers);
    println!(
        "   the readers are dropped; store: {}",
        store_side(&store, &key)
    );

    // 4. Now a writer gets in; while it exists, readers are refused.
    let mut writer = mut_borrow(&owner)?;
    println!(
        "\n4. mut_borrow succeeds; store: {}",
        store_side(&store, &key)
    );
    if let Err(e) = borrow(&owner) {
        println!("   borrow while the writer exists is refused: {e}");
    }
    writer.push(6);
    println!(
        "   the writer changed its copy to {:?}; readers elsewhere would still see version 1",
        *writer
    );
    update(&mut writer)?;
    println!(
        "   update() published it; store: {}",
        store_side(&store, &key)
    );
    drop(writer);
    let after = borrow(&owner)?;
    println!("   a new reader sees {:?}", *after);

    // 5. The owner goes away while a borrow is still alive: references are always
    //    valid, so eviction waits for the last borrow.
    drop(owner);
    println!("\n5. the owner is dropped while one reader remains");
    println!("   store: {}", store_side(&store, &key));
    println!("   the reader still reads {:?}", *after);
    drop(after);
    println!(
        "   the last reader is dropped; store: {}",
        store_side(&store, &key)
    );
    assert!(!store.exists(&key)?);

    println!("\nDone: {} objects left in the store.", store.keys()?.len());
    Ok(())
}

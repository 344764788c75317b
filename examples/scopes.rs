//! Liveness scopes and peer scopes, after Deephaven.
//!
//! Run with `cargo run --example scopes`.
//!
//! 1. Deephaven's tree-table flow: a one-shot scope builds a source table,
//!    filters it and builds a tree from it; only the tree is preserved (into
//!    the enclosing scope), the intermediate tables are released with the
//!    scope.
//! 2. QueryScope's "one inner scope per letter" loop: an outer scope holds
//!    a table for the whole run; each letter gets its own inner scope for
//!    the tables derived from it, released at the end of that iteration.
//!
//! After every step the example prints what the store itself holds: each
//! object, and how many scopes (holders) own it.

use std::collections::HashMap;
use std::sync::Mutex;

use borrowstore::{Error, Key, LivenessScope, Proxy, Store, liveness_scope};

/// A table: rows of (id, parent, word).
type Table = Vec<(u32, Option<u32>, String)>;

/// A tree table: each node with its children.
type Tree = Vec<(u32, Vec<u32>)>;

/// Names of the objects, for printing.
static NAMES: Mutex<Option<HashMap<Key, String>>> = Mutex::new(None);

fn name(key: Key, name: &str) {
    NAMES
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(key, name.to_owned());
}

fn named<T: borrowstore::Storable>(p: Proxy<T>, label: &str) -> Proxy<T> {
    name(*Proxy::key(&p), label);
    p
}

/// Prints what the store holds right now.
fn show(store: &Store, when: &str) -> Result<(), Error> {
    store.flush()?;
    let names = NAMES.lock().unwrap();
    let mut rows: Vec<String> = store
        .keys()?
        .into_iter()
        .map(|k| {
            let holders = store.inspect(&k).ok().flatten().map_or(0, |i| i.holders);
            let label = names
                .as_ref()
                .and_then(|n| n.get(&k).cloned())
                .unwrap_or_else(|| k.to_string());
            format!("{label} (held by {holders})")
        })
        .collect();
    rows.sort();
    if rows.is_empty() {
        println!("  {when:<44} store: (empty)");
    } else {
        println!("  {when:<44} store: {}", rows.join(", "));
    }
    Ok(())
}

fn source_table(n: u32) -> Table {
    let words = [
        "apple",
        "banana",
        "cherry",
        "avocado",
        "blueberry",
        "citrus",
    ];
    (0..n)
        .map(|i| {
            let parent = if i == 0 { None } else { Some(i / 4) };
            (i, parent, words[i as usize % words.len()].to_owned())
        })
        .collect()
}

fn tree_of(table: &Table) -> Tree {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (id, parent, _) in table {
        children.entry(*id).or_default();
        if let Some(p) = parent {
            children.entry(*p).or_default().push(*id);
        }
    }
    let mut tree: Tree = children.into_iter().collect();
    tree.sort();
    tree
}

/// Deephaven's tree-table flow.
fn tree_table_flow(store: &Store) -> Result<(), Error> {
    println!("1. Deephaven tree table: only the tree outlives its scope");
    let app = LivenessScope::new();
    let tree = app.open(|| {
        liveness_scope(|scope| -> Result<Proxy<Tree>, Error> {
            let source = named(store.proxy(source_table(20))?, "source");
            let filtered: Table = source.iter().filter(|r| r.0 % 5 != 3).cloned().collect();
            let filtered = named(store.proxy(filtered)?, "filtered");
            let tree = named(store.proxy(tree_of(&filtered))?, "tree");
            show(store, "inside the scope:")?;
            scope.preserve(&tree)?; // handed to `app`
            Ok(tree)
        })?
    })?;
    show(store, "after the scope (tree preserved):")?;
    let root_children = &tree.iter().find(|(id, _)| *id == 0).unwrap().1;
    println!("  the tree's root has children {root_children:?}");
    app.release()?;
    show(store, "after the application scope:")?;
    Ok(())
}

/// QueryScope: one inner scope per letter, peers of the outer scope.
fn one_scope_per_letter(store: &Store) -> Result<(), Error> {
    println!("\n2. QueryScope: one inner scope per letter");
    let outer = LivenessScope::new();
    let words = outer.open(|| store.proxy(source_table(12)).map(|p| named(p, "words")))?;
    show(store, "outer scope holds the words:")?;
    for letter in ['a', 'b', 'c'] {
        let inner = LivenessScope::new();
        inner.open(|| -> Result<(), Error> {
            let matching: Table = words
                .iter()
                .filter(|r| r.2.starts_with(letter))
                .cloned()
                .collect();
            let count = matching.len();
            let filtered = named(store.proxy(matching)?, &format!("words-{letter}"));
            named(store.proxy(count)?, &format!("count-{letter}"));
            // The inner scope shares the outer table too: a peer holder.
            inner.manage(&words)?;
            show(
                store,
                &format!("letter {letter:?} ({} words):", filtered.len()),
            )?;
            Ok(())
        })?;
        inner.release()?;
        show(store, &format!("after releasing scope {letter:?}:"))?;
    }
    outer.release()?;
    show(store, "after releasing the outer scope:")?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let store = Store::memory("scopes-example");
    tree_table_flow(&store)?;
    one_scope_per_letter(&store)?;
    Ok(())
}

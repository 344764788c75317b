//! The crate's layout rules, checked on its sources.
//!
//! - the loom switch (`cfg(borrowstore_loom)`) appears only under `src/sync/`;
//! - no file of `src/` is longer than 600 lines;
//! - no two files of `src/` import each other, directly or through others
//!   (`error.rs` and `key.rs`, which everything uses, are left out).
//!
//! Imports are read from `use` items and from inline `crate::` / `super::`
//! paths; a path names the deepest module file it reaches, so an item that a
//! `mod.rs` re-exports counts as an import of that `mod.rs`, and the
//! re-export as an import of the file that defines the item. Unit-test
//! modules (`#[cfg(test)] mod …`) are left out: they may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;
/// Files every layer may use; edges into them are not part of the graph.
const SHARED: &[&str] = &["error.rs", "key.rs"];

fn src_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &mut out);
    out.sort();
    out
}

/// A file's path relative to `src/`, with `/` separators.
fn rel(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    path.strip_prefix(&root)
        .expect("under src")
        .to_string_lossy()
        .replace('\\', "/")
}

/// The module path of a file: `lib.rs` → [], `a.rs` and `a/mod.rs` → [a].
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    let last = parts.pop().expect("file name");
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        other => parts.push(other.trim_end_matches(".rs").to_owned()),
    }
    parts
}

/// The source without comments and without trailing unit-test modules.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// A path the code names that may reach another file of the crate, as a
/// list of segments (still relative where it starts with `super`, `self`
/// or a child module's name), and the name it is re-exported under when it
/// is a leaf of a `pub use`.
struct Named {
    path: Vec<String>,
    reexport_as: Option<String>,
}

/// Every path the code names: `use` trees expanded to their leaves, and
/// inline `crate::` / `super::` paths.
fn paths_of(code: &str) -> Vec<Named> {
    let mut out = Vec::new();
    // `use` items (possibly spanning lines).
    let mut rest = code;
    while let Some(i) = find_word(rest, "use") {
        let before = rest[..i].trim_end();
        let public = before.ends_with("pub")
            || (before.ends_with(')')
                && before
                    .rfind("pub(")
                    .is_some_and(|p| !before[p..].contains(';')));
        let after = &rest[i + 3..];
        let Some(end) = after.find(';') else { break };
        let tree = after[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut leaves = Vec::new();
        expand_tree(&tree, &mut Vec::new(), &mut leaves);
        for (path, alias) in leaves {
            let reexport_as = if public {
                alias.or_else(|| path.last().cloned())
            } else {
                None
            };
            out.push(Named { path, reexport_as });
        }
        rest = &after[end..];
    }
    // Inline paths.
    for anchor in ["crate::", "super::"] {
        let mut rest = code;
        while let Some(i) = rest.find(anchor) {
            let before = rest[..i].chars().last();
            let start = &rest[i..];
            rest = &rest[i + anchor.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<String> = start
                .split("::")
                .map(|seg| {
                    seg.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|s| !s.is_empty())
                .collect();
            out.push(Named {
                path,
                reexport_as: None,
            });
        }
    }
    out
}

/// The position of `word` as a whole word followed by white space.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        let before = text[..at].chars().last();
        let after = text[at + word.len()..].chars().next();
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if starts && after.is_some_and(char::is_whitespace) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// Expands a `use` tree (white space folded) into its leaf paths, each with
/// its `as` alias.
fn expand_tree(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim().trim_start_matches("::");
    if let Some(open) = tree.find('{') {
        let head = &tree[..open];
        let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let pushed = push_segments(head, prefix);
        for part in split_top(body) {
            expand_tree(part, prefix, out);
        }
        prefix.truncate(prefix.len() - pushed);
    } else {
        let mut parts = tree.split(" as ");
        let leaf = parts.next().unwrap_or(tree);
        let alias = parts.next().map(|a| a.trim().to_owned());
        let pushed = push_segments(leaf, prefix);
        out.push((prefix.clone(), alias));
        prefix.truncate(prefix.len() - pushed);
    }
}

fn push_segments(path: &str, prefix: &mut Vec<String>) -> usize {
    let segs: Vec<String> = path
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "*")
        .map(str::to_owned)
        .collect();
    let n = segs.len();
    prefix.extend(segs);
    n
}

/// Splits a brace body at its top-level commas.
fn split_top(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Where each file's `pub use` items lead: file → (name → defining file).
type Reexports = BTreeMap<String, BTreeMap<String, String>>;

/// The file a path reaches, from the file whose module is `here`; an item
/// that the reached file only re-exports leads on to the file it comes from.
fn resolve(
    path: &[String],
    here: &[String],
    files: &BTreeMap<Vec<String>, String>,
    reexports: &Reexports,
) -> Option<String> {
    let mut abs: Vec<String> = here.to_vec();
    let mut segs = path.iter().peekable();
    match segs.peek().map(|s| s.as_str()) {
        Some("crate") => {
            abs.clear();
            segs.next();
        }
        Some("super") => {
            while segs.peek().map(|s| s.as_str()) == Some("super") {
                abs.pop();
                segs.next();
            }
        }
        Some("self") => {
            segs.next();
        }
        Some(first) => {
            // A child module of this one, or an outside crate.
            let mut child = here.to_vec();
            child.push(first.to_owned());
            if !files.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    let mut best = files.get(&abs).cloned();
    for seg in segs {
        abs.push(seg.clone());
        if let Some(f) = files.get(&abs) {
            best = Some(f.clone());
            continue;
        }
        // An item: follow its re-exports (a few hops at most).
        for _ in 0..4 {
            match best
                .as_ref()
                .and_then(|f| reexports.get(f))
                .and_then(|m| m.get(seg))
            {
                Some(next) if Some(next) != best.as_ref() => best = Some(next.clone()),
                _ => break,
            }
        }
        break;
    }
    best
}

/// The import graph of `src/`: file → files it imports. A `pub use` is a
/// re-export, not an import: whoever names the item through it imports the
/// file that defines it.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let paths = src_files();
    let files: BTreeMap<Vec<String>, String> =
        paths.iter().map(|p| (module_of(&rel(p)), rel(p))).collect();
    let named: Vec<(String, Vec<String>, Vec<Named>)> = paths
        .iter()
        .map(|p| {
            let me = rel(p);
            let here = module_of(&me);
            let code = code_of(&fs::read_to_string(p).expect("read source"));
            (me, here, paths_of(&code))
        })
        .collect();
    // Re-exports, resolved again until chains of them settle.
    let mut reexports = Reexports::new();
    for _ in 0..4 {
        let mut next = Reexports::new();
        for (me, here, names) in &named {
            for n in names {
                if let Some(alias) = &n.reexport_as
                    && let Some(target) = resolve(&n.path, here, &files, &reexports)
                    && &target != me
                {
                    next.entry(me.clone())
                        .or_default()
                        .insert(alias.clone(), target);
                }
            }
        }
        reexports = next;
    }
    let mut graph = BTreeMap::new();
    for (me, here, names) in &named {
        let mut deps = BTreeSet::new();
        for n in names.iter().filter(|n| n.reexport_as.is_none()) {
            if let Some(target) = resolve(&n.path, here, &files, &reexports)
                && &target != me
                && target != "lib.rs"
                && !SHARED.contains(&target.as_str())
            {
                deps.insert(target);
            }
        }
        graph.insert(me.clone(), deps);
    }
    graph
}

/// The strongly connected components of more than one file (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                loop {
                    let w = self.stack.pop().expect("on stack");
                    self.on_stack.remove(w);
                    scc.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.found.push(scc);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn the_loom_switch_lives_only_in_the_sync_module() {
    let offenders: Vec<String> = src_files()
        .iter()
        .filter(|p| !rel(p).starts_with("sync/"))
        .filter(|p| {
            fs::read_to_string(p)
                .expect("read source")
                .contains("borrowstore_loom")
        })
        .map(|p| rel(p))
        .collect();
    assert!(
        offenders.is_empty(),
        "`borrowstore_loom` outside src/sync/: {offenders:?}"
    );
}

#[test]
fn no_source_file_is_over_600_lines() {
    let long: Vec<(String, usize)> = src_files()
        .iter()
        .map(|p| {
            let n = fs::read_to_string(p).expect("read source").lines().count();
            (rel(p), n)
        })
        .filter(|(_, n)| *n > MAX_LINES)
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines: {long:?}");
}

#[test]
fn no_two_source_files_import_each_other() {
    let graph = graph();
    let found = cycles(&graph);
    let explain: Vec<String> = found
        .iter()
        .map(|scc| {
            let edges: Vec<String> = scc
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| scc.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            edges.join(", ")
        })
        .collect();
    assert!(found.is_empty(), "import circles: {explain:#?}");
}

/// The checker itself: a circle it must see, and a chain it must not.
#[test]
fn the_circle_check_sees_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("a.rs".into(), ["b.rs".to_owned()].into());
    g.insert("b.rs".into(), ["c.rs".to_owned()].into());
    g.insert("c.rs".into(), ["a.rs".to_owned()].into());
    g.insert("d.rs".into(), ["a.rs".to_owned()].into());
    assert_eq!(cycles(&g), vec![vec!["a.rs", "b.rs", "c.rs"]]);
    g.insert("c.rs".into(), BTreeSet::new());
    assert!(cycles(&g).is_empty());
}

#[test]
fn use_trees_expand_to_their_leaves() {
    let code =
        "pub use crate::a::{b::{C, D}, e};\nuse super::f::G as H;\nfn x() { crate::z::y(); }\n";
    let got: Vec<(Vec<String>, Option<String>)> = paths_of(code)
        .into_iter()
        .map(|n| (n.path, n.reexport_as))
        .collect();
    let seg = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let want = [
        (seg(&["crate", "a", "b", "C"]), Some("C".to_owned())),
        (seg(&["crate", "a", "b", "D"]), Some("D".to_owned())),
        (seg(&["crate", "a", "e"]), Some("e".to_owned())),
        (seg(&["super", "f", "G"]), None),
        (seg(&["crate", "z", "y"]), None),
    ];
    for w in &want {
        assert!(got.contains(w), "missing {w:?} in {got:?}");
    }
}

#!/usr/bin/env bash
# Counts the public functions of borrowstore that have a rustdoc example,
# per type, trait and module, from rustdoc's JSON output (needs a nightly
# toolchain). `--show-coverage` does not count the methods of types that
# are defined in private modules and re-exported (Store, the proxies, the
# tickets …); this does.
#
# Usage: scripts/doc-examples.sh [--require NAME,NAME,…]
#   NAME is a type, trait or module path as printed (for example
#   borrowstore::store::Store, or "borrowstore (free fns)"); with
#   --require, the script fails if one of them has a function without an
#   example.
set -euo pipefail
cd "$(dirname "$0")/.."
require=""
if [ "${1:-}" = "--require" ]; then require="${2:?--require needs a list}"; fi
cargo +nightly rustdoc -q -p borrowstore --all-features -- -Z unstable-options --output-format json
python3 - "${CARGO_TARGET_DIR:-target}/doc/borrowstore.json" "$require" <<'PY'
import json, re, sys

path, require = sys.argv[1], [r for r in sys.argv[2].split(',') if r]
doc = json.load(open(path))
index, paths = doc['index'], doc['paths']

def has_example(item):
    # A fence rustdoc runs or compiles as Rust.
    for m in re.finditer(r'^\s*```([^\n]*)$', item.get('docs') or '', re.M):
        info = [w for w in re.split(r'[\s,]+', m.group(1).strip()) if w]
        if not info or all(w in ('rust', 'no_run', 'should_panic', 'standalone_crate',
                                 'compile_fail', 'ignore') or w.startswith('edition')
                           for w in info):
            return True
    return False

def hidden(item):
    return any('hidden' in str(a) for a in item.get('attrs', []))

def name_of(item_id):
    p = paths.get(str(item_id))
    return '::'.join(p['path']) if p else None

rows = {}
def add(owner, item):
    if owner and not hidden(item) and '::sealed::' not in owner:
        rows.setdefault(owner, {})
        rows[owner][item['name']] = rows[owner].get(item['name'], False) or has_example(item)

def fns(ids, public_only=True):
    for i in ids:
        it = index.get(str(i))
        if it and 'function' in it['inner'] and (not public_only or it['visibility'] == 'public'):
            yield it

for key, item in index.items():
    if item.get('crate_id') != 0:
        continue
    inner = item['inner']
    if 'impl' in inner:
        imp = inner['impl']
        if imp.get('trait') is not None or imp.get('is_synthetic') or imp.get('blanket_impl'):
            continue
        target = imp['for'].get('resolved_path')
        for f in fns(imp['items']):
            add(target and name_of(target['id']), f)
    elif 'trait' in inner:
        for f in fns(inner['trait']['items'], public_only=False):
            add(name_of(key), f)
    elif 'module' in inner:
        module = name_of(key)
        for f in fns(inner['module']['items']):
            add(f'{module} (free fns)', f)
        if module == 'borrowstore':  # the crate root re-exports its free functions
            for i in inner['module']['items']:
                use = index.get(str(i), {}).get('inner', {}).get('use')
                target = use and use.get('id') is not None and index.get(str(use['id']))
                if target and 'function' in target['inner']:
                    add('borrowstore (free fns)', target)

total = with_example = 0
failed = []
for owner in sorted(rows):
    names = rows[owner]
    n = sum(names.values())
    total += len(names)
    with_example += n
    missing = sorted(k for k, v in names.items() if not v)
    print(f"{owner:60} {n:3}/{len(names):3}" + (f"  no example: {', '.join(missing)}" if missing else ''))
    if owner in require and missing:
        failed.append(owner)
print(f"{'public functions with an example':60} {with_example:3}/{total:3}  ({100 * with_example / total:.1f} %)")
unknown = [r for r in require if r not in rows]
if unknown or failed:
    for r in unknown:
        print(f"doc-examples: no such type, trait or module: {r}", file=sys.stderr)
    for r in failed:
        print(f"doc-examples: {r} has public functions without an example", file=sys.stderr)
    sys.exit(1)
PY

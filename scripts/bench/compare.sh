#!/usr/bin/env bash
# Compares the memory-store rows of the benchmark harness between a base
# revision and the working tree, in one run that builds both:
#
#   ./scripts/bench/compare.sh [BASE_REV] [ROUNDS]    # defaults: 00c0eca, 6
#
# 00c0eca is main before the object and claim metadata (issue "See who
# holds what"), the reference of its "within 10 %" rows.
#
# Both sides are built the same way: release, fat LTO, one codegen unit
# (set through CARGO_PROFILE_RELEASE_*, so any revision builds so). With
# the default 16 codegen units, where the compiler splits the crate decides
# what is inlined into the borrow loop, and builds whose borrow path is the
# same code differed by up to 37 % on `borrow` + drop; with one unit and
# LTO that placement is no longer left to chance. The base is built from a
# temporary git worktree; both into target/compare/. The two harnesses then
# run alternately, ROUNDS times each (`bench-harness --only memory`, the
# same workloads as ./scripts/bench.sh), and the table gives each row's
# minimum and median over the rounds and head ÷ base.
#
# Needs git, a Rust toolchain and python3.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BASE=${1:-00c0eca}
ROUNDS=${2:-6}
WORK=$ROOT/target/compare
mkdir -p "$WORK"

export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

TREE=$(mktemp -d "$WORK/base-tree.XXXXXX")
cleanup() {
  git -C "$ROOT" worktree remove --force "$TREE" 2>/dev/null || rm -rf "$TREE"
}
trap cleanup EXIT

echo "== build: base $BASE and the working tree (release, fat LTO, 1 codegen unit)"
git -C "$ROOT" worktree add --detach "$TREE" "$BASE" >/dev/null
(cd "$TREE" && cargo build --release -p borrowstore-bench-harness \
  --target-dir "$WORK/base-target") >"$WORK/base-build.log" 2>&1 ||
  { tail -n 30 "$WORK/base-build.log"; echo "compare.sh: the base build failed" >&2; exit 1; }
cargo build --release -p borrowstore-bench-harness --target-dir "$WORK/head-target" \
  >"$WORK/head-build.log" 2>&1 ||
  { tail -n 30 "$WORK/head-build.log"; echo "compare.sh: the head build failed" >&2; exit 1; }
cp "$WORK/base-target/release/bench-harness" "$WORK/bench-harness-base"
cp "$WORK/head-target/release/bench-harness" "$WORK/bench-harness-head"

echo "== run: $ROUNDS alternating rounds of each (bench-harness --only memory)"
rm -f "$WORK"/base.jsonl "$WORK"/head.jsonl
for i in $(seq 1 "$ROUNDS"); do
  "$WORK/bench-harness-base" --only memory >>"$WORK/base.jsonl" 2>/dev/null
  "$WORK/bench-harness-head" --only memory >>"$WORK/head.jsonl" 2>/dev/null
  echo "   round $i of $ROUNDS done"
done

echo "== results: ns per operation, base $BASE against $(git -C "$ROOT" rev-parse --short HEAD) with the working tree"
python3 - "$WORK/base.jsonl" "$WORK/head.jsonl" <<'EOF'
import json, statistics, sys

def load(path):
    rows = {}
    for line in open(path):
        r = json.loads(line)
        if r.get("store") == "memory" and r.get("metric") == "ns_per_op":
            rows.setdefault(r["workload"], []).append(r["value"])
    return rows

base, head = load(sys.argv[1]), load(sys.argv[2])
print(f"{'workload':<26} {'base min':>9} {'base med':>9} {'head min':>9} {'head med':>9} {'head/base (min)':>16}")
for w in base:
    if w not in head:
        continue
    b, h = base[w], head[w]
    print(f"{w:<26} {min(b):>9.1f} {statistics.median(b):>9.1f} {min(h):>9.1f} "
          f"{statistics.median(h):>9.1f} {min(h) / min(b):>15.3f}x")
EOF

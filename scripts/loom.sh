#!/usr/bin/env bash
# Model-checks borrowstore's concurrency with loom (see loom-tests/).
#
# Builds the crate with `--cfg borrowstore_loom` (loom's atomics and locks
# replace std's in src/sync/) in its own target directory, so it never
# invalidates the normal build, and runs every model in loom-tests/tests/,
# then the crate's own unit tests under the same cfg: among them the models
# that need crate-private items (src/sync/models.rs).
#
# Usage: scripts/loom.sh [extra cargo test args, e.g. a test name filter]
# Environment: LOOM_MAX_PREEMPTIONS (default 2); any other LOOM_* variable
# (LOOM_LOG, LOOM_LOCATION, LOOM_CHECKPOINT_FILE, ...) is passed through.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg borrowstore_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-$root/target-loom}"

start=$SECONDS
cargo test -p borrowstore-loom-tests --release "$@"
cargo test -p borrowstore --lib --release "$@"
echo "loom: all models passed in $((SECONDS - start)) s (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"

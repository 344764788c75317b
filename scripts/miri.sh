#!/usr/bin/env bash
# Runs borrowstore's memory-store tests under Miri (undefined-behaviour
# checks for the crate and the dependencies it drives), when a nightly
# toolchain with the miri component is installed; otherwise skips, exit 0.
#
# What runs:
#   1. the library's unit tests (codec, keys, state machine, URLs), minus the
#      two that take minutes under Miri and hold no memory-store code:
#      key::tests::claim_ids_are_unique_across_threads (280k ids on 4 threads)
#      and state::tests::ledger_keeps_the_invariants (a pure-logic proptest;
#      checked natively and by the loom models); tests that are too slow
#      under Miri for what it would check there are marked
#      `#[cfg_attr(miri, ignore = "…")]` where they are written;
#   2. the conformance suite against the memory store (tests/memory_store.rs).
#      Set MIRI_LIB_ONLY=1 to skip it.
#
# Each step is bounded (MIRI_STEP_SECS, default 900 s): a test that has
# become slow under Miri fails the run with its name instead of holding it
# until the CI job's own limit.
#
# Property tests run PROPTEST_CASES=4 cases (override in the environment).
# Isolation is off (-Zmiri-disable-isolation): proptest reads its regression
# files and the conformance suite reads the real-time clock.
#
# Usage: scripts/miri.sh         (from any directory)
# Environment: MIRI_TOOLCHAIN (default nightly), MIRIFLAGS, PROPTEST_CASES,
# MIRI_LIB_ONLY, MIRI_STEP_SECS.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

toolchain="${MIRI_TOOLCHAIN:-nightly}"
if ! cargo "+$toolchain" miri --version >/dev/null 2>&1; then
    echo "miri not available; skipping"
    exit 0
fi
# The first run builds Miri's sysroot (needs rust-src); if that cannot be
# done here, Miri is not usable either.
if ! cargo "+$toolchain" miri setup >/dev/null 2>&1; then
    echo "miri not available (cargo +$toolchain miri setup failed); skipping"
    exit 0
fi

export PROPTEST_CASES="${PROPTEST_CASES:-4}"
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"

start=$SECONDS
step_secs="${MIRI_STEP_SECS:-900}"

# Runs one step within step_secs; on a timeout names the test that was
# running (the last one libtest announced without a result).
bounded() {
    local name=$1 log
    shift
    log=$(mktemp)
    set +e
    timeout --foreground -k 10 "$step_secs" "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "miri: $name did not finish within ${step_secs} s;" \
            "still running: $(grep -E '^test .* \.\.\. *$' "$log" | tail -1)" >&2
    fi
    rm -f "$log"
    return "$rc"
}

echo "==> miri: library unit tests"
bounded "the library unit tests" cargo "+$toolchain" miri test -p borrowstore --lib -- \
    --test-threads=1 \
    --skip key::tests::claim_ids_are_unique_across_threads \
    --skip state::tests::ledger_keeps_the_invariants

if [ "${MIRI_LIB_ONLY:-0}" != 1 ] && [ -f tests/memory_store.rs ]; then
    echo "==> miri: memory-store conformance suite"
    bounded "the memory-store conformance suite" \
        cargo "+$toolchain" miri test -p borrowstore --test memory_store -- --test-threads=1
fi

echo "miri: passed in $((SECONDS - start)) s"

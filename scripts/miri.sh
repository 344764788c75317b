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
#      checked natively and by the loom models);
#   2. the conformance suite against the memory store (tests/memory_store.rs).
#      Set MIRI_LIB_ONLY=1 to skip it.
#
# Property tests run PROPTEST_CASES=4 cases (override in the environment).
# Isolation is off (-Zmiri-disable-isolation): proptest reads its regression
# files and the conformance suite reads the real-time clock.
#
# Usage: scripts/miri.sh         (from any directory)
# Environment: MIRI_TOOLCHAIN (default nightly), MIRIFLAGS, PROPTEST_CASES,
# MIRI_LIB_ONLY.
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

echo "==> miri: library unit tests"
cargo "+$toolchain" miri test -p borrowstore --lib -- \
    --skip key::tests::claim_ids_are_unique_across_threads \
    --skip state::tests::ledger_keeps_the_invariants

if [ "${MIRI_LIB_ONLY:-0}" != 1 ] && [ -f tests/memory_store.rs ]; then
    echo "==> miri: memory-store conformance suite"
    cargo "+$toolchain" miri test -p borrowstore --test memory_store
fi

echo "miri: passed in $((SECONDS - start)) s"

#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for RUNS executions each.
#
#   scripts/fuzz.sh [RUNS] [TARGET...]      (default: 1000000, every target)
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Not called from CI: a full run takes minutes per target.
#
# Seeds made by this build (the fuzz crate's `seeds` binary) go into fuzz/corpus/,
# which libFuzzer grows; crashes land in fuzz/artifacts/<target>/ (both are
# gitignored). Reproduce a crash with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…
# and minimize it with `cargo +nightly fuzz tmin TARGET fuzz/artifacts/TARGET/crash-…`.
#
# Invariant checks that hit a known, reported bug can be let through with
# BORROWSTORE_FUZZ_TOLERATE=name[,name…] (names: burnt-ticket, leaked-object;
# see fuzz/src/lib.rs), so a run can go on past it.
#
# File stores named by fuzz inputs live only under $TMPDIR/borrowstore-fuzz-sandbox
# (the harness refuses every other file URL and every network scheme); it is
# removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-1000000}"
[[ $# -gt 0 ]] && shift
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(decode_blob proxy_bytes ticket_bytes)
fi

if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi

sandbox="${TMPDIR:-/tmp}/borrowstore-fuzz-sandbox"
trap 'rm -rf "$sandbox"' EXIT

cargo +nightly run --quiet --manifest-path fuzz/Cargo.toml --bin seeds -- fuzz/corpus

status=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t.log"
    echo "== $t: $runs runs (log: $log)"
    # File stores opened by proxy and ticket inputs start a lease renewer
    # thread that lives on (asleep) for up to a third of the lease after the
    # store is dropped; LeakSanitizer's per-input check reports its state as
    # leaked. Real leaks still show as growing RSS (-rss_limit_mb).
    extra=()
    case "$t" in
        proxy_bytes | ticket_bytes) extra=(-detect_leaks=0) ;;
    esac
    start=$(date +%s)
    if cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -runs="$runs" -print_final_stats=1 "${extra[@]}" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
        grep -E 'panicked|invariant|Test unit written' "$log" | head -5 || true
    fi
    secs=$(( $(date +%s) - start ))
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1 || true)
    summary+=("$t: $result, ${execs:-?} executions in ${secs}s")
    echo "   ${summary[-1]}"
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
exit "$status"

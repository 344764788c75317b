#!/usr/bin/env bash
# Runs every check borrowstore has: formatting, clippy, a build without the
# default features (no Redis), the whole test suite (memory, file and Redis
# stores; the workspace includes the conformance suite's crate, testkit/),
# doc tests, the README snippets as programs of their own, the loom
# models, and miri when a nightly toolchain with miri is installed.
#
# Usage: ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Redis tests start their own redis-server on a free loopback port; make sure
# the binary exists.
if ! command -v redis-server >/dev/null 2>&1; then
    step "installing redis-server"
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
        # The package starts a system service on the default port; the tests
        # never use it, so stop it where that is possible.
        $SUDO service redis-server stop >/dev/null 2>&1 || true
    else
        echo "redis-server is missing and apt-get is not available; install Redis and retry" >&2
        exit 1
    fi
fi
redis-server --version
# The Redis Cluster and TLS tests also drive `redis-cli` (cluster create,
# failovers) and need a redis-server built with TLS (Debian's is).
if ! command -v redis-cli >/dev/null 2>&1; then
    step "installing redis-cli"
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-tools >/dev/null
fi

# The Redis lease tests run a child process with its clock set off through
# libfaketime (the `faketime` package); they fail, not skip, without it.
if ! ls /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1 >/dev/null 2>&1 \
    && [ -z "${BORROWSTORE_LIBFAKETIME:-}" ]; then
    step "installing faketime"
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    if command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq faketime >/dev/null \
            || { $SUDO apt-get update -qq \
                 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq faketime >/dev/null; }
    else
        echo "libfaketime is missing and apt-get is not available; install faketime (or set BORROWSTORE_LIBFAKETIME) and retry" >&2
        exit 1
    fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

# The crate without its default features is the memory + file crate: it must
# build, and the Redis client must not be in its dependency tree.
step "cargo build --no-default-features (no redis crate in the tree)"
cargo build --no-default-features -p borrowstore
tree="$(cargo tree --no-default-features -e normal -p borrowstore --prefix none -f '{p}')"
if grep -Eq '^redis[ -]' <<<"$tree"; then
    echo "borrowstore without default features still depends on a redis crate:" >&2
    grep -E '^redis[ -]' <<<"$tree" >&2
    exit 1
fi

step "cargo test (unit, integration, doc tests)"
cargo test --workspace --all-features

step "README snippets, each built as a program of its own"
./scripts/readme-snippets.sh

step "cargo doc (warnings are errors), the crate and its testkit"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p borrowstore -p borrowstore-testkit --all-features

step "loom models"
./scripts/loom.sh

step "miri"
./scripts/miri.sh

step "all checks passed"

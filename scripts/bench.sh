#!/usr/bin/env bash
# Benchmarks borrowstore side by side with ProxyStore 1.1, raw Redis and
# plain Rust, and prints one table (see BENCHMARKS.md).
#
#   ./scripts/bench.sh            # the full run; output also in benchmarks/latest.txt
#   ./scripts/bench.sh --quick    # a smoke run (short rounds, small counts);
#                                 # output in target/bench/quick.txt
#
# Needs only a Rust toolchain and python3. It creates a virtualenv in
# target/bench-venv with proxystore==1.1.0 and redis from PyPI, installs
# redis-server with apt-get if it is missing, and starts its own
# redis-server on a free loopback port (no persistence), stopped on exit.
#
# Knobs (environment): BENCH_LIVE (1000000) and BENCH_PS_LIVE (200000)
# live objects; BENCH_CYCLES (1000000) / BENCH_CHECKPOINT (100000) submit
# cycles for borrowstore, BENCH_PS_CYCLES (100000) / BENCH_PS_CHECKPOINT
# (10000) for ProxyStore; BENCH_HELD (1000) cycles of the
# borrow-held-after-join check.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$ROOT/target/bench
VENV=$ROOT/target/bench-venv
mkdir -p "$WORK" "$ROOT/benchmarks"

QUICK=
case "${1:-}" in
  "") ;;
  --quick) QUICK=--quick ;;
  -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

if [[ -n $QUICK ]]; then
  OUT=$WORK/quick.txt
  LIVE=${BENCH_LIVE:-100000}; PS_LIVE=${BENCH_PS_LIVE:-20000}
  CYCLES=${BENCH_CYCLES:-100000}; CHECKPOINT=${BENCH_CHECKPOINT:-10000}
  PS_CYCLES=${BENCH_PS_CYCLES:-5000}; PS_CHECKPOINT=${BENCH_PS_CHECKPOINT:-500}
  HELD=${BENCH_HELD:-200}
else
  OUT=$ROOT/benchmarks/latest.txt
  LIVE=${BENCH_LIVE:-1000000}; PS_LIVE=${BENCH_PS_LIVE:-200000}
  CYCLES=${BENCH_CYCLES:-1000000}; CHECKPOINT=${BENCH_CHECKPOINT:-100000}
  PS_CYCLES=${BENCH_PS_CYCLES:-100000}; PS_CHECKPOINT=${BENCH_PS_CHECKPOINT:-10000}
  HELD=${BENCH_HELD:-1000}
fi

# Everything from here on goes to the terminal and to $OUT.
exec > >(tee "$OUT") 2>&1
START=$(date +%s)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "bench.sh: need root for: $*" >&2; return 1
  fi
}

apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

REDIS_PID=
cleanup() {
  if [[ -n $REDIS_PID ]]; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK/tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== borrowstore benchmarks: ./scripts/bench.sh $QUICK"

# --- tools -----------------------------------------------------------------
command -v cargo >/dev/null || { echo "bench.sh: cargo not found (install a Rust toolchain)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench.sh: python3 not found" >&2; exit 1; }
if ! command -v redis-server >/dev/null; then
  echo "-- installing redis-server (apt-get)"
  apt_install redis-server
fi
if [[ ! -x $VENV/bin/python ]]; then
  echo "-- creating $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    PYV=$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    echo "-- installing python3-venv (apt-get)"
    apt_install "python$PYV-venv" || apt_install python3-venv
    python3 -m venv "$VENV"
  fi
fi
if ! "$VENV/bin/python" -c 'import proxystore, redis, sys; sys.exit(proxystore.__version__ != "1.1.0")' 2>/dev/null; then
  echo "-- pip install proxystore==1.1.0 redis"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check proxystore==1.1.0 redis
fi

# --- the machine -------------------------------------------------------------
cpu_model() {
  if command -v lscpu >/dev/null; then
    lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1
  else
    sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1
  fi
}
echo
echo "== machine"
echo "date:         $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:       $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- . ':!benchmarks/latest.txt' 2>/dev/null || echo ' (with uncommitted changes)')"
echo "nproc:        $(nproc)"
echo "cpu:          $(cpu_model)"
echo "memory:       $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "os:           $( (. /etc/os-release && echo "$PRETTY_NAME") 2>/dev/null || uname -s), kernel $(uname -r)"
echo "rustc:        $(rustc -V)"
echo "python:       $("$VENV/bin/python" -V 2>&1)"
echo "proxystore:   $("$VENV/bin/python" -c 'import proxystore; print(proxystore.__version__)'), redis-py $("$VENV/bin/python" -c 'import redis; print(redis.__version__)')"
echo "redis-server: $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
echo "counts:       live objects $LIVE (ProxyStore $PS_LIVE); submit cycles $CYCLES, checkpoint $CHECKPOINT (ProxyStore $PS_CYCLES, $PS_CHECKPOINT); held check $HELD"

# --- redis-server -----------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no --logfile "$WORK/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
  if "$VENV/bin/python" -c "import redis; redis.Redis(port=$PORT).ping()" 2>/dev/null; then break; fi
  sleep 0.1
done
"$VENV/bin/python" -c "import redis; redis.Redis(port=$PORT).ping()" \
  || { echo "bench.sh: redis-server did not start (see $WORK/redis.log)" >&2; exit 1; }
echo "redis:        127.0.0.1:$PORT (pid $REDIS_PID, no persistence)"

# --- build -------------------------------------------------------------------
echo
echo "== build (cargo build --release -p borrowstore-bench-harness; log in target/bench/build.log)"
if ! cargo build --release -p borrowstore-bench-harness >"$WORK/build.log" 2>&1; then
  tail -n 40 "$WORK/build.log"
  echo "bench.sh: build failed" >&2
  exit 1
fi
HARNESS=$TARGET_DIR/release/bench-harness
rm -rf "$WORK/tmp" && mkdir -p "$WORK/tmp"

# --- run ---------------------------------------------------------------------
echo
echo "== borrowstore (bench-harness; results in target/bench/rust.jsonl)"
"$HARNESS" ${QUICK:+"$QUICK"} --redis "redis://127.0.0.1:$PORT/0" --file-dir "$WORK/tmp" \
  --live "$LIVE" --cycles "$CYCLES" --checkpoint "$CHECKPOINT" --held "$HELD" \
  >"$WORK/rust.jsonl"

echo
echo "== ProxyStore 1.1 (scripts/bench/ps_workloads.py; results in target/bench/ps.jsonl)"
"$VENV/bin/python" "$ROOT/scripts/bench/ps_workloads.py" ${QUICK:+"$QUICK"} --redis-port "$PORT" \
  --file-dir "$WORK/tmp" --live "$PS_LIVE" --cycles "$PS_CYCLES" \
  --checkpoint "$PS_CHECKPOINT" --held "$HELD" >"$WORK/ps.jsonl"

# --- the table ---------------------------------------------------------------
echo
echo "== results"
echo
STATUS=0
"$VENV/bin/python" "$ROOT/scripts/bench/table.py" "$WORK/rust.jsonl" "$WORK/ps.jsonl" || STATUS=$?
echo
echo "== raw results (one JSON object per line)"
echo "-- borrowstore and Rust references"
cat "$WORK/rust.jsonl"
echo "-- ProxyStore and Python references"
cat "$WORK/ps.jsonl"
echo
echo "== done in $(( $(date +%s) - START )) s; output in ${OUT#"$ROOT"/}"
exit "$STATUS"

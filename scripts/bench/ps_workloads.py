#!/usr/bin/env python3
"""The ProxyStore 1.1 side of ./scripts/bench.sh.

Runs the workloads of DESIGN.md's "Performance targets" on ProxyStore
(``proxystore.store.Store`` with its LocalConnector, FileConnector and
RedisConnector; ``proxystore.store.ref`` for owned proxies and borrows;
``proxystore.store.scopes.submit`` for tasks) and a few plain-Python
references (``ThreadPoolExecutor.submit``, redis-py commands), and prints
one JSON object per line on stdout, in the same shape as the Rust harness
(``bench-harness``): workload, store, impl, metric, value, unit, n, extra,
notes. Progress goes to stderr.

    python ps_workloads.py [--quick] [--redis-port PORT] [--file-dir DIR]
                           [--only GROUP,...] [--live N] [--cycles N]
                           [--checkpoint N] [--value-bytes N] [--tasks N]
                           [--held N]

Groups: memory, submit, file, redis, footprint. The memory workloads
(footprint) each run in a fresh child process (``... child NAME``) so their
RSS readings are their own; the children leave with ``os._exit`` because
ProxyStore's atexit finalizers are quadratic in the number of live proxies.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any
from typing import Callable

from proxystore.connectors.file import FileConnector
from proxystore.connectors.local import LocalConnector
from proxystore.connectors.redis import RedisConnector
from proxystore.proxy import extract
from proxystore.store import Store
from proxystore.store.ref import borrow
from proxystore.store.ref import mut_borrow
from proxystore.store.scopes import submit

LIVE_BORROWS = 16_384
COLD_CHUNK = 1 << 14
MIB = 1024 * 1024
_KEEP: list[Any] = []


@dataclass(frozen=True)
class Budget:
    """Target length of one timed round (ns) and the number of rounds."""

    round_ns: int
    rounds: int


FULL = Budget(round_ns=200_000_000, rounds=5)
QUICK = Budget(round_ns=20_000_000, rounds=3)


def emit(
    workload: str,
    store: str,
    impl: str,
    metric: str,
    value: float,
    unit: str,
    n: int,
    notes: str,
    **extra: Any,
) -> None:
    """Print one result as one JSON line."""
    record: dict[str, Any] = {
        'workload': workload,
        'store': store,
        'impl': impl,
        'metric': metric,
        'value': value if math.isfinite(value) else None,
        'unit': unit,
        'n': n,
    }
    if extra:
        record['extra'] = extra
    record['notes'] = notes
    print(json.dumps(record), flush=True)


def time_it(budget: Budget, run: Callable[[int], int]) -> tuple[float, float, int]:
    """Time ``run(n)`` (n operations, returns the ns they took).

    Doubles n until one call takes a tenth of a round, sizes n for one
    round, then runs the rounds with the cyclic GC off (as ``timeit``
    does). Returns (median ns/op, fastest ns/op, n).
    """
    floor = budget.round_ns // 10
    n = 1
    took = run(n)
    while took < floor and n < (1 << 30):
        n *= 2
        took = run(n)
    per_op = took / n
    iters = max(1, min(1 << 30, int(budget.round_ns / max(per_op, 0.1))))
    samples = []
    for _ in range(max(1, budget.rounds)):
        gc.collect()
        gc.disable()
        try:
            samples.append(run(iters) / iters)
        finally:
            gc.enable()
    samples.sort()
    return samples[len(samples) // 2], samples[0], iters


def loop(op: Callable[[], Any]) -> Callable[[int], int]:
    """A ``run(n)`` for ``time_it`` that calls ``op`` n times."""

    def run(n: int) -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            op()
        return time.perf_counter_ns() - start

    return run


def emit_time(
    workload: str,
    store: str,
    impl: str,
    t: tuple[float, float, int],
    notes: str,
) -> None:
    median, fastest, n = t
    print(
        f'  {workload:<34} {store:<7} {impl:<12} {median:>12.1f} ns/op',
        file=sys.stderr,
        flush=True,
    )
    emit(workload, store, impl, 'ns_per_op', median, 'ns', n, notes, min_ns=fastest)


# --- per-operation workloads of one store --------------------------------


def small_value_set(store: Store[Any], label: str, budget: Budget) -> None:
    """owned_proxy create + drop, borrow + drop (and with 16 k live borrows
    on the local store), mut_borrow + drop, resolve cold and cached, of a
    small int, with the store's default settings."""
    impl = 'proxystore'

    def create_drop(n: int) -> int:
        start = time.perf_counter_ns()
        for i in range(n):
            p = store.owned_proxy(i)
            del p
        return time.perf_counter_ns() - start

    emit_time(
        'owned_proxy_create_drop',
        label,
        impl,
        time_it(budget, create_drop),
        'store.owned_proxy(int) + del (the finalizer evicts)',
    )

    owner = store.owned_proxy(42)

    def borrow_drop() -> None:
        r = borrow(owner)
        del r

    emit_time(
        'borrow_drop',
        label,
        impl,
        time_it(budget, loop(borrow_drop)),
        'borrow(owner) + del: a counter on the owner object, no store access',
    )
    if label == 'memory':
        live = [borrow(owner) for _ in range(LIVE_BORROWS)]
        emit_time(
            'borrow_drop_live16k',
            label,
            impl,
            time_it(budget, loop(borrow_drop)),
            f'borrow(owner) + del while {LIVE_BORROWS} other borrows are live '
            '(each del runs atexit.unregister, linear in live proxies)',
        )
        del live

    def mut_borrow_drop() -> None:
        w = mut_borrow(owner)
        del w

    emit_time(
        'mut_borrow_drop',
        label,
        impl,
        time_it(budget, loop(mut_borrow_drop)),
        'mut_borrow(owner) + del',
    )
    del owner

    key = store.put(42)

    def cold(n: int) -> int:
        took = 0
        left = n
        while left > 0:
            chunk = min(left, COLD_CHUNK)
            left -= chunk
            fresh = [store.proxy_from_key(key) for _ in range(chunk)]
            start = time.perf_counter_ns()
            for p in fresh:
                extract(p)
            took += time.perf_counter_ns() - start
            del fresh
        return took

    emit_time(
        'resolve_cold',
        label,
        impl,
        time_it(budget, cold),
        'extract() of a fresh store.proxy_from_key proxy (made untimed); '
        "the store's default LRU cache (16 objects) holds the value, so no "
        'connector read',
    )
    cached = store.proxy_from_key(key)
    extract(cached)
    emit_time(
        'resolve_cached',
        label,
        impl,
        time_it(budget, loop(lambda: extract(cached))),
        'extract() of a proxy already resolved',
    )
    del cached
    store.evict(key)


# --- submit ---------------------------------------------------------------


def read(x: Any) -> Any:
    return x + 0


def submit_set(budget: Budget) -> None:
    store = Store('ps-bench-submit', LocalConnector(), register=True)
    owner = store.owned_proxy(42)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:

        def with_borrow() -> None:
            submit(pool.submit, args=(read, borrow(owner))).result()

        emit_time(
            'submit_borrow_join_mt',
            'memory',
            'proxystore',
            time_it(budget, loop(with_borrow)),
            'scopes.submit(pool.submit, args=(f, borrow(owner))).result() on a '
            '1-thread ThreadPoolExecutor',
        )
        emit_time(
            'spawn_join_mt',
            '-',
            'reference',
            time_it(budget, loop(lambda: pool.submit(read, 42).result())),
            'ThreadPoolExecutor(1).submit(f, 42).result()',
        )
    del owner


# --- Redis references -----------------------------------------------------


def redis_set(store: Store[Any], port: int, budget: Budget) -> None:
    import redis

    client = redis.StrictRedis(host='127.0.0.1', port=port)
    value = bytes(i % 251 for i in range(1024))
    raw_key = f'ps-bench:raw:{os.getpid()}'
    client.set(raw_key, value)
    emit_time(
        'raw_get_1k',
        'redis',
        'reference',
        time_it(budget, loop(lambda: client.get(raw_key))),
        'redis-py GET of a 1 KiB value (one round trip)',
    )

    def set_del() -> None:
        client.set(raw_key + ':tmp', 42)
        client.delete(raw_key + ':tmp')

    emit_time(
        'raw_set_del',
        'redis',
        'reference',
        time_it(budget, loop(set_del)),
        'redis-py SET + DEL of a small value',
    )
    client.delete(raw_key)

    owner = store.owned_proxy(value)

    def borrow_resolve() -> None:
        r = borrow(owner)
        len(extract(r))
        del r

    emit_time(
        'borrow_resolve_1k',
        'redis',
        'proxystore',
        time_it(budget, loop(borrow_resolve)),
        'borrow(owner) + extract + del of 1 KiB bytes: the borrow copies the '
        "owner's resolved target, so no Redis round trip (borrow state is "
        'process-local)',
    )
    del owner


# --- memory workloads, each in a child process ----------------------------


def status_bytes(field: str) -> int:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss() -> int:
    return status_bytes('VmRSS')


def peak_rss() -> int:
    return status_bytes('VmHWM')


def reset_peak_rss() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def child_peak(size: int, tasks: int) -> None:
    store = Store('ps-bench-peak', LocalConnector(), register=True)
    warm = store.owned_proxy(b'\x01' * 16)
    del warm
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    pool.submit(read, 1).result()

    before = rss()
    reset = reset_peak_rss()
    hwm_before = peak_rss()
    owner = store.owned_proxy(b'\x01' * size)
    # Every borrow is made before the first task starts: all live at once.
    refs = [borrow(owner) for _ in range(tasks)]

    def task(r: Any, i: int) -> int:
        return r[(i * 99_991) % len(r)] + len(r)

    futures = [
        submit(pool.submit, args=(task, r, i)) for i, r in enumerate(refs)
    ]
    del refs
    total = sum(f.result() for f in futures)
    pool.shutdown(wait=True)
    peak = peak_rss()
    del futures
    del owner
    left = len(store.connector._store)
    delta = max(0, peak - before)
    ratio = delta / size
    print(
        f'  peak_rss_100mb_1000_tasks              memory  proxystore   '
        f'{ratio:>9.3f} x value ({delta / MIB:.1f} MiB over baseline)',
        file=sys.stderr,
    )
    emit(
        'peak_rss_100mb_1000_tasks',
        'memory',
        'proxystore',
        'peak_rss_ratio',
        ratio,
        'x',
        tasks,
        f'fresh process: (VmHWM after - VmRSS before) / value size; a '
        f'{size}-byte bytes owned_proxy on a LocalConnector store, {tasks} '
        'borrows (all live at once) passed with scopes.submit to a 2-thread '
        'ThreadPoolExecutor, each task reads it',
        value_bytes=size,
        rss_before=before,
        hwm_before=hwm_before,
        hwm_reset=reset,
        peak_rss=peak,
        peak_delta=delta,
        keys_left_after_drop=left,
        checksum=total,
    )


def child_live(n: int) -> None:
    store = Store('ps-bench-live', LocalConnector(), register=True)
    warm = store.owned_proxy(0)
    del warm
    gc.collect()
    before = rss()
    start = time.perf_counter_ns()
    owners = [store.owned_proxy(i) for i in range(n)]
    took = time.perf_counter_ns() - start
    gc.collect()
    after = rss()
    per_object = (after - before) / n
    overhead = per_object - 8 - 8
    keys = len(store.connector._store)
    print(
        f'  live_objects                           memory  proxystore   '
        f'{overhead:>9.1f} B/object store overhead ({per_object:.1f} B total)',
        file=sys.stderr,
    )
    emit(
        'live_objects',
        'memory',
        'proxystore',
        'bytes_per_object',
        overhead,
        'B',
        n,
        f'fresh process: {n} OwnedProxy(int) on a LocalConnector store kept in '
        'a list; (VmRSS after - before) / n - 8 B payload - 8 B list slot',
        rss_before=before,
        rss_after=after,
        total_bytes_per_object=per_object,
        keys_in_store=keys,
        ns_per_create=took / n,
    )
    # Never dropped: the child leaves with os._exit (dropping n owners runs
    # n atexit.unregister calls, each linear in the live proxies).
    _KEEP.append(owners)


def child_cycles(n: int, checkpoint: int) -> None:
    store = Store('ps-bench-cycles', LocalConnector(), register=True)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    rss_checkpoint = 0
    keys_checkpoint = 0
    start = time.perf_counter_ns()
    for i in range(n):
        owner = store.owned_proxy(i)
        r = borrow(owner)
        fut = submit(pool.submit, args=(read, r))
        del r, owner
        fut.result()
        del fut
        if i + 1 == checkpoint:
            rss_checkpoint = rss()
            keys_checkpoint = len(store.connector._store)
    pool.shutdown(wait=True)
    took = time.perf_counter_ns() - start
    gc.collect()
    keys_left = len(store.connector._store)
    rss_end = rss()
    growth = rss_end - rss_checkpoint
    print(
        f'  submit_cycles                          memory  proxystore   '
        f'{keys_left} keys left, RSS growth {growth / MIB:.2f} MiB from cycle '
        f'{checkpoint} to {n}',
        file=sys.stderr,
    )
    notes = (
        f'fresh process, 1-thread ThreadPoolExecutor: {n} x (owned_proxy(int), '
        'borrow, scopes.submit a task with the borrow, del the owner, result); '
        f'keys in the LocalConnector after the last cycle; VmRSS after cycle '
        f'{checkpoint} and after cycle {n}'
    )
    emit(
        'submit_cycles_keys_left',
        'memory',
        'proxystore',
        'keys_left',
        keys_left,
        'count',
        n,
        notes,
        keys_at_checkpoint=keys_checkpoint,
        ns_per_cycle=took / n,
    )
    emit(
        'submit_cycles_rss_growth',
        'memory',
        'proxystore',
        'rss_growth_bytes',
        growth,
        'B',
        n,
        notes,
        checkpoint=checkpoint,
        rss_checkpoint=rss_checkpoint,
        rss_end=rss_end,
    )


def child_held(n: int, kind: str, file_dir: str) -> None:
    """Whether a task's borrow is still counted once its result is in:
    n x (owned_proxy, borrow, scopes.submit, del the borrow, result(),
    then try mut_borrow(owner)). On a ProcessPoolExecutor the borrow is
    pickled, which invalidates it, so scopes.submit's callback skips it and
    it stays counted until the future itself is garbage collected; on a
    ThreadPoolExecutor the callback can run after result() returns."""
    directory = tempfile.mkdtemp(prefix='ps-bench-held-', dir=file_dir)
    if kind == 'process':
        store = Store('ps-bench-held', FileConnector(directory), register=True)
        pool: concurrent.futures.Executor = (
            concurrent.futures.ProcessPoolExecutor(max_workers=2)
        )
        label = 'file'
    else:
        store = Store('ps-bench-held', LocalConnector(), register=True)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        label = 'memory'
    held = 0
    keys = []
    with pool:
        for i in range(n):
            owner = store.owned_proxy(i)
            keys.append(owner.__proxy_factory__.key)
            r = borrow(owner)
            fut = submit(pool.submit, args=(read, r))
            del r
            fut.result()
            try:
                w = mut_borrow(owner)
                del w
            except Exception:
                held += 1
            del fut, owner
    gc.collect()
    left = sum(1 for k in keys if store.exists(k))
    print(
        f'  borrow_held_after_join ({kind} pool)  {label:<7} proxystore   '
        f'{held} of {n} borrows still held after result(); {left} objects left',
        file=sys.stderr,
    )
    emit(
        f'borrow_held_after_join_{kind}',
        label,
        'proxystore',
        'count',
        held,
        'count',
        n,
        f'{n} x (owned_proxy, borrow, scopes.submit to a 2-worker {kind} pool, '
        'del the borrow, result(), then mut_borrow(owner)): cycles where '
        'mut_borrow was refused because the task\'s borrow was still counted',
        keys_left_at_end=left,
    )
    shutil.rmtree(directory, ignore_errors=True)


def run_child(argv: list[str]) -> None:
    name = argv[0]
    try:
        if name == 'peak':
            child_peak(int(argv[1]), int(argv[2]))
        elif name == 'live':
            child_live(int(argv[1]))
        elif name == 'cycles':
            child_cycles(int(argv[1]), int(argv[2]))
        elif name == 'held':
            child_held(int(argv[1]), argv[2], argv[3])
        else:
            raise SystemExit(f'unknown child {name!r}')
    except BaseException as e:
        print(f'ps_workloads child {name}: {e!r}', file=sys.stderr)
        sys.stdout.flush()
        os._exit(1)
    # Skip ProxyStore's atexit finalizers: quadratic in live proxies.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def child(group: str, args: list[str]) -> None:
    cmd = [sys.executable, os.path.abspath(__file__), 'child', *args]
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0:
        error(group, f'child {args} exited with {rc}')


def error(group: str, message: str) -> None:
    print(f'ps_workloads: {group} FAILED: {message}', file=sys.stderr)
    emit(group, '-', 'proxystore', 'error', float('nan'), '-', 0, message)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == 'child':
        run_child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--redis-port', type=int)
    ap.add_argument('--file-dir', default=tempfile.gettempdir())
    ap.add_argument('--only')
    ap.add_argument('--live', type=int, default=1_000_000)
    ap.add_argument('--cycles', type=int, default=100_000)
    ap.add_argument('--checkpoint', type=int, default=10_000)
    ap.add_argument('--value-bytes', type=int, default=100_000_000)
    ap.add_argument('--tasks', type=int, default=1_000)
    ap.add_argument('--held', type=int, default=1_000)
    o = ap.parse_args()
    budget = QUICK if o.quick else FULL
    only = set(o.only.split(',')) if o.only else None
    file_dir = os.path.abspath(o.file_dir)

    def group(name: str, f: Callable[[], None]) -> None:
        if only is not None and name not in only:
            return
        print(f'ps_workloads: {name}', file=sys.stderr, flush=True)
        try:
            f()
        except Exception as e:  # one group failing must not stop the others
            error(name, repr(e))

    def memory() -> None:
        store = Store('ps-bench-local', LocalConnector(), register=True)
        small_value_set(store, 'memory', budget)

    def file() -> None:
        directory = tempfile.mkdtemp(prefix='ps-bench-file-', dir=file_dir)
        store = Store('ps-bench-file', FileConnector(directory), register=True)
        try:
            small_value_set(store, 'file', budget)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def redis_group() -> None:
        store = Store(
            'ps-bench-redis',
            RedisConnector('127.0.0.1', o.redis_port),
            register=True,
        )
        small_value_set(store, 'redis', budget)
        redis_set(store, o.redis_port, budget)

    def footprint() -> None:
        child('footprint', ['peak', str(o.value_bytes), str(o.tasks)])
        child('footprint', ['live', str(o.live)])
        checkpoint = min(o.checkpoint, o.cycles)
        child('footprint', ['cycles', str(o.cycles), str(checkpoint)])
        for kind in ('thread', 'process'):
            child('footprint', ['held', str(o.held), kind, file_dir])

    group('memory', memory)
    group('submit', lambda: submit_set(budget))
    group('file', file)
    if o.redis_port:
        group('redis', redis_group)
    else:
        print('ps_workloads: redis skipped (no --redis-port)', file=sys.stderr)
    group('footprint', footprint)


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""Prints the one table of ./scripts/bench.sh from the two result files.

    python table.py RUST.jsonl PROXYSTORE.jsonl

Each file holds one JSON object per line (``bench-harness`` and
``ps_workloads.py``): workload, store, impl, metric, value, unit, n, extra,
notes. The table is Markdown: workload, ProxyStore 1.1, borrowstore, ratio
(ProxyStore ÷ borrowstore: how many times more time or memory ProxyStore
takes), the DESIGN.md target, and whether borrowstore meets it. Physical
references (plain Rust or plain Python doing the same kind of work) are
rows of their own, in italics.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Any
from typing import Callable

Data = dict[tuple[str, str], dict[str, Any]]

RSS_FLAT_BYTES = 2 * 1024 * 1024
FLAT_FACTOR = 1.25


def load(path: str) -> tuple[Data, list[dict[str, Any]]]:
    data: Data = {}
    errors = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith('{'):
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get('metric') == 'error':
                    errors.append(rec)
                    continue
                data[(rec['workload'], rec['store'])] = rec
    except OSError as e:
        errors.append({'workload': path, 'notes': str(e)})
    return data, errors


def value(rec: dict[str, Any] | None) -> float | None:
    if rec is None:
        return None
    v = rec.get('value')
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return float(v)


def fmt_ns(ns: float) -> str:
    for unit, scale in (('s', 1e9), ('ms', 1e6), ('µs', 1e3)):
        if ns >= scale:
            return f'{ns / scale:.3g} {unit}'
    return f'{ns:.3g} ns'


def fmt_bytes(b: float) -> str:
    sign = '-' if b < 0 else ''
    b = abs(b)
    for unit, scale in (('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if b >= scale:
            return f'{sign}{b / scale:.3g} {unit}'
    return f'{sign}{b:.0f} B'


def fmt_count(n: float) -> str:
    n = int(n)
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f'{n // 1_000_000}M'
    if n >= 1_000 and n % 1_000 == 0:
        return f'{n // 1_000}k'
    return f'{n:,}'


def fmt(rec: dict[str, Any] | None) -> str:
    v = value(rec)
    if rec is None or v is None:
        return 'n/a'
    metric = rec['metric']
    n = rec.get('n', 0)
    if metric == 'ns_per_op':
        return fmt_ns(v)
    if metric == 'bytes_per_object':
        return f'{v:.0f} B (N={fmt_count(n)})'
    if metric == 'peak_rss_ratio':
        return f'{v:.2f}× value'
    if metric == 'rss_growth_bytes':
        return f'{fmt_bytes(v)} (N={fmt_count(n)})'
    if metric == 'keys_left':
        return f'{int(v):,} left of {fmt_count(n)}'
    if metric == 'count':
        return f'{int(v):,} of {fmt_count(n)}'
    if metric == 'ops_per_sec':
        threads = rec.get('extra', {}).get('threads', '?')
        return f'{v / 1e6:.1f} M/s ({threads} threads)'
    return f'{v:g} {rec.get("unit", "")}'


RATIO_METRICS = {'ns_per_op', 'bytes_per_object', 'peak_rss_ratio'}


def ratio(ps: dict[str, Any] | None, bs: dict[str, Any] | None) -> str:
    a, b = value(ps), value(bs)
    if a is None or b is None or b <= 0 or ps is None:
        return ''
    if ps['metric'] not in RATIO_METRICS:
        return ''
    r = a / b
    if r >= 100:
        return f'{r:,.0f}×'
    return f'{r:.3g}×'


Check = Callable[[Data], tuple[bool | None, str] | None]


def at_most(key: tuple[str, str], limit: float, unit: str = 'ns') -> Check:
    def check(bs: Data) -> tuple[bool, str] | None:
        v = value(bs.get(key))
        if v is None:
            return None
        if unit == 'ns':
            shown = fmt_ns(v)
        elif unit == '×':
            shown = f'{v:.3g}× value'
        else:
            shown = f'{v:.3g} {unit}'
        return v <= limit, shown

    return check


def relative(key: tuple[str, str], ref: tuple[str, str], limit: float | None,
             name: str) -> Check:
    """`key` against `ref`: within `limit` times it, or (no limit) the
    ratio alone, shown and not counted as a target."""
    def check(bs: Data) -> tuple[bool | None, str] | None:
        v, r = value(bs.get(key)), value(bs.get(ref))
        if v is None or r is None or r <= 0:
            return None
        return (None if limit is None else v / r <= limit), f'{v / r:.2f}× {name}'

    return check


def flat_borrow(bs: Data) -> tuple[bool, str] | None:
    live = value(bs.get(('borrow_drop_live16k', 'memory')))
    none = value(bs.get(('borrow_drop', 'memory')))
    if live is None or none is None or none <= 0:
        return None
    r = live / none
    return live <= 20 and r <= FLAT_FACTOR, f'{fmt_ns(live)}, {r:.2f}× the 0-live figure'


def concurrent_one(bs: Data) -> tuple[bool, str] | None:
    v = value(bs.get(('concurrent_borrow_one_object', M)))
    r = value(bs.get(('concurrent_read_guard_one_lock', '-')))
    if v is None or r is None or r <= 0:
        return None
    return v / r >= 0.5, f'{v / r:.2f}× the guards of one lock'


def efficiency(bs: Data, many: tuple[str, str], one: tuple[str, str]) -> float | None:
    """Throughput of the threads on their own objects (or locks), as a share
    of the threads' count times one thread's (from the single-thread row)."""
    rec, ns = bs.get(many), value(bs.get(one))
    v = value(rec)
    if rec is None or v is None or ns is None or ns <= 0:
        return None
    threads = rec.get('extra', {}).get('threads', 1) or 1
    return v / (threads * 1e9 / ns)


def concurrent_own(bs: Data) -> tuple[bool, str] | None:
    b = efficiency(bs, ('concurrent_borrow_own_objects', M), ('borrow_drop', M))
    r = efficiency(bs, ('concurrent_read_guard_own_locks', '-'), ('rwlock_read_guard', '-'))
    if b is None or r is None or r <= 0:
        return None
    return b >= 0.8 * r, f'scales {b:.2f} of linear, locks {r:.2f}'


def redis_get(bs: Data) -> tuple[bool, str] | None:
    v = value(bs.get(('borrow_resolve_1k', 'redis')))
    sync = value(bs.get(('raw_get_1k', 'redis')))
    asyn = value(bs.get(('raw_get_1k_async', 'redis')))
    if v is None or sync is None or sync <= 0:
        return None
    text = f'{v / sync:.2f}× sync GET'
    if asyn:
        text += f', {v / asyn:.2f}× async GET'
    return v / sync <= 1.2, text


def zero(key: tuple[str, str], what: str) -> Check:
    def check(bs: Data) -> tuple[bool, str] | None:
        v = value(bs.get(key))
        if v is None:
            return None
        return v == 0, f'{int(v)} {what}'

    return check


def rss_flat(bs: Data) -> tuple[bool, str] | None:
    rec = bs.get(('submit_cycles_rss_growth', 'memory'))
    v = value(rec)
    if v is None or rec is None:
        return None
    cp = rec.get('extra', {}).get('checkpoint', 0)
    return v <= RSS_FLAT_BYTES, f'{fmt_bytes(v)} from cycle {fmt_count(cp)} to {fmt_count(rec["n"])}'


@dataclass
class Row:
    label: str
    ps: tuple[str, str] | None
    bs: tuple[str, str] | None
    target: str = ''
    check: Check | None = None
    reference: bool = False


@dataclass
class Section:
    title: str


M = 'memory'
ROWS: list[Row | Section] = [
    Section('memory store (ProxyStore: LocalConnector)'),
    Row('`owned_proxy` create + drop, small value', ('owned_proxy_create_drop', M),
        ('owned_proxy_create_drop', M), '≤ 300 ns', at_most(('owned_proxy_create_drop', M), 300)),
    Row('`borrow` + drop', ('borrow_drop', M), ('borrow_drop', M), '≤ 20 ns',
        at_most(('borrow_drop', M), 20)),
    Row('`borrow` + drop, 16,384 live borrows', ('borrow_drop_live16k', M),
        ('borrow_drop_live16k', M), '≤ 20 ns, flat', flat_borrow),
    Row('`mut_borrow` + drop', ('mut_borrow_drop', M), ('mut_borrow_drop', M)),
    Row('resolve a small proxy, cold', ('resolve_cold', M), ('resolve_cold', M), '≤ 300 ns',
        at_most(('resolve_cold', M), 300)),
    Row('resolve a small proxy, cached', ('resolve_cached', M), ('resolve_cached', M), '≤ 30 ns',
        at_most(('resolve_cached', M), 30)),
    Row('`Arc<RwLock<u64>>` read guard acquire + drop', None, ('rwlock_read_guard', '-'),
        reference=True),
    Row('`Arc<RwLock<u64>>` write guard acquire + drop', None, ('rwlock_write_guard', '-'),
        reference=True),
    Row('`Arc::new` + drop', None, ('arc_new_drop', '-'), reference=True),
    Row('DashMap `get_mut` increment + decrement', None, ('dashmap_get_mut_incr_decr', '-'),
        reference=True),
    Row('DashMap insert + remove', None, ('dashmap_insert_remove', '-'), reference=True),
    Row('DashMap get + `Arc` clone', None, ('dashmap_get_arc_clone', '-'), reference=True),
    Row('one thread per core borrowing one object: borrows per second', None,
        ('concurrent_borrow_one_object', M), '≥ 0.5× RwLock guards', concurrent_one),
    Row('the same threads taking read guards of one `Arc<RwLock<u64>>` (per second)', None,
        ('concurrent_read_guard_one_lock', '-'), reference=True),
    Row('one thread per core, each borrowing its own object: borrows per second', None,
        ('concurrent_borrow_own_objects', M), 'scales like locks', concurrent_own),
    Row('the same threads, each taking read guards of its own lock (per second)', None,
        ('concurrent_read_guard_own_locks', '-'), reference=True),
    Row('wake-up of a waiting `borrow_async`: release → grant', None, ('wake_handoff', M),
        '≤ 2× RwLock hand-off',
        relative(('wake_handoff', M), ('wake_handoff', '-'), 2.0, 'RwLock hand-off')),
    Row('`tokio::sync::RwLock` hand-off: write guard dropped → waiting `read()` holds', None,
        ('wake_handoff', '-'), reference=True),
    Section('submit (ProxyStore: `scopes.submit` on a `ThreadPoolExecutor`)'),
    Row('`submit` with one borrow + join, current-thread runtime', None,
        ('submit_borrow_join_ct', M), '≤ 1.3× spawn',
        relative(('submit_borrow_join_ct', M), ('spawn_join_ct', '-'), 1.3, 'spawn')),
    Row('`tokio::spawn` + join, current-thread runtime', None, ('spawn_join_ct', '-'),
        reference=True),
    Row('`submit` with one borrow + join, 2 workers', ('submit_borrow_join_mt', M),
        ('submit_borrow_join_mt', M), '≤ 1.3× spawn',
        relative(('submit_borrow_join_mt', M), ('spawn_join_mt', '-'), 1.3, 'spawn')),
    Row('`tokio::spawn` + join, 2 workers (PS: `ThreadPoolExecutor.submit` + result)',
        ('spawn_join_mt', '-'), ('spawn_join_mt', '-'), reference=True),
    Row('task borrows still held after the result is in (thread pool)',
        ('borrow_held_after_join_thread', M), ('borrow_held_after_join', M), '0',
        zero(('borrow_held_after_join', M), 'held')),
    Row('task borrows still held after the result is in (PS: process pool)',
        ('borrow_held_after_join_process', 'file'), None),
]

for store, ps_name in (('redis', 'RedisConnector'), ('file', 'FileConnector')):
    ROWS.append(Section(f'{store} store (ProxyStore: {ps_name})'))
    if store == 'redis':
        ROWS += [
            Row('`borrow` + resolve 1 KiB', ('borrow_resolve_1k', store),
                ('borrow_resolve_1k', store), '≤ 1.2× raw GET', redis_get),
            Row('raw GET 1 KiB (PS column: redis-py; borrowstore column: redis-rs sync)',
                ('raw_get_1k', store), ('raw_get_1k', store), reference=True),
            Row('raw GET 1 KiB, redis-rs multiplexed async', None, ('raw_get_1k_async', store),
                reference=True),
            Row('`borrow` + drop, 1 KiB (one round trip; the release rides the next borrow)',
                None, ('borrow_drop_1k', store), '≤ 1.2× raw GET',
                relative(('borrow_drop_1k', store), ('raw_get_1k', store), 1.2, 'sync GET')),
            Row('raw pipeline of the two script calls of a borrow + drop (redis-rs, EVALSHA)',
                None, ('raw_script_pair_1k', store), reference=True),
            Row('`borrow_async` + `resolve_async` 1 KiB', None,
                ('borrow_async_resolve_async_1k', store), '≤ 1.3× async GET',
                relative(('borrow_async_resolve_async_1k', store), ('raw_get_1k_async', store),
                         1.3, 'async GET')),
            Row('`Proxy::resolve_async` 1 KiB, value cached', None, ('resolve_async_1k', store),
                '≤ 1.3× async GET',
                relative(('resolve_async_1k', store), ('raw_get_1k_async', store), 1.3,
                         'async GET')),
            Row('`owned_proxy_async` + drop, 1 KiB', None, ('owned_proxy_async_1k', store),
                '≤ 1.3× async GET',
                relative(('owned_proxy_async_1k', store), ('raw_get_1k_async', store), 1.3,
                         'async GET')),
            Row('apalis job with one `RefProxy` borrow of 1 KiB: the worker\'s time per job '
                'on a backlog of 400 (until done and the borrow ended)', None,
                ('job_borrow_1k', store), '≤ 1.3× plain-argument job',
                relative(('job_borrow_1k', store), ('job_plain_1k', store), 1.3,
                         'plain-argument job')),
            Row('the same job with the 1 KiB value as a plain argument, same kind of worker',
                None,
                ('job_plain_1k', store), reference=True),
            Row('raw apalis-redis job of the 1 KiB value (no borrowstore), same kind of worker',
                None, ('job_raw_1k', store), reference=True),
            Row('the same jobs at 64 KiB: with a `RefProxy` borrow', None,
                ('job_borrow_64k', store), '',
                relative(('job_borrow_64k', store), ('job_plain_64k', store), None,
                         'plain-argument job')),
            Row('… with the 64 KiB value as a plain argument (apalis-redis JSON)', None,
                ('job_plain_64k', store), reference=True),
            Row('submitting one job, 1 KiB: `borrow_async` + `submit_job` (three round trips)',
                None, ('job_submit_borrow_1k', store), '',
                relative(('job_submit_borrow_1k', store), ('job_submit_plain_1k', store), None,
                         'plain-argument submit')),
            Row('submitting the same job with the 1 KiB value as a plain argument', None,
                ('job_submit_plain_1k', store), reference=True),
        ]
    if store == 'file':
        F = store
        ROWS += [
            Row('`owned_proxy` create + drop, small value', ('owned_proxy_create_drop', F),
                ('owned_proxy_create_drop', F), '≤ 2× raw write-then-rename',
                relative(('owned_proxy_create_drop', F), ('raw_write_rename', F), 2.0,
                         'raw write-then-rename')),
            Row('raw write-then-rename + remove of the same encoded bytes', None,
                ('raw_write_rename', F), reference=True),
            Row('`borrow` + drop', ('borrow_drop', F), ('borrow_drop', F), '≤ 3× memory store',
                relative(('borrow_drop', F), ('borrow_drop', M), 3.0, 'memory store')),
            Row('`borrow` + drop, 16,384 live borrows', None, ('borrow_drop_live16k', F),
                '≤ 3× memory store, flat',
                relative(('borrow_drop_live16k', F), ('borrow_drop', M), 3.0, 'memory store')),
            Row('`mut_borrow` + drop', ('mut_borrow_drop', F), ('mut_borrow_drop', F),
                '≤ 3× memory store',
                relative(('mut_borrow_drop', F), ('mut_borrow_drop', M), 3.0, 'memory store')),
            Row('reclaim after SIGKILL (lease 30 s): kill → waiting `mut_borrow_async` granted',
                None, ('reclaim_after_kill', F), '≤ 100 ms',
                at_most(('reclaim_after_kill', F), 100e6)),
            Row('100 MB `Blob`: first byte in another process after its borrow', None,
                ('blob_first_byte_other_process', F), '≤ 1 ms',
                at_most(('blob_first_byte_other_process', F), 1e6)),
            Row('100 MB `Blob` read by 8 processes: their Pss together', None,
                ('blob_8_readers_pss', F), '≤ 1.2× value',
                at_most(('blob_8_readers_pss', F), 1.2, '×')),
        ]
    ROWS += [
        Row('`owned_proxy` create + drop, small value', ('owned_proxy_create_drop', store),
            ('owned_proxy_create_drop', store)),
        Row('`borrow` + drop', ('borrow_drop', store), ('borrow_drop', store)),
        Row('`mut_borrow` + drop', ('mut_borrow_drop', store), ('mut_borrow_drop', store)),
    ] if store == 'redis' else []
    ROWS += [
        Row('resolve a small proxy, cold', ('resolve_cold', store), ('resolve_cold', store)),
        Row('resolve a small proxy, cached', ('resolve_cached', store), ('resolve_cached', store)),
        Row('wake-up of a waiting `borrow_async`: release → grant', None, ('wake_handoff', store)),
    ]
    if store == 'redis':
        ROWS.append(Row('raw SET + DEL, small value', ('raw_set_del', store),
                        ('raw_set_del', store), reference=True))

ROWS += [
    Section('memory (fresh child process per workload; RSS from /proc/self/status)'),
    Row('100 MB value borrowed by 1,000 tasks: peak RSS', ('peak_rss_100mb_1000_tasks', M),
        ('peak_rss_100mb_1000_tasks', M), '≤ 1.1× value',
        at_most(('peak_rss_100mb_1000_tasks', M), 1.1, '×')),
    Row('live objects: store overhead per object', ('live_objects', M), ('live_objects', M),
        '≤ 128 B', at_most(('live_objects', M), 128, 'B')),
    Row('`DashMap<u128, Arc<u64>>`: bytes per entry beyond the payload', None,
        ('live_objects', '-'), reference=True),
    Row('submit cycles: objects left in the store', ('submit_cycles_keys_left', M),
        ('submit_cycles_keys_left', M), '0', zero(('submit_cycles_keys_left', M), 'left')),
    Row('submit cycles: RSS growth after the checkpoint', ('submit_cycles_rss_growth', M),
        ('submit_cycles_rss_growth', M), f'flat (≤ {fmt_bytes(RSS_FLAT_BYTES)})', rss_flat),
]


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit('usage: table.py RUST.jsonl PROXYSTORE.jsonl')
    bs, bs_errors = load(sys.argv[1])
    ps, ps_errors = load(sys.argv[2])
    print('| workload | ProxyStore 1.1 | borrowstore | ratio | target | result |')
    print('|---|---:|---:|---:|---|---|')
    met = missed = unknown = 0
    for row in ROWS:
        if isinstance(row, Section):
            print(f'| **{row.title}** | | | | | |')
            continue
        ps_rec = ps.get(row.ps) if row.ps else None
        bs_rec = bs.get(row.bs) if row.bs else None
        label = f'*reference: {row.label}*' if row.reference else row.label
        ps_cell = fmt(ps_rec) if row.ps else '—'
        bs_cell = fmt(bs_rec) if row.bs else '—'
        result = ''
        if row.check is not None:
            outcome = row.check(bs)
            if outcome is None:
                result = 'not measured'
                unknown += 1
            elif outcome[0] is None:
                result = outcome[1]
            elif outcome[0]:
                result = f'met ({outcome[1]})'
                met += 1
            else:
                result = f'**missed** ({outcome[1]})'
                missed += 1
        print(
            f'| {label} | {ps_cell} | {bs_cell} | {ratio(ps_rec, bs_rec)} '
            f'| {row.target} | {result} |'
        )
    print()
    print(
        f'targets: {met} met, {missed} missed, {unknown} not measured. '
        'ratio = ProxyStore ÷ borrowstore (times, or bytes, per operation); '
        'times are the median of the timed rounds.'
    )
    for side, errors in (('borrowstore', bs_errors), ('ProxyStore', ps_errors)):
        for e in errors:
            print(f'ERROR ({side}) {e.get("workload")}: {e.get("notes")}')
    if bs_errors or ps_errors:
        sys.exit(1)


if __name__ == '__main__':
    main()

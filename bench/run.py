#!/usr/bin/env python
"""rattan throughput benchmark: shapes S0-S4 against bamboo's figures and this machine's SQLite ceiling.

Run from anywhere (rattan must be importable, e.g. installed editable):

    python bench/run.py                      # S1-S4, FULL and NORMAL, 4 workers, 1 repeat
    python bench/run.py --quick              # CI smoke: small counts, < 20 s
    python bench/run.py --shapes S2 --sync NORMAL --repeat 3 --json out.json
    python bench/run.py --profile S2         # one shape under a profiler covering every thread
    python bench/run.py --sql-count          # also: SQL statements and commits per node (untimed pass)

The shapes and components are ``shapes.py`` and ``components.py`` beside this script (copies of the
project's benchmark definitions). See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import collections
import gc
import importlib.util
import io
import json
import logging
import os
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------------
# reference figures (bamboo-pipeline on the project's standard 2-core machine, see bench/shapes.py)
PEER_SECONDS = {"S1": 34.0, "S2": 12.7, "S3": 32.0, "S4": 6.5}
PEER_NODES_PER_S = {"S1": 50.0, "S2": 79.0, "S3": 31.0}  # S4 is a wall-time shape: ratio from seconds
COMPONENT = {
    "S0": "bench_noop",
    "S1": "debug_node",
    "S2": "bench_noop",
    "S3": "debug_node",
    "S4": "bench_poll",
}
DEFAULT_SHAPES = ("S1", "S2", "S3", "S4")
BENCH_DIR = Path(__file__).resolve().parent  # shapes.py and components.py live beside this script


def load_bench(folder: Path = BENCH_DIR) -> tuple[Any, Any]:
    """Import shapes.py and components.py from ``folder`` (components register themselves)."""
    if not (folder / "shapes.py").is_file() or not (folder / "components.py").is_file():
        sys.exit(f"bench: no shapes.py/components.py in {folder}")
    mods = []
    for name in ("components", "shapes"):
        spec = importlib.util.spec_from_file_location(f"rattan_bench_{name}", folder / f"{name}.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        mods.append(mod)
    logging.getLogger("rattan.bench").setLevel(logging.WARNING)
    return mods[1], mods[0]


# --------------------------------------------------------------------------------------------------
# raw SQLite ceiling
def _raw_conn(path: str, sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("CREATE TABLE IF NOT EXISTS hist (id INTEGER PRIMARY KEY, node TEXT, data TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY, name TEXT, version INTEGER)")
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO state VALUES (?, 'READY', 0)", [(i,) for i in range(1000)])
    conn.execute("COMMIT")
    return conn


def ceiling_commits(tmp: str, sync: str, seconds: float) -> float:
    """Commits/s of 'BEGIN; INSERT one row; UPDATE one row; COMMIT' in WAL mode."""
    path = os.path.join(tmp, f"ceiling-commit-{sync}.db")
    conn = _raw_conn(path, sync)
    payload = "x" * 200
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO hist(node, data) VALUES (?, ?)", (f"n{n}", payload))
        conn.execute("UPDATE state SET name='RUNNING', version=version+1 WHERE id=?", (n % 1000,))
        conn.execute("COMMIT")
        n += 1
        if n % 64 == 0 and time.perf_counter() >= end:
            break
    dt = time.perf_counter() - t0
    conn.close()
    return n / dt


def ceiling_batch_rows(tmp: str, sync: str, seconds: float, batch: int = 100) -> float:
    """Rows/s of 'BEGIN; 100 x UPDATE one row (one execute each); COMMIT'."""
    path = os.path.join(tmp, f"ceiling-batch-{sync}.db")
    conn = _raw_conn(path, sync)
    rows = 0
    i = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(batch):
            conn.execute("UPDATE state SET name='FINISHED', version=version+1 WHERE id=?", (i % 1000,))
            i += 1
        conn.execute("COMMIT")
        rows += batch
    dt = time.perf_counter() - t0
    conn.close()
    return rows / dt


def measure_ceilings(syncs: list[str], seconds: float) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rattan-ceiling-") as tmp:
        for sync in syncs:
            out[sync] = {
                "commits_per_s": ceiling_commits(tmp, sync, seconds),
                "batch100_rows_per_s": ceiling_batch_rows(tmp, sync, seconds / 2),
            }
    return out


# --------------------------------------------------------------------------------------------------
# scenarios
class Scenario:
    def __init__(self, name: str, desc: str, count: int, build: Callable[[], dict], nodes: int) -> None:
        self.name, self.desc, self.count, self.build, self.nodes = name, desc, count, build, nodes

    @property
    def total_nodes(self) -> int:
        return self.count * self.nodes


def scenarios(shapes: Any, quick: bool) -> dict[str, Scenario]:
    out = {}
    for name, sc in shapes.SCENARIOS.items():
        code = COMPONENT.get(name, "bench_noop")
        out[name] = Scenario(name, sc["desc"], sc["count"], (lambda b=sc["build"], c=code: b(c)), sc["nodes"])
    if quick:
        out["S1"].count = 10
        out["S2"] = Scenario(
            "S2",
            "1 x chain of 100 activities (quick)",
            1,
            lambda: shapes.chain_pipeline(100, "bench_noop"),
            102,
        )
        out["S3"] = Scenario(
            "S3",
            "1 x parallel_pipeline(10, 10) (quick)",
            1,
            lambda: shapes.parallel_pipeline(10, 10, "debug_node"),
            104,
        )
        out["S4"].count = 10
    return out


def wait_finished(engine: Any, roots: list[str], timeout: float, interval: float) -> float:
    """Poll (one indexed SELECT per check) until every root is FINISHED; return the time it was seen."""
    pending = list(roots)
    deadline = time.perf_counter() + timeout
    while pending:
        # roots tend to finish in submission order: check the oldest pending one until it is done
        while pending and engine.is_finished(pending[0]):
            pending.pop(0)
        if not pending:
            break
        now = time.perf_counter()
        if now > deadline:
            raise SystemExit(
                f"bench: TIMEOUT: {len(pending)} of {len(roots)} pipelines not FINISHED "
                f"after {timeout:.0f} s (first pending {pending[0]})"
            )
        time.sleep(interval)
    return time.perf_counter()


def verify(engine: Any, api: Any, roots: list[str], expected: int, shape: str) -> int:
    total = 0
    for root in roots:
        res = api.get_pipeline_states(engine, root)
        if not res.result:
            raise SystemExit(f"bench: FAIL {shape}: get_pipeline_states({root}) failed: {res.message}")
        st = res.data[root]
        n = len(st["children"])
        if st["state"] != "FINISHED":
            raise SystemExit(f"bench: FAIL {shape}: pipeline {root} is {st['state']}, not FINISHED")
        if n != expected:
            raise SystemExit(f"bench: FAIL {shape}: pipeline {root} has {n} node states, expected {expected}")
        total += n
    return total


class SqlCounter:
    """Counts SQL statements on the writer connection and on the workers' reader connections."""

    _lit = re.compile(r"[xX]'[0-9A-Fa-f]*'|'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")

    def __init__(self, store: Any) -> None:
        self.lock = threading.Lock()
        self.writer: collections.Counter[str] = collections.Counter()
        self.reader: collections.Counter[str] = collections.Counter()
        self.texts: collections.Counter[str] = collections.Counter()
        self.main = threading.main_thread()
        store._writer.set_trace_callback(self._on_writer)
        orig = store._connect

        def connect() -> sqlite3.Connection:  # readers are opened lazily, one per thread
            conn = orig()
            if threading.current_thread() is not self.main:
                conn.set_trace_callback(self._on_reader)
            return conn

        store._connect = connect  # instance attribute shadows the method: no change to src/

    def _norm(self, sql: str) -> str:
        s = self._lit.sub("?", " ".join(sql.split()))
        s = re.sub(r"\(\?(?:, ?\?)+\)", "(?...)", s)
        return s[:110]

    def _on_writer(self, sql: str) -> None:
        with self.lock:
            self.writer[sql.split(None, 1)[0].upper()] += 1
            self.texts["W " + self._norm(sql)] += 1

    def _on_reader(self, sql: str) -> None:
        with self.lock:
            self.reader[sql.split(None, 1)[0].upper()] += 1
            self.texts["R " + self._norm(sql)] += 1

    def summary(self, nodes: int) -> dict[str, Any]:
        w = dict(self.writer)
        data_w = sum(v for k, v in w.items() if k in ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH"))
        return {
            "nodes": nodes,
            "writer": w,
            "reader": dict(self.reader),
            "writer_per_node": sum(w.values()) / nodes,
            "writer_data_per_node": data_w / nodes,
            "writer_select_per_node": w.get("SELECT", 0) / nodes,
            "reader_per_node": sum(self.reader.values()) / nodes,
            "commits_per_node": w.get("COMMIT", 0) / nodes,
            "top": self.texts.most_common(20),
        }


def run_shape(
    rattan: Any,
    api: Any,
    sc: Scenario,
    sync: str,
    workers: int,
    poll: float,
    timeout: float,
    count_sql: bool = False,
    keep_engine_hook: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    trees = [sc.build() for _ in range(sc.count)]
    roots = [t["id"] for t in trees]
    # the previous run's engine is garbage now: collect it before the clock starts, or a full
    # collection of it (20-30 ms) falls inside this run
    gc.collect()
    with tempfile.TemporaryDirectory(prefix=f"rattan-bench-{sc.name}-") as tmp:
        engine = rattan.Engine(
            store=f"sqlite:///{os.path.join(tmp, 'bench.db')}", workers=workers, sqlite_synchronous=sync
        )
        counter = SqlCounter(engine.core.store) if count_sql else None
        if keep_engine_hook:
            keep_engine_hook(engine)
        try:
            t0 = time.perf_counter()
            for tree in trees:
                api.run_pipeline(engine, tree)
            t_submitted = time.perf_counter()
            t1 = wait_finished(engine, roots, timeout, poll)
            seconds = t1 - t0
            engine.wait_idle(timeout)
            nodes = verify(engine, api, roots, sc.nodes, sc.name)
        finally:
            engine.close()
    row = {
        "shape": sc.name,
        "sync": sync,
        "workers": workers,
        "pipelines": sc.count,
        "nodes": nodes,
        "seconds": seconds,
        "submit_seconds": t_submitted - t0,
        "nodes_per_s": nodes / seconds,
    }
    if counter is not None:
        row["sql"] = counter.summary(nodes)
    return row


# --------------------------------------------------------------------------------------------------
# profiling
def run_profiled(
    rattan: Any,
    api: Any,
    sc: Scenario,
    sync: str,
    workers: int,
    poll: float,
    timeout: float,
    clock: str,
    top: int,
) -> dict[str, Any]:
    try:
        import yappi  # type: ignore[import-not-found]
    except ImportError:
        yappi = None
    if yappi is not None:
        yappi.set_clock_type(clock)
        yappi.clear_stats()
        yappi.start(builtins=True, profile_threads=True)
        try:
            row = run_shape(rattan, api, sc, sync, workers, max(poll, 0.05), timeout)
        finally:
            yappi.stop()
        main_ids = {t.id for t in yappi.get_thread_stats() if t.name == "_MainThread"}
        stats = yappi.get_func_stats(filter_callback=lambda s: s.ctx_id not in main_ids)
        print(
            f"\n== profile {sc.name} sync={sync} workers={workers} (yappi, {clock} clock, worker threads; "
            f"{row['nodes']} nodes in {row['seconds']:.2f} s profiled) =="
        )
        for key, title in (("ttot", "cumulative"), ("tsub", "total (own) time")):
            print(f"\n-- top {top} by {title} --")
            print(f"{'ncall':>9} {'tsub':>8} {'ttot':>8} {'ttot/node':>10}  function")
            for s in list(stats.sort(key, "desc"))[:top]:
                loc = f"{_short(s.module)}:{s.lineno}({s.name})"
                print(f"{s.ncall:>9} {s.tsub:8.3f} {s.ttot:8.3f} {1e6 * s.ttot / row['nodes']:8.0f}us  {loc}")
        mstats = yappi.get_func_stats(filter_callback=lambda s: s.ctx_id in main_ids)
        print(
            "\n-- main thread (submit, completion polling, verify; not worker cost): top 10 by cumulative --"
        )
        for s in [s for s in mstats.sort("ttot", "desc") if "bench" not in s.module][:10]:
            print(f"{s.ncall:>9} {s.tsub:8.3f} {s.ttot:8.3f}  {_short(s.module)}:{s.lineno}({s.name})")
        print("\n-- threads --")
        for t in yappi.get_thread_stats():
            print(f"  {t.name:<24} {t.ttot:8.3f} s  ({t.sched_count} switches)")
        yappi.clear_stats()
        return row
    # fallback: one cProfile per thread, installed in every thread the engine starts
    import cProfile
    import pstats

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def boot(frame: Any, event: str, arg: Any) -> None:
        sys.setprofile(None)
        if threading.current_thread() is threading.main_thread():
            return
        prof = cProfile.Profile()
        with lock:
            profiles.append(prof)
        prof.enable()

    threading.setprofile(boot)
    try:
        row = run_shape(rattan, api, sc, sync, workers, max(poll, 0.05), timeout)
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
    for p in profiles:
        p.disable()
    buf = io.StringIO()
    st = pstats.Stats(*profiles, stream=buf) if profiles else None
    print(
        f"\n== profile {sc.name} sync={sync} workers={workers} (cProfile per worker thread; "
        f"{row['nodes']} nodes in {row['seconds']:.2f} s profiled) =="
    )
    if st is not None:
        st.strip_dirs()
        st.sort_stats("cumulative").print_stats(top)
        st.sort_stats("tottime").print_stats(top)
    print(buf.getvalue())
    return row


def _short(path: str) -> str:
    for marker in ("/src/rattan/", "/lib/python3"):
        i = path.find(marker)
        if i >= 0:
            return path[i + 1 :]
    return os.path.basename(path)


# --------------------------------------------------------------------------------------------------
def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def print_table(rows: list[dict[str, Any]], ceilings: dict[str, dict[str, float]], repeat: int) -> None:
    hdr = (
        f"{'shape':<5} {'sync':<6} {'rep':>3} {'nodes':>6} {'seconds':>8} {'nodes/s':>9} {'bamboo n/s':>10} "
        f"{'vs bamboo':>9} {'n/s / ceil commit/s':>20}"
    )
    print("\n" + hdr)
    print("-" * len(hdr))
    for r in rows:
        ceil = ceilings.get(r["sync"], {}).get("commits_per_s")
        peer = r.get("peer_nodes_per_s")
        per_ceil = f"{r['nodes_per_s'] / ceil:.3f}" if ceil and r["shape"] != "S4" else "-"
        print(
            f"{r['shape']:<5} {r['sync']:<6} {r['rep']:>3} {r['nodes']:>6} {r['seconds']:>8.2f} "
            f"{r['nodes_per_s']:>9,.0f} {fmt_rate(peer):>10} {r['vs_peer']:>8.1f}x "
            f"{per_ceil:>20}"
        )
    if repeat > 1:
        print("\nmedian over repeats:")
        groups: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
        for r in rows:
            groups[(r["shape"], r["sync"])].append(r)
        for (shape, sync), rs in groups.items():
            sec = statistics.median(x["seconds"] for x in rs)
            nps = statistics.median(x["nodes_per_s"] for x in rs)
            print(
                f"  {shape:<5} {sync:<6} {sec:8.2f} s  {nps:9,.0f} nodes/s  "
                f"(min {min(x['seconds'] for x in rs):.2f} s, max {max(x['seconds'] for x in rs):.2f} s)"
            )


def print_ceilings(label: str, ceilings: dict[str, dict[str, float]]) -> None:
    print(f"\nraw SQLite ceiling ({label}), WAL:")
    for sync, c in ceilings.items():
        print(
            f"  synchronous={sync:<6}  insert+update commits/s: {c['commits_per_s']:>9,.0f}   "
            f"100-row-update commits: {c['batch100_rows_per_s']:>9,.0f} rows/s"
        )
    print("  (bamboo's benchmark machine: ~6,800 commits/s FULL, ~19,000 NORMAL, ~240,000 rows/s batched)")


def print_sql(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        sql = r.get("sql")
        if not sql:
            continue
        print(f"\n== SQL per node: {r['shape']} sync={r['sync']} ({sql['nodes']} nodes, untimed pass) ==")
        print(
            f"  writer statements/node {sql['writer_per_node']:.2f}  "
            f"(data-changing {sql['writer_data_per_node']:.2f}, "
            f"SELECT {sql['writer_select_per_node']:.2f}, COMMIT {sql['commits_per_node']:.3f})  "
            f"worker-reader statements/node {sql['reader_per_node']:.2f}"
        )
        print(f"  writer by verb: {dict(sorted(sql['writer'].items(), key=lambda kv: -kv[1]))}")
        print(f"  reader by verb: {dict(sorted(sql['reader'].items(), key=lambda kv: -kv[1]))}")
        print("  top statements (W=writer, R=worker reader), count and per node:")
        for text, n in sql["top"]:
            print(f"    {n:>7} {n / sql['nodes']:6.2f}  {text}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--shapes", default=",".join(DEFAULT_SHAPES), help="comma list of S0..S4 (default S1,S2,S3,S4)"
    )
    ap.add_argument("--sync", default="FULL,NORMAL", help="comma list of FULL/NORMAL/EXTRA")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="small counts for a CI smoke run (< 20 s)")
    ap.add_argument(
        "--ceiling-seconds", type=float, default=None, help="seconds per raw ceiling (default 3, quick 0.3)"
    )
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--poll", type=float, default=0.005, help="completion poll interval in seconds")
    ap.add_argument("--timeout", type=float, default=600.0, help="per-run timeout in seconds")
    ap.add_argument("--profile", metavar="SHAPE", default=None, help="profile one shape (first --sync mode)")
    ap.add_argument("--profile-clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument(
        "--sql-count",
        action="store_true",
        help="after the timed runs, one untimed pass per shape counting SQL statements per node",
    )
    ap.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    args = ap.parse_args(argv)

    shapes, _components = load_bench()
    import rattan
    from rattan import api

    syncs = [s.strip().upper() for s in args.sync.split(",") if s.strip()]
    names = [s.strip().upper() for s in args.shapes.split(",") if s.strip()]
    scs = scenarios(shapes, args.quick)
    for n in names + ([args.profile.upper()] if args.profile else []):
        if n not in scs:
            ap.error(f"unknown shape {n!r}; have {sorted(scs)}")
    ceil_s = args.ceiling_seconds if args.ceiling_seconds is not None else (0.3 if args.quick else 3.0)

    started = time.perf_counter()
    print(
        f"rattan bench: python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} cpus, workers={args.workers}" + (" [quick]" if args.quick else "")
    )
    ceilings: dict[str, dict[str, float]] = {}
    if not args.no_ceiling:
        ceilings = measure_ceilings(syncs, ceil_s)
        print_ceilings("before", ceilings)

    result: dict[str, Any] = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "quick": args.quick,
        "ceilings_before": ceilings,
    }

    if args.profile:
        sc = scs[args.profile.upper()]
        row = run_profiled(
            rattan, api, sc, syncs[0], args.workers, args.poll, args.timeout, args.profile_clock, args.top
        )
        print(f"\n(profiled run, slower than unprofiled: {row['nodes']} nodes in {row['seconds']:.2f} s)")
        result["profile"] = row
        if args.sql_count:
            r = run_shape(rattan, api, sc, syncs[0], args.workers, args.poll, args.timeout, count_sql=True)
            print_sql([r])
            result["sql"] = [r]
    else:
        rows = []
        for name in names:
            sc = scs[name]
            for sync in syncs:
                for rep in range(args.repeat):
                    r = run_shape(rattan, api, sc, sync, args.workers, args.poll, args.timeout)
                    r["rep"] = rep + 1
                    peer_s = PEER_SECONDS.get(name)
                    r["peer_seconds"] = peer_s
                    r["peer_nodes_per_s"] = PEER_NODES_PER_S.get(name)
                    # same work on both sides, so the ratio of rates is the inverse ratio of seconds;
                    # quick mode runs smaller shapes: compare rates (S4: seconds per 100 pipelines)
                    if name == "S4" and peer_s:
                        r["vs_peer"] = peer_s / r["seconds"]
                    elif r["peer_nodes_per_s"]:
                        r["vs_peer"] = r["nodes_per_s"] / r["peer_nodes_per_s"]
                    else:
                        r["vs_peer"] = 0.0
                    rows.append(r)
                    print(
                        f"  {name} {sync:<6} rep {rep + 1}: {r['nodes']} nodes in {r['seconds']:.3f} s "
                        f"= {r['nodes_per_s']:,.0f} nodes/s",
                        flush=True,
                    )
        result["runs"] = rows
        after: dict[str, dict[str, float]] = {}
        if not args.no_ceiling and not args.quick:
            after = measure_ceilings(syncs, ceil_s)
            result["ceilings_after"] = after
        print_table(rows, ceilings, args.repeat)
        if ceilings:
            print_ceilings("before the runs", ceilings)
        if after:
            print_ceilings("after the runs", after)
        print(
            "\nS4 is a wall-time shape (3 polls at 1 s; ideal ~2 s): its 'vs bamboo' is "
            f"bamboo seconds / seconds (bamboo {PEER_SECONDS['S4']} s)."
        )
        if args.sql_count:
            sql_rows = [
                run_shape(
                    rattan, api, scs[n], syncs[0], args.workers, args.poll, args.timeout, count_sql=True
                )
                for n in names
            ]
            print_sql(sql_rows)
            result["sql"] = sql_rows

    result["elapsed"] = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
        print(f"\nwrote {args.json}")
    print(f"\nbench done in {result['elapsed']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

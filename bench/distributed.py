"""rattan on PostgreSQL: shapes S1-S3 on PostgreSQL + threads and on PostgreSQL + Celery (Redis
broker, 1 and 2 ``rattan worker`` processes), next to pgbench's simple-update (1 and 8 clients) on
the same server in the same run, as the ceiling.

    python bench/distributed.py                      # S1-S3, every runtime, private servers
    python bench/distributed.py --shapes S1 --runtimes threads,celery2 --repeat 3
    python bench/distributed.py --postgres postgresql://... --redis redis://...   # your servers

It starts a private PostgreSQL (``rattan.testing.postgres``, fsync on, pg_stat_statements loaded)
and Redis (``rattan.testing.redis``) unless given URLs. Each run gets a schema of its own. Reported
per run: nodes/s, SQL statements per node (pg_stat_statements: every statement of every
connection, workers' included) and transactions per node (pg_stat_database.xact_commit).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import load_bench, scenarios, verify, wait_finished  # noqa: E402  (beside this file)

RUNTIMES = ("threads", "celery1", "celery2")
STATS_FLUSH = 1.5  # seconds: backends flush their statistics at most once a second


def _sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.encode())
        return list(cur.fetchall()) if cur.description else []


def counters(url: str) -> tuple[int, int]:
    """(statements run so far, transactions committed so far) in this database."""
    calls = _sql(
        url,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    commits = _sql(url, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(calls[0][0]), int(commits[0][0])


def print_top(url: str, nodes: int, n: int) -> None:
    """The ``n`` statements that took the most server time in the run just measured."""
    rows = _sql(
        url,
        "SELECT calls, total_exec_time, query FROM pg_stat_statements WHERE dbid = (SELECT oid FROM "
        f"pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT {n}",
    )
    print("    calls/node  total ms  statement")
    for calls, ms, query in rows:
        print(f"    {calls / nodes:10.2f} {ms:9.1f}  {' '.join(str(query).split())[:110]}")


def pgbench(url: str, clients: int, seconds: int) -> float:
    """Transactions/s of pgbench's built-in simple-update script (one UPDATE and one INSERT per
    transaction, each committed: the ceiling of a workload of small durable commits)."""
    from rattan.testing.postgres import find_bin_dir

    bin_dir = find_bin_dir()
    exe = str(bin_dir / "pgbench") if bin_dir else "pgbench"
    subprocess.run([exe, "-i", "-q", "-s", "1", url], check=True, capture_output=True, timeout=300)
    out = subprocess.run(
        [exe, "-b", "simple-update", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds), url],
        check=True, capture_output=True, text=True, timeout=seconds + 120,
    ).stdout  # fmt: skip
    found = re.search(r"tps = ([\d.]+)", out)
    return float(found.group(1)) if found else 0.0


@contextlib.contextmanager
def workers(n: int, store: str, broker: str, log_dir: Path, concurrency: int) -> Iterator[None]:
    """``n`` rattan worker processes loading this folder's components, ready to take messages."""
    from rattan.testing.worker import WorkerProcess, worker_env

    env = worker_env(HERE, HERE.parent / "src")
    args = ["--store", store, "--dispatcher", f"celery://{broker}", "--components", "components",
            "--concurrency", str(concurrency)]  # fmt: skip
    procs = [WorkerProcess(args, log_dir / f"worker-{i}.log", env, cwd=HERE) for i in range(n)]
    try:
        for proc in procs:
            proc.wait_ready()
        yield
    finally:
        for proc in procs:
            proc.stop(60)


def run_one(rattan: Any, api: Any, sc: Any, runtime: str, pg: str, broker: str, args: argparse.Namespace,
            log_dir: Path) -> dict[str, Any]:  # fmt: skip
    from rattan.testing.postgres import schema_url

    store = schema_url(pg, f"bench_{secrets.token_hex(4)}")
    trees = [sc.build() for _ in range(sc.count)]
    roots = [t["id"] for t in trees]
    with contextlib.ExitStack() as stack:
        if runtime == "threads":
            engine = rattan.Engine(store=store, workers=args.workers)
        else:
            import redis

            redis.Redis.from_url(broker).flushdb()
            stack.enter_context(workers(int(runtime[-1]), store, broker, log_dir, args.concurrency))
            engine = rattan.Engine(store=store, dispatcher=f"celery://{broker}")
        try:
            time.sleep(STATS_FLUSH)  # server statistics reach the views up to a second late
            if args.top:
                _sql(pg, "SELECT pg_stat_statements_reset()")
            before = counters(pg)
            t0 = time.perf_counter()
            for tree in trees:
                api.run_pipeline(engine, tree)
            t1 = wait_finished(engine, roots, args.timeout, 0.02)
            time.sleep(STATS_FLUSH)
            after = counters(pg)
            nodes = verify(engine, api, roots, sc.nodes, sc.name)
            if args.top:
                print_top(pg, nodes, args.top)
        finally:
            engine.close()
    return {
        "shape": sc.name, "runtime": runtime, "nodes": nodes, "seconds": t1 - t0,
        "nodes_per_s": nodes / (t1 - t0),
        "statements_per_node": (after[0] - before[0]) / nodes,
        "transactions_per_node": (after[1] - before[1]) / nodes,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="S1,S2,S3")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES), help="threads, celery1, celery2")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4, help="engine threads (threads runtime)")
    ap.add_argument("--concurrency", type=int, default=4, help="threads per rattan worker")
    ap.add_argument("--pgbench-seconds", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--postgres", help="a database URL (default: a private server)")
    ap.add_argument("--redis", help="a Redis URL (default: a private server)")
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument(
        "--top", type=int, default=0, metavar="N", help="print the N statements that took most time"
    )
    args = ap.parse_args(argv)

    import rattan
    from rattan import api
    from rattan.testing.postgres import postgres_server
    from rattan.testing.redis import redis_server

    shapes, _components = load_bench()
    scs = scenarios(shapes, args.quick)
    chosen = [s.strip() for s in args.shapes.split(",") if s.strip()]
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        pg = args.postgres or stack.enter_context(
            postgres_server("-c shared_preload_libraries=pg_stat_statements")
        )
        _sql(pg, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        celery = any(r != "threads" for r in runtimes)
        broker = args.redis or (stack.enter_context(redis_server()) if celery else "")
        log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rattan-bench-workers-")))
        ceiling = {c: pgbench(pg, c, args.pgbench_seconds) for c in (1, 8)}
        print(f"pgbench simple-update on this server: {ceiling[1]:,.0f} tx/s (1 client), "
              f"{ceiling[8]:,.0f} tx/s (8 clients)")  # fmt: skip
        for name in chosen:
            for runtime in runtimes:
                for rep in range(args.repeat):
                    row = run_one(rattan, api, scs[name], runtime, pg, broker, args, log_dir)
                    row["rep"] = rep + 1
                    rows.append(row)
                    print(
                        f"  {name} {runtime:8} rep {rep + 1}: {row['nodes']} nodes in {row['seconds']:.2f} s"
                        f" = {row['nodes_per_s']:,.0f} nodes/s, {row['statements_per_node']:.1f} statements"
                        f" and {row['transactions_per_node']:.2f} transactions per node"
                    )
    print()
    print("shape runtime   nodes/s  statements/node  transactions/node  vs pgbench 1 client")
    for r in rows:
        print(f"{r['shape']:5} {r['runtime']:8} {r['nodes_per_s']:8,.0f} {r['statements_per_node']:16.1f} "
              f"{r['transactions_per_node']:18.2f} {r['nodes_per_s'] / ceiling[1]:19.2f}x")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"pgbench": ceiling, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: the cost of waiting. 10,000 pipelines parked on a polling node (and 10,000 on a
callback node): resident memory, database size, and CPU microseconds per poll.

    python bench/waiting.py                 # 10,000 pipelines, FULL
    python bench/waiting.py --count 2000 --sync NORMAL --window 10

Prints a table. The poll cost is the engine process's CPU time during a window in which only polls
run, divided by the number of polls made in that window (from the stored schedule counters).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree

REG = rattan.Registry()


class SlowPoll(rattan.Service):
    """Polls every ``interval`` seconds, never finishes by itself."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(2)

    def execute(self, data, parent_data):  # type: ignore[no-untyped-def]
        return True

    def schedule(self, data, parent_data, callback_data=None):  # type: ignore[no-untyped-def]
        return True


class WaitCallback(rattan.Service):
    __need_schedule__ = True

    def execute(self, data, parent_data):  # type: ignore[no-untyped-def]
        return True


class SlowPollComponent(rattan.Component, registry=REG):
    name = "slow poll"
    code = "bench_slow_poll"
    bound_service = SlowPoll


class WaitCallbackComponent(rattan.Component, registry=REG):
    name = "wait callback"
    code = "bench_wait_callback"
    bound_service = WaitCallback


def rss_mib() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(code: str) -> dict:  # type: ignore[type-arg]
    start = EmptyStartEvent()
    start.extend(ServiceActivity(component_code=code)).extend(EmptyEndEvent())
    return build_tree(start)


def total_polls(engine: rattan.Engine) -> int:
    with engine.core.store.raw() as conn:
        return int(conn.execute("SELECT COALESCE(SUM(times), 0) FROM schedules").fetchone()[0])


def waiting(engine: rattan.Engine, n: int) -> int:
    with engine.core.store.raw() as conn:
        row = conn.execute("SELECT COUNT(*) FROM processes WHERE status='sleep'").fetchone()
    return int(row[0]) if row[0] is not None else 0


def run(code: str, count: int, sync: str, window: float, workers: int) -> dict[str, float]:
    folder = tempfile.mkdtemp(prefix="rattan-wait-")
    path = Path(folder) / "w.db"
    base = rss_mib()
    engine = rattan.Engine(f"sqlite:///{path}", components=REG, sqlite_synchronous=sync, workers=workers)
    started = time.time()
    for _ in range(count):
        result = api.run_pipeline(engine, one(code))
        if not result.result:
            raise SystemExit(f"run_pipeline failed: {result.message}")
    deadline = time.time() + 600
    while waiting(engine, count) < count:
        if time.time() > deadline:
            raise SystemExit("pipelines did not all reach their wait")
        time.sleep(0.2)
    submit_s = time.time() - started
    rss = rss_mib() - base
    size = sum(os.path.getsize(p) for p in (path, Path(f"{path}-wal")) if p.exists())
    out = {"submit_s": submit_s, "rss_mib": rss, "db_mib": size / 2**20}
    if code == "bench_slow_poll":
        polls0, cpu0, wall0 = total_polls(engine), time.process_time(), time.time()
        time.sleep(window)
        polls, cpu, wall = total_polls(engine) - polls0, time.process_time() - cpu0, time.time() - wall0
        out.update({"polls": polls, "polls_per_s": polls / wall, "us_per_poll": 1e6 * cpu / max(polls, 1)})
    engine.close(timeout=5)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--sync", default="FULL")
    ap.add_argument("--window", type=float, default=10.0, help="seconds of polling measured")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--only", choices=["bench_slow_poll", "bench_wait_callback"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:  # one measurement in a fresh process, so memory figures are not shared
        print(json.dumps(run(args.only, args.count, args.sync, args.window, args.workers)))
        return 0
    version = sys.version.split()[0]
    print(f"rattan {rattan.__version__}, python {version}, {os.cpu_count()} cpus, sync={args.sync}")
    results = {}
    for code in ("bench_slow_poll", "bench_wait_callback"):
        cmd = [sys.executable, __file__, "--only", code, "--count", str(args.count), "--sync", args.sync,
               "--window", str(args.window), "--workers", str(args.workers)]  # fmt: skip
        results[code] = json.loads(subprocess.check_output(cmd, text=True).strip().splitlines()[-1])
    poll, cb = results["bench_slow_poll"], results["bench_wait_callback"]
    print(f"{'waiting on':<10} {'count':>7} {'submit s':>9} {'RSS MiB':>8} {'KiB/pipe':>9} {'DB MiB':>7} "
          f"{'polls/s':>8} {'us/poll':>8}")  # fmt: skip
    for name, r in (("poll", poll), ("callback", cb)):
        print(
            f"{name:<10} {args.count:>7} {r['submit_s']:>9.1f} {r['rss_mib']:>8.1f} "
            f"{1024 * r['rss_mib'] / args.count:>9.2f} {r['db_mib']:>7.1f} "
            f"{r.get('polls_per_s', 0):>8.0f} {r.get('us_per_poll', 0):>8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

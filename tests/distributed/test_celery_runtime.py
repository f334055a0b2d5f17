"""The distributed runtime end to end: two real ``rattan worker`` subprocesses (Celery thread
pool) on one SQLite store file, a real Redis broker, and a client ``rattan.Engine`` in this process
(``dispatcher="celery://redis://..."``) that submits pipelines and sends callbacks.

The kill test SIGKILLs one worker while 20 pipelines run: the other worker (its sweeper takes the
dead engine's work over) finishes every pipeline; nothing is lost, and no step of user code ran
twice except one the killed worker had begun.

Without redis-server (and celery) these tests are skipped; with RATTAN_REQUIRE_REDIS=1 they fail.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dist_support import HERE, WorkerProcess, worker_env

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    NodeOutput,
    ParallelGateway,
    ServiceActivity,
    Var,
    build_tree,
)

pytestmark = [pytest.mark.timeout(240)]

JOURNAL_ENV = "RATTAN_DIST_JOURNAL"
WAIT = 60.0
VISIBILITY = "8"  # seconds: a message the killed worker had taken comes back this soon


@pytest.fixture
def registry() -> rattan.Registry:
    reg = rattan.Registry("distributed-tests")
    reg.import_modules(["dist_components"])
    return reg


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'rattan.db'}"


@pytest.fixture
def client(db: str, redis_db_url: str, registry: rattan.Registry) -> Iterator[rattan.Engine]:
    engine = rattan.Engine(store=db, dispatcher=f"celery://{redis_db_url}", components=registry)
    try:
        yield engine
    finally:
        engine.close(10)


def start_workers(
    workers: list[WorkerProcess], n: int, db: str, redis_url: str, tmp_path: Path,
    journal: Path | None = None, concurrency: int = 4, pool: str = "threads",
    local_backlog: int | None = None,
) -> list[WorkerProcess]:  # fmt: skip
    env = worker_env(**({JOURNAL_ENV: str(journal)} if journal else {}))
    new = []
    for _ in range(n):
        args = ["--store", db, "--dispatcher", f"celery://{redis_url}", "--components", "dist_components",
                "--concurrency", str(concurrency), "--pool", pool,
                "--visibility-timeout", VISIBILITY]  # fmt: skip
        if local_backlog is not None:
            args += ["--local-backlog", str(local_backlog)]
        w = WorkerProcess(args, tmp_path / f"worker-{len(workers)}.log", env, cwd=HERE)
        workers.append(w)
        new.append(w)
    for w in new:
        w.wait_ready()
    return new


# -- pipelines -------------------------------------------------------------------------------------
def _act(code: str, x: Any, k: int, node_id: str | None = None, **inputs: Any) -> ServiceActivity:
    act = (
        ServiceActivity(component_code=code, id=node_id) if node_id else ServiceActivity(component_code=code)
    )
    act.component.inputs.x = Var(type=Var.SPLICE if isinstance(x, str) else Var.PLAIN, value=x)
    act.component.inputs.k = Var(type=Var.PLAIN, value=k)
    for key, value in inputs.items():
        setattr(act.component.inputs, key, Var(type=Var.PLAIN, value=value))
    return act


def chain(n: int, seed: int, code: str = "dist_step", **inputs: Any) -> tuple[dict[str, Any], list[str]]:
    """n activities, each ``y = 3 * previous y + i``."""
    start, data = EmptyStartEvent(), Data()
    cur: Any = start
    x: Any = seed
    ids = []
    for i in range(n):
        act = _act(code, x, i, **inputs)
        data.inputs[f"${{v{i}}}"] = NodeOutput(type=Var.SPLICE, source_act=act.id, source_key="y")
        x = f"${{v{i}}}"
        cur = cur.extend(act)
        ids.append(act.id)
    cur.extend(EmptyEndEvent())
    return build_tree(start, data=data), ids


def expected_chain(n: int, seed: int) -> list[int]:
    out, y = [], seed
    for i in range(n):
        y = 3 * y + i
        out.append(y)
    return out


def parallel(branches: int, **inputs: Any) -> tuple[dict[str, Any], list[str]]:
    start, pg, cg = EmptyStartEvent(), ParallelGateway(), ConvergeGateway()
    acts = [_act("dist_step", b, 1, **inputs) for b in range(branches)]
    start.extend(pg).connect(*acts).to(pg).converge(cg).extend(EmptyEndEvent())
    return build_tree(start), [a.id for a in acts]


def single(act: ServiceActivity) -> dict[str, Any]:
    start = EmptyStartEvent()
    start.extend(act).extend(EmptyEndEvent())
    return build_tree(start)


def state(engine: rattan.Engine, node_id: str) -> str | None:
    found = engine.get_state_or_none(node_id)
    return found.name if found is not None else None


def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finished(engine: rattan.Engine, root: str, timeout: float = WAIT) -> None:
    res = engine.wait_pipeline(root, timeout=timeout)
    assert res["state"] == "FINISHED" and not res["failed_nodes"], res


# -- tests -----------------------------------------------------------------------------------------
def test_pipelines_run_on_two_worker_processes(
    client: rattan.Engine, workers: list[WorkerProcess], db: str, redis_db_url: str, tmp_path: Path
) -> None:
    start_workers(workers, 2, db, redis_db_url, tmp_path)
    # a chain
    tree, ids = chain(6, 2)
    api.run_pipeline(client, tree)
    # a parallel gateway with 10 branches
    ptree, pids = parallel(10)
    api.run_pipeline(client, ptree)
    # a polling node (3 polls, 50 ms apart)
    poll = _act("dist_poll", 4, 1, polls=3)
    poll_tree = single(poll)
    api.run_pipeline(client, poll_tree)
    # a callback node
    cb = _act("dist_callback", 5, 2)
    cb_tree = single(cb)
    api.run_pipeline(client, cb_tree)

    finished(client, tree["id"])
    assert [client.get_execution_data_outputs(i)["y"] for i in ids] == expected_chain(6, 2)
    finished(client, ptree["id"])
    assert sorted(client.get_execution_data_outputs(i)["y"] for i in pids) == [3 * b + 1 for b in range(10)]
    assert {state(client, i) for i in pids} == {"FINISHED"}
    finished(client, poll_tree["id"])
    out = client.get_execution_data_outputs(poll.id)
    assert out["count"] == 3 and out["y"] == 3 * 4 + 1 + 1 + 2 + 3
    # the callback: once the node waits, api.callback (through this process's engine) reaches a worker
    wait_for(lambda: _waits(client, cb.id), WAIT, "the callback node to wait")
    version = client.get_state(cb.id).version
    res = api.callback(client, cb.id, version, {"v": 100})
    assert res.result, res.message
    finished(client, cb_tree["id"])
    out = client.get_execution_data_outputs(cb.id)
    assert out["y"] == 3 * 5 + 2 + 100 and out["got"] == {"v": 100}
    # both worker processes did some of the work
    pids_seen = {client.get_execution_data_outputs(i)["pid"] for i in ids + pids}
    assert pids_seen <= {w.pid for w in workers}
    for w in workers:
        assert w.stop(60) == 0, w.stderr()[-3000:]
    # a warm shutdown closed each worker's engine: it gave its lease up (a lease given up may be
    # gone already: the next sweep of another engine deletes it)
    assert set(leases(db, {w.pid for w in workers}).values()) <= {0.0}


def leases(db: str, pids: set[int]) -> dict[int, float]:
    """pid -> lease expiry of the engines of these processes still in the store."""
    with contextlib.closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
        rows = conn.execute("select pid, expires from owners").fetchall()
    return {pid: expires for pid, expires in rows if pid in pids}


def test_the_prefork_pool_opens_an_engine_in_each_child(
    client: rattan.Engine, workers: list[WorkerProcess], db: str, redis_db_url: str, tmp_path: Path
) -> None:
    (w,) = start_workers(workers, 1, db, redis_db_url, tmp_path, concurrency=2, pool="prefork")
    tree, ids = chain(4, 3)
    poll = _act("dist_poll", 4, 1, polls=2)
    poll_tree = single(poll)
    api.run_pipeline(client, tree)
    api.run_pipeline(client, poll_tree)
    finished(client, tree["id"])
    finished(client, poll_tree["id"])
    assert [client.get_execution_data_outputs(i)["y"] for i in ids] == expected_chain(4, 3)
    assert client.get_execution_data_outputs(poll.id)["count"] == 2
    children = {client.get_execution_data_outputs(i)["pid"] for i in ids}
    assert w.pid not in children  # user code ran in the pool's children, not in the parent
    assert w.stop(60) == 0, w.stderr()[-3000:]
    assert set(leases(db, children).values()) <= {0.0}


def test_work_stays_in_the_worker_that_took_it_and_a_wide_fork_spreads_over_both(
    client: rattan.Engine, workers: list[WorkerProcess], db: str, redis_db_url: str, tmp_path: Path
) -> None:
    """Local first: a pipeline's chain of activities runs in the worker that took the pipeline
    from the broker; the branches of a fork wider than the local lane's room go to the broker,
    and the other worker runs some of them."""
    # 2 local threads each, so room for 32 waiting messages (BACKLOG_PER_THREAD): 12 chains
    # never fill it
    pids = {w.pid for w in start_workers(workers, 2, db, redis_db_url, tmp_path, concurrency=2)}
    chains = [chain(5, seed) for seed in range(12)]
    for tree, _ids in chains:
        api.run_pipeline(client, tree)
    ran_by: set[int] = set()
    for seed, (tree, ids) in enumerate(chains):
        finished(client, tree["id"])
        assert [client.get_execution_data_outputs(i)["y"] for i in ids] == expected_chain(5, seed)
        chain_pids = {client.get_execution_data_outputs(i)["pid"] for i in ids}
        assert len(chain_pids) == 1 and chain_pids <= pids, (seed, chain_pids)  # never left its worker
        ran_by |= chain_pids
    assert ran_by == pids  # the broker gave each worker pipelines
    # one pipeline, 80 branches of 0.1 s: the worker that forks keeps 32 waiting and publishes
    # the rest; it reserves at most 8 of those at a time, so the other (idle) worker takes some
    tree, ids = parallel(80, slow=0.1)
    api.run_pipeline(client, tree)
    finished(client, tree["id"])
    assert sorted(client.get_execution_data_outputs(i)["y"] for i in ids) == [3 * b + 1 for b in range(80)]
    assert {client.get_execution_data_outputs(i)["pid"] for i in ids} == pids
    for w in workers:
        assert w.stop(60) == 0, w.stderr()[-3000:]


def _waits(engine: rattan.Engine, node_id: str) -> bool:
    if state(engine, node_id) != "RUNNING":
        return False
    try:
        sched = engine.get_schedule_with_node_and_version(node_id)
    except Exception:
        return False
    return not sched.finished


def test_a_client_that_runs_no_workers_is_served_by_the_workers_sweep(
    db: str, redis_db_url: str, registry: rattan.Registry, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    start_workers(workers, 1, db, redis_db_url, tmp_path)
    with rattan.Engine(
        store=db, dispatcher=f"celery://{redis_db_url}", components=registry, start=False
    ) as eng:
        tree, ids = chain(3, 1)
        api.run_pipeline(eng, tree)
        finished(eng, tree["id"])
        assert [eng.get_execution_data_outputs(i)["y"] for i in ids] == expected_chain(3, 1)


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing_and_repeats_nothing(
    client: rattan.Engine, workers: list[WorkerProcess], db: str, redis_db_url: str, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    victim, survivor = start_workers(workers, 2, db, redis_db_url, tmp_path, journal=journal)
    pipes = []
    for i in range(20):
        if i % 4 == 3:  # a chain ending in a polling node
            tree, ids = chain(3, i, slow=0.05)
            pipes.append((tree, ids, i, 3))
        else:
            tree, ids = chain(6, i, slow=0.05)
            pipes.append((tree, ids, i, 6))
    for tree, *_ in pipes:
        api.run_pipeline(client, tree)
    # mid-run: once the victim has begun a good share of the work
    wait_for(lambda: _begun_by(journal, victim.pid) >= 15, WAIT, "the victim to take work")
    victim.kill()
    killed_at = time.time()
    for tree, *_ in pipes:
        res = client.wait_pipeline(tree["id"], timeout=90)
        assert res["state"] == "FINISHED" and not res["failed_nodes"], (
            res, f"victim {victim.pid} killed at {killed_at:.6f}", broker_state(redis_db_url)
        )  # fmt: skip
    for _tree, ids, seed, n in pipes:
        assert [client.get_execution_data_outputs(i)["y"] for i in ids] == expected_chain(n, seed)
    # nothing run twice: a step begun twice was begun first by the killed worker
    begins: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for line in journal.read_text().splitlines():
        parts = line.split()
        if len(parts) == 7 and parts[5] == "begin":
            begins[tuple(parts[1:5])].append(int(parts[0]))
    repeated = {k: v for k, v in begins.items() if len(v) > 1}
    for key, pids in repeated.items():
        assert len(pids) == 2 and pids[0] == victim.pid and pids[1] != victim.pid, (key, pids)
    all_ids = {i for _, ids, _, _ in pipes for i in ids}
    assert {k[0] for k in begins} == all_ids
    assert survivor.stop(60) == 0, survivor.stderr()[-3000:]


def broker_state(url: str) -> dict[str, Any]:
    """What the broker holds (for a failure's message): queue lengths, unacknowledged messages."""
    import redis

    with contextlib.closing(redis.Redis.from_url(url)) as r:
        now = time.time()
        return {
            "now": now,
            "queues": {k.decode(): r.llen(k) for k in r.keys("rattan*") if r.type(k) == b"list"},
            "unacked": r.hlen("unacked"),
            "unacked_ages": [now - score for _, score in r.zrange("unacked_index", 0, -1, withscores=True)],
            "mutex_ttl": r.ttl("unacked_mutex"),
        }


def _begun_by(journal: Path, pid: int) -> int:
    try:
        text = journal.read_text()
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if line.startswith(f"{pid} ") and " begin " in line)

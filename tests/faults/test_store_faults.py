"""A store that fails at random, with SQLite's own errors, disk full included: once the faults stop,
every pipeline finishes, in the same engine (no restart), and no user code ran twice.

Faults are injected below the store, in the connections it opens (a ``sqlite3.Connection``
subclass): while they are on, a statement fails now and then with the error SQLite itself raises
for a busy database, an I/O error or a full disk, COMMIT included, and for a while the database
file may not grow at all (``PRAGMA max_page_count``: SQLite's real "database or disk is full").
Reads fail too. What must hold:

* every pipeline submitted ends FINISHED once the faults stop, without restarting the engine;
* every ``execute`` and every poll step ran exactly once: a result computed by a worker is kept
  while its commit fails and recorded when the store works again, never recomputed or dropped;
* every callback the test sent was applied exactly once;
* faults really happened: rounds failed and were tried again.

The seed is printed; ``RATTAN_FAULT_SEED`` replays the fault pattern (thread timing is not
replayable).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from faulty import Faults, FaultyConnection, FaultyStore

import rattan
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    build_tree,
)
from rattan.errors import BackendUnavailableError, ConflictError, InvalidOperationError

SEED = int(os.environ.get("RATTAN_FAULT_SEED") or random.SystemRandom().randrange(2**31))
T = TypeVar("T")


# -- components: each counts its user steps, so a step run twice shows ------------------------------
class Lab:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.steps: Counter[tuple[str, str, str, int]] = Counter()
        self.callbacks: Counter[str] = Counter()

    def count(self, kind: str, node: str, version: str, n: int = 0) -> None:
        with self.lock:
            self.steps[(kind, node, version, n)] += 1


LAB = Lab()
REG = rattan.Registry("store-faults")


class Work(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        LAB.count("execute", self.id, self.version)
        data.outputs["done"] = self.id
        return True


class Poll(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0.02)

    def execute(self, data: Any, parent_data: Any) -> bool:
        LAB.count("execute", self.id, self.version)
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        n = int(data.get_one_of_outputs("polls", 0)) + 1
        LAB.count("poll", self.id, self.version, n)
        data.outputs["polls"] = n
        if n >= 3:
            self.finish_schedule()
        return True


class Wait(rattan.Service):
    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        LAB.count("execute", self.id, self.version)
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        with LAB.lock:
            LAB.callbacks[str(callback_data)] += 1
        data.outputs["got"] = callback_data
        return True


for _code, _service in (("f_work", Work), ("f_poll", Poll), ("f_wait", Wait)):
    type(f"C_{_code}", (rattan.Component,), {"code": _code, "name": _code, "bound_service": _service},
         registry=REG)  # fmt: skip


def act(code: str) -> ServiceActivity:
    return ServiceActivity(component_code=code)


def pipelines(count: int) -> list[tuple[dict[str, Any], list[str]]]:
    """(tree, ids of its callback nodes) for ``count`` pipelines of four shapes."""
    out: list[tuple[dict[str, Any], list[str]]] = []
    for i in range(count):
        start = EmptyStartEvent()
        waits: list[str] = []
        shape = i % 4
        if shape == 0:  # a chain with a polling node
            start.extend(act("f_work")).extend(act("f_poll")).extend(act("f_work")).extend(EmptyEndEvent())
        elif shape == 1:  # parallel branches
            pg, cg = ParallelGateway(), ConvergeGateway()
            start.extend(pg).connect(act("f_work"), act("f_poll"), act("f_work")).converge(cg).extend(
                EmptyEndEvent()
            )
        elif shape == 2:  # a subprocess
            sub_start = EmptyStartEvent()
            sub_start.extend(act("f_work")).extend(act("f_poll")).extend(EmptyEndEvent())
            start.extend(SubProcess(start=sub_start, data=Data())).extend(act("f_work")).extend(
                EmptyEndEvent()
            )
        else:  # a node waiting for a callback
            wait = act("f_wait")
            waits.append(wait.id)
            start.extend(act("f_work")).extend(wait).extend(EmptyEndEvent())
        out.append((build_tree(start), waits))
    return out


class FaultDriver:
    """Turns faults on for a while: statements fail now and then, and the disk is full for short
    spells (a write that needs the file to grow fails with SQLite's own SQLITE_FULL)."""

    def __init__(self, faults: Faults, seconds: float = 3.0) -> None:
        self.faults = faults
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-driver", daemon=True)

    def start(self) -> None:
        self.faults.rate = 0.02
        self._thread.start()

    def finish(self) -> None:
        """Let the fault window run its course, then stop the faults."""
        self._thread.join(self.seconds + 10)
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.faults.rate = 0.0
        self.faults.full = False

    def _run(self) -> None:
        end = time.monotonic() + self.seconds
        rng = random.Random(SEED + 1)
        while not self._stop.is_set() and time.monotonic() < end:
            self._stop.wait(rng.uniform(0.2, 0.5))
            self.faults.full = True
            self._stop.wait(rng.uniform(0.1, 0.4))
            self.faults.full = False
        self.faults.rate = 0.0


def retrying(fn: Callable[[], T], deadline: float) -> T:
    """Call ``fn`` until the store lets it through (a caller's duty while the store fails)."""
    while True:
        try:
            return fn()
        except (BackendUnavailableError, ConflictError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.fixture
def faults() -> Iterator[Faults]:
    print(f"RATTAN_FAULT_SEED={SEED}")
    plan = Faults(SEED)
    FaultyConnection.faults = plan
    yield plan
    FaultyConnection.faults = None


@pytest.mark.timeout(180)
def test_every_pipeline_finishes_once_the_store_stops_failing_without_a_restart(
    tmp_path: Path, faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rattan")
    store = FaultyStore(str(tmp_path / "faults.db"))
    engine = rattan.Engine(store, components=REG, workers=4, sweep_seconds=0.2)
    runs = pipelines(24)
    deadline = time.monotonic() + 120
    driver = FaultDriver(faults)
    try:
        # first a full disk alone: storing a run needs the file to grow, and SQLite refuses
        faults.full = True
        with pytest.raises(BackendUnavailableError, match="database or disk is full"):
            engine.run_pipeline(runs[0][0])
        faults.full = False
        assert not engine.get_state_or_none(runs[0][0]["id"]), "a refused run left rows behind"
        driver.start()
        for tree, _ in runs:

            def submit(tree: dict[str, Any] = tree) -> None:
                try:
                    engine.run_pipeline(tree)
                except InvalidOperationError as exc:  # an earlier try did commit after all
                    assert "already used" in str(exc), exc

            retrying(submit, deadline)
        # callbacks, sent while the store still fails now and then
        sent: list[str] = []
        for _, waits in runs:
            for node_id in waits:
                version = _wait_running(engine, node_id, deadline)
                data = f"cb-{node_id}"
                retrying(
                    lambda n=node_id, v=version, d=data: engine.callback(n, v, d, idempotency_key=d), deadline
                )
                sent.append(data)
        driver.finish()  # the fault window ends; from here on the same engine must finish everything
        for tree, _ in runs:
            _wait_finished(engine, tree["id"], deadline)
    finally:
        driver.stop()
        engine.close(timeout=10)

    assert sum(faults.injected.values()) >= 5, f"too few faults to mean anything: {faults.injected}"
    kept = [r.getMessage() for r in caplog.records if "store unavailable" in r.getMessage()]
    assert len(kept) >= 3, f"rounds and messages did not meet the failing store: {kept}"
    repeated = {k: n for k, n in LAB.steps.items() if n != 1}
    assert not repeated, f"user steps run more than once: {repeated}"
    executes = [k for k in LAB.steps if k[0] == "execute"]
    # every activity ran once: 3 per chain, 3 per parallel, 3 per subprocess run, 2 per callback run
    assert len(executes) == 6 * 3 + 6 * 3 + 6 * 3 + 6 * 2
    polls = [k for k in LAB.steps if k[0] == "poll"]
    assert len(polls) == 18 * 3  # 18 polling nodes, 3 polls each
    assert LAB.callbacks == Counter({d: 1 for d in sent})


def _wait_running(engine: rattan.Engine, node_id: str, deadline: float) -> str:
    while True:
        try:
            st = engine.get_state_or_none(node_id)
            if st is not None and st.name == "RUNNING":
                sched = engine.get_schedule_with_node_and_version(node_id, st.version)
                if sched is not None:
                    return st.version
        except (BackendUnavailableError, rattan.NotFoundError):
            pass
        assert time.monotonic() < deadline, f"node {node_id} never waited for its callback"
        time.sleep(0.01)


def _wait_finished(engine: rattan.Engine, root_id: str, deadline: float) -> None:
    while True:
        try:
            if engine.is_finished(root_id):
                return
        except BackendUnavailableError:
            pass
        if time.monotonic() > deadline:
            st = engine.get_pipeline_states(root_id)
            raise AssertionError(f"pipeline {root_id} did not finish: {st}")
        time.sleep(0.01)

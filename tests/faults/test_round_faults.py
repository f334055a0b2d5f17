"""Regressions of the store-failure paths, one failure at a time: a round whose commit fails keeps
its work (nothing dropped, nothing recomputed), ``wait_idle`` does not call an engine idle while it
still holds such work, and an engine error is logged with its traceback and fails its node only."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from faulty import Faults, FaultyConnection, FaultyStore

import rattan
from rattan.builder import (
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ServiceActivity,
    build_tree,
)

pytestmark = pytest.mark.timeout(60)


class Once(rattan.Service):
    runs: Counter[str] = Counter()
    lock = threading.Lock()
    gate = threading.Event()  # execute returns once the test opens it

    def execute(self, data: Any, parent_data: Any) -> bool:
        assert Once.gate.wait(20), "the test never opened the gate"
        with Once.lock:
            Once.runs[self.id] += 1
        data.outputs["value"] = 42
        return True


REG = rattan.Registry("round-faults")


class OnceComponent(rattan.Component, registry=REG):
    code = "rf_once"
    name = "once"
    bound_service = Once


class CommitsFail(Faults):
    """Every COMMIT fails while ``on`` is set (SQLite's own "disk I/O error")."""

    def __init__(self) -> None:
        super().__init__(0)
        self.on = threading.Event()

    def pick(self, sql: str) -> str | None:
        if self.on.is_set() and sql.strip().upper() == "COMMIT":
            self.injected["disk I/O error"] += 1
            return "disk I/O error"
        return None


class WritesBreakAConstraint(Faults):
    """The first ``times`` writes after ``on`` is set fail as a broken constraint would."""

    def __init__(self, times: int) -> None:
        super().__init__(0)
        self.on = threading.Event()
        self.left = times

    def pick(self, sql: str) -> str | None:
        if not self.on.is_set() or not sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return None
        with self.lock:
            if self.left <= 0:
                return None
            self.left -= 1
            self.injected["UNIQUE constraint failed"] += 1
            return "UNIQUE constraint failed"


def chain(n: int) -> tuple[dict[str, Any], list[str]]:
    start = EmptyStartEvent()
    acts = [ServiceActivity(component_code="rf_once") for _ in range(n)]
    cur: Any = start
    for a in acts:
        cur = cur.extend(a)
    cur.extend(EmptyEndEvent())
    return build_tree(start), [a.id for a in acts]


def wait_until(fn: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_a_round_whose_commit_fails_keeps_its_results_and_records_them_once_the_store_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rattan")
    faults = CommitsFail()
    FaultyConnection.faults = faults
    engine = rattan.Engine(FaultyStore(str(tmp_path / "r.db")), components=REG, workers=2)
    try:
        tree, acts = chain(3)
        engine.run_pipeline(tree)
        wait_until(lambda: engine.get_state_or_none(acts[0]) is not None)  # execute is running
        faults.on.set()
        Once.gate.set()  # its result arrives now: the round that records it cannot commit
        wait_until(lambda: faults.injected["disk I/O error"] >= 3)
        # the engine holds the result of a user step it could not record: it is not idle
        assert engine.wait_idle(0.2) is False
        faults.on.clear()
        wait_until(lambda: engine.is_finished(tree["id"]))
        assert engine.wait_idle(5) is True
    finally:
        FaultyConnection.faults = None
        engine.close(timeout=10)
    assert {a: Once.runs[a] for a in acts} == dict.fromkeys(acts, 1)  # recorded, never recomputed
    kept = [r.getMessage() for r in caplog.records if "tokens kept" in r.getMessage()]
    assert kept and all("disk I/O error" in m for m in kept), kept


def test_an_engine_error_is_logged_with_its_traceback_and_fails_its_node_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rattan.engine import nodes

    def broken(*args: Any) -> Any:
        raise RuntimeError("the gateway handler broke")

    monkeypatch.setattr(nodes, "_exclusive", broken)
    caplog.set_level(logging.ERROR, logger="rattan")
    with rattan.Engine(f"sqlite:///{tmp_path / 'e.db'}", components=REG) as engine:
        start = EmptyStartEvent()
        gw = ExclusiveGateway(conditions={0: "True == True"})
        end = EmptyEndEvent()
        start.extend(gw).connect(end)
        broken_tree = build_tree(start)
        fine_tree, _ = chain(2)
        engine.run_pipeline(broken_tree)
        engine.run_pipeline(fine_tree)
        wait_until(lambda: engine.is_finished(fine_tree["id"]))
        # the token's step is undone whole: the node it stood at when the step began is failed
        wait_until(lambda: (st := engine.get_state_or_none(start.id)) is not None and st.name == "FAILED")
        ex_data = engine.get_execution_data_outputs(start.id)["ex_data"]
        assert ex_data == "engine error: RuntimeError: the gateway handler broke"
        assert engine.get_state_or_none(gw.id) is None
        assert engine.get_state(broken_tree["id"]).name == "RUNNING"  # the run waits for an operator
    record = next(r for r in caplog.records if "engine error while advancing token" in r.getMessage())
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    text = logging.Formatter().format(record)
    assert "Traceback (most recent call last)" in text and "the gateway handler broke" in text
    assert "NoneType: None" not in text


def test_a_failed_commit_fails_every_member_of_its_group(tmp_path: Path) -> None:
    """Units of several threads share one transaction; when its COMMIT fails, each of them is
    told so (before, only the first member to look saw the failure: the others reported success
    for writes that were rolled back)."""
    from rattan.model.records import ContextRow

    faults = CommitsFail()
    FaultyConnection.faults = faults
    store = FaultyStore(str(tmp_path / "g.db"))
    outcome: dict[int, str] = {}
    start = threading.Barrier(8)

    def member(i: int) -> None:
        start.wait()
        try:
            store.unit(lambda tx: tx.put_context([ContextRow("p", f"k{i}", 1, i)]))
            outcome[i] = "committed"
        except rattan.errors.BackendUnavailableError as exc:
            outcome[i] = "failed" if "disk I/O error" in str(exc) else str(exc)

    try:
        faults.on.set()
        threads = [threading.Thread(target=member, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert outcome == dict.fromkeys(range(8), "failed")
        assert store.read(lambda tx: tx.context("p")) == {}
        faults.on.clear()
        store.unit(lambda tx: tx.put_context([ContextRow("p", "after", 1, "ok")]))
        assert store.read(lambda tx: tx.context("p")) == {"after": (1, "ok", None)}
    finally:
        FaultyConnection.faults = None
        store.close()


def test_a_broken_constraint_in_a_round_is_a_conflict_that_drops_no_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An IntegrityError inside a round's unit of work is a conflict: the round's tokens are kept
    and stepped again (before, it was reported as an unavailable store and the batch was
    dropped, leaving pipelines RUNNING forever)."""
    caplog.set_level(logging.WARNING, logger="rattan")
    faults = WritesBreakAConstraint(times=3)
    FaultyConnection.faults = faults
    engine = rattan.Engine(FaultyStore(str(tmp_path / "c.db")), components=REG, workers=2)
    try:
        runs = [chain(3) for _ in range(4)]
        Once.gate.clear()
        for tree, _ in runs:
            engine.run_pipeline(tree)
        # some executes run (as many as the workers allow): their results arrive under the faults
        wait_until(lambda: any(engine.get_state_or_none(acts[0]) is not None for _, acts in runs))
        faults.on.set()
        Once.gate.set()  # the executes finish now: the rounds that record them meet the faults
        for tree, _ in runs:
            wait_until(lambda tree=tree: engine.is_finished(tree["id"]))
        assert engine.wait_idle(5) is True
    finally:
        FaultyConnection.faults = None
        engine.close(timeout=10)
    assert faults.injected["UNIQUE constraint failed"] == 3
    acts = [a for _, chain_acts in runs for a in chain_acts]
    assert {a: Once.runs[a] for a in acts} == dict.fromkeys(acts, 1)  # nothing lost, nothing twice
    unavailable = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage().lower()]
    assert unavailable == []  # a conflict is not reported as a store that cannot be reached

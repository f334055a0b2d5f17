"""The whole engine on the PostgreSQL store with the thread dispatcher: pipelines with parallel
branches, a callback, a poll and a subprocess run to FINISHED, with their outputs stored."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.testing.postgres import ENV_REQUIRE, schema_url

if os.environ.get(ENV_REQUIRE) != "1":  # CI fails on a missing driver instead of skipping
    pytest.importorskip("psycopg")

pytestmark = pytest.mark.timeout(120)
WAIT = 60.0


class Ok(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.got = data.inputs.get("n", 0)
        data.outputs.doubled = data.inputs.get("n", 0) * 2
        return True


class WaitCallback(rattan.Service):
    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.started = True
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.cb = callback_data
        self.finish_schedule()
        return True


class PollTwice(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0)

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.polls = 0
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.polls += 1
        if data.outputs.polls == 2:
            self.finish_schedule()
        return True


def _registry() -> rattan.Registry:
    reg = rattan.Registry("pg-engine")
    for code, service in (("pg_ok", Ok), ("pg_cb", WaitCallback), ("pg_poll", PollTwice)):
        type(f"Comp_{code}", (rattan.Component,), {"name": code, "code": code, "bound_service": service},
             registry=reg)  # fmt: skip
    return reg


def _url(postgres_url: str, tmp_path: Path) -> str:
    return schema_url(postgres_url, "e_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:24])


@pytest.fixture
def pg_engine(postgres_url: str, tmp_path: Path) -> Iterator[Callable[..., rattan.Engine]]:
    """Engines on a schema of this test's own in the session's PostgreSQL database."""
    url = _url(postgres_url, tmp_path)
    reg = _registry()
    made: list[rattan.Engine] = []

    def make(**overrides: Any) -> rattan.Engine:
        engine = rattan.Engine(url, components=reg, **overrides)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close(timeout=10)


def _act(code: str, n: int | None = None) -> ServiceActivity:
    act = ServiceActivity(component_code=code)
    if n is not None:
        act.component.inputs.n = Var(type=Var.PLAIN, value=n)
    return act


def _pipeline() -> tuple[dict[str, Any], dict[str, ServiceActivity]]:
    """start -> parallel(ok, callback, subprocess(poll -> ok)) -> converge -> ok -> end."""
    inner_start, poll, inner_ok, inner_end = (
        EmptyStartEvent(),
        _act("pg_poll"),
        _act("pg_ok", 5),
        EmptyEndEvent(),
    )
    inner_start.extend(poll).extend(inner_ok).extend(inner_end)
    sub = SubProcess(start=inner_start, name="inner")
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    left, cb, last = _act("pg_ok", 1), _act("pg_cb"), _act("pg_ok", 7)
    start.extend(pg).connect(left, cb, sub).to(pg).converge(cg).extend(last).extend(end)
    acts = {"left": left, "cb": cb, "poll": poll, "inner_ok": inner_ok, "last": last}
    return build_tree(start), acts


def _wait(check: Callable[[], Any], what: str) -> Any:
    import time

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"{what} within {WAIT} s")


def _finish(engine: rattan.Engine, tree: dict[str, Any], acts: dict[str, ServiceActivity]) -> None:
    """Wait for the callback node, call it back, wait for the run to finish."""
    cb = acts["cb"].id
    state = _wait(
        lambda: (s := engine.get_state_or_none(cb)) is not None and s.name == "RUNNING" and s,
        f"callback node {cb} not RUNNING",
    )
    _wait(lambda: api.get_execution_data_outputs(engine, cb).data.get("started"), "execute not run")
    res = api.callback(engine, cb, state.version, {"answer": 42})
    assert res.result, res.message
    _wait(lambda: engine.is_finished(tree["id"]), f"run {tree['id']} not FINISHED")


def _check(engine: rattan.Engine, tree: dict[str, Any], acts: dict[str, ServiceActivity]) -> None:
    root = tree["id"]
    assert engine.get_state(root).name == "FINISHED"
    states = api.get_pipeline_states(engine, root).data[root]["children"]
    assert {entry["state"] for entry in states.values()} == {"FINISHED"}
    assert set(states) >= {a.id for a in acts.values()}

    def out(name: str) -> dict[str, Any]:
        return dict(api.get_execution_data_outputs(engine, acts[name].id).data)

    assert (out("left")["got"], out("left")["doubled"]) == (1, 2)
    assert out("cb")["cb"] == {"answer": 42}
    assert out("poll")["polls"] == 2
    assert out("inner_ok")["doubled"] == 10
    assert out("last")["doubled"] == 14


def test_a_parallel_pipeline_with_a_callback_a_poll_and_a_subprocess_finishes(
    pg_engine: Callable[..., rattan.Engine],
) -> None:
    engine = pg_engine()
    tree, acts = _pipeline()
    assert api.run_pipeline(engine, tree).result
    _finish(engine, tree, acts)
    _check(engine, tree, acts)
    # the durable event log holds the run's events, in order, each once
    events = engine.core.store.read(lambda r: r.events(0, tree["id"], 10_000))
    assert events and [e.id for e in events] == sorted({e.id for e in events})


def test_a_tree_whose_ids_another_run_holds_is_refused_and_stores_nothing(
    pg_engine: Callable[..., rattan.Engine],
) -> None:
    """create_run's inserts travel with the unit's other writes; an id in use fails the whole unit
    at its commit, and run_pipeline says which id, as on SQLite."""
    engine = pg_engine()
    tree, acts = _pipeline()
    assert api.run_pipeline(engine, tree).result
    again = api.run_pipeline(engine, tree)
    assert not again.result
    assert again.message == f"pipeline id {tree['id']} is already used by another run; build a new tree"
    other, theirs = _pipeline()
    # one node id of the first run, everywhere the second tree names its own node
    other = json.loads(json.dumps(other).replace(theirs["left"].id, acts["left"].id))
    shared = api.run_pipeline(engine, other)
    assert not shared.result and "node ids already used by another run" in shared.message
    assert engine.core.store.read(lambda r: r.run(other["id"])) is None
    assert engine.core.store.read(lambda r: r.states([other["id"]])) == []
    _finish(engine, tree, acts)
    _check(engine, tree, acts)


def test_many_runs_at_once_on_two_engines_all_finish(pg_engine: Callable[..., rattan.Engine]) -> None:
    engines = [pg_engine(), pg_engine()]
    runs = []
    for i in range(10):
        tree, acts = _pipeline()
        assert api.run_pipeline(engines[i % 2], tree).result
        runs.append((tree, acts))
    for i, (tree, acts) in enumerate(runs):
        _finish(engines[i % 2], tree, acts)
    for tree, acts in runs:
        _check(engines[0], tree, acts)


def _child_runs(url: str, count: int, out: str) -> None:
    """A spawned engine process: submit ``count`` pipelines, name them in ``out``, stay up until
    all of them are FINISHED (the parent calls their callback nodes back)."""
    engine = rattan.Engine(url, components=_registry(), sweep_seconds=0.1)
    try:
        runs = []
        for _ in range(count):
            tree, acts = _pipeline()
            assert api.run_pipeline(engine, tree).result
            runs.append({"root": tree["id"], "cb": acts["cb"].id})
        Path(out).write_text(json.dumps(runs))
        _wait(lambda: all(engine.is_finished(r["root"]) for r in runs), "the child's runs did not finish")
    finally:
        engine.close(timeout=10)


def test_callbacks_sent_from_another_process_finish_its_runs(postgres_url: str, tmp_path: Path) -> None:
    """One engine process runs the pipelines; another (an engine that runs no workers) sends the
    callbacks: they are stored, claimed through the lease of the process that owns the waiting
    node, and applied there."""
    url = _url(postgres_url, tmp_path)
    out = tmp_path / "runs.json"
    child = multiprocessing.get_context("spawn").Process(target=_child_runs, args=(url, 4, str(out)))
    child.start()
    try:
        _wait(out.exists, "the child named no runs")
        runs = json.loads(out.read_text())
        with rattan.Engine(url, components=_registry(), start=False) as ctl:
            for run in runs:
                state = _wait(
                    lambda run=run: (s := ctl.get_state_or_none(run["cb"])) is not None
                    and s.name == "RUNNING" and s,
                    "callback node not RUNNING",
                )  # fmt: skip
                _wait(
                    lambda run=run: api.get_execution_data_outputs(ctl, run["cb"]).data.get("started"),
                    "no execute",
                )
                assert api.callback(ctl, run["cb"], state.version, {"answer": 42}).result
            _wait(lambda: all(ctl.is_finished(r["root"]) for r in runs), "runs not FINISHED")
            for run in runs:
                assert dict(api.get_execution_data_outputs(ctl, run["cb"]).data)["cb"] == {"answer": 42}
        child.join(WAIT)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)

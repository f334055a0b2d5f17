"""Helpers of the rollback tests: recording components, bounded polling, state snapshots."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rattan
from rattan import api

DEFAULT_TIMEOUT = 10.0


def wait_for(fn: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.005) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


def state_name(engine: rattan.Engine, node_id: str) -> str | None:
    st = engine.get_state_or_none(node_id)
    return None if st is None else st.name


def wait_state(engine: rattan.Engine, node_id: str, state: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    try:
        return wait_for(lambda: state_name(engine, node_id) == state, timeout)
    except AssertionError:
        raise AssertionError(
            f"node {node_id} not {state} within {timeout}s: now {state_name(engine, node_id)!r}"
        ) from None


def wait_idle(engine: rattan.Engine) -> None:
    assert engine.wait_idle(DEFAULT_TIMEOUT), "engine not idle"


def run(engine: rattan.Engine, tree: dict[str, Any], **kwargs: Any) -> str:
    res = api.run_pipeline(engine, tree, **kwargs)
    assert res.result, (res.message, res.exc_trace)
    return str(tree["id"])


def node_states(engine: rattan.Engine, root_id: str) -> dict[str, str]:
    """``{node_id: state}`` of every state under ``root_id`` (root excluded)."""
    res = api.get_pipeline_states(engine, root_id)
    assert res.result, res.message
    if not res.data:
        return {}
    return {nid: entry["state"] for nid, entry in res.data[root_id]["children"].items()}


def snapshot(engine: rattan.Engine, root_id: str) -> dict[str, Any]:
    """Everything a refused call must leave unchanged: states (name and version) and tokens."""
    res = api.get_pipeline_states(engine, root_id)
    assert res.result
    root = res.data[root_id]
    out: dict[str, Any] = {root_id: (root["state"], root["version"])}
    for nid, entry in root["children"].items():
        out[nid] = (entry["state"], entry["version"])
    out["processes"] = rows(
        engine, "SELECT id, current, status FROM processes WHERE root_id=? ORDER BY id", root_id
    )
    out["plans"] = rows(
        engine, "SELECT start_node_id, target_node_id, expired FROM rollback_plans WHERE root_id=?", root_id
    )
    out["jobs"] = rows(engine, "SELECT status FROM rollback_jobs WHERE root_id=?", root_id)
    return out


def rows(engine: rattan.Engine, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``?`` placeholders) on the engine's store, SQLite or PostgreSQL (the suite
    runs on either: tests/conftest.py ``test_store``)."""
    with engine._store.raw() as conn:
        if type(conn).__module__.startswith("psycopg"):
            sql = sql.replace("?", "%s")
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]


@dataclass
class Recorder:
    """What the recording components saw: execute and rollback calls, in order."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # node name -> results its rollback() returns, one per call (then True)
    rollback_results: dict[str, list[Any]] = field(default_factory=dict)
    # node name -> event its rollback() waits for
    rollback_gates: dict[str, threading.Event] = field(default_factory=dict)
    # node name -> number of times execute() fails before succeeding
    fail_execute: dict[str, int] = field(default_factory=dict)

    def add(self, *call: Any) -> None:
        with self.lock:
            self.calls.append(call)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        with self.lock:
            return [c[1:] for c in self.calls if c[0] == kind]


def define_components(reg: rattan.Registry, rec: Recorder) -> None:
    """``step``: outputs ``n`` (input ``n``) and ``seen`` (the root data ``x``); records calls.
    Its rollback records (name, inputs, outputs, parent inputs, rollback_data, runtime attrs)."""

    class StepService(rattan.Service):
        def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
            name = data.get_one_of_inputs("name")
            rec.add("execute", name, data.get_one_of_inputs("n"))
            left = rec.fail_execute.get(name, 0)
            if left:
                rec.fail_execute[name] = left - 1
                return False
            data.set_outputs("n", data.get_one_of_inputs("n"))
            data.set_outputs("seen", parent_data.get_one_of_inputs("x"))
            return True

        def rollback(
            self, data: rattan.DataObject, parent_data: rattan.DataObject, rollback_data: Any = None
        ) -> Any:
            name = data.get_one_of_inputs("name")
            rec.add(
                "rollback",
                name,
                dict(data.inputs),
                {k: v for k, v in data.outputs.items() if not k.startswith("_")},
                dict(parent_data.inputs),
                rollback_data,
                (self.id, self.root_pipeline_id, self.loop),
            )
            gate = rec.rollback_gates.get(name)
            if gate is not None:
                assert gate.wait(DEFAULT_TIMEOUT)
            results = rec.rollback_results.get(name)
            if results:
                result = results.pop(0)
                if isinstance(result, BaseException):
                    raise result
                return result
            return True

    class StepComponent(rattan.Component, registry=reg):
        name = "step"
        code = "step"
        bound_service = StepService

    class WaitService(rattan.Service):
        """Polls until the gate named by input ``gate`` is set."""

        __need_schedule__ = True
        interval = rattan.StaticIntervalGenerator(0.01)

        def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
            rec.add("execute", data.get_one_of_inputs("name"), None)
            return True

        def schedule(
            self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
        ) -> bool:
            gate = rec.rollback_gates.get("wait:" + data.get_one_of_inputs("name"))
            if gate is None or gate.is_set():
                self.finish_schedule()
            return True

        def rollback(
            self, data: rattan.DataObject, parent_data: rattan.DataObject, rollback_data: Any = None
        ) -> bool:
            rec.add("rollback", data.get_one_of_inputs("name"), {}, {}, {}, rollback_data, ())
            return True

    class WaitComponent(rattan.Component, registry=reg):
        name = "wait"
        code = "wait"
        bound_service = WaitService


def act(name: str, n: Any = 0, code: str = "step", **extra: Any) -> Any:
    """A service activity of the recording components, named ``name``."""
    from rattan.builder import ServiceActivity, Var

    node = ServiceActivity(name=name, component_code=code, **extra)
    node.component.inputs.name = Var(type=Var.PLAIN, value=name)
    node.component.inputs.n = (
        Var(type=Var.SPLICE, value=n) if isinstance(n, str) else Var(type=Var.PLAIN, value=n)
    )
    return node


def sequence(*names: str, n: Any = 0, data: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """start -> names... -> end; returns (tree, {name: node id, "start": …, "end": …})."""
    from rattan.builder import EmptyEndEvent, EmptyStartEvent, build_tree

    start, end = EmptyStartEvent(), EmptyEndEvent()
    nodes = [act(name, n) for name in names]
    cur = start
    for node in nodes:
        cur = cur.extend(node)
    cur.extend(end)
    ids = {name: node.id for name, node in zip(names, nodes, strict=True)}
    ids["start"], ids["end"] = start.id, end.id
    return build_tree(start, data=data), ids

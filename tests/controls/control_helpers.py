"""Helpers of the operator-control tests (SPEC 7.2-7.4): a ``Lab`` of test components whose calls
are recorded with timestamps, gates that hold ``execute`` open, and bounded polling helpers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from waits import (  # re-exported: the suite imports them from here
    DEFAULT_TIMEOUT as DEFAULT_TIMEOUT,
)
from waits import (
    state_name as state_name,
)
from waits import (
    wait_finished as wait_finished,
)
from waits import (
    wait_for as wait_for,
)
from waits import (
    wait_idle as wait_idle,
)
from waits import (
    wait_state as wait_state,
)

GATE_TIMEOUT = 30.0


# -- bounded polling -------------------------------------------------------------------------------


def wait_schedule(engine: rattan.Engine, node_id: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Wait until ``node_id`` is RUNNING with a stored schedule for its current version (the node
    is waiting for polls or callbacks); return that version."""

    def check() -> str | None:
        st = engine.get_state_or_none(node_id)
        if st is None or st.name != "RUNNING":
            return None
        try:
            engine.get_schedule_with_node_and_version(node_id, st.version)
        except rattan.NotFoundError:
            return None
        return str(st.version)

    return str(wait_for(check, timeout))


def run(engine: rattan.Engine, tree: dict[str, Any], **kwargs: Any) -> str:
    res = api.run_pipeline(engine, tree, **kwargs)
    assert res.result, (res.message, res.exc_trace)
    return str(tree["id"])


def states_of(engine: rattan.Engine, root_id: str) -> dict[str, dict[str, Any]]:
    """Every entry of ``get_pipeline_states`` under ``root_id`` (root excluded), by node id."""
    res = api.get_pipeline_states(engine, root_id)
    assert res.result, res.message
    return dict(res.data[root_id]["children"]) if res.data else {}


def node_states(engine: rattan.Engine, root_id: str) -> dict[str, str]:
    return {nid: e["state"] for nid, e in states_of(engine, root_id).items()}


def root_state(engine: rattan.Engine, root_id: str) -> str:
    res = api.get_pipeline_states(engine, root_id)
    assert res.result, res.message
    return str(res.data[root_id]["state"])


def counters(engine: rattan.Engine, root_id: str, node_id: str) -> tuple[str, int, bool]:
    """``(state, retry, skip)`` of a node as ``get_pipeline_states`` reports it."""
    e = states_of(engine, root_id)[node_id]
    return e["state"], e["retry"], e["skip"]


def outputs(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_outputs(engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def inputs(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_inputs(engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def histories(engine: rattan.Engine, node_id: str) -> list[dict[str, Any]]:
    res = api.get_node_histories(engine, node_id)
    assert res.result, res.message
    return list(res.data)


def short_histories(engine: rattan.Engine, node_id: str) -> list[dict[str, Any]]:
    res = api.get_node_short_histories(engine, node_id)
    assert res.result, res.message
    return list(res.data)


def events(engine: rattan.Engine, root_id: str, types: set[str] | None = None) -> list[tuple[str, Any]]:
    """``(event_type, node_id)`` of the durable log of ``root_id`` (filtered by type)."""
    return [
        (e["event_type"], e["node_id"])
        for e in engine.events(root_id)
        if types is None or e["event_type"] in types
    ]


def event_data(engine: rattan.Engine, root_id: str, event_type: str) -> list[dict[str, Any]]:
    return [e["data"] for e in engine.events(root_id) if e["event_type"] == event_type]


def refused(res: api.EngineAPIResult, exc_type: type[BaseException]) -> str:
    """Assert ``res`` is a refusal carrying an ``exc_type``; return its message."""
    assert isinstance(res, api.EngineAPIResult)
    assert res.result is False, res
    assert isinstance(res.exc, exc_type), repr(res.exc)
    assert res.data is None
    return str(res.exc)


def ok(res: api.EngineAPIResult) -> None:
    assert isinstance(res, api.EngineAPIResult)
    assert res.result is True, (res.message, res.exc_trace)
    assert res.exc is None


# -- the lab: recording test components ----------------------------------------------------------
@dataclass
class Call:
    kind: str  # execute / execute_done / schedule / cancel
    node_id: str
    version: str
    payload: Any
    at: float  # time.monotonic()


@dataclass
class Lab:
    """Shared, thread-safe record of what the test components did, and knobs that drive them."""

    calls: list[Call] = field(default_factory=list)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    fail_budget: dict[str, int] = field(default_factory=dict)  # failing executes left per node
    finish: set[str] = field(default_factory=set)  # POLL nodes told to finish at their next poll
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, node_id: str, version: str, payload: Any = None) -> None:
        with self.lock:
            self.calls.append(Call(kind, node_id, version, payload, time.monotonic()))

    def of(self, kind: str, node_id: str | None = None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.kind == kind and (node_id is None or c.node_id == node_id)]

    def count(self, kind: str, node_id: str | None = None) -> int:
        return len(self.of(kind, node_id))

    def gate(self, node_id: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(node_id, threading.Event())

    def open(self, node_id: str) -> None:
        self.gate(node_id).set()

    def take_failure(self, node_id: str, default: int = 1) -> bool:
        with self.lock:
            left = self.fail_budget.setdefault(node_id, default)
            if left > 0:
                self.fail_budget[node_id] = left - 1
                return True
            return False


def install(reg: rattan.Registry, lab: Lab, poll_interval: float = 0.1) -> None:
    """Register the lab's components in ``reg``:

    - ``c_ok``: succeeds at once.
    - ``c_fail``: fails (``ex_data`` ``boom``) while the node's fail budget lasts (default 1).
    - ``c_raise_once``: raises ValueError once per node, then succeeds.
    - ``c_block``: ``execute`` waits for the node's gate, then succeeds (input ``result`` decides).
    - ``c_poll``: POLL every ``poll_interval`` s; finishes at poll number ``polls`` (input) or when
      the node id is in ``lab.finish``; records every poll; ``cancel`` recorded.
    - ``c_poll_block``: like ``c_poll`` but ``execute`` waits for the node's gate first.
    - ``c_poll_default``: POLL with ``DefaultIntervalGenerator`` (1, 4, 9 s), finishes at poll 2.
    - ``c_poll_null``: POLL with ``NullIntervalGenerator`` (never finishes by itself).
    - ``c_cb``: CALLBACK; ``schedule`` stores the payload in outputs ``got``; payload
      ``{"fail": True}`` makes it fail.
    - ``c_mcb``: MULTIPLE_CALLBACK; appends every payload to outputs ``received``; the payload
      ``"finish"`` calls ``finish_schedule()``.
    """

    class Recording(rattan.Service):
        def cancel(self, data: Any, parent_data: Any) -> None:
            lab.record("cancel", self.id, self.version)

    class Ok(Recording):
        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            data.outputs.done = True
            return True

    class Fail(Recording):
        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            if lab.take_failure(self.id):
                data.outputs.ex_data = "boom"
                return False
            data.outputs.done = True
            return True

    class RaiseOnce(Recording):
        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            if lab.take_failure(self.id):
                raise ValueError("raised once")
            return True

    class Block(Recording):
        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            lab.gate(self.id).wait(GATE_TIMEOUT)
            lab.record("execute_done", self.id, self.version)
            data.outputs.done = True
            return bool(data.inputs.get("result", True))

    class Poll(Recording):
        __need_schedule__ = True
        interval = rattan.StaticIntervalGenerator(poll_interval)

        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            data.outputs.polls = 0
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            n = data.outputs.polls + 1
            data.outputs.polls = n
            lab.record("schedule", self.id, self.version, n)
            target = data.inputs.get("polls")
            if (target is not None and n >= target) or self.id in lab.finish:
                self.finish_schedule()
            return True

    class PollBlock(Poll):
        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            lab.gate(self.id).wait(GATE_TIMEOUT)
            lab.record("execute_done", self.id, self.version)
            data.outputs.polls = 0
            return True

    class PollDefault(Poll):
        interval = rattan.DefaultIntervalGenerator()

    class PollNull(Poll):
        interval = rattan.NullIntervalGenerator()

    class Cb(Recording):
        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            lab.record("schedule", self.id, self.version, callback_data)
            data.outputs.got = callback_data
            return not (isinstance(callback_data, dict) and callback_data.get("fail"))

    class Mcb(Recording):
        __need_schedule__ = True
        __multi_callback_enabled__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version, dict(data.inputs))
            data.outputs.received = []
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            lab.record("schedule", self.id, self.version, callback_data)
            data.outputs.received = [*data.outputs.received, callback_data]
            if callback_data == "finish":
                self.finish_schedule()
            return True

    for code, service in {
        "c_ok": Ok,
        "c_fail": Fail,
        "c_raise_once": RaiseOnce,
        "c_block": Block,
        "c_poll": Poll,
        "c_poll_block": PollBlock,
        "c_poll_default": PollDefault,
        "c_poll_null": PollNull,
        "c_cb": Cb,
        "c_mcb": Mcb,
    }.items():
        type(
            f"Comp_{code}",
            (rattan.Component,),
            {"name": code, "code": code, "bound_service": service},
            registry=reg,
        )


# -- trees -------------------------------------------------------------------------------------------
def act(code: str, *, name: str | None = None, **node_inputs: Any) -> ServiceActivity:
    """A service activity of the lab's component ``code`` with plain inputs (ServiceActivity
    keywords ``retryable``, ``skippable``, ``error_ignorable`` pass through)."""
    flags = {k: node_inputs.pop(k) for k in ("retryable", "skippable", "error_ignorable") if k in node_inputs}
    node = ServiceActivity(component_code=code, name=name, **flags)
    for key, value in node_inputs.items():
        node.component.inputs[key] = value if isinstance(value, Var) else Var(type=Var.PLAIN, value=value)
    return node


def chain(*acts: Any, data: Any = None) -> tuple[dict[str, Any], Any, Any]:
    """``start → acts… → end``; returns (tree, start, end)."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    cur: Any = start
    for a in acts:
        cur = cur.extend(a)
    cur.extend(end)
    return build_tree(start, data=data), start, end


def flows_of(tree: dict[str, Any], gateway_id: str) -> dict[str, str]:
    """``{target node id: flow id}`` of a gateway's outgoing flows."""
    gw = tree["gateways"][gateway_id]
    return {tree["flows"][fid]["target"]: fid for fid in gw["outgoing"]}

"""Callbacks that arrive while the node's ``execute`` still runs (an outside system that answers
fast): kept in the durable inbox and applied once the node waits, or refused (with an event saying
why) when the node moves on without waiting. Late and wrong callbacks get their own errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from control_helpers import Lab, act, chain, event_data, ok, outputs, refused, run, wait_for, wait_state

import rattan
from rattan import api
from rattan.errors import InvalidOperationError, NotFoundError, ScheduleFinishedError
from rattan.model.records import CALLBACK_APPLIED, CALLBACK_PENDING, CALLBACK_REFUSED
from rattan.runtime.interface import CallbackQuery

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _blocking_callback_components(reg: rattan.Registry, lab: Lab) -> None:
    """``c_cb_block`` / ``c_mcb_block``: CALLBACK / MULTIPLE_CALLBACK services whose ``execute``
    waits for the node's gate (input ``result`` decides its outcome)."""

    class CbBlock(rattan.Service):
        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            lab.record("execute", self.id, self.version)
            lab.gate(self.id).wait(20)
            return bool(data.inputs.get("result", True))

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            lab.record("schedule", self.id, self.version, callback_data)
            data.outputs.got = callback_data
            return True

    class McbBlock(CbBlock):
        __multi_callback_enabled__ = True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            lab.record("schedule", self.id, self.version, callback_data)
            data.outputs.received = [*(data.outputs.get("received") or []), callback_data]
            if callback_data == "finish":
                self.finish_schedule()
            return True

    for code, service in (("c_cb_block", CbBlock), ("c_mcb_block", McbBlock)):
        type(f"Comp_{code}", (rattan.Component,), {"name": code, "code": code, "bound_service": service},
             registry=reg)  # fmt: skip


@pytest.fixture
def fast_sweep(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    """An engine that sweeps every 0.05 s (refusing stale early callbacks soon)."""
    return make_engine(sweep_seconds=0.05)


def _callbacks(engine: rattan.Engine, node_id: str) -> list[tuple[Any, int]]:
    found = engine.core.store.read(lambda tx: tx.waits(CallbackQuery(node_id=node_id)))
    return [(cb.data, cb.applied) for cb in found]


def _executing(engine: rattan.Engine, lab: Lab, node_id: str) -> str:
    """Wait until the node's execute runs; return the node's version."""
    wait_for(lambda: lab.count("execute", node_id) == 1)
    return engine.get_state(node_id).version


def test_a_callback_during_execute_is_applied_once_the_node_waits(engine: rattan.Engine, lab: Lab) -> None:
    node = act("c_cb_block")
    tree, _, _ = chain(node)
    root = run(engine, tree)
    version = _executing(engine, lab, node.id)
    res = api.callback(engine, node.id, version, {"answer": 42})
    ok(res)
    assert isinstance(res.data, int)
    assert _callbacks(engine, node.id) == [({"answer": 42}, CALLBACK_PENDING)]
    lab.open(node.id)
    wait_state(engine, root, "FINISHED")
    assert outputs(engine, node.id)["got"] == {"answer": 42}
    assert [c.payload for c in lab.of("schedule", node.id)] == [{"answer": 42}]
    assert _callbacks(engine, node.id) == [({"answer": 42}, CALLBACK_APPLIED)]
    assert [d["data"] for d in event_data(engine, root, "post_callback")] == [{"answer": 42}]


def test_early_callbacks_of_a_multi_callback_node_are_applied_in_arrival_order(
    engine: rattan.Engine, lab: Lab
) -> None:
    node = act("c_mcb_block")
    tree, _, _ = chain(node)
    root = run(engine, tree)
    version = _executing(engine, lab, node.id)
    for payload in ("a", "b", "finish"):
        ok(api.callback(engine, node.id, version, payload))
    lab.open(node.id)
    wait_state(engine, root, "FINISHED")
    assert outputs(engine, node.id)["received"] == ["a", "b", "finish"]
    assert [c.payload for c in lab.of("schedule", node.id)] == ["a", "b", "finish"]


def test_an_early_callback_with_a_repeated_key_is_acknowledged_and_applied_once(
    engine: rattan.Engine, lab: Lab
) -> None:
    node = act("c_mcb_block")
    tree, _, _ = chain(node)
    run(engine, tree)
    version = _executing(engine, lab, node.id)
    first = api.callback(engine, node.id, version, "a", idempotency_key="k1")
    again = api.callback(engine, node.id, version, "a", idempotency_key="k1")
    assert first.result and again.result and first.data == again.data
    ok(api.callback(engine, node.id, version, "finish"))
    lab.open(node.id)
    wait_for(lambda: engine.get_state(node.id).name == "FINISHED")
    assert outputs(engine, node.id)["received"] == ["a", "finish"]


@pytest.mark.parametrize(
    ("code", "result", "end_state", "reason"),
    [
        ("c_block", True, "FINISHED", "the node ended FINISHED without waiting for a callback"),
        ("c_block", False, "FAILED", "the node ended FAILED without waiting for a callback"),
        ("c_cb_block", False, "FAILED", "the node ended FAILED without waiting for a callback"),
        ("c_poll_block", True, "FINISHED", "the node polls: it takes no callbacks"),
    ],
)
def test_an_early_callback_is_refused_when_the_node_moves_on_without_waiting_for_one(
    fast_sweep: rattan.Engine, lab: Lab, code: str, result: bool, end_state: str, reason: str
) -> None:
    engine = fast_sweep
    node = act(code, result=result, polls=1)
    tree, _, _ = chain(node)
    root = run(engine, tree)
    version = _executing(engine, lab, node.id)
    ok(api.callback(engine, node.id, version, {"too": "soon"}))
    lab.open(node.id)
    wait_state(engine, node.id, end_state)
    wait_for(lambda: _callbacks(engine, node.id) == [({"too": "soon"}, CALLBACK_REFUSED)])
    refusals = event_data(engine, root, "callback_refused")
    assert len(refusals) == 1
    assert refusals[0]["node_id"] == node.id and refusals[0]["version"] == version
    assert refusals[0]["reason"] == reason
    assert lab.count("schedule", node.id) == (1 if code == "c_poll_block" else 0)  # the poll only


def test_an_early_callback_of_a_version_retried_away_is_refused_and_not_applied_to_the_new_one(
    fast_sweep: rattan.Engine, lab: Lab
) -> None:
    engine = fast_sweep
    node = act("c_cb_block", result=False)
    tree, _, _ = chain(node)
    root = run(engine, tree)
    old = _executing(engine, lab, node.id)
    ok(api.callback(engine, node.id, old, "for the first pass"))
    lab.open(node.id)
    wait_state(engine, node.id, "FAILED")
    ok(api.retry_node(engine, node.id, data={"result": {"need_render": False, "value": True}}))
    wait_for(lambda: _callbacks(engine, node.id) == [("for the first pass", CALLBACK_REFUSED)])
    new = engine.get_state(node.id).version
    assert new != old
    wait_for(lambda: engine.wait_pipeline(root, 0.01)["waiting"].get(node.id) is not None)
    assert lab.of("schedule", node.id) == []
    ok(api.callback(engine, node.id, new, "for the retry"))
    wait_state(engine, root, "FINISHED")
    assert outputs(engine, node.id)["got"] == "for the retry"


def test_callbacks_for_wrong_ids_and_versions_are_not_found(engine: rattan.Engine, lab: Lab) -> None:
    node, later = act("c_cb_block"), act("c_cb")
    tree, _, _ = chain(node, later)
    run(engine, tree)
    _executing(engine, lab, node.id)
    assert "schedule not found" in refused(api.callback(engine, node.id, "v-not-this-one", 1), NotFoundError)
    assert "does not exist" in refused(api.callback(engine, "no-such-node", "v1", 1), NotFoundError)
    # a node not reached yet has no version to call back
    assert refused(api.callback(engine, later.id, "v1", 1), NotFoundError)
    assert _callbacks(engine, node.id) == []


def test_a_callback_after_the_schedule_finished_or_expired_has_its_own_error(
    engine: rattan.Engine, lab: Lab
) -> None:
    node = act("c_cb")
    tree, _, _ = chain(node)
    root = run(engine, tree)
    wait_for(lambda: engine.wait_pipeline(root, 0.01)["waiting"].get(node.id) is not None)
    version = engine.get_state(node.id).version
    ok(api.callback(engine, node.id, version, "once"))
    wait_state(engine, root, "FINISHED")
    message = refused(api.callback(engine, node.id, version, "twice"), ScheduleFinishedError)
    assert message == "schedule is already finished"
    assert issubclass(ScheduleFinishedError, InvalidOperationError)  # callers catching the old type still do

    waiting = act("c_cb")
    tree2, _, _ = chain(waiting)
    root2 = run(engine, tree2)
    wait_for(lambda: engine.wait_pipeline(root2, 0.01)["waiting"].get(waiting.id) is not None)
    version2 = engine.get_state(waiting.id).version
    ok(api.revoke_pipeline(engine, root2))
    message = refused(api.callback(engine, waiting.id, version2, "late"), ScheduleFinishedError)
    assert message == "schedule is already expired"


# -- reading a node's schedule -------------------------------------------------------------------
def test_a_nodes_schedule_is_read_without_its_version_and_says_when_a_step_runs(
    engine: rattan.Engine, lab: Lab
) -> None:
    node = act("c_mcb_block")
    tree, _, _ = chain(node)
    run(engine, tree)
    version = _executing(engine, lab, node.id)
    with pytest.raises(NotFoundError, match="never waited"):
        engine.get_schedule_with_node_and_version(node.id)
    lab.open(node.id)
    wait_for(lambda: engine.wait_pipeline(tree["id"], 0.01)["waiting"].get(node.id) is not None)
    sched = engine.get_schedule_with_node_and_version(node.id)
    assert (sched.version, sched.finished, sched.expired, sched.scheduling, sched.schedule_times) == (
        version, False, False, False, 0,
    )  # fmt: skip
    ok(api.forced_fail_activity(engine, node.id, "stop"))
    assert engine.get_state(node.id).version != version  # a new version: the old schedule stays readable
    sched = engine.get_schedule_with_node_and_version(node.id)
    assert (sched.version, sched.finished, sched.expired) == (version, False, True)
    assert engine.get_schedule_with_node_and_version(node.id, version).id == sched.id


def test_scheduling_is_true_while_a_callback_is_being_applied(
    engine: rattan.Engine, lab: Lab, reg: rattan.Registry
) -> None:
    gate = lab.gate("in-schedule")

    class SlowSchedule(rattan.Service):
        __need_schedule__ = True

        def execute(self, data: Any, parent_data: Any) -> bool:
            return True

        def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
            lab.record("schedule", self.id, self.version, callback_data)
            return gate.wait(20)

    type("Comp_c_slow_sched", (rattan.Component,),
         {"name": "slow", "code": "c_slow_sched", "bound_service": SlowSchedule},
         registry=reg)  # fmt: skip
    node = act("c_slow_sched")
    tree, _, _ = chain(node)
    root = run(engine, tree)
    wait_for(lambda: engine.wait_pipeline(root, 0.01)["waiting"].get(node.id) is not None)
    version = engine.get_state(node.id).version
    ok(api.callback(engine, node.id, version, "go"))
    wait_for(lambda: lab.count("schedule", node.id) == 1)
    assert engine.get_schedule_with_node_and_version(node.id).scheduling is True
    gate.set()
    wait_state(engine, root, "FINISHED")
    sched = engine.get_schedule_with_node_and_version(node.id, version)
    assert (sched.scheduling, sched.finished, sched.schedule_times) == (False, True, 1)

"""Polling and callbacks (SPEC 5.3 schedule phase, 7.4 callback, 8.1, Appendix D.4, D.13)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from control_helpers import (
    Lab,
    act,
    chain,
    counters,
    event_data,
    install,
    node_states,
    ok,
    outputs,
    refused,
    run,
    wait_finished,
    wait_for,
    wait_idle,
    wait_schedule,
    wait_state,
)

import rattan
from rattan import api
from rattan.components.service import ScheduleType
from rattan.model.records import CallbackRecord
from rattan.runtime.interface import CallbackQuery

pytestmark = pytest.mark.timeout(60)


# -- polling ------------------------------------------------------------------------------------------
@pytest.fixture
def slow_reg(lab: Lab) -> rattan.Registry:
    registry = rattan.Registry("controls-slow-poll")
    install(registry, lab, poll_interval=0.3)
    return registry


def test_static_interval_polls_first_at_once_then_every_interval(slow_reg: rattan.Registry, lab: Lab) -> None:
    with rattan.Engine(":memory:", components=slow_reg) as engine:
        a, b = act("c_poll", polls=3), act("c_ok")
        tree, start, end = chain(a, b)
        root = run(engine, tree)
        wait_finished(engine, root)
        (execute,) = lab.of("execute", a.id)
        polls = lab.of("schedule", a.id)
        assert [p.payload for p in polls] == [1, 2, 3]
        assert polls[0].at - execute.at < 0.25  # the first poll runs right after execute
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(polls)]
        assert all(0.28 <= g < 1.5 for g in gaps), gaps
        assert node_states(engine, root) == {
            start.id: "FINISHED",
            a.id: "FINISHED",
            b.id: "FINISHED",
            end.id: "FINISHED",
        }
        version = engine.get_state(a.id).version
        sched = engine.get_schedule_with_node_and_version(a.id, version)
        assert (sched.type, sched.times, sched.finished, sched.expired) == (ScheduleType.POLL, 3, True, False)
        assert outputs(engine, a.id) == {"polls": 3, "_result": True, "_loop": 1, "_inner_loop": 1}
        assert lab.count("cancel", a.id) == 0


def test_default_interval_waits_one_second_before_the_second_poll(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_poll_default", polls=2)
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_finished(engine, root)
    (execute,) = lab.of("execute", a.id)
    first, second = lab.of("schedule", a.id)
    assert first.at - execute.at < 0.5
    assert 0.95 <= second.at - first.at < 2.5  # DefaultIntervalGenerator: 1 ** 2 s


def test_poll_finishes_only_when_finish_schedule_is_called(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_poll")  # no target: polls until told
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_for(lambda: lab.count("schedule", a.id) >= 3)
    assert engine.get_state(a.id).name == "RUNNING"
    lab.finish.add(a.id)
    wait_finished(engine, root)
    n = lab.count("schedule", a.id)
    assert outputs(engine, a.id)["polls"] == n
    wait_idle(engine)
    assert lab.count("schedule", a.id) == n


def test_interval_generator_returning_none_fails_the_node(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_poll_null")
    tree, start, _end = chain(a)
    root = run(engine, tree)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    out = outputs(engine, a.id)
    assert out["ex_data"].startswith("interval generator returned None")
    assert out["_result"] is False
    assert lab.count("schedule", a.id) == 1
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FAILED"}


# -- callbacks ----------------------------------------------------------------------------------------
def test_callback_node_completes_on_one_successful_callback(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_cb"), act("c_ok")
    tree, start, end = chain(a, b)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    wait_idle(engine)
    assert lab.count("schedule", a.id) == 0  # nothing runs until a callback arrives
    assert engine.get_schedule_with_node_and_version(a.id, version).type == ScheduleType.CALLBACK

    res = api.callback(engine, a.id, version, {"answer": 42})
    ok(res)
    assert isinstance(res.data, int)  # the stored callback id
    wait_finished(engine, root)
    assert [c.payload for c in lab.of("schedule", a.id)] == [{"answer": 42}]
    assert outputs(engine, a.id) == {"got": {"answer": 42}, "_result": True, "_loop": 1, "_inner_loop": 1}
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    sched = engine.get_schedule_with_node_and_version(a.id, version)
    assert (sched.finished, sched.expired, sched.times) == (True, False, 1)
    assert event_data(engine, root, "pre_callback") == [
        {"node_id": a.id, "version": version, "data": {"answer": 42}}
    ]
    assert event_data(engine, root, "post_callback") == [
        {"node_id": a.id, "version": version, "data": {"answer": 42}}
    ]

    # the schedule is finished: a second callback is refused
    msg = refused(api.callback(engine, a.id, version, {"late": True}), rattan.InvalidOperationError)
    assert msg == "schedule is already finished"
    wait_idle(engine)
    assert lab.count("schedule", a.id) == 1


def test_multi_callback_takes_callbacks_in_order_until_finish(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_mcb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    assert engine.get_schedule_with_node_and_version(a.id, version).type == ScheduleType.MULTIPLE_CALLBACK
    ids = []
    for payload in ("one", {"two": 2}, [3]):
        ids.append(engine.callback(a.id, version, payload))
    assert ids == sorted(ids) and len(set(ids)) == 3
    wait_for(lambda: lab.count("schedule", a.id) == 3)
    wait_idle(engine)
    assert engine.get_state(a.id).name == "RUNNING"
    assert outputs(engine, a.id)["received"] == ["one", {"two": 2}, [3]]
    ok(api.callback(engine, a.id, version, "finish"))
    wait_finished(engine, root)
    assert outputs(engine, a.id)["received"] == ["one", {"two": 2}, [3], "finish"]
    sched = engine.get_schedule_with_node_and_version(a.id, version)
    assert (sched.finished, sched.times) == (True, 4)


def test_duplicate_callback_with_the_same_idempotency_key_is_applied_once(
    engine: rattan.Engine, lab: Lab
) -> None:
    a = act("c_mcb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    first = engine.callback(a.id, version, {"n": 1}, idempotency_key="job-1")
    again = engine.callback(a.id, version, {"n": 1}, idempotency_key="job-1")
    other = engine.callback(a.id, version, {"n": 2}, idempotency_key="job-2")
    assert first == again and other != first
    res = api.callback(engine, a.id, version, {"n": 1}, idempotency_key="job-1")
    ok(res)
    assert res.data == first
    wait_for(lambda: lab.count("schedule", a.id) == 2)
    wait_idle(engine)
    assert outputs(engine, a.id)["received"] == [{"n": 1}, {"n": 2}]
    assert len(event_data(engine, root, "pre_callback")) == 2
    # even after it was applied, the duplicate is still acknowledged with the same id
    assert engine.callback(a.id, version, {"n": 1}, idempotency_key="job-1") == first
    engine.callback(a.id, version, "finish")
    wait_finished(engine, root)
    assert outputs(engine, a.id)["received"] == [{"n": 1}, {"n": 2}, "finish"]


def test_callback_with_a_stale_version_is_refused_and_expires_that_schedule(
    engine: rattan.Engine, lab: Lab
) -> None:
    a = act("c_cb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    old = wait_schedule(engine, a.id)
    ok(api.callback(engine, a.id, old, {"fail": True}))  # schedule() fails: FAILED, schedule not expired
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    sched = engine.get_schedule_with_node_and_version(a.id, old)
    assert (sched.finished, sched.expired) == (False, False)

    ok(api.retry_node(engine, a.id))
    new = wait_schedule(engine, a.id)
    assert new != old
    msg = refused(api.callback(engine, a.id, old, {"late": True}), rattan.InvalidOperationError)
    assert msg == f"node version {old} not exist"
    assert engine.get_schedule_with_node_and_version(a.id, old).expired is True
    msg = refused(api.callback(engine, a.id, old, {"late": True}), rattan.InvalidOperationError)
    refused(api.callback(engine, a.id, "v-unknown", {}), rattan.NotFoundError)

    ok(api.callback(engine, a.id, new, {"ok": 1}))
    wait_finished(engine, root)
    assert [c.payload for c in lab.of("schedule", a.id)] == [{"fail": True}, {"ok": 1}]
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)


def test_callback_refused_for_poll_nodes_unknown_nodes_and_forced_failed_nodes(
    engine: rattan.Engine, lab: Lab
) -> None:
    poll, cb = act("c_poll"), act("c_cb")
    tree, _start, _end = chain(poll)
    root = run(engine, tree)
    version = wait_schedule(engine, poll.id)
    msg = refused(api.callback(engine, poll.id, version, {"x": 1}), rattan.InvalidOperationError)
    assert "polls" in msg or "callback" in msg
    refused(api.callback(engine, "nope", "v0", {}), rattan.NotFoundError)
    lab.finish.add(poll.id)
    wait_finished(engine, root)

    tree2, _s, _e = chain(cb)
    run(engine, tree2)
    version = wait_schedule(engine, cb.id)
    ok(api.forced_fail_activity(engine, cb.id, "gone"))
    refused(api.callback(engine, cb.id, version, {"x": 1}), rattan.InvalidOperationError)
    wait_idle(engine)
    assert lab.count("schedule", cb.id) == 0
    assert lab.count("cancel", cb.id) == 1
    assert outputs(engine, cb.id) == {
        "_result": True,
        "_loop": 1,
        "_inner_loop": 1,
        "ex_data": "gone",
        "_forced_failed": True,
    }


def test_callback_to_a_node_not_reached_yet_is_not_found(engine: rattan.Engine, lab: Lab) -> None:
    # (a callback to a node whose execute still runs is kept until the node waits, or refused
    # when it moves on without waiting: tests/controls/test_early_callbacks.py)
    a, cb = act("c_block"), act("c_cb")
    tree, _start, _end = chain(a, cb)
    run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    version = engine.get_state(a.id).version
    refused(api.callback(engine, cb.id, version, {}), rattan.NotFoundError)  # not reached yet
    refused(api.callback(engine, a.id, "v-other", {}), rattan.NotFoundError)  # not its version
    lab.open(a.id)


def test_callback_accepts_any_json_value(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_mcb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    values: list[Any] = [None, 0, "text", [1, "a"], {"k": {"n": [1]}}]
    for v in values:
        ok(api.callback(engine, a.id, version, v))
    ok(api.callback(engine, a.id, version, "finish"))
    wait_finished(engine, root)
    assert outputs(engine, a.id)["received"] == [*values, "finish"]


@pytest.mark.timeout(60)
def test_revoke_refuses_a_stored_callback_not_yet_applied(
    make_engine: Callable[..., rattan.Engine], lab: Lab
) -> None:
    engine = make_engine(sweep_seconds=3600)  # no sweep finds the callback before the revoke
    a = act("c_cb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    # a callback stored but not yet applied (as if the engine had stopped before dispatching it)
    cid = engine.core.unit(lambda step: step.tx.put_wait(CallbackRecord(0, a.id, version, {"late": True})))
    ok(api.revoke_pipeline(engine, root))
    wait_idle(engine)
    (stored,) = engine.core.store.read(lambda r: r.waits(CallbackQuery(id=cid)))
    applied = stored.applied
    # refused (2): a restart will not dispatch it again, and the service never saw it
    assert applied == 2
    assert engine.get_schedule_with_node_and_version(a.id, version).expired is True
    assert lab.of("schedule", a.id) == []

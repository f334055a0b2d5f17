"""Operator controls racing each other and the engine, on real threads: every race ends in
exactly one outcome, read back from states, counters, execution data and histories."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from control_helpers import (
    Lab,
    act,
    chain,
    counters,
    histories,
    node_states,
    ok,
    outputs,
    root_state,
    run,
    wait_finished,
    wait_for,
    wait_idle,
    wait_schedule,
    wait_state,
)

import rattan
from rattan import api

pytestmark = pytest.mark.timeout(60)
ITERATIONS = 20


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on their own threads, released at the same moment by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def runner(i: int, fn: Callable[[], Any]) -> None:
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=runner, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_retry_races_skip_on_the_same_failed_node(engine: rattan.Engine, lab: Lab) -> None:
    outcomes = []
    for _ in range(ITERATIONS):
        a, b = act("c_fail"), act("c_ok")
        tree, start, end = chain(a, b)
        root = run(engine, tree)
        failed = wait_state(engine, a.id, "FAILED")
        retry, skip = together(
            lambda a=a: api.retry_node(engine, a.id), lambda a=a: api.skip_node(engine, a.id)
        )
        assert isinstance(retry, api.EngineAPIResult) and isinstance(skip, api.EngineAPIResult)
        assert [retry.result, skip.result].count(True) == 1, (retry, skip)
        loser = skip if retry.result else retry
        assert isinstance(loser.exc, rattan.InvalidOperationError)
        wait_finished(engine, root)
        assert node_states(engine, root) == {
            start.id: "FINISHED",
            a.id: "FINISHED",
            b.id: "FINISHED",
            end.id: "FINISHED",
        }
        hist = histories(engine, a.id)
        assert [(h["version"], h["retry"], h["skip"]) for h in hist] == [(failed.version, 0, False)]
        if retry.result:
            assert counters(engine, root, a.id) == ("FINISHED", 1, False)
            assert outputs(engine, a.id) == {"done": True, "_result": True, "_loop": 1, "_inner_loop": 1}
            assert lab.count("execute", a.id) == 2
            outcomes.append("retry")
        else:
            assert counters(engine, root, a.id) == ("FINISHED", 0, True)
            assert outputs(engine, a.id) == {
                "ex_data": "boom",
                "_result": False,
                "_loop": 1,
                "_inner_loop": 1,
            }
            assert lab.count("execute", a.id) == 1
            outcomes.append("skip")
        assert lab.count("execute", b.id) == 1
    assert len(outcomes) == ITERATIONS


def test_callback_races_forced_fail(engine: rattan.Engine, lab: Lab) -> None:
    for _ in range(ITERATIONS):
        a, b = act("c_cb"), act("c_ok")
        tree, start, end = chain(a, b)
        root = run(engine, tree)
        version = wait_schedule(engine, a.id)
        cb, ff = together(
            lambda a=a, v=version: api.callback(engine, a.id, v, {"n": 1}),
            lambda a=a: api.forced_fail_activity(engine, a.id, "forced"),
        )
        assert isinstance(cb, api.EngineAPIResult) and isinstance(ff, api.EngineAPIResult)
        assert cb.result or ff.result
        wait_for(lambda a=a: engine.get_state(a.id).name in ("FAILED", "FINISHED"))
        wait_idle(engine)
        name = engine.get_state(a.id).name
        out = outputs(engine, a.id)
        sched = engine.get_schedule_with_node_and_version(a.id, version)
        if name == "FINISHED":  # the callback completed the node before the forced fail
            assert cb.result and not ff.result
            assert isinstance(ff.exc, rattan.InvalidOperationError)
            assert out == {"got": {"n": 1}, "_result": True, "_loop": 1, "_inner_loop": 1}
            assert (sched.finished, sched.expired) == (True, False)
            assert engine.get_state(a.id).version == version
            wait_finished(engine, root)
            assert lab.count("cancel", a.id) == 0
        else:  # forced fail won: the callback was refused, or accepted and its result dropped
            assert ff.result
            assert out == {
                "_result": True,
                "_loop": 1,
                "_inner_loop": 1,
                "ex_data": "forced",
                "_forced_failed": True,
            }
            assert (sched.finished, sched.expired) == (False, True)
            assert engine.get_state(a.id).version != version
            assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FAILED"}
            assert lab.count("cancel", a.id) == 1
            assert root_state(engine, root) == "RUNNING"
            ok(api.revoke_pipeline(engine, root))
        assert histories(engine, a.id) == []
        assert lab.count("schedule", a.id) <= 1
        assert end.id not in node_states(engine, root) or name == "FINISHED"


def test_pause_races_the_running_node_finishing(engine: rattan.Engine, lab: Lab) -> None:
    for _ in range(ITERATIONS):
        a, b, c = act("c_block"), act("c_ok"), act("c_ok")
        tree, start, end = chain(a, b, c)
        root = run(engine, tree)
        wait_for(lambda a=a: lab.count("execute", a.id) == 1)
        _, pause = together(lambda a=a: lab.open(a.id), lambda root=root: api.pause_pipeline(engine, root))
        assert isinstance(pause, api.EngineAPIResult)
        wait_idle(engine)
        if pause.result:
            wait_state(engine, a.id, "FINISHED")
            wait_idle(engine)
            assert root_state(engine, root) == "SUSPENDED"
            states = node_states(engine, root)
            # the token parked at some node after A: a prefix of the chain ran, the rest has no state
            order = [start.id, a.id, b.id, c.id, end.id]
            ran = [n for n in order if n in states]
            assert ran == order[: len(ran)] and len(ran) < len(order)
            assert all(states[n] == "FINISHED" for n in ran)
            ok(api.resume_pipeline(engine, root))
        else:
            assert isinstance(pause.exc, rattan.InvalidOperationError)
        wait_finished(engine, root)
        assert set(node_states(engine, root).values()) == {"FINISHED"}
        assert len(node_states(engine, root)) == 5
        for node in (a, b, c):
            assert lab.count("execute", node.id) == 1


def test_twenty_concurrent_callbacks_are_all_applied_in_acceptance_order(
    engine: rattan.Engine, lab: Lab
) -> None:
    a = act("c_mcb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    accepted: dict[int, int] = {}
    lock = threading.Lock()

    def send(i: int) -> Callable[[], Any]:
        def call() -> None:
            cid = engine.callback(a.id, version, {"i": i})
            with lock:
                accepted[cid] = i

        return call

    together(*(send(i) for i in range(20)))
    assert len(accepted) == 20
    wait_for(lambda: lab.count("schedule", a.id) == 20)
    wait_idle(engine)
    in_acceptance_order = [{"i": accepted[cid]} for cid in sorted(accepted)]
    assert [c.payload for c in lab.of("schedule", a.id)] == in_acceptance_order
    assert outputs(engine, a.id)["received"] == in_acceptance_order
    assert engine.get_state(a.id).name == "RUNNING"
    ok(api.callback(engine, a.id, version, "finish"))
    wait_finished(engine, root)
    assert engine.get_schedule_with_node_and_version(a.id, version).times == 21

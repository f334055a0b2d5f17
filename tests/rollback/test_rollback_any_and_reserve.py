"""ANY mode (SPEC 11.6) and reservations (11.4, 11.7)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rollback_helpers import (
    Recorder,
    act,
    define_components,
    node_states,
    rows,
    run,
    sequence,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import ConvergeGateway, EmptyEndEvent, EmptyStartEvent, ParallelGateway, build_tree
from rattan.rollback import ANY, TOKEN, cancel_reserved_rollback, reserve_rollback, rollback

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def rec(reg: rattan.Registry) -> Recorder:
    recorder = Recorder()
    define_components(reg, recorder)
    return recorder


@pytest.mark.timeout(60)
def test_any_mode_calls_no_rollback_cleans_and_restarts(engine: rattan.Engine, rec: Recorder) -> None:
    tree, ids = sequence("A", "B", "C")
    rec.fail_execute["C"] = 1
    root = run(engine, tree)
    wait_state(engine, ids["C"], "FAILED")
    wait_idle(engine)
    seen: list[str] = []

    def on_state(sender: Any, node_id: str, to_state: str, **kw: Any) -> None:
        if node_id == root:
            seen.append(to_state)

    rattan.signals.post_set_state.connect(on_state)
    try:
        res = rollback(engine, root, ids["C"], ids["B"], mode=ANY)
        assert res.result, res.message
        # done within the call: B is READY again, C has no state, the token is dispatched
        assert ids["C"] not in node_states(engine, root) or engine.get_state(ids["C"]).name != "FAILED"
        wait_state(engine, root, "FINISHED")
        wait_idle(engine)
    finally:
        rattan.signals.post_set_state.disconnect(on_state)
    assert rec.of("rollback") == []
    assert seen == ["FINISHED"]  # the root never left RUNNING before finishing
    assert [c[0] for c in rec.of("execute")] == ["A", "B", "C", "B", "C"]
    assert engine.get_node_histories(ids["C"]) == []
    assert engine.get_state(ids["A"]).loop == 1


@pytest.mark.timeout(60)
def test_any_mode_without_auto_execute_suspends_at_the_target(make_engine: Any, rec: Recorder) -> None:
    engine = make_engine(pipeline_enable_auto_execute_when_roll_backed=False)
    tree, ids = sequence("A", "B", "C")
    rec.fail_execute["C"] = 1
    root = run(engine, tree)
    wait_state(engine, ids["C"], "FAILED")
    wait_idle(engine)
    assert rollback(engine, root, ids["C"], ids["A"], mode=ANY).result
    wait_idle(engine)
    assert engine.get_state(root).name == "SUSPENDED"
    assert node_states(engine, root) == {ids["start"]: "FINISHED", ids["A"]: "READY"}
    assert api.resume_pipeline(engine, root).result
    wait_state(engine, root, "FINISHED")
    assert [c[0] for c in rec.of("execute")] == ["A", "B", "C", "A", "B", "C"]


@pytest.mark.timeout(60)
def test_any_mode_with_skip_check_token_leaves_a_parallel_branch(
    engine: rattan.Engine, rec: Recorder
) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, p1, p2, z = act("A"), act("P1"), act("P2"), act("Z")
    pg, cg = ParallelGateway(), ConvergeGateway()
    start.extend(a).extend(pg).connect(p1, p2)
    p1.extend(cg)
    p2.extend(cg)
    cg.extend(z).extend(end)
    rec.fail_execute["P2"] = 1
    root = run(engine, build_tree(start))
    wait_state(engine, p2.id, "FAILED")
    wait_state(engine, p1.id, "FINISHED")
    wait_idle(engine)
    res = rollback(engine, root, p2.id, a.id, mode=ANY)
    assert "token" in res.message
    res = rollback(engine, root, p2.id, a.id, mode=ANY, skip_check_token=True)
    assert res.result, res.message
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert rec.of("rollback") == []
    assert sorted(c[0] for c in rec.of("execute")) == sorted(["A", "P1", "P2", "A", "P1", "P2", "Z"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [TOKEN, ANY])
def test_a_reservation_rolls_back_when_the_node_finishes(
    engine: rattan.Engine, rec: Recorder, mode: str
) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, w, b = act("A"), act("W", code="wait"), act("B")
    start.extend(a).extend(w).extend(b).extend(end)
    gate = rec.rollback_gates["wait:W"] = threading.Event()
    root = run(engine, build_tree(start))
    wait_state(engine, w.id, "RUNNING")
    assert reserve_rollback(engine, root, w.id, a.id, mode=mode).result
    gate.set()
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    # W finished, its token did not move on to B: the rollback ran, then A, W and B ran
    calls = rec.of("rollback")
    if mode == TOKEN:
        assert [c[0] for c in calls] == ["W", "A"]
        assert calls[1][1] == {"name": "A", "n": 0, "_loop": 1, "_inner_loop": 1}
    else:
        assert calls == []
    assert [c[0] for c in rec.of("execute")] == ["A", "W", "A", "W", "B"]
    assert node_states(engine, root) == {n: "FINISHED" for n in (start.id, a.id, w.id, b.id, end.id)}


@pytest.mark.timeout(60)
def test_a_cancelled_reservation_does_nothing(engine: rattan.Engine, rec: Recorder) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, w, b = act("A"), act("W", code="wait"), act("B")
    start.extend(a).extend(w).extend(b).extend(end)
    gate = rec.rollback_gates["wait:W"] = threading.Event()
    root = run(engine, build_tree(start))
    wait_state(engine, w.id, "RUNNING")
    assert reserve_rollback(engine, root, w.id, a.id).result
    assert cancel_reserved_rollback(engine, root, w.id, a.id).result
    gate.set()
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert rec.of("rollback") == []
    assert [c[0] for c in rec.of("execute")] == ["A", "W", "B"]


@pytest.mark.timeout(60)
def test_a_reservation_refused_when_the_node_finishes_lets_the_node_complete(
    engine: rattan.Engine, rec: Recorder
) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, w, b = act("A"), act("W", code="wait"), act("B")
    start.extend(a).extend(w).extend(b).extend(end)
    gate = rec.rollback_gates["wait:W"] = threading.Event()
    root = run(engine, build_tree(start))
    wait_state(engine, w.id, "RUNNING")
    assert reserve_rollback(engine, root, w.id, a.id).result
    assert api.pause_pipeline(engine, root).result  # a SUSPENDED pipeline cannot roll back
    gate.set()
    wait_state(engine, w.id, "FINISHED")
    wait_idle(engine)
    fails = [e for e in engine.events(root) if e["event_type"] == "rollback_reservation_fail"]
    assert len(fails) == 1 and "SUSPENDED" in fails[0]["data"]["message"]
    assert api.resume_pipeline(engine, root).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert rec.of("rollback") == []
    assert [c[0] for c in rec.of("execute")] == ["A", "W", "B"]
    # the reservation is spent: a new one may be made on another run's node
    assert rows(engine, "SELECT expired FROM rollback_plans") == [(1,)]

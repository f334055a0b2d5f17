"""TOKEN-mode rollback over a sequence (SPEC 11.5, 11.7): rollback() calls, states, restart."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rollback_helpers import (
    Recorder,
    define_components,
    node_states,
    run,
    sequence,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import Data, Var
from rattan.rollback import rollback

pytestmark = pytest.mark.timeout(60)

LOOP1 = {"_loop": 1, "_inner_loop": 1}


@pytest.fixture
def rec(reg: rattan.Registry) -> Recorder:
    recorder = Recorder()
    define_components(reg, recorder)
    return recorder


def _failing_sequence(engine: rattan.Engine, rec: Recorder) -> tuple[str, dict[str, str]]:
    """S -> A -> B -> C -> E where C fails once; returns when C is FAILED."""
    data = Data(inputs={"${v}": Var(type=Var.PLAIN, value=1)})
    tree, ids = sequence("A", "B", "C", n="${v}", data=data)
    rec.fail_execute["C"] = 1
    root = run(engine, tree, root_pipeline_data={"x": "root-x"})
    wait_state(engine, ids["C"], "FAILED")
    wait_idle(engine)
    return root, ids


@pytest.mark.timeout(60)
def test_token_rollback_calls_rollback_newest_first_and_reruns_from_the_target(
    engine: rattan.Engine, rec: Recorder
) -> None:
    root, ids = _failing_sequence(engine, rec)
    a_version = engine.get_state(ids["A"]).version
    res = api.update_context_values(
        engine, root, [rattan.ContextValue("${v}", rattan.ContextValueType.PLAIN, 2)]
    )
    assert res.result, res.message

    res = rollback(engine, root, ids["C"], ids["A"])
    assert res.result, res.message
    assert res.data is None

    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    # B then A (the target is rolled back too); C failed, so it is not rolled back itself
    assert rec.of("rollback") == [
        (
            "B",
            {"name": "B", "n": 1, **LOOP1},
            {"n": 1, "seen": "root-x"},
            {"x": "root-x"},
            None,
            (ids["B"], root, 1),
        ),
        (
            "A",
            {"name": "A", "n": 1, **LOOP1},
            {"n": 1, "seen": "root-x"},
            {"x": "root-x"},
            None,
            (ids["A"], root, 1),
        ),
    ]
    # A re-ran with the new context value, then B and C; the pipeline finished
    assert rec.of("execute") == [("A", 1), ("B", 1), ("C", 1), ("A", 2), ("B", 2), ("C", 2)]
    assert node_states(engine, root) == {
        ids["start"]: "FINISHED", ids["A"]: "FINISHED", ids["B"]: "FINISHED", ids["C"]: "FINISHED",
        ids["end"]: "FINISHED",
    }  # fmt: skip
    a = engine.get_state(ids["A"])
    assert a.version != a_version
    assert (a.loop, a.retry) == (1, 0)
    # the rolled-back nodes were cleaned: no history of the first pass
    assert engine.get_node_histories(ids["A"]) == []
    assert engine.get_execution_data_outputs(ids["C"])["n"] == 2


@pytest.mark.timeout(60)
def test_states_during_and_after_a_token_rollback(engine: rattan.Engine, rec: Recorder) -> None:
    root, ids = _failing_sequence(engine, rec)
    gate = rec.rollback_gates["B"] = threading.Event()
    assert rollback(engine, root, ids["C"], ids["A"]).result
    wait_for(lambda: rec.of("rollback"))
    # B's rollback() is running: the root and B are ROLLING_BACK, A untouched, C (skipped) still FAILED
    assert engine.get_state(root).name == "ROLLING_BACK"
    assert node_states(engine, root) == {
        ids["start"]: "FINISHED", ids["A"]: "FINISHED", ids["B"]: "ROLLING_BACK", ids["C"]: "FAILED",
    }  # fmt: skip
    # nothing else may move meanwhile: the pipeline can be neither paused nor rolled back again
    assert not api.pause_pipeline(engine, root).result
    again = rollback(engine, root, ids["C"], ids["A"])
    assert isinstance(again.exc, rattan.errors.RollBackException)
    assert not api.retry_node(engine, ids["C"]).result
    gate.set()
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    events = [e["event_type"] for e in engine.events(root) if e["event_type"].startswith("rollback")]
    assert events == ["rollback_start", "rollback_finish"]


@pytest.mark.timeout(60)
def test_state_transitions_of_the_root(engine: rattan.Engine, rec: Recorder) -> None:
    seen: list[tuple[str, str]] = []

    def on_state(sender: Any, node_id: str, to_state: str, **kw: Any) -> None:
        seen.append((node_id, to_state))

    rattan.signals.post_set_state.connect(on_state)
    try:
        root, ids = _failing_sequence(engine, rec)
        seen.clear()
        assert rollback(engine, root, ids["C"], ids["A"]).result
        wait_state(engine, root, "FINISHED")
        wait_idle(engine)
    finally:
        rattan.signals.post_set_state.disconnect(on_state)
    assert [s for n, s in seen if n == root] == [
        "ROLLING_BACK", "ROLL_BACK_SUCCESS", "READY", "RUNNING", "FINISHED",
    ]  # fmt: skip
    assert [s for n, s in seen if n == ids["B"]][:2] == ["ROLLING_BACK", "ROLL_BACK_SUCCESS"]
    assert [s for n, s in seen if n == ids["A"]][:3] == ["ROLLING_BACK", "ROLL_BACK_SUCCESS", "READY"]
    assert ids["C"] not in [n for n, s in seen[: seen.index((root, "ROLL_BACK_SUCCESS"))]]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("failure", [False, RuntimeError("undo failed")], ids=["returns-false", "raises"])
def test_a_failed_rollback_stops_and_retry_resumes_at_the_node(
    engine: rattan.Engine, rec: Recorder, failure: Any
) -> None:
    root, ids = _failing_sequence(engine, rec)
    rec.rollback_results["B"] = [failure]
    assert rollback(engine, root, ids["C"], ids["A"]).result
    wait_state(engine, root, "ROLL_BACK_FAILED")
    wait_idle(engine)
    assert node_states(engine, root) == {
        ids["start"]: "FINISHED", ids["A"]: "FINISHED", ids["B"]: "ROLL_BACK_FAILED", ids["C"]: "FAILED",
    }  # fmt: skip
    assert [c[0] for c in rec.of("rollback")] == ["B"]
    fails = [e for e in engine.events(root) if e["event_type"] == "rollback_node_fail"]
    assert [e["node_id"] for e in fails] == [ids["B"]]
    # a node that did not fail cannot be retried
    res = rattan.rollback.retry_rollback_failed_node(engine, root, ids["A"])
    assert isinstance(res.exc, rattan.errors.RollBackException)
    assert "ROLL_BACK_FAILED" in res.message

    res = rattan.rollback.retry_rollback_failed_node(engine, root, ids["B"], retry_data={"force": True})
    assert res.result, res.message
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    # the snapshot that did not return True is attempted again, with the retry data; A has none
    assert [(c[0], c[4]) for c in rec.of("rollback")] == [("B", None), ("B", {"force": True}), ("A", None)]
    assert [c[0] for c in rec.of("execute")] == ["A", "B", "C", "A", "B", "C"]


@pytest.mark.timeout(60)
def test_a_new_token_rollback_is_accepted_after_a_failed_one(engine: rattan.Engine, rec: Recorder) -> None:
    root, ids = _failing_sequence(engine, rec)
    rec.rollback_results["A"] = [False]
    assert rollback(engine, root, ids["C"], ids["A"]).result
    wait_state(engine, root, "ROLL_BACK_FAILED")
    wait_idle(engine)
    # A failed to roll back; B is done. ANY mode refuses a ROLL_BACK_FAILED pipeline (Appendix D.10)
    res = rollback(engine, root, ids["C"], ids["B"], mode="ANY")
    assert isinstance(res.exc, rattan.errors.RollBackException)
    assert "ROLL_BACK_FAILED" in res.message
    assert engine.get_state(ids["A"]).name == "ROLL_BACK_FAILED"


@pytest.mark.timeout(60)
def test_skip_rollback_nodes_and_error_ignored_nodes_get_no_rollback_call(
    engine: rattan.Engine, rec: Recorder
) -> None:
    from rollback_helpers import act

    from rattan.builder import EmptyEndEvent, EmptyStartEvent, build_tree

    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, b, ign, c, d = act("A"), act("B"), act("I", error_ignorable=True), act("C"), act("D")
    start.extend(a).extend(b).extend(ign).extend(c).extend(d).extend(end)
    rec.fail_execute.update({"I": 1, "D": 1})
    root = run(engine, build_tree(start))
    wait_state(engine, d.id, "FAILED")
    wait_idle(engine)
    assert engine.get_state(ign.id).error_ignored
    assert rollback(engine, root, d.id, a.id, skip_rollback_nodes=[b.id]).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("rollback")] == ["C", "A"]


@pytest.mark.timeout(60)
def test_without_auto_execute_the_pipeline_waits_suspended_at_the_target(
    make_engine: Any, rec: Recorder
) -> None:
    engine = make_engine(pipeline_enable_auto_execute_when_roll_backed=False)
    root, ids = _failing_sequence(engine, rec)
    assert rollback(engine, root, ids["C"], ids["B"]).result
    wait_state(engine, root, "SUSPENDED")
    wait_idle(engine)
    assert node_states(engine, root) == {ids["start"]: "FINISHED", ids["A"]: "FINISHED", ids["B"]: "READY"}
    assert [c[0] for c in rec.of("execute")] == ["A", "B", "C"]
    assert api.resume_pipeline(engine, root).result
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("execute")] == ["A", "B", "C", "B", "C"]


@pytest.mark.timeout(60)
def test_a_rollback_interrupted_by_a_stop_resumes_when_the_engine_restarts(
    reg: rattan.Registry, rec: Recorder, tmp_path: Any
) -> None:
    path = str(tmp_path / "rb.db")
    first = rattan.Engine(path, components=reg, pipeline_enable_rollback=True)
    root, ids = _failing_sequence(first, rec)
    gate = rec.rollback_gates["B"] = threading.Event()
    assert rollback(first, root, ids["C"], ids["A"]).result
    wait_for(lambda: rec.of("rollback"))
    old_threads = list(first.core.dispatcher._threads)
    first.close(timeout=0.2)  # the walk is stuck in B's rollback(): the engine stops under it
    gate.set()
    # a stopped process runs nothing more: let the old engine's stuck worker end (its writes fail
    # on the closed store) before the new engine starts, as after a real stop
    for thread in old_threads:
        thread.join(10)
    assert not any(t.is_alive() for t in old_threads)
    second = rattan.Engine(path, components=reg, pipeline_enable_rollback=True)
    try:
        wait_state(second, root, "FINISHED")
        assert second.wait_idle(10)
        # B's rollback() never returned True before the stop: it is called again, then A's
        assert [c[0] for c in rec.of("rollback")][-2:] == ["B", "A"]
        assert [c[0] for c in rec.of("execute")][-3:] == ["A", "B", "C"]
    finally:
        second.close()

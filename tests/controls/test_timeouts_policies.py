"""Node timeouts (``timeout_config``, SPEC 12.1) and automatic failure policies (``failure_policy``)."""

from __future__ import annotations

import itertools
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
    run,
    wait_finished,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api

pytestmark = pytest.mark.timeout(60)
TIMEOUT_EX_DATA = "forced fail by bamboo_engine"


def _set(tree: dict[str, Any], node_id: str, **keys: Any) -> dict[str, Any]:
    tree["activities"][node_id].update(keys)
    return tree


# -- timeouts -----------------------------------------------------------------------------------------
def test_timeout_forced_fail(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_block"), act("c_ok")
    tree, start, _end = chain(a, b)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail", "seconds": 1})
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    entered = engine.get_state(a.id)
    failed = wait_state(engine, a.id, "FAILED", timeout=5)
    assert failed.version != entered.version
    assert (failed.archived_time - entered.started_time).total_seconds() >= 0.9
    assert api.get_execution_data(engine, a.id).data == {
        "inputs": {},
        "outputs": {"ex_data": TIMEOUT_EX_DATA, "_forced_failed": True},
    }
    lab.open(a.id)  # the late execute result is discarded
    wait_for(lambda: lab.count("execute_done", a.id) == 1)
    wait_idle(engine)
    assert engine.get_state(a.id).version == failed.version
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FAILED"}
    assert lab.count("cancel", a.id) == 1
    assert lab.count("execute", b.id) == 0
    assert ("node_timeout", a.id) in [(e["event_type"], e["node_id"]) for e in engine.events(root)]
    # an operator repairs it as any forced fail
    ok(api.retry_node(engine, a.id))
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)


def test_timeout_forced_fail_and_skip_moves_on(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_poll"), act("c_ok")  # polls until told: only the timeout ends it
    tree, start, end = chain(a, b)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail_and_skip", "seconds": 1})
    root = run(engine, tree)
    wait_finished(engine, root, timeout=8)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert counters(engine, root, a.id) == ("FINISHED", 0, True)
    out = outputs(engine, a.id)
    assert out["ex_data"] == TIMEOUT_EX_DATA and out["_forced_failed"] is True
    hist = histories(engine, a.id)
    assert len(hist) == 1 and hist[0]["skip"] is False
    assert hist[0]["outputs"]["ex_data"] == TIMEOUT_EX_DATA
    assert lab.count("cancel", a.id) == 1
    polls = lab.count("schedule", a.id)
    wait_idle(engine)
    assert lab.count("schedule", a.id) <= polls + 1


def test_timeout_does_nothing_to_a_node_that_finished_in_time(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_ok"), act("c_block")
    tree, _start, _end = chain(a, b)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail", "seconds": 1})
    root = run(engine, tree)
    wait_state(engine, a.id, "FINISHED")
    version = engine.get_state(a.id).version
    wait_for(lambda: lab.count("execute", b.id) == 1)
    import time

    time.sleep(1.3)  # past the deadline
    assert engine.get_state(a.id).version == version
    assert counters(engine, root, a.id) == ("FINISHED", 0, False)
    lab.open(b.id)
    wait_finished(engine, root)


def test_disabled_timeout_is_ignored(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_poll", polls=12)  # ~1.1 s of polling
    tree, _start, _end = chain(a)
    _set(tree, a.id, timeout_config={"enable": False, "action": "forced_fail", "seconds": 1})
    root = run(engine, tree)
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 0, False)


def test_invalid_timeout_config_is_refused_at_run(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_ok")
    tree, _start, _end = chain(a)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail", "seconds": 0})
    res = api.run_pipeline(engine, tree)
    assert res.result is False
    assert isinstance(res.exc, rattan.TreeInvalidException)
    assert not engine.has_state(tree["id"])


# -- failure policies ---------------------------------------------------------------------------------
def test_policy_retries_until_success(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_fail"), act("c_ok")
    lab.fail_budget[a.id] = 2
    tree, _start, _end = chain(a, b)
    _set(
        tree, a.id, failure_policy={"retry": {"times": 3, "backoff": "fixed", "delay": 0.1, "errors": ["*"]}}
    )
    root = run(engine, tree)
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 2, False)
    hist = histories(engine, a.id)
    assert [(h["retry"], h["skip"], h["outputs"]["ex_data"]) for h in hist] == [
        (0, False, "boom"),
        (1, False, "boom"),
    ]
    calls = lab.of("execute", a.id)
    assert len(calls) == 3
    assert all(later.at - earlier.at >= 0.09 for earlier, later in itertools.pairwise(calls))
    assert len({c.version for c in calls}) == 3
    auto = [e for e in engine.events(root) if e["event_type"] == "auto_retry_node"]
    assert [e["node_id"] for e in auto] == [a.id, a.id]


def test_policy_gives_up_after_times(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_fail")
    lab.fail_budget[a.id] = 10
    tree, _start, _end = chain(a)
    _set(tree, a.id, failure_policy={"retry": {"times": 2, "delay": 0}})
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 3)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    assert counters(engine, root, a.id) == ("FAILED", 2, False)
    assert lab.count("execute", a.id) == 3
    assert len(histories(engine, a.id)) == 2


def test_policy_error_filter(engine: rattan.Engine, lab: Lab) -> None:
    returns_false, raises = act("c_fail"), act("c_raise_once")
    tree1, _s1, _e1 = chain(returns_false)
    _set(
        tree1, returns_false.id, failure_policy={"retry": {"times": 2, "delay": 0, "errors": ["ValueError"]}}
    )
    tree2, _s2, _e2 = chain(raises)
    _set(tree2, raises.id, failure_policy={"retry": {"times": 2, "delay": 0, "errors": ["ValueError"]}})
    root1, root2 = run(engine, tree1), run(engine, tree2)
    wait_finished(engine, root2)  # the ValueError was retried
    assert counters(engine, root2, raises.id) == ("FINISHED", 1, False)
    wait_state(engine, returns_false.id, "FAILED")
    wait_idle(engine)
    assert counters(engine, root1, returns_false.id) == ("FAILED", 0, False)  # ReturnedFalse: not matched

    other = act("c_fail")
    tree3, _s3, _e3 = chain(other)
    _set(tree3, other.id, failure_policy={"retry": {"times": 1, "delay": 0, "errors": ["ReturnedFalse"]}})
    root3 = run(engine, tree3)
    wait_finished(engine, root3)
    assert counters(engine, root3, other.id) == ("FINISHED", 1, False)


def test_policy_skip_after(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_fail"), act("c_ok")
    lab.fail_budget[a.id] = 10
    tree, start, end = chain(a, b)
    _set(tree, a.id, failure_policy={"retry": {"times": 5, "delay": 0}, "skip_after": 2})
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert counters(engine, root, a.id) == ("FINISHED", 1, True)
    assert lab.count("execute", a.id) == 2
    assert [(h["retry"], h["skip"]) for h in histories(engine, a.id)] == [(0, False), (1, False)]
    assert outputs(engine, a.id)["_result"] is False


def test_policy_exponential_backoff(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_fail")
    lab.fail_budget[a.id] = 3
    tree, _start, _end = chain(a)
    _set(
        tree,
        a.id,
        failure_policy={"retry": {"times": 3, "backoff": "exponential", "delay": 0.2, "max_delay": 0.5}},
    )
    root = run(engine, tree)
    wait_finished(engine, root)
    calls = lab.of("execute", a.id)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    assert len(gaps) == 3
    # 0.2, 0.4, then 0.8 capped at 0.5
    for gap, want in zip(gaps, (0.2, 0.4, 0.5), strict=True):
        assert want - 0.02 <= gap < want + 1.0, gaps


def test_policy_retries_a_timeout(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_block")
    tree, _start, _end = chain(a)
    _set(
        tree,
        a.id,
        timeout_config={"enable": True, "action": "forced_fail", "seconds": 1},
        failure_policy={"retry": {"times": 1, "delay": 0, "errors": ["NodeTimeout"]}},
    )
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 2, timeout=6)  # timed out, then retried
    lab.open(a.id)
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)
    hist = histories(engine, a.id)
    assert len(hist) == 1 and hist[0]["outputs"] == {"ex_data": TIMEOUT_EX_DATA, "_forced_failed": True}


def test_operator_retry_counts_toward_the_policy(engine: rattan.Engine, lab: Lab) -> None:
    """A manual retry and the automatic ones share the retry counter of the pass."""
    a = act("c_fail")
    lab.fail_budget[a.id] = 10
    tree, _start, _end = chain(a)
    _set(tree, a.id, failure_policy={"retry": {"times": 1, "delay": 0, "errors": ["*"]}})
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 2)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    assert counters(engine, root, a.id) == ("FAILED", 1, False)
    ok(api.retry_node(engine, a.id))
    wait_for(lambda: lab.count("execute", a.id) == 3)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    assert counters(engine, root, a.id) == ("FAILED", 2, False)
    assert lab.count("execute", a.id) == 3


def test_invalid_failure_policy_is_refused_at_run(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_ok")
    tree, _start, _end = chain(a)
    _set(tree, a.id, failure_policy={"skip_after": 0})
    res = api.run_pipeline(engine, tree)
    assert res.result is False
    assert isinstance(res.exc, rattan.TreeInvalidException)

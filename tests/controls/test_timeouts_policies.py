"""Node timeouts (``timeout_config``, SPEC 12.1) and automatic failure policies (``failure_policy``).

Every engine here runs on a ``FakeClock``: a timeout, a retry backoff or a poll is due at an exact
clock time, checked not to come just before it (``TICK``) and to come at it; stored ``started`` /
``archived`` times are the clock's, so backoffs are checked exactly against them."""

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
    histories,
    node_states,
    ok,
    outputs,
    run,
    state_name,
    wait_finished,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.model.messages import FireTimer, Poll
from rattan.testing import FakeClock

pytestmark = pytest.mark.timeout(60)
TIMEOUT_EX_DATA = "forced fail by bamboo_engine"
TICK = 0.001  # "just before a due time" (the clock's float resolution at its epoch is ~2.4e-7 s)
FAR = 3600.0  # clock seconds "far past" every due time of these tests


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine], clock: FakeClock) -> rattan.Engine:
    """Every engine of this file runs on the test's ``clock``."""
    return make_engine(clock=clock)


def armed(engine: rattan.Engine) -> list[float]:
    """Due times of the durable timers (timeouts, automatic retries) armed and not yet due."""
    return [due for due, msg in engine.dispatcher.pending_timers() if isinstance(msg, FireTimer)]


def poll_due(engine: rattan.Engine) -> float:
    """Due time of the one poll armed."""
    polls = wait_for(
        lambda: [due for due, msg in engine.dispatcher.pending_timers() if isinstance(msg, Poll)]
    )
    assert len(polls) == 1, polls
    return float(polls[0])


def poll_at(engine: rattan.Engine, clock: FakeClock, lab: Lab, node_id: str, when: float) -> None:
    """Move the clock to ``when`` (at or past the next poll's due time) and wait for that poll."""
    wait_idle(engine)
    n = lab.count("schedule", node_id)
    clock.set(when)
    wait_for(lambda: lab.count("schedule", node_id) == n + 1)
    wait_idle(engine)


def move_far(engine: rattan.Engine, clock: FakeClock) -> None:
    """Move the clock far past every due time and wait until what was due has been handled."""
    clock.advance(FAR)
    now = clock.now()
    wait_for(lambda: all(due > now for due, _ in engine.dispatcher.pending_timers()))
    wait_idle(engine)


def fail_then_retry_at(
    engine: rattan.Engine, clock: FakeClock, lab: Lab, node_id: str, n: int, delay: float
) -> None:
    """The ``n``-th execute of ``node_id`` fails: its automatic retry is armed ``delay`` after the
    failure, does not come just before, and comes at that time."""
    wait_for(lambda: lab.count("execute", node_id) == n)
    failed = wait_state(engine, node_id, "FAILED")
    wait_idle(engine)
    due = failed.archived + delay
    assert armed(engine) == [due], (n, armed(engine), due)
    clock.set(due - TICK)
    wait_idle(engine)
    assert lab.count("execute", node_id) == n
    assert state_name(engine, node_id) == "FAILED"
    clock.set(due)
    wait_for(lambda: lab.count("execute", node_id) == n + 1)


def _set(tree: dict[str, Any], node_id: str, **keys: Any) -> dict[str, Any]:
    tree["activities"][node_id].update(keys)
    return tree


# -- timeouts -----------------------------------------------------------------------------------------
def test_timeout_forced_fail(engine: rattan.Engine, clock: FakeClock, lab: Lab) -> None:
    a, b = act("c_block"), act("c_ok")
    tree, start, _end = chain(a, b)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail", "seconds": 1})
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    entered = engine.get_state(a.id)
    deadline = entered.started + 1
    wait_for(lambda: armed(engine) == [deadline])
    clock.set(deadline - TICK)  # (execute blocks a worker: the engine is not idle, nothing is due)
    assert armed(engine) == [deadline]
    assert engine.get_state(a.id).version == entered.version
    clock.set(deadline)
    failed = wait_state(engine, a.id, "FAILED", timeout=5)
    assert failed.version != entered.version
    assert failed.archived == deadline
    assert (failed.archived_time - entered.started_time).total_seconds() == 1.0
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


def test_timeout_forced_fail_and_skip_moves_on(engine: rattan.Engine, clock: FakeClock, lab: Lab) -> None:
    a, b = act("c_poll"), act("c_ok")  # polls until told: only the timeout ends it
    tree, start, end = chain(a, b)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail_and_skip", "seconds": 1})
    root = run(engine, tree)
    wait_for(lambda: lab.count("schedule", a.id) == 1)  # the first poll runs at once
    deadline = engine.get_state(a.id).started + 1
    wait_idle(engine)
    assert armed(engine) == [deadline]
    # poll every 0.1 s, 0.05 s off the deadline's phase so that no poll is due with the timeout
    when = poll_due(engine) + 0.05
    while when < deadline:
        poll_at(engine, clock, lab, a.id, when)
        when = poll_due(engine)
    polls = lab.count("schedule", a.id)
    assert polls == 10  # at 0, 0.15, 0.25, ... 0.95 s
    clock.set(deadline - TICK)
    wait_idle(engine)
    assert state_name(engine, a.id) == "RUNNING"
    clock.set(deadline)
    wait_finished(engine, root, timeout=8)
    assert engine.get_state(a.id).archived == deadline
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
    move_far(engine, clock)  # the poll armed for 1.05 s comes due: the schedule is expired
    assert lab.count("schedule", a.id) == polls
    assert engine.dispatcher.pending_timers() == []


def test_timeout_does_nothing_to_a_node_that_finished_in_time(
    engine: rattan.Engine, clock: FakeClock, lab: Lab
) -> None:
    a, b = act("c_ok"), act("c_block")
    tree, _start, _end = chain(a, b)
    _set(tree, a.id, timeout_config={"enable": True, "action": "forced_fail", "seconds": 1})
    root = run(engine, tree)
    finished = wait_state(engine, a.id, "FINISHED")
    version = finished.version
    wait_for(lambda: lab.count("execute", b.id) == 1)
    deadline = finished.started + 1
    wait_for(lambda: armed(engine) == [deadline])  # left armed: it finds the node moved on
    clock.advance(FAR)  # far past the deadline
    wait_for(lambda: armed(engine) == [])
    lab.open(b.id)
    wait_finished(engine, root)
    wait_idle(engine)  # the timer has been handled
    assert engine.get_state(a.id).version == version
    assert counters(engine, root, a.id) == ("FINISHED", 0, False)
    assert ("node_timeout", a.id) not in [(e["event_type"], e["node_id"]) for e in engine.events(root)]
    assert engine.dispatcher.pending_timers() == []


def test_disabled_timeout_is_ignored(engine: rattan.Engine, clock: FakeClock, lab: Lab) -> None:
    a = act("c_poll", polls=12)  # 1.1 s of polling
    tree, _start, _end = chain(a)
    _set(tree, a.id, timeout_config={"enable": False, "action": "forced_fail", "seconds": 1})
    root = run(engine, tree)
    wait_for(lambda: lab.count("schedule", a.id) == 1)
    started = engine.get_state(a.id).started
    wait_idle(engine)
    assert armed(engine) == []  # no timeout armed
    while lab.count("schedule", a.id) < 12:
        poll_at(engine, clock, lab, a.id, poll_due(engine))
    done = wait_finished(engine, root)
    assert done.archived - started > 1.05  # well past the disabled deadline
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
def test_policy_retries_until_success(engine: rattan.Engine, clock: FakeClock, lab: Lab) -> None:
    a, b = act("c_fail"), act("c_ok")
    lab.fail_budget[a.id] = 2
    tree, _start, _end = chain(a, b)
    _set(
        tree, a.id, failure_policy={"retry": {"times": 3, "backoff": "fixed", "delay": 0.1, "errors": ["*"]}}
    )
    root = run(engine, tree)
    fail_then_retry_at(engine, clock, lab, a.id, 1, 0.1)
    fail_then_retry_at(engine, clock, lab, a.id, 2, 0.1)
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 2, False)
    hist = histories(engine, a.id)
    assert [(h["retry"], h["skip"], h["outputs"]["ex_data"]) for h in hist] == [
        (0, False, "boom"),
        (1, False, "boom"),
    ]
    calls = lab.of("execute", a.id)
    assert len(calls) == 3
    assert len({c.version for c in calls}) == 3
    # each pass starts exactly 0.1 s (of the clock) after the failure of the one before
    t0 = engine.get_histories(a.id)[0].started
    assert [(h.started, h.archived) for h in engine.get_histories(a.id)] == [(t0, t0), (t0 + 0.1, t0 + 0.1)]
    final = engine.get_state(a.id)
    assert (final.started, final.archived) == (t0 + 0.1 + 0.1, t0 + 0.1 + 0.1)
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
    assert armed(engine) == []  # no further retry is armed
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


def test_policy_exponential_backoff(engine: rattan.Engine, clock: FakeClock, lab: Lab) -> None:
    a = act("c_fail")
    lab.fail_budget[a.id] = 3
    tree, _start, _end = chain(a)
    _set(
        tree,
        a.id,
        failure_policy={"retry": {"times": 3, "backoff": "exponential", "delay": 0.2, "max_delay": 0.5}},
    )
    root = run(engine, tree)
    backoffs = (0.2, 0.4, 0.5)  # 0.2, 0.4, then 0.8 capped at 0.5
    for n, delay in enumerate(backoffs, start=1):
        fail_then_retry_at(engine, clock, lab, a.id, n, delay)
    wait_finished(engine, root)
    assert lab.count("execute", a.id) == 4
    passes = [(h.started, h.archived) for h in engine.get_histories(a.id)]
    final = engine.get_state(a.id)
    passes.append((final.started, final.archived))
    assert len(passes) == 4
    for ((_, failed_at), (started, _)), delay in zip(itertools.pairwise(passes), backoffs, strict=True):
        assert started == failed_at + delay, passes


def test_policy_retries_a_timeout(engine: rattan.Engine, clock: FakeClock, lab: Lab) -> None:
    a = act("c_block")
    tree, _start, _end = chain(a)
    _set(
        tree,
        a.id,
        timeout_config={"enable": True, "action": "forced_fail", "seconds": 1},
        failure_policy={"retry": {"times": 1, "delay": 0, "errors": ["NodeTimeout"]}},
    )
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    deadline = engine.get_state(a.id).started + 1
    wait_for(lambda: armed(engine) == [deadline])
    clock.set(deadline - TICK)
    assert armed(engine) == [deadline]
    assert lab.count("execute", a.id) == 1
    clock.set(deadline)
    wait_for(lambda: lab.count("execute", a.id) == 2, timeout=6)  # timed out, then retried at once
    retried = engine.get_state(a.id)
    assert (retried.name, retried.started) == ("RUNNING", deadline)
    wait_for(lambda: armed(engine) == [deadline + 1])  # the new pass has its own timeout
    lab.open(a.id)
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)
    hist = histories(engine, a.id)
    assert len(hist) == 1 and hist[0]["outputs"] == {"ex_data": TIMEOUT_EX_DATA, "_forced_failed": True}
    assert engine.get_histories(a.id)[0].archived == deadline


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
    assert armed(engine) == []  # the policy's one retry is spent
    assert counters(engine, root, a.id) == ("FAILED", 1, False)
    ok(api.retry_node(engine, a.id))
    wait_for(lambda: lab.count("execute", a.id) == 3)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    assert armed(engine) == []
    assert counters(engine, root, a.id) == ("FAILED", 2, False)
    assert lab.count("execute", a.id) == 3


def test_invalid_failure_policy_is_refused_at_run(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_ok")
    tree, _start, _end = chain(a)
    _set(tree, a.id, failure_policy={"skip_after": 0})
    res = api.run_pipeline(engine, tree)
    assert res.result is False
    assert isinstance(res.exc, rattan.TreeInvalidException)

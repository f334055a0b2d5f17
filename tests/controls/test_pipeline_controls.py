"""pause_pipeline / resume_pipeline / revoke_pipeline (SPEC 6.5, 7.2, Appendix D.4).

The tests of polling nodes run their engine on a ``FakeClock``: each poll comes at an exact clock
time (not just before it), and "no poll after revoke" is checked by moving the clock far past
every due time, not by sleeping."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from control_helpers import (
    Lab,
    act,
    chain,
    events,
    histories,
    node_states,
    ok,
    outputs,
    refused,
    root_state,
    run,
    state_name,
    states_of,
    wait_finished,
    wait_for,
    wait_idle,
    wait_schedule,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, SubProcess, build_tree
from rattan.model.messages import Poll
from rattan.testing import FakeClock

pytestmark = pytest.mark.timeout(60)
TICK = 0.001  # "just before a due time" (the clock's float resolution at its epoch is ~2.4e-7 s)
FAR = 3600.0  # clock seconds "far past" every due time of these tests
POLL_INTERVAL = 0.1  # c_poll's interval (control_helpers.install)

PIPELINE_EVENTS = {
    "pre_pause_pipeline",
    "post_pause_pipeline",
    "pre_resume_pipeline",
    "post_resume_pipeline",
    "pre_revoke_pipeline",
    "post_revoke_pipeline",
    "pipeline_finish",
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def poll_due(engine: rattan.Engine) -> float:
    """Due time of the one poll armed."""
    polls = wait_for(lambda: [d for d, msg in engine.dispatcher.pending_timers() if isinstance(msg, Poll)])
    assert len(polls) == 1, polls
    return float(polls[0])


def next_poll(engine: rattan.Engine, clock: FakeClock, lab: Lab, node_id: str) -> float:
    """Run the node's next poll: it does not come just before its due time, and comes at it.
    Returns that due time."""
    wait_idle(engine)
    due = poll_due(engine)
    n = lab.count("schedule", node_id)
    clock.set(due - TICK)
    wait_idle(engine)
    assert lab.count("schedule", node_id) == n
    clock.set(due)
    wait_for(lambda: lab.count("schedule", node_id) == n + 1)
    wait_idle(engine)
    return due


def move_far(engine: rattan.Engine, clock: FakeClock) -> None:
    """Move the clock far past every due time and wait until what was due has been handled."""
    clock.advance(FAR)
    now = clock.now()
    wait_for(lambda: all(due > now for due, _ in engine.dispatcher.pending_timers()))
    wait_idle(engine)


# -- pause / resume ----------------------------------------------------------------------------------
def test_pause_lets_the_running_node_finish_and_starts_nothing_new(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_block"), act("c_ok")
    tree, start, end = chain(a, b)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)

    ok(api.pause_pipeline(engine, root))
    assert root_state(engine, root) == "SUSPENDED"
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "RUNNING"}

    lab.open(a.id)  # the running execute completes: A finishes, the token parks before B
    wait_state(engine, a.id, "FINISHED")
    wait_idle(engine)
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FINISHED"}
    assert lab.count("execute", b.id) == 0
    assert root_state(engine, root) == "SUSPENDED"

    ok(api.resume_pipeline(engine, root))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert lab.count("execute", b.id) == 1
    assert events(engine, root, PIPELINE_EVENTS) == [
        ("pre_pause_pipeline", None),
        ("post_pause_pipeline", None),
        ("pre_resume_pipeline", None),
        ("post_resume_pipeline", None),
        ("pipeline_finish", end.id),
    ]
    pause = next(e for e in engine.events(root) if e["event_type"] == "pre_pause_pipeline")
    assert pause["data"] == {"pipeline_id": root, "pipeline": root}
    assert pause["root_id"] == root


def test_pause_of_a_polling_node_keeps_polling_to_completion(
    make_engine: Callable[..., rattan.Engine], clock: FakeClock, lab: Lab
) -> None:
    engine = make_engine(clock=clock)
    a, b = act("c_poll", polls=3), act("c_ok")
    tree, start, _end = chain(a, b)
    root = run(engine, tree)
    wait_schedule(engine, a.id)
    wait_for(lambda: lab.count("schedule", a.id) == 1)  # the first poll runs at once
    first = clock.now()
    ok(api.pause_pipeline(engine, root))
    # paused, the node keeps polling on its interval
    assert next_poll(engine, clock, lab, a.id) == first + POLL_INTERVAL
    assert next_poll(engine, clock, lab, a.id) == first + POLL_INTERVAL + POLL_INTERVAL
    wait_state(engine, a.id, "FINISHED")
    wait_idle(engine)
    assert [c.payload for c in lab.of("schedule", a.id)] == [1, 2, 3]
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FINISHED"}
    assert root_state(engine, root) == "SUSPENDED"
    assert engine.dispatcher.pending_timers() == []  # no further poll
    ok(api.resume_pipeline(engine, root))
    wait_finished(engine, root)
    assert lab.count("execute", b.id) == 1


def test_pause_then_resume_immediately_is_harmless(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_ok"), act("c_ok")
    tree, _start, end = chain(a, b)
    root = run(engine, tree)
    ok(api.pause_pipeline(engine, root))
    ok(api.resume_pipeline(engine, root))
    wait_finished(engine, root)
    assert state_name(engine, end.id) == "FINISHED"
    assert lab.count("execute", a.id) == 1
    assert lab.count("execute", b.id) == 1


def _subprocess_tree() -> tuple[dict, dict[str, str]]:
    s_start, s_a, s_b, s_end = EmptyStartEvent(), act("c_block"), act("c_ok"), EmptyEndEvent()
    s_start.extend(s_a).extend(s_b).extend(s_end)
    sub = SubProcess(start=s_start)
    start, after, end = EmptyStartEvent(), act("c_ok"), EmptyEndEvent()
    start.extend(sub).extend(after).extend(end)
    ids = {
        "start": start.id,
        "sub": sub.id,
        "s_start": s_start.id,
        "s_a": s_a.id,
        "s_b": s_b.id,
        "s_end": s_end.id,
        "after": after.id,
        "end": end.id,
    }
    return build_tree(start), ids


def test_pause_a_subprocess_shows_suspended_while_the_root_runs(engine: rattan.Engine, lab: Lab) -> None:
    tree, n = _subprocess_tree()
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", n["s_a"]) == 1)

    ok(api.pause_pipeline(engine, n["sub"]))
    assert state_name(engine, n["sub"]) == "SUSPENDED"
    assert root_state(engine, root) == "RUNNING"

    lab.open(n["s_a"])
    wait_state(engine, n["s_a"], "FINISHED")
    wait_idle(engine)
    assert node_states(engine, root) == {
        n["start"]: "FINISHED",
        n["sub"]: "SUSPENDED",
        n["s_start"]: "FINISHED",
        n["s_a"]: "FINISHED",
    }
    assert root_state(engine, root) == "RUNNING"
    assert lab.count("execute", n["s_b"]) == 0

    # the root is not paused: resuming it is refused; resuming the subprocess continues
    refused(api.resume_pipeline(engine, root), rattan.InvalidOperationError)
    ok(api.resume_pipeline(engine, n["sub"]))
    wait_finished(engine, root)
    assert set(node_states(engine, root).values()) == {"FINISHED"}
    assert len(node_states(engine, root)) == 8 - 0  # every node of both levels
    assert lab.count("execute", n["after"]) == 1


def test_unknown_pipeline_ids_are_not_found(engine: rattan.Engine) -> None:
    assert refused(api.pause_pipeline(engine, "nope"), rattan.NotFoundError) == "node(nope) does not exist"
    assert refused(api.resume_pipeline(engine, "nope"), rattan.NotFoundError) == "node(nope) does not exist"
    assert refused(api.revoke_pipeline(engine, "nope"), rattan.NotFoundError) == "node(nope) does not exist"


def test_resume_of_a_running_pipeline_is_refused(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_block")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    msg = refused(api.resume_pipeline(engine, root), rattan.InvalidOperationError)
    assert msg == f"pipeline({root}) state is: RUNNING"
    assert root_state(engine, root) == "RUNNING"
    assert events(engine, root, PIPELINE_EVENTS) == []


def test_pause_of_a_suspended_pipeline_is_refused(engine: rattan.Engine, lab: Lab) -> None:
    """SPEC 7.2: RUNNING → SUSPENDED only; pausing a SUSPENDED pipeline fails."""
    a = act("c_block")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    ok(api.pause_pipeline(engine, root))
    version = engine.get_state(root).version
    refused(api.pause_pipeline(engine, root), rattan.InvalidOperationError)
    assert root_state(engine, root) == "SUSPENDED"
    assert engine.get_state(root).version == version
    assert events(engine, root, PIPELINE_EVENTS) == [
        ("pre_pause_pipeline", None),
        ("post_pause_pipeline", None),
    ]


def test_controls_on_a_finished_pipeline_are_refused(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_ok")
    tree, _start, end = chain(a)
    root = run(engine, tree)
    wait_finished(engine, root)
    refused(api.pause_pipeline(engine, root), rattan.InvalidOperationError)
    msg = refused(api.resume_pipeline(engine, root), rattan.InvalidOperationError)
    assert msg == f"pipeline({root}) state is: FINISHED"
    refused(api.revoke_pipeline(engine, root), rattan.InvalidOperationError)
    assert root_state(engine, root) == "FINISHED"
    # refused operations leave no event behind (they roll back with their transaction)
    assert events(engine, root, PIPELINE_EVENTS) == [("pipeline_finish", end.id)]


# -- revoke --------------------------------------------------------------------------------------------
def test_revoke_while_polling_stops_every_poll_and_cancels_once(
    make_engine: Callable[..., rattan.Engine], clock: FakeClock, lab: Lab
) -> None:
    engine = make_engine(clock=clock)
    a, b = act("c_poll"), act("c_ok")  # polls every 0.1 s of the clock, never finishes by itself
    tree, start, _end = chain(a, b)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    wait_for(lambda: lab.count("schedule", a.id) == 1)  # the first poll runs at once
    first = clock.now()
    assert next_poll(engine, clock, lab, a.id) == first + POLL_INTERVAL
    wait_idle(engine)
    assert poll_due(engine) == first + POLL_INTERVAL + POLL_INTERVAL  # the third is armed

    ok(api.revoke_pipeline(engine, root))
    assert root_state(engine, root) == "REVOKED"
    polls = lab.of("schedule", a.id)
    assert [c.payload for c in polls] == [1, 2]
    move_far(engine, clock)  # the armed poll and thousands of intervals more come due
    assert lab.of("schedule", a.id) == polls, "a poll ran after revoke"
    assert engine.dispatcher.pending_timers() == []  # the armed poll did nothing and armed nothing
    assert lab.count("cancel", a.id) == 1
    assert lab.of("cancel", a.id)[0].version == version
    sched = engine.get_schedule_with_node_and_version(a.id, version)
    assert sched.expired is True and sched.finished is False
    # node states are left as they are; nothing new starts
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "RUNNING"}
    assert lab.count("execute", b.id) == 0
    # and nothing comes back later
    move_far(engine, clock)
    assert len(lab.of("schedule", a.id)) == len(polls)
    assert engine.dispatcher.pending_timers() == []
    assert lab.count("cancel", a.id) == 1
    assert events(engine, root, PIPELINE_EVENTS) == [
        ("pre_revoke_pipeline", None),
        ("post_revoke_pipeline", None),
    ]


def test_revoke_is_final(engine: rattan.Engine, lab: Lab) -> None:
    """SPEC 7.2: revoke is allowed from RUNNING or SUSPENDED only; REVOKED is terminal (6.2)."""
    a = act("c_block")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    ok(api.revoke_pipeline(engine, root))
    version = engine.get_state(root).version
    refused(api.pause_pipeline(engine, root), rattan.InvalidOperationError)
    refused(api.resume_pipeline(engine, root), rattan.InvalidOperationError)
    refused(api.revoke_pipeline(engine, root), rattan.InvalidOperationError)
    assert root_state(engine, root) == "REVOKED"
    assert engine.get_state(root).version == version
    assert events(engine, root, PIPELINE_EVENTS) == [
        ("pre_revoke_pipeline", None),
        ("post_revoke_pipeline", None),
    ]


def test_revoke_refuses_later_callbacks(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_cb")
    tree, start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    ok(api.revoke_pipeline(engine, root))
    res = api.callback(engine, a.id, version, {"x": 1})
    assert res.result is False
    assert isinstance(res.exc, rattan.InvalidOperationError)
    wait_idle(engine)
    assert lab.count("schedule", a.id) == 0
    assert lab.count("cancel", a.id) == 1
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "RUNNING"}


def test_revoke_while_execute_runs_then_no_poll_ever_runs(
    make_engine: Callable[..., rattan.Engine], clock: FakeClock, lab: Lab
) -> None:
    """A revoke that lands while a polling node is inside ``execute``: the execute completes, but
    no poll of that pipeline may run afterwards (SPEC D.4: after revoke nothing of that pipeline
    is scheduled or executed again) and the Service is told to cancel once."""
    engine = make_engine(clock=clock)
    a, b = act("c_poll_block"), act("c_ok")
    tree, _start, _end = chain(a, b)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    ok(api.revoke_pipeline(engine, root))
    lab.open(a.id)
    wait_for(lambda: lab.count("execute_done", a.id) == 1)
    wait_idle(engine)
    assert engine.dispatcher.pending_timers() == []  # no poll armed
    move_far(engine, clock)  # thousands of poll intervals
    assert lab.count("schedule", a.id) == 0, "a poll ran after revoke"
    assert lab.count("execute", b.id) == 0
    assert lab.count("cancel", a.id) == 1
    assert root_state(engine, root) == "REVOKED"


def test_revoke_while_a_plain_node_executes_starts_nothing_new(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_block"), act("c_ok")
    tree, start, _end = chain(a, b)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    ok(api.revoke_pipeline(engine, root))
    lab.open(a.id)
    wait_for(lambda: lab.count("execute_done", a.id) == 1)
    wait_idle(engine)
    assert lab.count("execute", b.id) == 0
    assert b.id not in node_states(engine, root)
    assert node_states(engine, root)[start.id] == "FINISHED"
    assert node_states(engine, root)[a.id] in ("RUNNING", "FINISHED")
    assert root_state(engine, root) == "REVOKED"


def test_revoke_of_a_paused_pipeline_and_of_a_failed_node(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_fail"), act("c_ok")
    tree, start, _end = chain(a, b)
    root = run(engine, tree)
    wait_state(engine, a.id, "FAILED")
    ok(api.pause_pipeline(engine, root))
    ok(api.revoke_pipeline(engine, root))
    assert root_state(engine, root) == "REVOKED"
    # the parked token is gone: repairs are refused
    msg = refused(api.retry_node(engine, a.id), rattan.InvalidOperationError)
    assert msg == f"can not find sleep process with current node id: {a.id}"
    refused(api.skip_node(engine, a.id), rattan.InvalidOperationError)
    wait_idle(engine)
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FAILED"}
    assert lab.count("execute", a.id) == 1
    assert lab.count("execute", b.id) == 0
    assert histories(engine, a.id) == []
    assert outputs(engine, a.id)["ex_data"] == "boom"


def test_revoke_a_subprocess_id_is_refused(engine: rattan.Engine, lab: Lab) -> None:
    tree, n = _subprocess_tree()
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", n["s_a"]) == 1)
    msg = refused(api.revoke_pipeline(engine, n["sub"]), rattan.InvalidOperationError)
    assert "revoke the root pipeline" in msg
    assert state_name(engine, n["sub"]) == "RUNNING"
    lab.open(n["s_a"])
    wait_finished(engine, root)
    assert set(node_states(engine, root).values()) == {"FINISHED"}
    entry = states_of(engine, root)[n["sub"]]
    assert (entry["state"], entry["retry"], entry["skip"]) == ("FINISHED", 0, False)


def test_pause_pipeline_with_an_activity_id_is_refused(engine: rattan.Engine, lab: Lab) -> None:
    """SPEC 7.2: ``pipeline_id`` is the root id or a subprocess node id. Pausing an activity id
    through ``pause_pipeline`` would write RUNNING → SUSPENDED on the activity itself; its waiting
    token can then never complete (a later ``resume_node_appoint`` leaves it READY with the token
    asleep). It must be refused and leave the node untouched."""
    a = act("c_cb")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    version = wait_schedule(engine, a.id)
    res = api.pause_pipeline(engine, a.id)
    assert res.result is False
    assert isinstance(res.exc, (rattan.InvalidOperationError, rattan.NotFoundError))
    assert state_name(engine, a.id) == "RUNNING"
    refused(api.resume_pipeline(engine, a.id), rattan.InvalidOperationError)
    ok(api.callback(engine, a.id, version, {"x": 1}))
    wait_finished(engine, root)


def test_resume_pipeline_with_an_appointed_node_id_is_refused(engine: rattan.Engine, lab: Lab) -> None:
    """``resume_pipeline`` on a node carrying a pause appointment (SUSPENDED) must not write
    RUNNING on it: the token reaching a RUNNING node it never entered stops for good."""
    gate, b = act("c_block"), act("c_ok")
    tree, _start, _end = chain(gate, b)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", gate.id) == 1)
    ok(api.pause_node_appoint(engine, b.id))
    res = api.resume_pipeline(engine, b.id)
    assert res.result is False
    assert state_name(engine, b.id) == "SUSPENDED"
    lab.open(gate.id)
    wait_for(lambda: engine.get_state(b.id).root_id == root)
    ok(api.resume_node_appoint(engine, b.id))
    wait_finished(engine, root)

"""pause_node_appoint / resume_node_appoint (SPEC 6.5, 7.3, Appendix D.3)."""

from __future__ import annotations

import pytest
from control_helpers import (
    Lab,
    act,
    chain,
    events,
    node_states,
    ok,
    refused,
    root_state,
    run,
    state_name,
    wait_finished,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, SubProcess, build_tree

pytestmark = pytest.mark.timeout(60)

NODE_EVENTS = {"pre_pause_node", "post_pause_node", "pre_resume_node", "post_resume_node"}


def test_appointment_before_the_node_is_reached_parks_the_token(engine: rattan.Engine, lab: Lab) -> None:
    a, b, c = act("c_block"), act("c_ok"), act("c_ok")
    tree, start, end = chain(a, b, c)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)

    ok(api.pause_node_appoint(engine, b.id))
    # the appointment exists before the node is reached: SUSPENDED by id, not yet in the run's states
    st = engine.get_state(b.id)
    assert (st.name, st.root_id, st.parent_id) == ("SUSPENDED", "", "")
    assert engine.batch_get_state_name([b.id, c.id]) == {b.id: "SUSPENDED"}
    assert b.id not in node_states(engine, root)
    # its own reads work before the node is reached (the state has no root yet: the index has)
    entry = engine.get_children_states(b.id, detail=True)[b.id]
    assert (entry["state"], entry["children"], entry["type"]) == ("SUSPENDED", {}, "ServiceActivity")

    lab.open(a.id)
    wait_for(lambda: engine.get_state(b.id).root_id == root)
    wait_idle(engine)
    st = engine.get_state(b.id)
    assert (st.name, st.root_id, st.parent_id) == ("SUSPENDED", root, root)
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FINISHED", b.id: "SUSPENDED"}
    assert root_state(engine, root) == "RUNNING"
    assert lab.count("execute", b.id) == 0

    ok(api.resume_node_appoint(engine, b.id))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        c.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert lab.count("execute", b.id) == 1
    assert events(engine, root, NODE_EVENTS) == [
        ("pre_pause_node", b.id),
        ("post_pause_node", b.id),
        ("pre_resume_node", b.id),
        ("post_resume_node", b.id),
    ]


def test_resume_before_the_node_is_reached_cancels_the_appointment(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_block"), act("c_ok")
    tree, _start, _end = chain(a, b)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    ok(api.pause_node_appoint(engine, b.id))
    ok(api.resume_node_appoint(engine, b.id))
    assert state_name(engine, b.id) == "READY"
    lab.open(a.id)
    wait_finished(engine, root)
    assert state_name(engine, b.id) == "FINISHED"
    assert lab.count("execute", b.id) == 1


def test_appointment_refused_for_running_finished_and_failed_nodes(engine: rattan.Engine, lab: Lab) -> None:
    done, running = act("c_ok"), act("c_block")
    tree, _start, _end = chain(done, running)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", running.id) == 1)
    for node_id, name in ((done.id, "FINISHED"), (running.id, "RUNNING")):
        refused(api.pause_node_appoint(engine, node_id), rattan.InvalidOperationError)
        assert state_name(engine, node_id) == name
    lab.open(running.id)
    wait_finished(engine, root)

    failing = act("c_fail")
    tree2, _s, _e = chain(failing)
    run(engine, tree2)
    wait_state(engine, failing.id, "FAILED")
    refused(api.pause_node_appoint(engine, failing.id), rattan.InvalidOperationError)
    assert state_name(engine, failing.id) == "FAILED"
    # resume of a node that is not SUSPENDED is refused too
    refused(api.resume_node_appoint(engine, failing.id), rattan.InvalidOperationError)
    assert events(engine, root, NODE_EVENTS) == []
    assert events(engine, tree2["id"], NODE_EVENTS) == []


def test_appointment_refused_for_subprocess_and_unknown_nodes(engine: rattan.Engine, lab: Lab) -> None:
    s_start, s_a, s_end = EmptyStartEvent(), act("c_ok"), EmptyEndEvent()
    s_start.extend(s_a).extend(s_end)
    first, sub = act("c_block"), SubProcess(start=s_start)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(first).extend(sub).extend(end)
    root = run(engine, build_tree(start))
    wait_for(lambda: lab.count("execute", first.id) == 1)
    msg = refused(api.pause_node_appoint(engine, sub.id), rattan.InvalidOperationError)
    assert msg == "can not use pause_node_appoint api for NodeType.SubProcess"
    msg = refused(api.resume_node_appoint(engine, sub.id), rattan.InvalidOperationError)
    assert msg == "can not use resume_node_appoint api for NodeType.SubProcess"
    refused(api.pause_node_appoint(engine, "nope"), rattan.NotFoundError)
    refused(api.resume_node_appoint(engine, "nope"), rattan.NotFoundError)
    assert not engine.has_state(sub.id)
    # a node inside the subprocess can be appointed
    ok(api.pause_node_appoint(engine, s_a.id))
    lab.open(first.id)
    wait_for(lambda: engine.get_state(s_a.id).root_id == root)
    wait_idle(engine)
    st = engine.get_state(s_a.id)
    assert (st.name, st.root_id, st.parent_id) == ("SUSPENDED", root, sub.id)
    assert state_name(engine, sub.id) == "RUNNING"
    ok(api.resume_node_appoint(engine, s_a.id))
    wait_finished(engine, root)
    assert set(node_states(engine, root).values()) == {"FINISHED"}


def test_appointment_on_an_end_event_then_resume_finishes_the_pipeline(
    engine: rattan.Engine, lab: Lab
) -> None:
    """SPEC 7.3: any node but a subprocess can be appointed; after the resume the token passes it.
    The resumed node is READY; entering it must go READY → RUNNING → FINISHED."""
    gate, a = act("c_block"), act("c_ok")
    tree, start, end = chain(gate, a)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", gate.id) == 1)
    ok(api.pause_node_appoint(engine, end.id))
    lab.open(gate.id)
    wait_for(lambda: engine.get_state(end.id).root_id == root)
    wait_idle(engine)
    assert node_states(engine, root)[end.id] == "SUSPENDED"
    ok(api.resume_node_appoint(engine, end.id))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        gate.id: "FINISHED",
        a.id: "FINISHED",
        end.id: "FINISHED",
    }


def test_appointment_resumed_before_a_gateway_is_reached(engine: rattan.Engine, lab: Lab) -> None:
    """Resuming an appointment before the node is reached leaves it READY; a gateway entered from
    READY must still pass (READY → RUNNING → FINISHED), not trip the transition check."""
    from rattan.builder import ConvergeGateway, ParallelGateway

    gate, x, y = act("c_block"), act("c_ok"), act("c_ok")
    start, pg, conv, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    start.extend(gate).extend(pg).connect(x, y)
    pg.converge(conv).extend(end)
    root = run(engine, build_tree(start))
    wait_for(lambda: lab.count("execute", gate.id) == 1)
    ok(api.pause_node_appoint(engine, pg.id))
    ok(api.resume_node_appoint(engine, pg.id))
    assert state_name(engine, pg.id) == "READY"
    lab.open(gate.id)
    wait_finished(engine, root)
    assert set(node_states(engine, root).values()) == {"FINISHED"}

"""retry_node, retry_subprocess, skip_node, skip_exclusive_gateway,
skip_conditional_parallel_gateway and forced_fail_activity (SPEC 5.3, 7.4, Appendix D.4)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from control_helpers import (
    Lab,
    act,
    chain,
    counters,
    event_data,
    events,
    flows_of,
    histories,
    inputs,
    node_states,
    ok,
    outputs,
    refused,
    root_state,
    run,
    short_histories,
    state_name,
    wait_finished,
    wait_for,
    wait_idle,
    wait_schedule,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    Params,
    SubProcess,
    Var,
    build_tree,
)
from rattan.model.messages import Poll
from rattan.testing import FakeClock

pytestmark = pytest.mark.timeout(60)
POLL_INTERVAL = 0.1  # c_poll's (control_helpers.install)


# -- retry_node ---------------------------------------------------------------------------------------
def test_retry_without_data_reruns_with_the_same_inputs(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_fail", x=1, y="two"), act("c_ok")
    tree, start, end = chain(a, b)
    root = run(engine, tree)
    failed = wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    failed_data = api.get_execution_data(engine, a.id).data
    assert failed_data == {
        "inputs": {"x": 1, "y": "two", "_loop": 1, "_inner_loop": 1},
        "outputs": {"ex_data": "boom", "_result": False, "_loop": 1, "_inner_loop": 1},
    }
    assert counters(engine, root, a.id) == ("FAILED", 0, False)
    assert root_state(engine, root) == "RUNNING"
    assert histories(engine, a.id) == []

    ok(api.retry_node(engine, a.id))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)
    now = engine.get_state(a.id)
    assert now.version != failed.version
    assert [c.payload for c in lab.of("execute", a.id)] == [
        {"x": 1, "y": "two", "_loop": 1, "_inner_loop": 1},
        {"x": 1, "y": "two", "_loop": 1, "_inner_loop": 1},
    ]
    assert [c.version for c in lab.of("execute", a.id)] == [failed.version, now.version]
    assert outputs(engine, a.id) == {"done": True, "_result": True, "_loop": 1, "_inner_loop": 1}
    hist = histories(engine, a.id)
    assert len(hist) == 1
    h = hist[0]
    assert set(h) == {
        "id",
        "node_id",
        "started_time",
        "archived_time",
        "retry",
        "loop",
        "skip",
        "version",
        "inputs",
        "outputs",
    }
    assert isinstance(h["id"], int)
    assert (h["node_id"], h["loop"], h["retry"], h["skip"], h["version"]) == (
        a.id,
        1,
        0,
        False,
        failed.version,
    )
    assert (h["inputs"], h["outputs"]) == (failed_data["inputs"], failed_data["outputs"])
    assert isinstance(h["started_time"], datetime) and isinstance(h["archived_time"], datetime)
    assert h["started_time"] <= h["archived_time"]
    short = short_histories(engine, a.id)
    assert short == [
        {k: h[k] for k in ("id", "node_id", "started_time", "archived_time", "loop", "skip", "version")}
    ]
    retry_events = [
        e for e in engine.events(root) if e["event_type"] in ("pre_retry_node", "post_retry_node")
    ]
    assert [(e["event_type"], e["data"]) for e in retry_events] == [
        ("pre_retry_node", {"node_id": a.id, "data": None}),
        ("post_retry_node", {"node_id": a.id, "data": None}),
    ]


def test_retry_with_data_replaces_all_static_inputs(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_fail", x=1, y="two")
    tree, _start, _end = chain(a, data=Data(inputs={"${v}": Var(type=Var.PLAIN, value="hello")}))
    root = run(engine, tree)
    wait_state(engine, a.id, "FAILED")
    old = engine.get_state(a.id).version
    new_data: dict[str, Any] = {"x": "${v}", "z": "${v}!", "_escape_render_keys": ["z"]}
    ok(api.retry_node(engine, a.id, data=new_data))
    wait_finished(engine, root)
    # y disappeared, x rendered, z kept raw (escaped)
    assert lab.of("execute", a.id)[-1].payload == {"x": "hello", "z": "${v}!", "_loop": 1, "_inner_loop": 1}
    assert inputs(engine, a.id) == {"x": "hello", "z": "${v}!", "_loop": 1, "_inner_loop": 1}
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)
    hist = histories(engine, a.id)
    assert len(hist) == 1
    assert hist[0]["version"] == old
    assert hist[0]["inputs"] == {"x": 1, "y": "two", "_loop": 1, "_inner_loop": 1}
    assert hist[0]["outputs"]["ex_data"] == "boom"
    assert event_data(engine, root, "pre_retry_node")[0]["node_id"] == a.id


def test_retry_pops_escape_render_keys_from_the_callers_dict(engine: rattan.Engine, lab: Lab) -> None:
    """SPEC 7.4: the ``_escape_render_keys`` entry is removed from the caller's dict (the peer pops
    it before any check, so even a refused call mutates the dict)."""
    a = act("c_fail")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_state(engine, a.id, "FAILED")
    new_data: dict[str, Any] = {"x": 1, "_escape_render_keys": ["x"]}
    ok(api.retry_node(engine, a.id, data=new_data))
    wait_finished(engine, root)
    assert new_data == {"x": 1}


def test_retry_refusals(engine: rattan.Engine, lab: Lab) -> None:
    locked, running = act("c_fail", retryable=False), act("c_block")
    tree, _start, _end = chain(running, locked)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", running.id) == 1)
    msg = refused(api.retry_node(engine, running.id), rattan.InvalidOperationError)
    assert msg == f"{running.id} state is not FAILED, actual RUNNING"
    refused(api.retry_node(engine, "nope"), rattan.NotFoundError)
    lab.open(running.id)
    wait_state(engine, locked.id, "FAILED")
    msg = refused(api.retry_node(engine, locked.id), rattan.InvalidOperationError)
    assert msg == f"can not retry node({locked.id}) with can_retry(False)"
    refused(api.retry_node(engine, running.id), rattan.InvalidOperationError)  # FINISHED
    msg = refused(api.retry_node(engine, locked.id, loop_retry=True), rattan.InvalidOperationError)
    assert msg == f"node({locked.id}) is not loop retryable"
    wait_idle(engine)
    assert counters(engine, root, locked.id) == ("FAILED", 0, False)
    assert histories(engine, locked.id) == []
    assert events(engine, root, {"pre_retry_node", "post_retry_node"}) == []
    # it can still be skipped (skippable)
    ok(api.skip_node(engine, locked.id))
    wait_finished(engine, root)


def test_retry_after_the_token_is_gone_is_refused(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_fail")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_state(engine, a.id, "FAILED")
    ok(api.revoke_pipeline(engine, root))
    msg = refused(api.retry_node(engine, a.id), rattan.InvalidOperationError)
    assert msg == f"can not find sleep process with current node id: {a.id}"
    assert counters(engine, root, a.id) == ("FAILED", 0, False)


def test_retry_twice_counts_every_retry(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_fail")
    lab.fail_budget[a.id] = 2
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    versions = [wait_state(engine, a.id, "FAILED").version]
    ok(api.retry_node(engine, a.id))
    wait_for(
        lambda: engine.get_state(a.id).name == "FAILED" and engine.get_state(a.id).version != versions[0]
    )
    versions.append(engine.get_state(a.id).version)
    assert counters(engine, root, a.id) == ("FAILED", 1, False)
    ok(api.retry_node(engine, a.id))
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 2, False)
    hist = histories(engine, a.id)
    assert [(h["retry"], h["skip"], h["loop"], h["version"]) for h in hist] == [
        (0, False, 1, versions[0]),
        (1, False, 1, versions[1]),
    ]
    assert hist[0]["id"] < hist[1]["id"]
    assert lab.count("execute", a.id) == 3


def test_retry_of_an_exception_and_of_a_gateway(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_raise_once")
    tree, _start, _end = chain(a)
    root = run(engine, tree)
    wait_state(engine, a.id, "FAILED")
    assert "ValueError: raised once" in outputs(engine, a.id)["ex_data"]
    ok(api.retry_node(engine, a.id))
    wait_finished(engine, root)
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)


# -- retry_subprocess ---------------------------------------------------------------------------------
def test_retry_subprocess(engine: rattan.Engine, reg: rattan.Registry, lab: Lab) -> None:
    class Flaky(rattan.LazyVariable, registry=reg):
        code = "t_ctl_flaky"

        def get_value(self) -> Any:
            if lab.take_failure("lazy"):
                raise RuntimeError("lazy not ready")
            return "ready"

    s_start, s_a, s_end = (
        EmptyStartEvent(),
        act("c_ok", p=Var(type=Var.SPLICE, value="${p}")),
        EmptyEndEvent(),
    )
    s_start.extend(s_a).extend(s_end)
    sub = SubProcess(
        start=s_start,
        data=Data(inputs={"${p}": Var(type=Var.PLAIN, value="default")}),
        params=Params({"${p}": Var(type=Var.LAZY, value="v", custom_type="t_ctl_flaky")}),
    )
    start, end, other = EmptyStartEvent(), EmptyEndEvent(), act("c_fail")
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    failed = wait_state(engine, sub.id, "FAILED")
    wait_idle(engine)
    assert outputs(engine, sub.id)["ex_data"].startswith("context hydrate failed(")
    assert node_states(engine, root) == {start.id: "FINISHED", sub.id: "FAILED"}

    msg = refused(api.retry_subprocess(engine, start.id), rattan.InvalidOperationError)
    assert msg == f"node({start.id}) type is not SubProcess"
    ok(api.retry_subprocess(engine, sub.id))
    wait_finished(engine, root)
    assert lab.of("execute", s_a.id)[0].payload["p"] == "ready"
    assert counters(engine, root, sub.id) == ("FINISHED", 1, False)
    assert engine.get_state(sub.id).version != failed.version
    hist = histories(engine, sub.id)
    assert [(h["retry"], h["skip"], h["version"]) for h in hist] == [(0, False, failed.version)]
    assert events(engine, root, {"pre_retry_subprocess", "post_retry_subprocess"}) == [
        ("pre_retry_subprocess", sub.id),
        ("post_retry_subprocess", sub.id),
    ]
    assert other.id not in node_states(engine, root)


def test_retry_subprocess_refused_unless_failed(engine: rattan.Engine, lab: Lab) -> None:
    s_start, s_a, s_end = EmptyStartEvent(), act("c_block"), EmptyEndEvent()
    s_start.extend(s_a).extend(s_end)
    sub = SubProcess(start=s_start)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    wait_for(lambda: lab.count("execute", s_a.id) == 1)
    msg = refused(api.retry_subprocess(engine, sub.id), rattan.InvalidOperationError)
    assert msg == f"{sub.id} state is not FAILED, actual RUNNING"
    refused(api.retry_subprocess(engine, "nope"), rattan.NotFoundError)
    lab.open(s_a.id)
    wait_finished(engine, root)


# -- skip_node ------------------------------------------------------------------------------------------
def test_skip_node_finishes_without_touching_data(engine: rattan.Engine, lab: Lab) -> None:
    a = act("c_fail", x=1)
    b = act("c_ok", got=Var(type=Var.SPLICE, value="${a_done}"))
    data = Data(inputs={"${a_done}": NodeOutput(source_act=a.id, source_key="done")})
    tree, start, end = chain(a, b, data=data)
    root = run(engine, tree)
    failed = wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    before = api.get_execution_data(engine, a.id).data

    ok(api.skip_node(engine, a.id))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert counters(engine, root, a.id) == ("FINISHED", 0, True)
    st = engine.get_state(a.id)
    assert st.version != failed.version and st.archived_time is not None
    assert api.get_execution_data(engine, a.id).data == before  # still _result False, ex_data
    assert before["outputs"] == {"ex_data": "boom", "_result": False, "_loop": 1, "_inner_loop": 1}
    # no output extraction on skip: the node-output key stays undefined, B sees the template text
    assert lab.of("execute", b.id)[0].payload["got"] == "${a_done}"
    assert "${a_done}" not in {cv.key for cv in engine.get_context(root)}
    assert lab.count("execute", a.id) == 1
    hist = histories(engine, a.id)
    assert [(h["retry"], h["skip"], h["loop"], h["version"]) for h in hist] == [(0, False, 1, failed.version)]
    assert hist[0]["outputs"] == before["outputs"]
    assert events(engine, root, {"pre_skip_node", "post_skip_node"}) == [
        ("pre_skip_node", a.id),
        ("post_skip_node", a.id),
    ]


def test_skip_node_refusals(engine: rattan.Engine, lab: Lab) -> None:
    locked = act("c_fail", skippable=False)
    tree, _start, _end = chain(locked)
    root = run(engine, tree)
    wait_state(engine, locked.id, "FAILED")
    assert refused(api.skip_node(engine, locked.id), rattan.InvalidOperationError) == "can not skip this node"
    msg = refused(api.skip_node(engine, locked.id, loop_skip=True), rattan.InvalidOperationError)
    assert msg == f"node({locked.id}) can not loop skip"
    refused(api.skip_node(engine, "nope"), rattan.NotFoundError)
    assert counters(engine, root, locked.id) == ("FAILED", 0, False)
    ok(api.retry_node(engine, locked.id))
    wait_finished(engine, root)
    # FINISHED now: skip refused on state
    msg = refused(api.skip_node(engine, locked.id), rattan.InvalidOperationError)
    assert msg in ("can not skip this node", f"{locked.id} state is not FAILED, actual FINISHED")


def test_skip_node_refused_for_gateways_subprocesses_and_running_nodes(
    engine: rattan.Engine, lab: Lab
) -> None:
    s_start, s_a, s_end = EmptyStartEvent(), act("c_block"), EmptyEndEvent()
    s_start.extend(s_a).extend(s_end)
    sub = SubProcess(start=s_start)
    eg = ExclusiveGateway(conditions={0: "1 == 1", 1: "1 == 2"})
    start, end, x, y = EmptyStartEvent(), EmptyEndEvent(), act("c_ok"), act("c_ok")
    converge = ConvergeGateway()
    start.extend(sub).extend(eg).connect(x, y)
    eg.converge(converge).extend(end)
    root = run(engine, build_tree(start))
    wait_for(lambda: lab.count("execute", s_a.id) == 1)
    msg = refused(api.skip_node(engine, s_a.id), rattan.InvalidOperationError)
    assert msg == f"{s_a.id} state is not FAILED, actual RUNNING"
    refused(api.skip_node(engine, sub.id), rattan.InvalidOperationError)
    msg = refused(api.skip_node(engine, eg.id), rattan.InvalidOperationError)
    assert msg == "can not use skip_node api for ExclusiveGateway"
    refused(api.skip_node(engine, end.id), rattan.InvalidOperationError)
    lab.open(s_a.id)
    wait_finished(engine, root)
    assert node_states(engine, root)[x.id] == "FINISHED"
    assert y.id not in node_states(engine, root)


# -- gateway skips --------------------------------------------------------------------------------------
def _exclusive_tree() -> tuple[dict[str, Any], dict[str, Any]]:
    start, eg, x, y, converge, end = (
        EmptyStartEvent(),
        ExclusiveGateway(conditions={0: "${n} == 1", 1: "${n} == 2"}),
        act("c_ok"),
        act("c_ok"),
        ConvergeGateway(),
        EmptyEndEvent(),
    )
    start.extend(eg).connect(x, y)
    eg.converge(converge).extend(end)
    tree = build_tree(start, data=Data(inputs={"${n}": Var(type=Var.PLAIN, value=3)}))
    return tree, {"start": start, "eg": eg, "x": x, "y": y, "converge": converge, "end": end}


def test_skip_exclusive_gateway_takes_the_given_flow(engine: rattan.Engine, lab: Lab) -> None:
    tree, n = _exclusive_tree()
    root = run(engine, tree)
    failed = wait_state(engine, n["eg"].id, "FAILED")
    wait_idle(engine)
    assert outputs(engine, n["eg"].id)["ex_data"] == "all conditions of branches are not meet"
    flows = flows_of(tree, n["eg"].id)

    msg = refused(
        api.skip_exclusive_gateway(engine, n["eg"].id, "no-such-flow"), rattan.InvalidOperationError
    )
    assert "no-such-flow" in msg
    msg = refused(
        api.skip_exclusive_gateway(engine, n["x"].id, flows[n["y"].id]), rattan.InvalidOperationError
    )
    assert msg == f"{n['x'].id} is not exclusive gateway, actual: ServiceActivity"
    assert state_name(engine, n["eg"].id) == "FAILED"

    ok(api.skip_exclusive_gateway(engine, n["eg"].id, flows[n["y"].id]))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        n["start"].id: "FINISHED",
        n["eg"].id: "FINISHED",
        n["y"].id: "FINISHED",
        n["converge"].id: "FINISHED",
        n["end"].id: "FINISHED",
    }
    assert counters(engine, root, n["eg"].id) == ("FINISHED", 0, True)
    assert lab.count("execute", n["x"].id) == 0
    hist = histories(engine, n["eg"].id)
    assert [(h["skip"], h["version"]) for h in hist] == [(False, failed.version)]
    assert hist[0]["outputs"] == {"ex_data": "all conditions of branches are not meet"}
    assert event_data(engine, root, "pre_skip_exclusive_gateway") == [
        {"node_id": n["eg"].id, "flow_id": flows[n["y"].id]}
    ]
    # FINISHED now: a second skip is refused
    refused(api.skip_exclusive_gateway(engine, n["eg"].id, flows[n["x"].id]), rattan.InvalidOperationError)


def test_skip_conditional_parallel_gateway(engine: rattan.Engine, lab: Lab) -> None:
    start, cpg, x, y, z, converge, end = (
        EmptyStartEvent(),
        ConditionalParallelGateway(conditions={0: "${n} == 1", 1: "${n} == 2", 2: "${n} == 4"}),
        act("c_ok"),
        act("c_ok"),
        act("c_ok"),
        ConvergeGateway(),
        EmptyEndEvent(),
    )
    start.extend(cpg).connect(x, y, z)
    cpg.converge(converge).extend(end)
    tree = build_tree(start, data=Data(inputs={"${n}": Var(type=Var.PLAIN, value=3)}))
    root = run(engine, tree)
    failed = wait_state(engine, cpg.id, "FAILED")
    wait_idle(engine)
    flows = flows_of(tree, cpg.id)
    chosen = [flows[x.id], flows[z.id]]

    for bad in ([], ["nope"], flows[x.id]):
        refused(
            api.skip_conditional_parallel_gateway(engine, cpg.id, bad, converge.id),
            rattan.InvalidOperationError,
        )
    refused(
        api.skip_conditional_parallel_gateway(engine, cpg.id, chosen, end.id), rattan.InvalidOperationError
    )
    msg = refused(
        api.skip_conditional_parallel_gateway(engine, x.id, chosen, converge.id), rattan.InvalidOperationError
    )
    assert msg == f"{x.id} is not conditional parallel gateway, actual: ServiceActivity"
    assert counters(engine, root, cpg.id) == ("FAILED", 0, False)

    ok(api.skip_conditional_parallel_gateway(engine, cpg.id, chosen, converge.id))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        cpg.id: "FINISHED",
        x.id: "FINISHED",
        z.id: "FINISHED",
        converge.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert counters(engine, root, cpg.id) == ("FINISHED", 0, True)
    assert lab.count("execute", y.id) == 0
    assert [(h["skip"], h["version"]) for h in histories(engine, cpg.id)] == [(False, failed.version)]
    assert event_data(engine, root, "post_skip_conditional_parallel_gateway") == [
        {"node_id": cpg.id, "flow_ids": chosen, "converge_gateway_id": converge.id}
    ]


# -- forced_fail_activity -------------------------------------------------------------------------------
def armed_polls(engine: rattan.Engine) -> list[float]:
    """Due times of the polls armed and not yet due."""
    return [due for due, msg in engine.dispatcher.pending_timers() if isinstance(msg, Poll)]


def next_poll(engine: rattan.Engine, clock: FakeClock, lab: Lab, node_id: str) -> None:
    """Move the clock to the one poll armed and wait for that poll of ``node_id``."""
    wait_idle(engine)
    [due] = wait_for(lambda: armed_polls(engine))
    n = lab.count("schedule", node_id)
    clock.set(due)
    wait_for(lambda: lab.count("schedule", node_id) == n + 1)
    wait_idle(engine)


def test_forced_fail_of_a_polling_node(make_engine: Callable[..., rattan.Engine], lab: Lab) -> None:
    """On a FakeClock every poll comes when the test moves the clock to it: none is in flight when
    the node is forced to fail, and none of the old version runs after."""
    clock = FakeClock()
    engine = make_engine(clock=clock)
    a, b = act("c_poll", k="v"), act("c_ok")
    tree, start, _end = chain(a, b)
    root = run(engine, tree)
    old = wait_schedule(engine, a.id)
    wait_for(lambda: lab.count("schedule", a.id) == 1)  # the first poll comes at once
    next_poll(engine, clock, lab, a.id)  # the second when the clock reaches it
    [old_due] = wait_for(lambda: armed_polls(engine))  # the third poll of the old version

    ok(api.forced_fail_activity(engine, a.id, "stop it"))
    assert lab.count("schedule", a.id) == 2
    st = engine.get_state(a.id)
    assert st.name == "FAILED" and st.version != old and st.archived_time is not None
    out = outputs(engine, a.id)
    assert out["ex_data"] == "stop it" and out["_forced_failed"] is True
    assert set(out) == {"polls", "_result", "_loop", "_inner_loop", "ex_data", "_forced_failed"}
    assert inputs(engine, a.id) == {"k": "v", "_loop": 1, "_inner_loop": 1}
    sched = engine.get_schedule_with_node_and_version(a.id, old)
    assert sched.expired is True and sched.finished is False
    # the old version's poll comes due, and three intervals more: none of them polls
    clock.set(old_due + 3 * POLL_INTERVAL)
    wait_for(lambda: not armed_polls(engine))
    wait_idle(engine)
    assert lab.count("schedule", a.id) == 2
    assert outputs(engine, a.id) == out
    assert engine.get_state(a.id).name == "FAILED"
    assert lab.count("cancel", a.id) == 1
    assert lab.of("cancel", a.id)[0].version == old
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FAILED"}
    assert event_data(engine, root, "pre_forced_fail_activity") == [{"node_id": a.id, "ex_data": "stop it"}]
    assert event_data(engine, root, "post_forced_fail_activity") == [
        {"node_id": a.id, "ex_data": "stop it", "old_version": old, "new_version": st.version}
    ]
    assert histories(engine, a.id) == []

    # the token parked on the node: retry works and polls again (at once: its first poll finishes)
    lab.finish.add(a.id)
    ok(api.retry_node(engine, a.id))
    wait_finished(engine, root)
    assert lab.count("schedule", a.id) == 3
    assert counters(engine, root, a.id) == ("FINISHED", 1, False)
    assert [(h["version"], h["outputs"]) for h in histories(engine, a.id)] == [(st.version, out)]


def test_forced_fail_inside_execute_discards_the_late_result(engine: rattan.Engine, lab: Lab) -> None:
    a, b = act("c_block", k="v"), act("c_ok")
    tree, start, end = chain(a, b)
    root = run(engine, tree)
    wait_for(lambda: lab.count("execute", a.id) == 1)
    old = engine.get_state(a.id).version

    ok(api.forced_fail_activity(engine, a.id, "too slow"))
    st = engine.get_state(a.id)
    assert st.name == "FAILED" and st.version != old
    assert api.get_execution_data(engine, a.id).data == {
        "inputs": {},
        "outputs": {"ex_data": "too slow", "_forced_failed": True},
    }
    lab.open(a.id)
    wait_for(lambda: lab.count("execute_done", a.id) == 1)
    wait_idle(engine)
    assert engine.get_state(a.id).version == st.version
    assert api.get_execution_data(engine, a.id).data == {
        "inputs": {},
        "outputs": {"ex_data": "too slow", "_forced_failed": True},
    }
    assert lab.count("execute", b.id) == 0
    assert lab.count("cancel", a.id) == 1
    assert node_states(engine, root) == {start.id: "FINISHED", a.id: "FAILED"}

    ok(api.skip_node(engine, a.id))
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        a.id: "FINISHED",
        b.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert counters(engine, root, a.id) == ("FINISHED", 0, True)


def test_forced_fail_refusals(engine: rattan.Engine, lab: Lab) -> None:
    done, failing = act("c_ok"), act("c_fail")
    tree, start, _end = chain(done, failing)
    root = run(engine, tree)
    wait_state(engine, failing.id, "FAILED")
    msg = refused(api.forced_fail_activity(engine, done.id, "x"), rattan.InvalidOperationError)
    assert msg == f"{done.id} state is not RUNNING, actual: FINISHED"
    msg = refused(api.forced_fail_activity(engine, failing.id, "x"), rattan.InvalidOperationError)
    assert msg == f"{failing.id} state is not RUNNING, actual: FAILED"
    msg = refused(api.forced_fail_activity(engine, start.id, "x"), rattan.InvalidOperationError)
    assert msg == f"{start.id} is not activity, actual: EmptyStartEvent"
    refused(api.forced_fail_activity(engine, "nope", "x"), rattan.NotFoundError)
    assert outputs(engine, failing.id) == {"ex_data": "boom", "_result": False, "_loop": 1, "_inner_loop": 1}
    assert events(engine, root, {"pre_forced_fail_activity", "post_forced_fail_activity"}) == []


def test_retry_of_a_failed_exclusive_gateway_reevaluates_it(engine: rattan.Engine, lab: Lab) -> None:
    """SPEC 5.10: retry_node works on gateways (``can_retry`` is true) and re-runs the handler with
    the current context (after ``update_context_values``)."""
    from rattan.context import ContextValue, ContextValueType

    tree, n = _exclusive_tree()
    root = run(engine, tree)
    failed = wait_state(engine, n["eg"].id, "FAILED")
    ok(api.update_context_values(engine, root, [ContextValue("${n}", ContextValueType.PLAIN, 2)]))
    ok(api.retry_node(engine, n["eg"].id))
    wait_finished(engine, root)
    assert counters(engine, root, n["eg"].id) == ("FINISHED", 1, False)
    assert lab.count("execute", n["y"].id) == 1 and lab.count("execute", n["x"].id) == 0
    assert [(h["retry"], h["version"]) for h in histories(engine, n["eg"].id)] == [(0, failed.version)]

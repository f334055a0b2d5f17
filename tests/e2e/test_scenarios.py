"""End-to-end scenarios through ``rattan.api``, the same on every runtime (conftest.py): the
node types, data flow, waiting, and the operator controls, with exact states and outputs."""

from __future__ import annotations

import time
from typing import Any

import pytest
from runtimes import Runtime

from rattan import api
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

pytestmark = pytest.mark.timeout(120)

WAIT = 60.0


def _add(a: Any, b: Any) -> ServiceActivity:
    act = ServiceActivity(component_code="e2e_add")
    act.component.inputs.a = Var(type=Var.SPLICE if isinstance(a, str) else Var.PLAIN, value=a)
    act.component.inputs.b = Var(type=Var.PLAIN, value=b)
    return act


def _run(rt: Runtime, tree: dict[str, Any], **kwargs: Any) -> str:
    res = api.run_pipeline(rt.engine, tree, **kwargs)
    assert res.result, res.message
    return str(tree["id"])


def _finished(rt: Runtime, root: str) -> dict[str, Any]:
    outcome = rt.engine.wait_pipeline(root, timeout=WAIT)
    assert outcome["state"] == "FINISHED", outcome
    return outcome


def _children(rt: Runtime, root: str) -> dict[str, str]:
    res = api.get_pipeline_states(rt.engine, root)
    assert res.result, res.message
    return {nid: entry["state"] for nid, entry in res.data[root]["children"].items()}


def _outputs(rt: Runtime, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_outputs(rt.engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def _state(rt: Runtime, node_id: str) -> str | None:
    st = rt.engine.get_state_or_none(node_id)
    return None if st is None else st.name


def _wait_state(rt: Runtime, node_id: str, state: str) -> Any:
    deadline = time.monotonic() + WAIT
    while _state(rt, node_id) != state:
        assert time.monotonic() < deadline, f"{node_id} is {_state(rt, node_id)}, not {state}"
        time.sleep(0.02)
    return rt.engine.get_state(node_id)


def test_a_chain_passes_outputs_along(runtime: Runtime) -> None:
    first, second = _add(1, 2), _add("${s}", 10)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(first).extend(second).extend(end)
    tree = build_tree(start, data=Data(inputs={"${s}": NodeOutput(source_act=first.id, source_key="sum")}))
    root = _run(runtime, tree)
    _finished(runtime, root)
    assert _outputs(runtime, first.id)["sum"] == 3
    assert _outputs(runtime, second.id)["sum"] == 13
    assert set(_children(runtime, root).values()) == {"FINISHED"}
    assert len(_children(runtime, root)) == 4


def test_a_parallel_gateway_runs_every_branch(runtime: Runtime) -> None:
    branches = [_add(i, i) for i in range(10)]
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    start.extend(pg).connect(*branches).to(pg).converge(cg).extend(end)
    root = _run(runtime, build_tree(start))
    _finished(runtime, root)
    assert [_outputs(runtime, b.id)["sum"] for b in branches] == [2 * i for i in range(10)]
    assert _children(runtime, root)[cg.id] == "FINISHED"


def test_an_exclusive_gateway_takes_the_branch_whose_condition_holds(runtime: Runtime) -> None:
    low, high = _add(0, 1), _add(0, 2)
    start, eg, cg, end = EmptyStartEvent(), ExclusiveGateway(), ConvergeGateway(), EmptyEndEvent()
    eg.add_condition(0, "${x} < 5")
    eg.add_condition(1, "${x} >= 5")
    start.extend(eg).connect(low, high).to(eg).converge(cg).extend(end)
    tree = build_tree(start, data=Data(inputs={"${x}": Var(type=Var.PLAIN, value=7)}))
    root = _run(runtime, tree)
    _finished(runtime, root)
    states = _children(runtime, root)
    assert states[high.id] == "FINISHED" and low.id not in states


def test_a_conditional_parallel_gateway_runs_each_branch_whose_condition_holds(runtime: Runtime) -> None:
    acts = [_add(0, i) for i in range(3)]
    start, cpg, cg, end = EmptyStartEvent(), ConditionalParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    for i in range(3):
        cpg.add_condition(i, f"${{x}} > {i}")
    start.extend(cpg).connect(*acts).to(cpg).converge(cg).extend(end)
    tree = build_tree(start, data=Data(inputs={"${x}": Var(type=Var.PLAIN, value=2)}))
    root = _run(runtime, tree)
    _finished(runtime, root)
    states = _children(runtime, root)
    assert [states.get(a.id) for a in acts] == ["FINISHED", "FINISHED", None]


def test_a_subprocess_runs_its_own_pipeline_and_exports_its_outputs(runtime: Runtime) -> None:
    inner = _add(20, 22)
    s_start, s_end = EmptyStartEvent(), EmptyEndEvent()
    s_start.extend(inner).extend(s_end)
    sub_data = Data(
        inputs={"${inner_sum}": NodeOutput(source_act=inner.id, source_key="sum")}, outputs=["${inner_sum}"]
    )
    sub = SubProcess(start=s_start, data=sub_data)
    after = _add("${got}", 0)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(after).extend(end)
    tree = build_tree(
        start, data=Data(inputs={"${got}": NodeOutput(source_act=sub.id, source_key="${inner_sum}")})
    )
    root = _run(runtime, tree)
    _finished(runtime, root)
    assert _outputs(runtime, inner.id)["sum"] == 42
    assert _outputs(runtime, after.id)["sum"] == 42
    assert _state(runtime, sub.id) == "FINISHED"


def test_a_polling_node_polls_until_it_finishes_and_keeps_its_values_exact(runtime: Runtime) -> None:
    poll = ServiceActivity(component_code="e2e_poll")
    poll.component.inputs.polls = Var(type=Var.PLAIN, value=3)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(poll).extend(end)
    root = _run(runtime, build_tree(start))
    _finished(runtime, root)
    out = _outputs(runtime, poll.id)
    assert (out["count"], out["started_type"]) == (3, "datetime")


def test_a_callback_node_waits_and_takes_the_callback_data(runtime: Runtime) -> None:
    node = ServiceActivity(component_code="e2e_callback")
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(node).extend(end)
    root = _run(runtime, build_tree(start))
    version = _wait_state(runtime, node.id, "RUNNING").version
    outcome = runtime.engine.wait_pipeline(root, timeout=0.5)  # it waits for the outside: times out
    assert (outcome["state"], outcome["timed_out"]) == ("RUNNING", True) and node.id in outcome["waiting"]
    res = api.callback(runtime.engine, node.id, version, {"answer": 42})
    assert res.result, res.message
    _finished(runtime, root)
    assert _outputs(runtime, node.id)["got"] == {"answer": 42}
    stale = api.callback(runtime.engine, node.id, version, {"answer": 0})
    assert not stale.result  # the node moved on: a second callback is refused, not applied
    assert _outputs(runtime, node.id)["got"] == {"answer": 42}


def test_a_failed_node_is_retried_with_new_inputs(runtime: Runtime) -> None:
    node = ServiceActivity(component_code="e2e_fail_until")
    node.component.inputs.ok = Var(type=Var.PLAIN, value=False)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(node).extend(end)
    root = _run(runtime, build_tree(start))
    outcome = runtime.engine.wait_pipeline(root, timeout=WAIT)
    assert outcome["state"] == "RUNNING" and [f["id"] for f in outcome["failed_nodes"]] == [node.id]
    assert _outputs(runtime, node.id)["ex_data"] == "not ok yet"
    res = api.retry_node(runtime.engine, node.id, data={"ok": True})
    assert res.result, res.message
    _finished(runtime, root)
    assert _outputs(runtime, node.id)["passed"] is True
    assert runtime.engine.get_state(node.id).retry == 1


def test_a_failed_node_is_skipped(runtime: Runtime) -> None:
    node, after = ServiceActivity(component_code="e2e_fail_until"), _add(1, 1)
    node.component.inputs.ok = Var(type=Var.PLAIN, value=False)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(node).extend(after).extend(end)
    root = _run(runtime, build_tree(start))
    _wait_state(runtime, node.id, "FAILED")
    assert api.skip_node(runtime.engine, node.id).result
    _finished(runtime, root)
    assert runtime.engine.get_state(node.id).skip is True
    assert _outputs(runtime, after.id)["sum"] == 2


def test_pause_resume_and_revoke(runtime: Runtime) -> None:
    node, after = ServiceActivity(component_code="e2e_callback"), _add(1, 1)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(node).extend(after).extend(end)
    root = _run(runtime, build_tree(start))
    version = _wait_state(runtime, node.id, "RUNNING").version
    assert api.pause_pipeline(runtime.engine, root).result
    assert _state(runtime, root) == "SUSPENDED"
    assert api.callback(runtime.engine, node.id, version, {"n": 1}).result
    _wait_state(runtime, node.id, "FINISHED")
    time.sleep(0.3)  # a paused pipeline does not go on past the node
    assert _state(runtime, after.id) is None
    assert api.resume_pipeline(runtime.engine, root).result
    _finished(runtime, root)
    # revoke: a second run stopped while it waits
    node2 = ServiceActivity(component_code="e2e_callback")
    start2, end2 = EmptyStartEvent(), EmptyEndEvent()
    start2.extend(node2).extend(end2)
    root2 = _run(runtime, build_tree(start2))
    _wait_state(runtime, node2.id, "RUNNING")
    assert api.revoke_pipeline(runtime.engine, root2).result
    assert runtime.engine.wait_pipeline(root2, timeout=WAIT)["state"] == "REVOKED"


def test_forced_fail_of_a_waiting_node_then_retry(runtime: Runtime) -> None:
    node = ServiceActivity(component_code="e2e_callback")
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(node).extend(end)
    root = _run(runtime, build_tree(start))
    _wait_state(runtime, node.id, "RUNNING")
    assert api.forced_fail_activity(runtime.engine, node.id, ex_data="operator says no").result
    assert _state(runtime, node.id) == "FAILED"
    assert _outputs(runtime, node.id)["ex_data"] == "operator says no"
    assert api.retry_node(runtime.engine, node.id).result
    version = _wait_state(runtime, node.id, "RUNNING").version
    assert api.callback(runtime.engine, node.id, version, "after retry").result
    _finished(runtime, root)
    assert _outputs(runtime, node.id)["got"] == "after retry"


def test_many_pipelines_at_once_all_finish(runtime: Runtime) -> None:
    roots = []
    for i in range(20):
        a, b = _add(i, 1), _add("${s}", 1)
        start, end = EmptyStartEvent(), EmptyEndEvent()
        start.extend(a).extend(b).extend(end)
        tree = build_tree(start, data=Data(inputs={"${s}": NodeOutput(source_act=a.id, source_key="sum")}))
        roots.append((_run(runtime, tree), b.id, i + 2))
    for root, last, want in roots:
        _finished(runtime, root)
        assert _outputs(runtime, last)["sum"] == want

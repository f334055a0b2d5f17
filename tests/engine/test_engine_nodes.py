"""Every node type runs with its SPEC 5 semantics (states, execution data, context)."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import (
    all_ids,
    context_dict,
    inputs,
    node_states,
    outputs,
    run,
    wait_finished,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.builder import ExecutableEndEvent as EndElement
from rattan.context import ContextValueType

pytestmark = pytest.mark.timeout(30)
PLAIN = ContextValueType.PLAIN


def pipe(name: str | None = None, **inputs_: Any) -> ServiceActivity:
    act = ServiceActivity(component_code="pipe_example_component", name=name)
    for key, value in inputs_.items():
        act.component.inputs[key] = value if isinstance(value, Var) else Var(type=Var.PLAIN, value=value)
    return act


# --- start, activity, empty end ---------------------------------------------------------------


def test_sequence_start_activity_end(engine: rattan.Engine) -> None:
    start, act, end = EmptyStartEvent(), pipe(x=1, y="two"), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {start.id: "FINISHED", act.id: "FINISHED", end.id: "FINISHED"}
    assert api.get_execution_data(engine, act.id).data == {
        "inputs": {"x": 1, "y": "two", "_loop": 1, "_inner_loop": 1},
        "outputs": {"x": 1, "y": "two", "_result": True, "_loop": 1, "_inner_loop": 1},
    }
    # events carry no execution data when they succeed
    for nid in (start.id, end.id):
        res = api.get_execution_data(engine, nid)
        assert res.result is False
        assert isinstance(res.exc, rattan.NotFoundError)
    # the root has execution data with no outputs declared
    assert api.get_execution_data(engine, root).data == {"inputs": {}, "outputs": {}}
    st = engine.get_state(act.id)
    assert (st.root_id, st.parent_id, st.loop, st.inner_loop, st.retry, st.skip, st.error_ignored) == (
        root,
        root,
        1,
        1,
        0,
        False,
        False,
    )


def test_two_activities_and_example_component(engine: rattan.Engine) -> None:
    start = EmptyStartEvent()
    a1 = ServiceActivity(component_code="example_component")
    a1.component.inputs.k = Var(type=Var.PLAIN, value="v")
    a2 = pipe(k2="v2")
    end = EmptyEndEvent()
    start.extend(a1).extend(a2).extend(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    assert set(node_states(engine, root).values()) == {"FINISHED"}
    assert len(node_states(engine, root)) == 4
    # example_component succeeds without copying inputs
    assert outputs(engine, a1.id) == {"_result": True, "_loop": 1, "_inner_loop": 1}
    assert inputs(engine, a1.id) == {"k": "v", "_loop": 1, "_inner_loop": 1}


# --- executable end event -----------------------------------------------------------------------


def test_executable_end_event_runs(engine: rattan.Engine, reg: rattan.Registry) -> None:
    calls: list[Any] = []

    class MyEnd(rattan.ExecutableEndEvent, registry=reg):
        code = "test_my_end"

        def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
            calls.append((in_subprocess, root_pipeline_id, current_pipeline_id))

    start, act, end = EmptyStartEvent(), pipe(a=1), EndElement(type="test_my_end")
    start.extend(act).extend(end)
    tree = build_tree(start)
    assert tree["end_event"]["type"] == "test_my_end"
    root = run(engine, tree)
    wait_finished(engine, root)
    assert calls == [(False, root, root)]
    assert node_states(engine, root) == {start.id: "FINISHED", act.id: "FINISHED", end.id: "FINISHED"}


def test_executable_end_event_in_subprocess(engine: rattan.Engine, reg: rattan.Registry) -> None:
    calls: list[Any] = []

    class SubEnd(rattan.ExecutableEndEvent, registry=reg):
        code = "test_sub_end"

        def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
            calls.append((in_subprocess, root_pipeline_id, current_pipeline_id))

    s_start, s_act, s_end = EmptyStartEvent(), pipe(s=1), EndElement(type="test_sub_end")
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(start=s_start)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    assert calls == [(True, root, sub.id)]
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        sub.id: "FINISHED",
        s_start.id: "FINISHED",
        s_act.id: "FINISHED",
        s_end.id: "FINISHED",
        end.id: "FINISHED",
    }


def test_executable_end_event_raising_fails_end_only(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class BadEnd(rattan.ExecutableEndEvent, registry=reg):
        code = "test_bad_end"

        def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
            raise RuntimeError("end event boom")

    start, act, end = EmptyStartEvent(), pipe(a=1), EndElement(type="test_bad_end")
    start.extend(act).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, end.id, "FAILED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", act.id: "FINISHED", end.id: "FAILED"}
    ex_data = outputs(engine, end.id)["ex_data"]
    assert "Traceback (most recent call last)" in ex_data
    assert "RuntimeError: end event boom" in ex_data


# --- parallel gateway -------------------------------------------------------------------------


def test_parallel_gateway_runs_every_branch(engine: rattan.Engine) -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    acts = [pipe(f"b{i}", i=i) for i in range(3)]
    start.extend(pg).connect(*acts).to(pg).converge(cg).extend(end)
    tree = build_tree(start)
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {nid: "FINISHED" for nid in all_ids(tree)}
    for i, act in enumerate(acts):
        assert outputs(engine, act.id) == {"i": i, "_result": True, "_loop": 1, "_inner_loop": 1}
    # gateways carry no execution data
    for nid in (pg.id, cg.id):
        assert api.get_execution_data(engine, nid).result is False


def test_nested_parallel_gateways(engine: rattan.Engine) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    pg1, cg1, pg2, cg2 = ParallelGateway(), ConvergeGateway(), ParallelGateway(), ConvergeGateway()
    a, b, c = pipe(a=1), pipe(b=2), pipe(c=3)
    # pg1 -> (a, pg2 -> (b, c) -> cg2) -> cg1
    start.extend(pg1)
    pg1.connect(a, pg2)
    pg2.connect(b, c)
    b.extend(cg2)
    c.extend(cg2)
    a.extend(cg1)
    cg2.extend(cg1)
    cg1.extend(end)
    tree = build_tree(start)
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {nid: "FINISHED" for nid in all_ids(tree)}


# --- exclusive gateway -------------------------------------------------------------------------


def _eg_tree(
    conditions: dict[int, str], value: Any, default: int | None = None, n: int = 2
) -> tuple[dict[str, Any], EmptyStartEvent, ExclusiveGateway, list[ServiceActivity], EmptyEndEvent]:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions=conditions, default_condition_outgoing=default)
    branches = [pipe(f"branch{i}", branch=i) for i in range(n)]
    start.extend(eg).connect(*branches).to(eg).converge(end)
    data = Data(inputs={"${x}": Var(type=Var.PLAIN, value=value)})
    return build_tree(start, data=data), start, eg, branches, end


def test_exclusive_gateway_takes_true_branch(engine: rattan.Engine) -> None:
    tree, start, eg, (b0, b1), end = _eg_tree({0: "${x} < 0", 1: "${x} >= 0"}, 5)
    root = run(engine, tree)
    wait_finished(engine, root)
    # the branch not taken never gets a state
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        eg.id: "FINISHED",
        b1.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert engine.get_state_or_none(b0.id) is None
    assert api.get_execution_data(engine, eg.id).result is False


def test_exclusive_gateway_default_flow(engine: rattan.Engine) -> None:
    tree, start, eg, (_b0, _b1, b2), end = _eg_tree(
        {0: "${x} == 1", 1: "${x} == 2", 2: "${x} == 3"}, 9, 2, n=3
    )
    assert tree["gateways"][eg.id]["default_condition"]["flow_id"] == tree["gateways"][eg.id]["outgoing"][2]
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        eg.id: "FINISHED",
        b2.id: "FINISHED",
        end.id: "FINISHED",
    }


def test_exclusive_gateway_condition_wins_over_default(engine: rattan.Engine) -> None:
    tree, _, _eg, (b0, b1, b2), _ = _eg_tree({0: "${x} == 1", 1: "${x} == 2", 2: "${x} == 3"}, 1, 2, n=3)
    root = run(engine, tree)
    wait_finished(engine, root)
    states = node_states(engine, root)
    assert states[b0.id] == "FINISHED"
    assert b1.id not in states and b2.id not in states


def test_exclusive_gateway_no_true_condition_fails(engine: rattan.Engine) -> None:
    tree, start, eg, (_b0, _b1), _end = _eg_tree({0: "${x} == 1", 1: "${x} == 2"}, 3)
    root = run(engine, tree)
    wait_state(engine, eg.id, "FAILED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", eg.id: "FAILED"}
    assert api.get_execution_data(engine, eg.id).data == {
        "inputs": {},
        "outputs": {"ex_data": "all conditions of branches are not meet"},
    }


def test_exclusive_gateway_multiple_true_fails_with_only_strategy(engine: rattan.Engine) -> None:
    tree, start, eg, _, _ = _eg_tree({0: "${x} > 0", 1: "${x} > 1", 2: "${x} > 100"}, 5, n=3)
    flows = tree["gateways"][eg.id]["outgoing"]
    root = run(engine, tree)
    wait_state(engine, eg.id, "FAILED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", eg.id: "FAILED"}
    assert outputs(engine, eg.id) == {"ex_data": f"multiple conditions meet: {[flows[0], flows[1]]!r}"}


@pytest.mark.parametrize("strategy", ["FIRST", 2])
def test_exclusive_gateway_first_strategy(engine: rattan.Engine, strategy: Any) -> None:
    tree, start, eg, (_b0, b1, _b2), end = _eg_tree({0: "${x} > 100", 1: "${x} > 0", 2: "${x} > 1"}, 5, n=3)
    tree["gateways"][eg.id]["extra_info"] = {"strategy": strategy}
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        eg.id: "FINISHED",
        b1.id: "FINISHED",
        end.id: "FINISHED",
    }


def test_exclusive_gateway_undefined_name_compares_as_text(engine: rattan.Engine) -> None:
    # ${missing} stays unrendered and compares as its own text (Appendix B)
    tree, _start, _eg, (b0, b1), _end = _eg_tree({0: '${missing} == "1"', 1: '${missing} != "1"'}, 0)
    root = run(engine, tree)
    wait_finished(engine, root)
    states = node_states(engine, root)
    assert states[b1.id] == "FINISHED"
    assert b0.id not in states


# --- conditional parallel gateway ---------------------------------------------------------------


def test_conditional_parallel_gateway_only_true_branches(engine: rattan.Engine) -> None:
    start, end, cg = EmptyStartEvent(), EmptyEndEvent(), ConvergeGateway()
    cpg = ConditionalParallelGateway(conditions={0: "${x} < 0", 1: "${x} >= 0", 2: "${x} >= 1"})
    b0, b1, b2 = pipe(b=0), pipe(b=1), pipe(b=2)
    after = pipe(after=True)
    start.extend(cpg).connect(b0, b1, b2).to(cpg).converge(cg).extend(after).extend(end)
    tree = build_tree(start, data=Data(inputs={"${x}": Var(type=Var.PLAIN, value=1)}))
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        cpg.id: "FINISHED",
        b1.id: "FINISHED",
        b2.id: "FINISHED",
        cg.id: "FINISHED",
        after.id: "FINISHED",
        end.id: "FINISHED",
    }
    assert engine.get_state_or_none(b0.id) is None
    assert api.get_execution_data(engine, b0.id).result is False


def test_conditional_parallel_gateway_none_true_fails(engine: rattan.Engine) -> None:
    start, end, cg = EmptyStartEvent(), EmptyEndEvent(), ConvergeGateway()
    cpg = ConditionalParallelGateway(conditions={0: "${x} < 0", 1: "${x} > 100"})
    b0, b1 = pipe(b=0), pipe(b=1)
    start.extend(cpg).connect(b0, b1).to(cpg).converge(cg).extend(end)
    tree = build_tree(start, data=Data(inputs={"${x}": Var(type=Var.PLAIN, value=1)}))
    root = run(engine, tree)
    wait_state(engine, cpg.id, "FAILED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", cpg.id: "FAILED"}
    assert outputs(engine, cpg.id) == {"ex_data": "all conditions of branches are not meet"}


def test_conditional_parallel_gateway_default_flow(engine: rattan.Engine) -> None:
    start, end, cg = EmptyStartEvent(), EmptyEndEvent(), ConvergeGateway()
    cpg = ConditionalParallelGateway(
        conditions={0: "${x} < 0", 1: "${x} > 100"}, default_condition_outgoing=1
    )
    b0, b1 = pipe(b=0), pipe(b=1)
    start.extend(cpg).connect(b0, b1).to(cpg).converge(cg).extend(end)
    tree = build_tree(start, data=Data(inputs={"${x}": Var(type=Var.PLAIN, value=1)}))
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        cpg.id: "FINISHED",
        b1.id: "FINISHED",
        cg.id: "FINISHED",
        end.id: "FINISHED",
    }


# --- subprocess ---------------------------------------------------------------------------------


def test_subprocess_params_defaults_and_outputs(engine: rattan.Engine) -> None:
    s_start, s_end = EmptyStartEvent(), EmptyEndEvent()
    s_act = pipe(a=Var(type=Var.SPLICE, value="${p}"), b=Var(type=Var.SPLICE, value="${d}"))
    s_start.extend(s_act).extend(s_end)
    s_data = Data(
        inputs={
            "${p}": DataInput(type=Var.PLAIN, value="default_p"),
            "${d}": DataInput(type=Var.PLAIN, value="default_d"),
            "${child_out}": NodeOutput(source_act=s_act.id, source_key="a"),
        },
        outputs=["${child_out}", "${d}", "${not_declared}"],
    )
    sub = SubProcess(
        start=s_start, data=s_data, params=Params({"${p}": Var(type=Var.SPLICE, value="${top}")})
    )
    start, end = EmptyStartEvent(), EmptyEndEvent()
    after = pipe(x=Var(type=Var.SPLICE, value="${parent_out}"))
    start.extend(sub).extend(after).extend(end)
    data = Data(
        inputs={
            "${top}": Var(type=Var.PLAIN, value="given"),
            "${parent_out}": NodeOutput(source_act=sub.id, source_key="${child_out}"),
        }
    )
    tree = build_tree(start, data=data)
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {nid: "FINISHED" for nid in all_ids(tree)}
    # child activity sees the param (overriding the DataInput default) and the untouched default
    assert inputs(engine, s_act.id) == {"a": "given", "b": "default_d", "_loop": 1, "_inner_loop": 1}
    # the subprocess node: params as inputs, exported outputs (missing key -> the key itself)
    assert api.get_execution_data(engine, sub.id).data == {
        "inputs": {"${p}": "given"},
        "outputs": {
            "${child_out}": "given",
            "${d}": "default_d",
            "${not_declared}": "${not_declared}",
            "_loop": 1,
            "_inner_loop": 1,
        },
    }
    # the NodeOutput on the subprocess node wrote the parent context
    assert inputs(engine, after.id) == {"x": "given", "_loop": 1, "_inner_loop": 1}
    assert context_dict(engine, root)["${parent_out}"] == (PLAIN, "given", None)
    child_ctx = context_dict(engine, sub.id)
    assert child_ctx["${p}"] == (PLAIN, "given", None)
    assert child_ctx["${d}"] == (PLAIN, "default_d", None)
    assert child_ctx["${child_out}"] == (PLAIN, "given", None)
    # the child never sees the parent's context
    assert "${top}" not in child_ctx
    # subprocess contents are parented by the subprocess id
    assert engine.get_state(s_act.id).parent_id == sub.id
    assert engine.get_state(s_act.id).root_id == root
    assert engine.get_state(sub.id).parent_id == root


def test_subprocess_default_used_without_param(engine: rattan.Engine) -> None:
    s_start, s_end = EmptyStartEvent(), EmptyEndEvent()
    s_act = pipe(a=Var(type=Var.SPLICE, value="${p}"))
    s_start.extend(s_act).extend(s_end)
    s_data = Data(inputs={"${p}": DataInput(type=Var.PLAIN, value="default_p")})
    sub = SubProcess(start=s_start, data=s_data)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    assert inputs(engine, s_act.id)["a"] == "default_p"
    assert api.get_execution_data(engine, sub.id).data == {
        "inputs": {},
        "outputs": {"_loop": 1, "_inner_loop": 1},
    }


def test_nested_subprocess_two_levels(engine: rattan.Engine) -> None:
    # innermost: start -> act(v = ${inner_in}) -> end, exports ${inner_out}
    i_start, i_end = EmptyStartEvent(), EmptyEndEvent()
    i_act = pipe(v=Var(type=Var.SPLICE, value="${inner_in}_inner"))
    i_start.extend(i_act).extend(i_end)
    inner = SubProcess(
        start=i_start,
        data=Data(
            inputs={
                "${inner_in}": DataInput(type=Var.PLAIN, value="x"),
                "${inner_out}": NodeOutput(source_act=i_act.id, source_key="v"),
            },
            outputs=["${inner_out}"],
        ),
        params=Params({"${inner_in}": Var(type=Var.SPLICE, value="${mid_in}_mid")}),
    )
    # middle: start -> inner -> end, exports ${mid_out}
    m_start, m_end = EmptyStartEvent(), EmptyEndEvent()
    m_start.extend(inner).extend(m_end)
    middle = SubProcess(
        start=m_start,
        data=Data(
            inputs={
                "${mid_in}": DataInput(type=Var.PLAIN, value="y"),
                "${mid_out}": NodeOutput(source_act=inner.id, source_key="${inner_out}"),
            },
            outputs=["${mid_out}"],
        ),
        params=Params({"${mid_in}": Var(type=Var.SPLICE, value="${root_in}")}),
    )
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(middle).extend(end)
    tree = build_tree(
        start,
        data=Data(
            inputs={
                "${root_in}": Var(type=Var.PLAIN, value="r"),
                "${result}": NodeOutput(source_act=middle.id, source_key="${mid_out}"),
            },
            outputs=["${result}"],
        ),
    )
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {nid: "FINISHED" for nid in all_ids(tree)}
    assert inputs(engine, i_act.id)["v"] == "r_mid_inner"
    assert api.get_execution_data(engine, inner.id).data == {
        "inputs": {"${inner_in}": "r_mid"},
        "outputs": {"${inner_out}": "r_mid_inner", "_loop": 1, "_inner_loop": 1},
    }
    assert api.get_execution_data(engine, middle.id).data == {
        "inputs": {"${mid_in}": "r"},
        "outputs": {"${mid_out}": "r_mid_inner", "_loop": 1, "_inner_loop": 1},
    }
    assert api.get_execution_data(engine, root).data == {
        "inputs": {},
        "outputs": {"${result}": "r_mid_inner"},
    }
    assert engine.get_state(i_act.id).parent_id == inner.id
    assert engine.get_state(inner.id).parent_id == middle.id
    assert engine.get_state(middle.id).parent_id == root


# --- error_ignorable ------------------------------------------------------------------------------


def test_error_ignorable_failure_continues(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class FailService(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.partial = "kept"
            return False

    class FailComponent(rattan.Component, registry=reg):
        name = "fail"
        code = "test_fail_ignorable"
        bound_service = FailService

    start, end = EmptyStartEvent(), EmptyEndEvent()
    act = ServiceActivity(component_code="test_fail_ignorable", error_ignorable=True)
    after = pipe(seen=Var(type=Var.SPLICE, value="${partial_out}"))
    start.extend(act).extend(after).extend(end)
    tree = build_tree(
        start, data=Data(inputs={"${partial_out}": NodeOutput(source_act=act.id, source_key="partial")})
    )
    root = run(engine, tree)
    wait_finished(engine, root)
    assert node_states(engine, root) == {nid: "FINISHED" for nid in all_ids(tree)}
    st = engine.get_state(act.id)
    assert st.error_ignored is True
    assert st.skip is False
    entry = api.get_pipeline_states(engine, root).data[root]["children"][act.id]
    assert entry["error_ignored"] is True
    assert entry["error_ignorable"] is True
    assert outputs(engine, act.id) == {"partial": "kept", "_result": False, "_loop": 1, "_inner_loop": 1}
    assert inputs(engine, after.id)["seen"] == "kept"

"""Edge cases around failures inside structures (SPEC 4.5, 4.8, 5.4, 5.5)."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import node_states, outputs, run, wait_idle, wait_state

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

pytestmark = pytest.mark.timeout(30)


def _fail_component(reg: rattan.Registry) -> None:
    class FailSvc(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            return False

    class FailComp(rattan.Component, registry=reg):
        name = "fail"
        code = "t_edge_fail"
        bound_service = FailSvc


def test_failed_branch_blocks_converge(engine: rattan.Engine, reg: rattan.Registry) -> None:
    _fail_component(reg)
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    ok = ServiceActivity(component_code="example_component")
    bad = ServiceActivity(component_code="t_edge_fail")
    start.extend(pg).connect(ok, bad).to(pg).converge(cg).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, bad.id, "FAILED")
    wait_state(engine, ok.id, "FINISHED")
    wait_idle(engine)
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        pg.id: "FINISHED",
        ok.id: "FINISHED",
        bad.id: "FAILED",
    }


def test_failure_inside_subprocess_keeps_subprocess_running(
    engine: rattan.Engine, reg: rattan.Registry
) -> None:
    _fail_component(reg)
    s_start, s_bad, s_end = EmptyStartEvent(), ServiceActivity(component_code="t_edge_fail"), EmptyEndEvent()
    s_start.extend(s_bad).extend(s_end)
    sub = SubProcess(start=s_start)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, s_bad.id, "FAILED")
    wait_idle(engine)
    assert node_states(engine, root) == {
        start.id: "FINISHED",
        sub.id: "RUNNING",
        s_start.id: "FINISHED",
        s_bad.id: "FAILED",
    }
    assert engine.get_state(root).name == "RUNNING"
    # the subprocess node has its params saved as execution inputs, no outputs yet
    assert api.get_execution_data(engine, sub.id).data == {"inputs": {}, "outputs": {}}


def test_exclusive_gateway_parse_error(engine: rattan.Engine) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    eg = ExclusiveGateway(conditions={0: "${x} ==", 1: "${x} == 2"})
    a, b = (
        ServiceActivity(component_code="example_component"),
        ServiceActivity(component_code="example_component"),
    )
    start.extend(eg).connect(a, b).to(eg).converge(end)
    root = run(engine, build_tree(start, data=Data(inputs={"${x}": Var(type=Var.PLAIN, value=1)})))
    wait_state(engine, eg.id, "FAILED")
    wait_idle(engine)
    ex_data = outputs(engine, eg.id)["ex_data"]
    assert ex_data.startswith("evaluate[${x} ==] fail with data[")
    assert node_states(engine, root) == {start.id: "FINISHED", eg.id: "FAILED"}


def test_subprocess_param_hydrate_failure(engine: rattan.Engine) -> None:
    s_start, s_act, s_end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="example_component"),
        EmptyEndEvent(),
    )
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(
        start=s_start,
        data=Data(inputs={"${p}": DataInput(type=Var.PLAIN, value="d")}),
        params=Params({"${p}": Var(type=Var.LAZY, value="v", custom_type="t_edge_unknown_lazy")}),
    )
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, sub.id, "FAILED")
    wait_idle(engine)
    assert node_states(engine, root) == {start.id: "FINISHED", sub.id: "FAILED"}
    assert engine.get_state(root).name == "RUNNING"
    ex_data = outputs(engine, sub.id)["ex_data"]
    assert ex_data == (
        "context hydrate failed(unknown lazy variable code 't_edge_unknown_lazy'), "
        "check node log for details."
    )


def test_pre_render_failure_fails_start_event(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class Boom(rattan.LazyVariable, registry=reg):
        code = "t_edge_boom"

        def get_value(self) -> Any:
            raise RuntimeError("lazy boom")

    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="example_component"), EmptyEndEvent()
    start.extend(act).extend(end)
    data = Data(
        inputs={"${t}": Var(type=Var.LAZY, value="", custom_type="t_edge_boom")},
        pre_render_keys=["${t}"],
    )
    root = run(engine, build_tree(start, data=data))
    wait_state(engine, start.id, "FAILED")
    wait_idle(engine)
    assert node_states(engine, root) == {start.id: "FAILED"}
    ex_data = outputs(engine, start.id)["ex_data"]
    assert ex_data.startswith("context hydrate failed(")
    assert "lazy boom" in ex_data
    assert ex_data.endswith("check node log for details.")


def test_lazy_get_value_raising_fails_node(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class Boom(rattan.LazyVariable, registry=reg):
        code = "t_edge_boom2"

        def get_value(self) -> Any:
            raise RuntimeError("lazy boom 2")

    start, act, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="pipe_example_component"),
        EmptyEndEvent(),
    )
    act.component.inputs.v = Var(type=Var.LAZY, value="raw", custom_type="t_edge_boom2")
    start.extend(act).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, act.id, "FAILED")
    wait_idle(engine)
    out = outputs(engine, act.id)
    assert out["ex_data"].startswith("inputs hydrate failed(")
    assert "lazy boom 2" in out["ex_data"]
    assert out["ex_data"].endswith(", check node log for details")
    assert {k: v for k, v in out.items() if k != "ex_data"} == {
        "_result": False,
        "_loop": 1,
        "_inner_loop": 1,
    }
    assert api.get_execution_data_inputs(engine, act.id).data == {"v": f"${{v_{act.id}}}"}
    assert engine.get_state(root).name == "RUNNING"

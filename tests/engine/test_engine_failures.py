"""Node failures (SPEC 5.3, 4.3, 4.4, 8.2): exact states, ex_data and outputs; the engine goes on."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import inputs, node_states, outputs, run, wait_finished, wait_idle, wait_state

import rattan
from rattan import api
from rattan.builder import (
    EmptyEndEvent,
    EmptyStartEvent,
    NodeOutput,
    ServiceActivity,
    Var,
    build_tree,
)
from rattan.errors import UnstorableValueError

pytestmark = pytest.mark.timeout(30)


def _component(reg: rattan.Registry, code: str, execute: Any) -> None:
    service = type(f"Svc_{code}", (rattan.Service,), {"execute": execute})
    type(
        f"Comp_{code}",
        (rattan.Component,),
        {"name": code, "code": code, "bound_service": service},
        registry=reg,
    )


def _one_node_tree(
    code: str, **node_inputs: Any
) -> tuple[dict[str, Any], EmptyStartEvent, ServiceActivity, Any]:
    start, act, after, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code=code),
        ServiceActivity(component_code="example_component"),
        EmptyEndEvent(),
    )
    for key, value in node_inputs.items():
        act.component.inputs[key] = value
    start.extend(act).extend(after).extend(end)
    return build_tree(start), start, act, after


def _assert_parked_failure(engine: rattan.Engine, root: str, start: Any, act: Any) -> None:
    wait_state(engine, act.id, "FAILED")
    wait_idle(engine)
    # a failed node never fails its pipeline (Quirk keep) and nothing after it runs
    assert engine.get_state(root).name == "RUNNING"
    assert node_states(engine, root) == {start.id: "FINISHED", act.id: "FAILED"}
    st = engine.get_state(act.id)
    assert st.archived_time is not None
    assert st.error_ignored is False


def _assert_engine_still_runs(engine: rattan.Engine) -> None:
    start, act, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="pipe_example_component"),
        EmptyEndEvent(),
    )
    act.component.inputs.ok = Var(type=Var.PLAIN, value="yes")
    start.extend(act).extend(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    assert outputs(engine, act.id) == {"ok": "yes", "_result": True, "_loop": 1, "_inner_loop": 1}


def test_execute_returning_false(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute(self: Any, data: Any, parent_data: Any) -> bool:
        data.outputs.ex_data = "explained"
        data.outputs.partial = 1
        return False

    _component(reg, "t_false", execute)
    tree, start, act, _ = _one_node_tree("t_false", a=Var(type=Var.PLAIN, value=1))
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    assert api.get_execution_data(engine, act.id).data == {
        "inputs": {"a": 1, "_loop": 1, "_inner_loop": 1},
        "outputs": {"ex_data": "explained", "partial": 1, "_result": False, "_loop": 1, "_inner_loop": 1},
    }
    _assert_engine_still_runs(engine)


def test_execute_returning_falsy_value_stores_it(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute(self: Any, data: Any, parent_data: Any) -> int:
        return 0

    _component(reg, "t_zero", execute)
    tree, start, act, _ = _one_node_tree("t_zero")
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    assert outputs(engine, act.id) == {"_result": 0, "_loop": 1, "_inner_loop": 1}


def test_execute_returning_none_or_truthy_succeeds(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute_none(self: Any, data: Any, parent_data: Any) -> None:
        return None

    def execute_str(self: Any, data: Any, parent_data: Any) -> str:
        return "yes"

    _component(reg, "t_none", execute_none)
    _component(reg, "t_str", execute_str)
    start, a1, a2, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="t_none"),
        ServiceActivity(component_code="t_str"),
        EmptyEndEvent(),
    )
    start.extend(a1).extend(a2).extend(end)
    root = run(engine, build_tree(start))
    wait_finished(engine, root)
    assert outputs(engine, a1.id) == {"_result": True, "_loop": 1, "_inner_loop": 1}
    assert outputs(engine, a2.id) == {"_result": "yes", "_loop": 1, "_inner_loop": 1}


def test_execute_raising_records_traceback(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute(self: Any, data: Any, parent_data: Any) -> bool:
        data.outputs.before_raise = "kept"
        raise ValueError("service exploded")

    _component(reg, "t_raise", execute)
    tree, start, act, _ = _one_node_tree("t_raise", a=Var(type=Var.PLAIN, value="x"))
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    out = outputs(engine, act.id)
    assert set(out) == {"before_raise", "ex_data", "_result", "_loop", "_inner_loop"}
    assert out["before_raise"] == "kept"
    assert (out["_result"], out["_loop"], out["_inner_loop"]) == (False, 1, 1)
    assert out["ex_data"].startswith("Traceback (most recent call last):")
    assert "ValueError: service exploded" in out["ex_data"]
    assert "in execute" in out["ex_data"]
    assert inputs(engine, act.id) == {"a": "x", "_loop": 1, "_inner_loop": 1}
    _assert_engine_still_runs(engine)


def test_unknown_component_fails_node(engine: rattan.Engine) -> None:
    tree, start, act, _ = _one_node_tree(
        "t_no_such_component",
        a=Var(type=Var.SPLICE, value="${v}"),
        b=Var(type=Var.PLAIN, value="${v}"),
    )
    tree["data"]["inputs"]["${v}"] = {"type": "plain", "value": "V"}
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    data = api.get_execution_data(engine, act.id).data
    assert data["outputs"]["ex_data"].startswith(
        "component 't_no_such_component' version 'legacy' is not registered"
    )
    assert {k: v for k, v in data["outputs"].items() if k != "ex_data"} == {
        "_result": False,
        "_loop": 1,
        "_inner_loop": 1,
    }
    # static inputs as stored (unrendered), no system keys (SPEC 4.6 step 4)
    assert data["inputs"] == {"a": "${v}", "b": "${v}"}
    _assert_engine_still_runs(engine)


def test_unknown_lazy_code_fails_node(engine: rattan.Engine) -> None:
    tree, start, act, _ = _one_node_tree(
        "pipe_example_component",
        lz=Var(type=Var.LAZY, value="raw", custom_type="t_no_such_lazy"),
        p=Var(type=Var.PLAIN, value=1),
    )
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    assert api.get_execution_data(engine, act.id).data == {
        "inputs": {"lz": f"${{lz_{act.id}}}", "p": 1},
        "outputs": {
            "ex_data": (
                "inputs hydrate failed(unknown lazy variable code 't_no_such_lazy'), "
                "check node log for details"
            ),
            "_result": False,
            "_loop": 1,
            "_inner_loop": 1,
        },
    }
    _assert_engine_still_runs(engine)


def test_splice_reference_cycle_fails_node(engine: rattan.Engine) -> None:
    tree, start, act, _ = _one_node_tree("pipe_example_component", v=Var(type=Var.SPLICE, value="${a}"))
    tree["data"]["inputs"]["${a}"] = {"type": "splice", "value": "x${b}"}
    tree["data"]["inputs"]["${b}"] = {"type": "splice", "value": "y${a}"}
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    out = outputs(engine, act.id)
    assert "reference cycle:" in out["ex_data"]
    assert out["ex_data"] == (
        "inputs hydrate failed(reference cycle: ${a} -> ${b} -> ${a}), check node log for details"
    )
    assert {k: v for k, v in out.items() if k != "ex_data"} == {
        "_result": False,
        "_loop": 1,
        "_inner_loop": 1,
    }
    assert inputs(engine, act.id) == {"v": "${a}"}
    _assert_engine_still_runs(engine)


def test_non_json_output_fails_node(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute(self: Any, data: Any, parent_data: Any) -> bool:
        data.outputs.good = 1
        data.outputs.bad = object()
        return True

    _component(reg, "t_nonjson", execute)
    tree, start, act, _ = _one_node_tree("t_nonjson")
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    assert outputs(engine, act.id) == {
        "ex_data": "outputs['bad'] holds an object value: " + UnstorableValueError.HINT,
        "_result": False,
        "_loop": 1,
        "_inner_loop": 1,
    }
    _assert_engine_still_runs(engine)


def test_failed_node_outputs_are_extracted(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute(self: Any, data: Any, parent_data: Any) -> bool:
        data.outputs.partial = "half"
        return False

    _component(reg, "t_partial", execute)
    tree, start, act, _ = _one_node_tree("t_partial")
    tree["data"]["inputs"]["${got}"] = NodeOutput(source_act=act.id, source_key="partial").to_dict()
    tree["data"]["inputs"]["${res}"] = NodeOutput(source_act=act.id, source_key="_result").to_dict()
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    ctx = {cv.key: cv.value for cv in engine.get_context(root)}
    assert ctx["${got}"] == "half"
    assert ctx["${res}"] is False


def test_many_failures_then_engine_still_runs(engine: rattan.Engine, reg: rattan.Registry) -> None:
    def execute(self: Any, data: Any, parent_data: Any) -> bool:
        raise RuntimeError("x")

    _component(reg, "t_many", execute)
    roots = []
    acts = []
    for _ in range(5):
        tree, _start, act, _ = _one_node_tree("t_many")
        roots.append(run(engine, tree))
        acts.append(act)
    for act in acts:
        wait_state(engine, act.id, "FAILED")
    _assert_engine_still_runs(engine)
    assert all(engine.get_state(r).name == "RUNNING" for r in roots)


def test_failed_pipeline_data_untouched_for_unrun_nodes(engine: rattan.Engine) -> None:
    tree, start, act, after = _one_node_tree("t_missing_again")
    root = run(engine, tree)
    _assert_parked_failure(engine, root, start, act)
    res = api.get_execution_data(engine, after.id)
    assert res.result is False
    assert isinstance(res.exc, rattan.NotFoundError)
    assert api.get_execution_data_outputs(engine, after.id).data == {}

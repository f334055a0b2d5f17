"""No silent typos in runs: unknown components refused up front with ``check_components``, "did you
mean" hints for undefined ``${}`` names (warning, or failure with ``template_strict``), and node
outputs read from a subprocess that can never provide them refused by ``run_pipeline``."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from engine_helpers import inputs, node_states, outputs, run, wait_finished, wait_state

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.engine.prepare import component_problems
from rattan.errors import Problem, TreeInvalidException

pytestmark = pytest.mark.timeout(30)
SYS = {"_loop": 1, "_inner_loop": 1}


class _Svc(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        return True


@pytest.fixture
def echo(reg: rattan.Registry) -> None:
    """``echo`` in versions legacy and 1.0 in the test registry."""

    class Echo(rattan.Component, registry=reg):
        name = "echo"
        code = "echo"
        bound_service = _Svc

    class EchoV1(rattan.Component, registry=reg):
        name = "echo"
        code = "echo"
        version = "1.0"
        bound_service = _Svc


def _chain(*acts: Any, pid: str = "p_root", data: Data | None = None) -> dict[str, Any]:
    start: Any = EmptyStartEvent(id=f"{pid}_s")
    node = start
    for act in acts:
        node = node.extend(act)
    node.extend(EmptyEndEvent(id=f"{pid}_e"))
    return build_tree(start, id=pid, data=data)


def _refused(res: rattan.EngineAPIResult, engine: rattan.Engine, root_id: str) -> TreeInvalidException:
    assert res.result is False
    assert type(res.exc) is TreeInvalidException, repr(res.exc)
    assert engine.get_state_or_none(root_id) is None  # nothing stored
    return res.exc


# -- component codes -------------------------------------------------------------------------------


@pytest.mark.usefixtures("echo")
def test_check_components_refuses_with_hints(engine: rattan.Engine) -> None:
    typo = ServiceActivity(id="typo", name="Say hi", component_code="ecoh")
    versioned = ServiceActivity(id="versioned", component_code="echo")
    builtin = ServiceActivity(id="builtin", component_code="pipe_example_componet")
    tree = _chain(typo, versioned, builtin)
    tree["activities"]["versioned"]["component"]["version"] = "2.0"

    exc = _refused(api.run_pipeline(engine, tree, check_components=True), engine, "p_root")

    rule = "activity.component_unregistered"
    assert exc.problems == [
        Problem(
            "typo",
            rule,
            "component 'ecoh' version 'legacy' is not registered (did you mean 'echo'?)",
            "Say hi",
        ),
        Problem(
            "versioned",
            rule,
            "component 'echo' version '2.0' is not registered (registered versions: '1.0', 'legacy')",
        ),
        # the example components count while enable_example_components is on
        Problem(
            "builtin",
            rule,
            "component 'pipe_example_componet' version 'legacy' is not registered"
            " (did you mean 'pipe_example_component'?)",
        ),
    ]
    assert str(exc).startswith(
        "components not registered; register them before running (3 problem(s)):\n"
        "  - [activity.component_unregistered] typo (Say hi): component 'ecoh' version 'legacy' is not"
        " registered (did you mean 'echo'?)\n"
    )
    assert component_problems(engine.core, tree) == exc.problems


@pytest.mark.usefixtures("echo")
def test_check_components_accepts_known_codes_and_versions(engine: rattan.Engine) -> None:
    v1 = ServiceActivity(id="v1", component_code="echo")
    tree = _chain(ServiceActivity(id="legacy", component_code="echo"), v1)
    tree["activities"]["v1"]["component"]["version"] = "1.0"
    root = run(engine, tree, check_components=True)
    wait_finished(engine, root)
    assert node_states(engine, root) == {
        "p_root_s": "FINISHED",
        "legacy": "FINISHED",
        "v1": "FINISHED",
        "p_root_e": "FINISHED",
    }


def test_example_components_are_unknown_when_disabled(make_engine: Any) -> None:
    engine = make_engine(enable_example_components=False)
    tree = _chain(ServiceActivity(id="a", component_code="pipe_example_component"))
    exc = _refused(api.run_pipeline(engine, tree, check_components=True), engine, "p_root")
    assert [p.message for p in exc.problems] == [
        "component 'pipe_example_component' version 'legacy' is not registered"
    ]


# -- undefined ${} names in inputs ---------------------------------------------------------------


def _typo_tree() -> dict[str, Any]:
    act = ServiceActivity(id="act", component_code="pipe_example_component")
    act.component.inputs.v = Var(type=Var.SPLICE, value="${colour}")
    act.component.inputs.w = Var(type=Var.SPLICE, value="size ${size}")
    data = Data(
        inputs={"${color}": Var(type=Var.PLAIN, value="red"), "${size}": Var(type=Var.PLAIN, value=3)}
    )
    return _chain(act, data=data)


def test_undefined_name_in_an_input_warns_with_a_hint(
    engine: rattan.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rattan.engine")
    root = run(engine, _typo_tree())
    wait_finished(engine, root)
    # non-strict: the segment stays as text (bamboo's behaviour), the warning says what was meant
    assert inputs(engine, "act") == {"v": "${colour}", "w": "size 3", **SYS}
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "rattan.engine" and r.levelno == logging.WARNING
    ]
    assert warnings == [
        "node act: input 'v': template '${colour}' left unrendered: name 'colour' is not defined"
        " (did you mean 'color'?)"
    ]


def test_undefined_name_in_an_input_fails_the_node_when_strict(make_engine: Any) -> None:
    engine = make_engine(template_strict=True)
    root = run(engine, _typo_tree())
    wait_state(engine, "act", "FAILED")
    assert node_states(engine, root) == {"p_root_s": "FINISHED", "act": "FAILED"}
    assert outputs(engine, "act") == {
        "ex_data": "inputs hydrate failed(expression '${colour}' rejected: name 'colour' is not defined"
        " (did you mean 'color'?)), check node log for details",
        "_result": False,
        **SYS,
    }


def test_undefined_name_in_a_condition_fails_the_gateway_when_strict(make_engine: Any) -> None:
    # strict rendering of a condition used to escape the gateway and stop the engine step
    engine = make_engine(template_strict=True)
    start, end = EmptyStartEvent(id="s"), EmptyEndEvent(id="e")
    gw = ExclusiveGateway(id="gw", conditions={0: "${colr} == 'red'", 1: "${color} == 'blue'"})
    a1 = ServiceActivity(id="a1", component_code="pipe_example_component")
    a2 = ServiceActivity(id="a2", component_code="pipe_example_component")
    start.extend(gw).connect(a1, a2).to(gw).converge(ConvergeGateway(id="cg")).extend(end)
    tree = build_tree(start, id="p_gw", data=Data(inputs={"${color}": Var(type=Var.PLAIN, value="red")}))
    root = run(engine, tree)
    wait_state(engine, "gw", "FAILED")
    assert node_states(engine, root) == {"s": "FINISHED", "gw": "FAILED"}
    assert outputs(engine, "gw") == {
        "ex_data": "expression '${colr}' rejected: name 'colr' is not defined (did you mean 'color'?)"
    }


# -- node outputs read from a subprocess ---------------------------------------------------------


def _sub_tree(
    root_outputs: dict[str, Any], sub_outputs: list[str], params: Params | None = None
) -> dict[str, Any]:
    """root: S -> sub -> E; the subprocess's activity outputs ``x`` = 1 into ``${result}``."""
    inner = ServiceActivity(id="inner", component_code="pipe_example_component")
    inner.component.inputs.x = Var(type=Var.PLAIN, value=1)
    sub_data = Data(inputs={"${result}": NodeOutput(source_act="inner", source_key="x")}, outputs=sub_outputs)
    sub_start = EmptyStartEvent(id="sub_s")
    sub_start.extend(inner).extend(EmptyEndEvent(id="sub_e"))
    sub = SubProcess(id="sub", start=sub_start, data=sub_data, params=params)
    return _chain(sub, data=Data(inputs=dict(root_outputs), outputs=list(root_outputs)))


def test_node_output_of_a_key_the_subprocess_does_not_export_is_refused(engine: rattan.Engine) -> None:
    tree = _sub_tree({"${v_out}": NodeOutput(source_act="sub", source_key="${v_out}")}, ["${result}"])
    exc = _refused(api.run_pipeline(engine, tree), engine, "p_root")
    assert exc.problems == [
        Problem(
            "p_root",
            "data.node_output",
            "data.inputs['${v_out}'] reads output '${v_out}' of subprocess sub, which does not export it;"
            " the subprocess exports '${result}' (its data.outputs)",
        )
    ]


def test_node_output_of_an_exported_key_never_set_runs_as_its_own_text_with_a_warning(
    engine: rattan.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # the subprocess exports ${reslt}, a key nothing in it can set: as in bamboo, the export is its
    # own text (a quirk kept on purpose), and the log says why
    caplog.set_level(logging.WARNING, logger="rattan.engine")
    tree = _sub_tree({"${v_out}": NodeOutput(source_act="sub", source_key="${reslt}")}, ["${reslt}"])
    root = run(engine, tree)
    wait_finished(engine, root)
    assert outputs(engine, "sub")["${reslt}"] == "${reslt}"
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "rattan.engine" and r.levelno == logging.WARNING
    ]
    assert (
        "pipeline p_root: [data.node_output] p_root: data.inputs['${v_out}'] reads output '${reslt}' of"
        " subprocess sub, which exports it but never sets it (did you mean '${result}'?): no data.inputs"
        " entry of the subprocess, param of the subprocess node or subprocess_context key is named so"
    ) in warnings


def test_exported_keys_set_by_params_or_subprocess_context_run(engine: rattan.Engine) -> None:
    root_outputs = {
        "${r}": NodeOutput(source_act="sub", source_key="${result}"),
        "${p}": NodeOutput(source_act="sub", source_key="${from_param}"),
        "${c}": NodeOutput(source_act="sub", source_key="${from_ctx}"),
    }
    params = Params({"${from_param}": Var(type=Var.PLAIN, value="P")})
    tree = _sub_tree(root_outputs, ["${result}", "${from_param}", "${from_ctx}"], params)
    root = run(engine, tree, subprocess_context={"${from_ctx}": "C"})
    wait_finished(engine, root)
    assert api.get_execution_data_outputs(engine, root).data == {"${r}": 1, "${p}": "P", "${c}": "C"}

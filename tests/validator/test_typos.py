"""No silent typos in a tree: unknown component codes and versions, and node outputs read from a
subprocess under a key it does not export, are reported with a "did you mean" hint."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import rattan
from rattan.builder import (
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    NodeOutput,
    RewritableNodeOutput,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.errors import Problem, TreeInvalidException
from rattan.validator import (
    check_component_codes,
    component_keys,
    unregistered_message,
    validate_and_process_pipeline,
)

pytestmark = pytest.mark.timeout(30)


class _Svc(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        return True


@pytest.fixture
def reg() -> rattan.Registry:
    """``echo`` in versions legacy and 1.0, and ``shell_run``."""
    reg = rattan.Registry("typos")

    class Echo(rattan.Component, registry=reg):
        name = "echo"
        code = "echo"
        bound_service = _Svc

    class EchoV1(rattan.Component, registry=reg):
        name = "echo"
        code = "echo"
        version = "1.0"
        bound_service = _Svc

    class Shell(rattan.Component, registry=reg):
        name = "shell"
        code = "shell_run"
        bound_service = _Svc

    return reg


def _chain(*acts: Any, pid: str = "p_root", data: Data | None = None) -> dict[str, Any]:
    start: Any = EmptyStartEvent(id=f"{pid}_s")
    node = start
    for act in acts:
        node = node.extend(act)
    node.extend(EmptyEndEvent(id=f"{pid}_e"))
    return build_tree(start, id=pid, data=data)


# -- component codes -------------------------------------------------------------------------------


def test_component_keys_of_a_registry_and_of_pairs(reg: rattan.Registry) -> None:
    assert component_keys(reg) == {("echo", "legacy"), ("echo", "1.0"), ("shell_run", "legacy")}
    assert component_keys([("a", ""), ("b", "2")]) == {("a", "legacy"), ("b", "2")}


def test_unregistered_message_hints_the_closest_code_or_lists_versions(reg: rattan.Registry) -> None:
    known = component_keys(reg)
    assert unregistered_message("echo", None, known) is None
    assert unregistered_message("echo", "1.0", known) is None
    assert (
        unregistered_message("ecoh", None, known)
        == "component 'ecoh' version 'legacy' is not registered (did you mean 'echo'?)"
    )
    assert (
        unregistered_message("shellrun", "legacy", known)
        == "component 'shellrun' version 'legacy' is not registered (did you mean 'shell_run'?)"
    )
    assert (
        unregistered_message("echo", "2.0", known)
        == "component 'echo' version '2.0' is not registered (registered versions: '1.0', 'legacy')"
    )
    assert unregistered_message("zzz", None, known) == "component 'zzz' version 'legacy' is not registered"
    assert unregistered_message("ecoh", None, frozenset()) == (
        "component 'ecoh' version 'legacy' is not registered"
    )


def test_check_component_codes_reports_every_node_nested_ones_too(reg: rattan.Registry) -> None:
    inner = ServiceActivity(id="inner", name="Inner", component_code="shel_run")
    sub = SubProcess(id="sub", start=EmptyStartEvent(id="sub_s"))
    assert sub.start is not None
    sub.start.extend(inner).extend(EmptyEndEvent(id="sub_e"))
    good = ServiceActivity(id="good", component_code="echo")
    typo = ServiceActivity(id="typo", name="Say hi", component_code="ecoh")
    versioned = ServiceActivity(id="versioned", component_code="echo")
    tree = _chain(good, typo, versioned, sub)
    tree["activities"]["versioned"]["component"]["version"] = "2.0"
    before = copy.deepcopy(tree)

    problems = check_component_codes(tree, reg)

    assert problems == [
        Problem(
            "typo",
            "activity.component_unregistered",
            "component 'ecoh' version 'legacy' is not registered (did you mean 'echo'?)",
            "Say hi",
        ),
        Problem(
            "versioned",
            "activity.component_unregistered",
            "component 'echo' version '2.0' is not registered (registered versions: '1.0', 'legacy')",
            None,
        ),
        Problem(
            "inner",
            "activity.component_unregistered",
            "component 'shel_run' version 'legacy' is not registered (did you mean 'shell_run'?)",
            "Inner",
        ),
    ]
    assert str(problems[0]) == (
        "[activity.component_unregistered] typo (Say hi): component 'ecoh' version 'legacy' is not"
        " registered (did you mean 'echo'?)"
    )
    assert tree == before  # read only: no normalisation
    # the same check from (code, version) pairs
    assert check_component_codes(tree, component_keys(reg)) == problems


def test_check_component_codes_with_every_code_known(reg: rattan.Registry) -> None:
    versioned = ServiceActivity(id="v1", component_code="echo")
    tree = _chain(ServiceActivity(id="a", component_code="shell_run"), versioned)
    tree["activities"]["v1"]["component"]["version"] = "1.0"
    assert check_component_codes(tree, reg) == []


def test_check_component_codes_skips_what_validation_reports(reg: rattan.Registry) -> None:
    # malformed parts are the structure check's to report, not a crash here
    tree = _chain(ServiceActivity(id="a", component_code="ecoh"))
    tree["activities"]["b"] = {"type": "ServiceActivity", "component": "not a dict"}
    tree["activities"]["c"] = {"type": "ServiceActivity", "component": {"code": 3}}
    tree["activities"]["d"] = {"type": "SubProcess", "pipeline": None}
    tree["activities"]["e"] = ["not", "a", "node"]
    assert [p.node_id for p in check_component_codes(tree, reg)] == ["a"]
    assert check_component_codes("not a tree", reg) == []


# -- node outputs read from a subprocess ---------------------------------------------------------


def _sub_tree(**outputs: Any) -> dict[str, Any]:
    """root: S -> sub -> E; the subprocess sets ``${result}`` from its activity and exports it;
    ``outputs``: the root's data.inputs entries (e.g. NodeOutputs of ``sub``)."""
    inner = ServiceActivity(id="inner", component_code="pipe_example_component")
    inner.component.inputs.x = Var(type=Var.PLAIN, value=1)
    sub_data = Data(
        inputs={"${result}": NodeOutput(source_act="inner", source_key="x")}, outputs=["${result}"]
    )
    sub_start = EmptyStartEvent(id="sub_s")
    sub_start.extend(inner).extend(EmptyEndEvent(id="sub_e"))
    sub = SubProcess(id="sub", start=sub_start, data=sub_data)
    return _chain(sub, data=Data(inputs=dict(outputs), outputs=list(outputs)))


def test_node_output_of_an_exported_key_or_loop_counter_is_valid() -> None:
    tree = _sub_tree(
        **{
            "${r}": NodeOutput(source_act="sub", source_key="${result}"),
            "${lp}": NodeOutput(source_act="sub", source_key="_loop"),
            "${ilp}": NodeOutput(source_act="sub", source_key="_inner_loop"),
        }
    )
    validate_and_process_pipeline(tree)


def test_node_output_of_a_key_the_subprocess_does_not_export_is_refused() -> None:
    tree = _sub_tree(**{"${v_out}": NodeOutput(source_act="sub", source_key="${reslt}")})
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    assert type(info.value) is TreeInvalidException
    assert info.value.problems == [
        Problem(
            "p_root",
            "data.node_output",
            "data.inputs['${v_out}'] reads output '${reslt}' of subprocess sub, which does not export it"
            " (did you mean '${result}'?); the subprocess exports '${result}' (its data.outputs)",
        )
    ]
    assert str(info.value).startswith("pipeline data is invalid (1 problem(s)):\n  - [data.node_output] ")


def test_rewritable_node_outputs_are_checked_entry_by_entry() -> None:
    tree = _sub_tree(
        **{
            "${rw}": RewritableNodeOutput(
                source_act=[
                    {"source_act": "sub", "source_key": "${result}"},
                    {"source_act": "sub", "source_key": "result"},
                ],
                type=Var.PLAIN,
            )
        }
    )
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    assert [p.message for p in info.value.problems] == [
        "data.inputs['${rw}'] reads output 'result' of subprocess sub, which does not export it"
        " (did you mean '${result}'?); the subprocess exports '${result}' (its data.outputs)"
    ]


def test_a_subprocess_exporting_nothing_says_so() -> None:
    tree = _sub_tree(**{"${v_out}": NodeOutput(source_act="sub", source_key="${v_out}")})
    tree["activities"]["sub"]["pipeline"]["data"]["outputs"] = []
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    assert [p.message for p in info.value.problems] == [
        "data.inputs['${v_out}'] reads output '${v_out}' of subprocess sub, which does not export it;"
        " the subprocess exports nothing (its data.outputs)"
    ]


def test_nested_subprocess_outputs_are_checked_in_their_own_pipeline() -> None:
    inner_start = EmptyStartEvent(id="in_s")
    inner_start.extend(ServiceActivity(id="in_a", component_code="c")).extend(EmptyEndEvent(id="in_e"))
    inner = SubProcess(id="inner_sub", start=inner_start, data=Data(outputs=["${other}"]))
    mid_start = EmptyStartEvent(id="mid_s")
    mid_start.extend(inner).extend(EmptyEndEvent(id="mid_e"))
    mid_data = Data(inputs={"${r}": NodeOutput(source_act="inner_sub", source_key="${result}")})
    tree = _chain(SubProcess(id="mid", start=mid_start, data=mid_data))
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    assert info.value.problems == [
        Problem(
            "mid",
            "data.node_output",
            "data.inputs['${r}'] reads output '${result}' of subprocess inner_sub, which does not export"
            " it; the subprocess exports '${other}' (its data.outputs)",
        )
    ]


def test_node_outputs_of_service_activities_are_not_checked() -> None:
    # a component's outputs depend on its code, not on the tree
    act = ServiceActivity(id="act", component_code="pipe_example_component")
    tree = _chain(act, data=Data(inputs={"${x}": NodeOutput(source_act="act", source_key="anything")}))
    validate_and_process_pipeline(tree)

"""The data model in runs (SPEC 4): PLAIN, SPLICE, LAZY, node outputs, presets, root outputs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from engine_helpers import context_dict, inputs, node_states, outputs, run, wait_finished

import rattan
from rattan import api
from rattan.builder import (
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    NodeOutput,
    Params,
    RewritableNodeOutput,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.context import ContextValueType

pytestmark = pytest.mark.timeout(30)
PLAIN, SPLICE, COMPUTE = ContextValueType.PLAIN, ContextValueType.SPLICE, ContextValueType.COMPUTE
SYS = {"_loop": 1, "_inner_loop": 1}


def pipe(**inputs_: Var) -> ServiceActivity:
    act = ServiceActivity(component_code="pipe_example_component")
    for key, value in inputs_.items():
        act.component.inputs[key] = value
    return act


def chain(*acts: ServiceActivity) -> tuple[EmptyStartEvent, EmptyEndEvent]:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    node: Any = start
    for act in acts:
        node = node.extend(act)
    node.extend(end)
    return start, end


def sp(value: Any) -> Var:
    return Var(type=Var.SPLICE, value=value)


def pl(value: Any) -> Var:
    return Var(type=Var.PLAIN, value=value)


def test_plain_is_never_rendered(engine: rattan.Engine) -> None:
    act = pipe(literal=pl("${x}"), via_ctx=sp("${p}"), embedded=sp("v=${p}"))
    start, _ = chain(act)
    data = Data(inputs={"${x}": pl("X"), "${p}": pl("${x}")})
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    assert inputs(engine, act.id) == {"literal": "${x}", "via_ctx": "${x}", "embedded": "v=${x}", **SYS}
    assert context_dict(engine, root) == {"${x}": (PLAIN, "X", None), "${p}": (PLAIN, "${x}", None)}


def test_splice_chains_and_stays_raw_in_context(engine: rattan.Engine) -> None:
    act = pipe(v=sp("${a}"), w=sp("[${a}|${c}]"))
    start, _ = chain(act)
    data = Data(inputs={"${a}": sp("${b}-a"), "${b}": sp("${c}-b"), "${c}": pl("c")})
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    assert inputs(engine, act.id) == {"v": "c-b-a", "w": "[c-b-a|c]", **SYS}
    assert context_dict(engine, root) == {
        "${a}": (SPLICE, "${b}-a", None),
        "${b}": (SPLICE, "${c}-b", None),
        "${c}": (PLAIN, "c", None),
    }


def test_template_rules(engine: rattan.Engine) -> None:
    act = pipe(
        whole_int=sp("${n}"),
        whole_list=sp("${lst}"),
        whole_dict=sp("${dct}"),
        whole_none=sp("${nothing}"),
        embedded=sp("n=${n}"),
        expr=sp("${n + 1}"),
        method=sp("${s.upper()}"),
        index=sp('${s.split(",")[n]}'),
        missing=sp("${missing}"),
        bad=sp("a-${1/0}"),
        nested=sp(["${n}", {"k": "${s}"}]),
    )
    start, _ = chain(act)
    data = Data(
        inputs={
            "${n}": pl(1),
            "${lst}": pl([1, 2]),
            "${dct}": pl({"a": 1}),
            "${nothing}": pl(None),
            "${s}": pl("a,b"),
        }
    )
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    assert inputs(engine, act.id) == {
        "whole_int": 1,
        "whole_list": [1, 2],
        "whole_dict": {"a": 1},
        "whole_none": None,
        "embedded": "n=1",
        "expr": "2",
        "method": "A,B",
        "index": "b",
        "missing": "${missing}",
        "bad": "a-${1/0}",
        "nested": [1, {"k": "a,b"}],
        **SYS,
    }


def test_spec_4_6_example_lazy_node_input(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class UpperCase(rattan.LazyVariable, registry=reg):
        code = "upper_case"

        def get_value(self) -> Any:
            return self.value.upper()

    act = ServiceActivity(component_code="pipe_example_component")
    act.component.inputs.param_1 = sp("${constant_1}")
    act.component.inputs.param_2 = Var(type=Var.LAZY, value="abc", custom_type="upper_case")
    act.component.inputs.param_3 = pl("normal var")
    start, _ = chain(act)
    root = run(engine, build_tree(start, data=Data(inputs={"${constant_1}": pl("value_1")})))
    wait_finished(engine, root)
    assert inputs(engine, act.id) == {
        "param_1": "value_1",
        "param_2": "ABC",
        "param_3": "normal var",
        "_loop": 1,
        "_inner_loop": 1,
    }
    assert context_dict(engine, root) == {
        "${constant_1}": (PLAIN, "value_1", None),
        f"${{param_2_{act.id}}}": (COMPUTE, "abc", "upper_case"),
    }
    # the static data shows the hoisted reference
    assert api.get_data(engine, act.id).data["inputs"]["param_2"] == {
        "need_render": True,
        "value": f"${{param_2_{act.id}}}",
    }


def test_lazy_context_variable_attributes(engine: rattan.Engine, reg: rattan.Registry) -> None:
    seen: list[dict[str, Any]] = []

    class Probe(rattan.LazyVariable, registry=reg):
        code = "t_probe"
        suffix = "!"

        def get_value(self) -> Any:
            seen.append(
                {
                    "value": self.value,
                    "raw": self.original_value.value,
                    "got": self.original_value.get(),
                    "pipeline_data": dict(self.pipeline_data),
                    "inner_loop": self.inner_loop,
                }
            )
            return f"{self.value}{self.suffix}"

    act = pipe(v=sp("${lz}"), w=sp("<${chained}>"))
    start, _ = chain(act)
    data = Data(
        inputs={
            "${lz}": Var(type=Var.LAZY, value="hello ${who}", custom_type="t_probe"),
            "${who}": pl("world"),
            "${chained}": sp("${lz}${lz}"),
        }
    )
    root = run(engine, build_tree(start, data=data), root_pipeline_data={"operator": "alice"})
    wait_finished(engine, root)
    assert inputs(engine, act.id) == {"v": "hello world!", "w": "<hello world!hello world!>", **SYS}
    assert seen, "get_value never called"
    assert seen[0] == {
        "value": "hello world",
        "raw": "hello ${who}",
        "got": "hello world",
        "pipeline_data": {"operator": "alice"},
        "inner_loop": 1,
    }
    assert context_dict(engine, root)["${lz}"] == (COMPUTE, "hello ${who}", "t_probe")


def test_lazy_value_computed_per_node(engine: rattan.Engine, reg: rattan.Registry) -> None:
    counter = itertools.count(1)

    class Counter(rattan.LazyVariable, registry=reg):
        code = "t_counter"

        def get_value(self) -> Any:
            return next(counter)

    a1, a2 = pipe(v=sp("${cnt}")), pipe(v=sp("${cnt}"))
    start, _ = chain(a1, a2)
    data = Data(inputs={"${cnt}": Var(type=Var.LAZY, value="", custom_type="t_counter")})
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    v1, v2 = inputs(engine, a1.id)["v"], inputs(engine, a2.id)["v"]
    assert isinstance(v1, int) and isinstance(v2, int)
    assert v2 > v1  # not cached between nodes


def test_pre_render_keys_freeze_lazy_value(engine: rattan.Engine, reg: rattan.Registry) -> None:
    counter = itertools.count(100)

    class Counter(rattan.LazyVariable, registry=reg):
        code = "t_counter_frozen"

        def get_value(self) -> Any:
            return next(counter)

    a1, a2 = pipe(v=sp("${cnt}")), pipe(v=sp("${cnt}"))
    start, _ = chain(a1, a2)
    data = Data(
        inputs={"${cnt}": Var(type=Var.LAZY, value="", custom_type="t_counter_frozen")},
        pre_render_keys=["${cnt}"],
    )
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    v1, v2 = inputs(engine, a1.id)["v"], inputs(engine, a2.id)["v"]
    assert v1 == v2 == 100
    assert context_dict(engine, root)["${cnt}"] == (PLAIN, 100, None)
    assert api.get_data(engine, start.id).data == {
        "inputs": {"pre_render_keys": {"need_render": False, "value": ["${cnt}"]}},
        "outputs": {},
    }


def test_node_output_seed_example(engine: rattan.Engine) -> None:
    act_1 = pipe(param_1=pl("output_value_1"))
    act_2 = pipe(param_2=sp("${act_1_output}"))
    start, _ = chain(act_1, act_2)
    data = Data(
        inputs={"${act_1_output}": NodeOutput(source_act=act_1.id, source_key="param_1", type=Var.SPLICE)}
    )
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    assert inputs(engine, act_2.id) == {"param_2": "output_value_1", **SYS}
    assert context_dict(engine, root) == {"${act_1_output}": (PLAIN, "output_value_1", None)}
    assert api.get_data(engine, act_1.id).data == {
        "inputs": {"param_1": {"need_render": False, "value": "output_value_1"}},
        "outputs": {"param_1": "${act_1_output}"},
    }


def test_rewritable_node_output_seed_example(engine: rattan.Engine) -> None:
    act_1 = pipe(param_1=pl("output_value_1"))
    act_2 = pipe(context_var=sp("${rewritable_output}"), param_2=pl("output_value_2"))
    act_3 = pipe(context_var=sp("${rewritable_output}"))
    start, _ = chain(act_1, act_2, act_3)
    data = Data(
        inputs={
            "${rewritable_output}": RewritableNodeOutput(
                source_act=[
                    {"source_act": act_1.id, "source_key": "param_1"},
                    {"source_act": act_2.id, "source_key": "param_2"},
                ],
                type=Var.SPLICE,
            )
        }
    )
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    assert inputs(engine, act_2.id)["context_var"] == "output_value_1"
    assert inputs(engine, act_3.id) == {"context_var": "output_value_2", **SYS}
    assert context_dict(engine, root) == {"${rewritable_output}": (PLAIN, "output_value_2", None)}


def test_output_replaces_splice_and_system_outputs_map(engine: rattan.Engine) -> None:
    act_1 = pipe(v=pl(7))
    act_2 = pipe(seen=sp("${target}"), res=sp("${r}"), loop=sp("${lp}"))
    start, _ = chain(act_1, act_2)
    data = Data(
        inputs={
            "${target}": sp("was a splice ${x}"),
            "${x}": pl("x"),
            "${r}": NodeOutput(source_act=act_1.id, source_key="_result"),
            "${lp}": NodeOutput(source_act=act_1.id, source_key="_loop"),
        }
    )
    tree = build_tree(start, data=data)
    tree["data"]["inputs"]["${target}"] = {
        "type": "splice",
        "value": "was a splice ${x}",
        "source_act": act_1.id,
        "source_key": "v",
    }
    root = run(engine, tree)
    wait_finished(engine, root)
    assert inputs(engine, act_2.id) == {"seen": 7, "res": True, "loop": 1, **SYS}
    ctx = context_dict(engine, root)
    assert ctx["${target}"] == (PLAIN, 7, None)
    assert ctx["${r}"] == (PLAIN, True, None)
    assert ctx["${lp}"] == (PLAIN, 1, None)


def test_root_outputs(engine: rattan.Engine) -> None:
    act = pipe(v=pl({"deep": [1, 2]}))
    start, _ = chain(act)
    data = Data(
        inputs={
            "${out}": NodeOutput(source_act=act.id, source_key="v"),
            "${greet}": sp("hi ${name}"),
            "${name}": pl("bob"),
        },
        outputs=["${out}", "${greet}", "${absent}"],
    )
    root = run(engine, build_tree(start, data=data))
    wait_finished(engine, root)
    assert api.get_execution_data(engine, root).data == {
        "inputs": {},
        "outputs": {"${out}": {"deep": [1, 2]}, "${greet}": "hi bob", "${absent}": "${absent}"},
    }
    # rendering the outputs does not rewrite the splice in the context
    assert context_dict(engine, root)["${greet}"] == (SPLICE, "hi ${name}", None)
    assert api.get_execution_data_outputs(engine, root).data == {
        "${out}": {"deep": [1, 2]},
        "${greet}": "hi bob",
        "${absent}": "${absent}",
    }
    assert api.get_execution_data_inputs(engine, root).data == {}


def test_root_pipeline_data(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class ParentSvc(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.parent_inputs = dict(parent_data.inputs)
            data.outputs.parent_outputs = dict(parent_data.outputs)
            return True

    class ParentComp(rattan.Component, registry=reg):
        name = "parent"
        code = "t_parent_data"
        bound_service = ParentSvc

    act = ServiceActivity(component_code="t_parent_data")
    act.component.inputs.ref = sp("${operator}")
    start, _ = chain(act)
    root_data = {"operator": "alice", "biz_id": 42}
    root = run(engine, build_tree(start), root_pipeline_data=root_data)
    wait_finished(engine, root)
    out = outputs(engine, act.id)
    assert out["parent_inputs"] == {"operator": "alice", "biz_id": 42}
    assert out["parent_outputs"] == {}
    # root_pipeline_data is not part of the context
    assert inputs(engine, act.id)["ref"] == "${operator}"
    assert context_dict(engine, root) == {}
    assert api.get_data(engine, root).data == {
        "inputs": {
            "operator": {"need_render": False, "value": "alice"},
            "biz_id": {"need_render": False, "value": 42},
        },
        "outputs": {},
    }


def test_root_pipeline_context_preset_wins(engine: rattan.Engine) -> None:
    act = pipe(k=sp("${k}"), extra=sp("${extra}"))
    start, _ = chain(act)
    data = Data(inputs={"${k}": pl("declared")})
    root = run(
        engine,
        build_tree(start, data=data),
        root_pipeline_context={"${k}": "preset", "${extra}": [1]},
    )
    wait_finished(engine, root)
    assert inputs(engine, act.id) == {"k": "preset", "extra": [1], **SYS}
    assert context_dict(engine, root) == {"${k}": (PLAIN, "preset", None), "${extra}": (PLAIN, [1], None)}


def test_subprocess_context_preset_wins_and_params_override(engine: rattan.Engine) -> None:
    s_act = pipe(a=sp("${a}"), b=sp("${b}"), c=sp("${c}"))
    s_start, _ = chain(s_act)
    sub = SubProcess(
        start=s_start,
        data=Data(
            inputs={
                "${a}": DataInput(type=Var.PLAIN, value="declared_a"),
                "${b}": DataInput(type=Var.PLAIN, value="declared_b"),
                "${c}": DataInput(type=Var.PLAIN, value="declared_c"),
            }
        ),
        params=Params({"${b}": pl("param_b")}),
    )
    start, _ = chain(sub)  # type: ignore[arg-type]
    root = run(
        engine,
        build_tree(start),
        subprocess_context={"${a}": "preset_a", "${b}": "preset_b", "${new}": 1},
    )
    wait_finished(engine, root)
    assert inputs(engine, s_act.id) == {"a": "preset_a", "b": "param_b", "c": "declared_c", **SYS}
    ctx = context_dict(engine, sub.id)
    assert ctx["${a}"] == (PLAIN, "preset_a", None)
    assert ctx["${b}"] == (PLAIN, "param_b", None)
    assert ctx["${new}"] == (PLAIN, 1, None)
    # the root context does not get subprocess_context
    assert "${a}" not in context_dict(engine, root)


def test_lazy_subprocess_param_hoisted_into_parent(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class Upper(rattan.LazyVariable, registry=reg):
        code = "t_upper_param"

        def get_value(self) -> Any:
            return str(self.value).upper()

    s_act = pipe(v=sp("${p}"))
    s_start, _ = chain(s_act)
    sub = SubProcess(
        start=s_start,
        data=Data(inputs={"${p}": DataInput(type=Var.PLAIN, value="d")}),
        params=Params({"${p}": Var(type=Var.LAZY, value="x${y}", custom_type="t_upper_param")}),
    )
    start, _ = chain(sub)  # type: ignore[arg-type]
    root = run(engine, build_tree(start, data=Data(inputs={"${y}": pl("yz")})))
    wait_finished(engine, root)
    assert inputs(engine, s_act.id)["v"] == "XYZ"
    assert context_dict(engine, root)[f"${{p_{sub.id}}}"] == (COMPUTE, "x${y}", "t_upper_param")
    assert api.get_execution_data_inputs(engine, sub.id).data == {"${p}": "XYZ"}
    assert set(node_states(engine, root).values()) == {"FINISHED"}

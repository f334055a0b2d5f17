"""Every builder example of the seed documents and the bench shapes builds a tree that passes validation.

Sources: the quickstart (seed 001), the flow-orchestration guide (seed 003) and the bench shapes
(``bench/shapes.py``). Each test builds the tree, checks its shape, computes tokens, then runs
``rattan.validator.validate_and_process_pipeline`` on it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

import pytest

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
    RewritableNodeOutput,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
    generate_pipeline_token,
)
from shared_bench import bench_dir

BENCH_DIR = bench_dir()


def _all_node_ids(tree: dict[str, Any]) -> set[str]:
    ids = {tree["start_event"]["id"], tree["end_event"]["id"], *tree["activities"], *tree["gateways"]}
    for node in tree["activities"].values():
        if node["type"] == "SubProcess":
            ids |= _all_node_ids(node["pipeline"])
    return ids


def _check(tree: dict[str, Any]) -> dict[str, Any]:
    """Common checks, then validation (in place, as ``run_pipeline`` does)."""
    assert json.loads(json.dumps(tree)) == tree
    before = copy.deepcopy(tree)
    tokens = generate_pipeline_token(tree)
    assert tree == before
    assert set(tokens) == _all_node_ids(tree)

    from rattan.validator import validate_and_process_pipeline

    validate_and_process_pipeline(tree)
    for gateway in tree["gateways"].values():
        assert isinstance(gateway["incoming"], list)
    assert isinstance(tree["end_event"]["incoming"], list)
    return tree


def _sub_tree(tree: dict[str, Any], sub_id: str) -> dict[str, Any]:
    nested: dict[str, Any] = tree["activities"][sub_id]["pipeline"]
    return nested


# --- seed 001: quickstart -------------------------------------------------------------------------


def test_quickstart() -> None:
    start = EmptyStartEvent()
    act = ServiceActivity(component_code="example_component")
    end = EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    assert list(tree["activities"]) == [act.id]
    assert tree["activities"][act.id]["component"] == {"code": "example_component", "inputs": {}}
    _check(tree)


# --- seed 003: flow orchestration -----------------------------------------------------------------


def test_start_and_end_sequence() -> None:
    def build(code: str | None) -> tuple[dict[str, Any], ServiceActivity]:
        start = EmptyStartEvent()
        act_1 = ServiceActivity(component_code=code)
        act_2 = ServiceActivity(component_code=code)
        end = EmptyEndEvent()
        start.extend(act_1).extend(act_2).extend(end)
        return build_tree(start), act_1

    # literally as in the guide (schematic: no component code)
    tree, act_1 = build(None)
    assert tree["activities"][act_1.id]["component"] == {"code": None, "inputs": {}}
    assert len(tree["flows"]) == 3
    # rattan's validator requires a non-empty component code, so validate it with one
    tree, _ = build("example_component")
    _check(tree)


def test_parallel_gateway_example() -> None:
    start = EmptyStartEvent()
    pg = ParallelGateway()
    act_1 = ServiceActivity(component_code="pipe_example_component", name="act_1")
    act_2 = ServiceActivity(component_code="pipe_example_component", name="act_2")
    act_3 = ServiceActivity(component_code="pipe_example_component", name="act_3")
    cg = ConvergeGateway()
    end = EmptyEndEvent()
    start.extend(pg).connect(act_1, act_2, act_3).to(pg).converge(cg).extend(end)
    tree = build_tree(start)
    assert len(tree["gateways"][pg.id]["outgoing"]) == 3
    assert len(tree["gateways"][cg.id]["incoming"]) == 3
    _check(tree)
    assert tree["gateways"][pg.id]["converge_gateway_id"] == cg.id


def test_exclusive_gateway_example() -> None:
    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="pipe_example_component", name="act_1")
    eg = ExclusiveGateway(
        conditions={0: "${act_1_output} < 0", 1: "${act_1_output} >= 0"}, name="act_2 or act_3"
    )
    act_2 = ServiceActivity(component_code="pipe_example_component", name="act_2")
    act_3 = ServiceActivity(component_code="pipe_example_component", name="act_3")
    end = EmptyEndEvent()
    start.extend(act_1).extend(eg).connect(act_2, act_3).to(eg).converge(end)
    act_1.component.inputs.input_a = Var(type=Var.SPLICE, value="${input_a}")
    pipeline_data = Data()
    pipeline_data.inputs["${input_a}"] = Var(type=Var.PLAIN, value=0)
    pipeline_data.inputs["${act_1_output}"] = NodeOutput(
        type=Var.SPLICE, source_act=act_1.id, source_key="input_a"
    )
    tree = build_tree(start, data=pipeline_data)

    eg_node = tree["gateways"][eg.id]
    f_act_2, f_act_3 = eg_node["outgoing"]
    assert tree["flows"][f_act_2]["target"] == act_2.id
    assert eg_node["conditions"] == {
        f_act_2: {"evaluate": "${act_1_output} < 0"},
        f_act_3: {"evaluate": "${act_1_output} >= 0"},
    }
    assert tree["data"]["inputs"]["${act_1_output}"] == {
        "type": "splice",
        "value": None,
        "source_act": act_1.id,
        "source_key": "input_a",
    }
    assert tree["activities"][act_1.id]["component"]["inputs"] == {
        "input_a": {"type": "splice", "value": "${input_a}"}
    }
    _check(tree)


def test_conditional_parallel_gateway_example() -> None:
    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="pipe_example_component", name="act_1")
    cpg = ConditionalParallelGateway(
        conditions={0: "${act_1_output} < 0", 1: "${act_1_output} >= 0", 2: "${act_1_output} >= 0"},
        name="[act_2] or [act_3 and act_4]",
    )
    act_2 = ServiceActivity(component_code="pipe_example_component", name="act_2")
    act_3 = ServiceActivity(component_code="pipe_example_component", name="act_3")
    act_4 = ServiceActivity(component_code="pipe_example_component", name="act_4")
    cg = ConvergeGateway()
    end = EmptyEndEvent()
    start.extend(act_1).extend(cpg).connect(act_2, act_3, act_4).to(cpg).converge(cg).extend(end)
    act_1.component.inputs.input_a = Var(type=Var.SPLICE, value="${input_a}")
    pipeline_data = Data()
    pipeline_data.inputs["${input_a}"] = Var(type=Var.PLAIN, value=0)
    pipeline_data.inputs["${act_1_output}"] = NodeOutput(
        type=Var.SPLICE, source_act=act_1.id, source_key="input_a"
    )
    tree = build_tree(start, data=pipeline_data)

    cpg_node = tree["gateways"][cpg.id]
    assert [tree["flows"][f]["target"] for f in cpg_node["outgoing"]] == [act_2.id, act_3.id, act_4.id]
    assert [c["evaluate"] for c in cpg_node["conditions"].values()] == [
        "${act_1_output} < 0",
        "${act_1_output} >= 0",
        "${act_1_output} >= 0",
    ]
    _check(tree)
    assert tree["gateways"][cpg.id]["converge_gateway_id"] == cg.id


def test_subprocess_example() -> None:
    def sub_process(data: Data) -> SubProcess:
        subproc_start = EmptyStartEvent()
        subproc_act = ServiceActivity(component_code="pipe_example_component", name="sub_act")
        subproc_end = EmptyEndEvent()
        subproc_start.extend(subproc_act).extend(subproc_end)
        subproc_act.component.inputs.sub_input = Var(type=Var.SPLICE, value="${sub_input}")
        return SubProcess(start=subproc_start, data=data)

    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="pipe_example_component", name="act_1")
    eg = ExclusiveGateway(
        conditions={0: "${act_1_output} < 0", 1: "${act_1_output} >= 0"}, name="act_2 or act_3"
    )
    sub_pipeline_data_1 = Data(inputs={"${sub_input}": Var(type=Var.PLAIN, value=1)})
    subproc_1 = sub_process(sub_pipeline_data_1)
    sub_pipeline_data_2 = Data(inputs={"${sub_input}": Var(type=Var.PLAIN, value=2)})
    subproc_2 = sub_process(sub_pipeline_data_2)
    end = EmptyEndEvent()
    start.extend(act_1).extend(eg).connect(subproc_1, subproc_2).converge(end)
    act_1.component.inputs.input_a = Var(type=Var.SPLICE, value="${input_a}")
    pipeline_data = Data()
    pipeline_data.inputs["${input_a}"] = Var(type=Var.PLAIN, value=0)
    pipeline_data.inputs["${act_1_output}"] = NodeOutput(
        type=Var.SPLICE, source_act=act_1.id, source_key="input_a"
    )
    tree = build_tree(start, data=pipeline_data)

    for sub, value in ((subproc_1, 1), (subproc_2, 2)):
        node = tree["activities"][sub.id]
        assert node["type"] == "SubProcess"
        assert node["params"] == {}
        nested = _sub_tree(tree, sub.id)
        assert nested["id"] == sub.id
        assert nested["data"]["inputs"] == {"${sub_input}": {"type": "plain", "value": value}}
        assert len(nested["activities"]) == 1
    assert len(tree["end_event"]["incoming"]) == 2
    _check(tree)


def test_data_example() -> None:
    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="debug_node")
    act_1.component.inputs.param_1 = Var(type=Var.SPLICE, value="${constant_1}")
    end = EmptyEndEvent()
    start.extend(act_1).extend(end)
    pipeline_data = Data()
    pipeline_data.inputs["${constant_1}"] = Var(type=Var.PLAIN, value="value_1")
    tree = build_tree(start, data=pipeline_data)
    assert tree["data"] == {
        "inputs": {"${constant_1}": {"type": "plain", "value": "value_1"}},
        "outputs": [],
        "pre_render_keys": [],
    }
    _check(tree)


def test_var_example() -> None:
    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="debug_node")
    act_1.component.inputs.param_1 = Var(type=Var.SPLICE, value="${constant_1}")
    act_1.component.inputs.param_2 = Var(type=Var.LAZY, custom_type="upper_case", value="abc")
    act_1.component.inputs.param_3 = Var(type=Var.PLAIN, value="normal var")
    end = EmptyEndEvent()
    start.extend(act_1).extend(end)
    pipeline_data = Data()
    pipeline_data.inputs["${constant_1}"] = Var(type=Var.PLAIN, value="value_1")
    tree = build_tree(start, data=pipeline_data)
    assert tree["activities"][act_1.id]["component"]["inputs"] == {
        "param_1": {"type": "splice", "value": "${constant_1}"},
        "param_2": {"type": "lazy", "value": "abc", "custom_type": "upper_case"},
        "param_3": {"type": "plain", "value": "normal var"},
    }
    _check(tree)


def test_node_output_example() -> None:
    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="debug_node")
    act_1.component.inputs.param_1 = Var(type=Var.PLAIN, value="output_value_1")
    act_2 = ServiceActivity(component_code="debug_node")
    act_2.component.inputs.param_2 = Var(type=Var.SPLICE, value="${act_1_output}")
    end = EmptyEndEvent()
    start.extend(act_1).extend(act_2).extend(end)
    pipeline_data = Data()
    pipeline_data.inputs["${act_1_output}"] = NodeOutput(
        source_act=act_1.id, source_key="param_1", type=Var.SPLICE, value=""
    )
    tree = build_tree(start, data=pipeline_data)
    assert tree["data"]["inputs"]["${act_1_output}"] == {
        "type": "splice",
        "value": None,
        "source_act": act_1.id,
        "source_key": "param_1",
    }
    _check(tree)


def test_rewritable_node_output_example() -> None:
    start = EmptyStartEvent()
    act_1 = ServiceActivity(component_code="debug_node")
    act_1.component.inputs.param_1 = Var(type=Var.PLAIN, value="output_value_1")
    act_2 = ServiceActivity(component_code="debug_node")
    act_2.component.inputs.context_var = Var(type=Var.SPLICE, value="${rewritable_output}")
    act_2.component.inputs.param_2 = Var(type=Var.PLAIN, value="output_value_2")
    act_3 = ServiceActivity(component_code="debug_node")
    act_3.component.inputs.context_var = Var(type=Var.SPLICE, value="${rewritable_output}")
    end = EmptyEndEvent()
    start.extend(act_1).extend(act_2).extend(act_3).extend(end)
    pipeline_data = Data()
    pipeline_data.inputs["${rewritable_output}"] = RewritableNodeOutput(
        source_act=[
            {"source_act": act_1.id, "source_key": "param_1"},
            {"source_act": act_2.id, "source_key": "param_2"},
        ],
        type=Var.SPLICE,
        value="",
    )
    tree = build_tree(start, data=pipeline_data)
    assert tree["data"]["inputs"]["${rewritable_output}"] == {
        "type": "splice",
        "value": None,
        "source_act": [
            {"source_act": act_1.id, "source_key": "param_1"},
            {"source_act": act_2.id, "source_key": "param_2"},
        ],
    }
    _check(tree)


def test_data_input_and_params_example() -> None:
    sub_start = EmptyStartEvent()
    sub_act_1 = ServiceActivity(component_code="debug_node")
    sub_act_1.component.inputs.param_1 = Var(type=Var.SPLICE, value="${sub_constant_1}")
    sub_end = EmptyEndEvent()
    sub_start.extend(sub_act_1).extend(sub_end)
    sub_pipeline_data = Data()
    sub_pipeline_data.inputs["${sub_constant_1}"] = DataInput(type=Var.PLAIN, value="default_value")

    start = EmptyStartEvent()
    params = Params({"${sub_constant_1}": Var(type=Var.SPLICE, value="${constant_1}")})
    subprocess = SubProcess(start=sub_start, data=sub_pipeline_data, params=params)
    end = EmptyEndEvent()
    start.extend(subprocess).extend(end)
    pipeline_data = Data()
    pipeline_data.inputs["${constant_1}"] = Var(type=Var.PLAIN, value="value_1")
    tree = build_tree(start, data=pipeline_data)

    node = tree["activities"][subprocess.id]
    assert node["params"] == {"${sub_constant_1}": {"type": "splice", "value": "${constant_1}"}}
    assert node["pipeline"]["data"]["inputs"] == {
        "${sub_constant_1}": {"type": "plain", "value": "default_value", "is_param": True}
    }
    _check(tree)


# --- bench shapes ---------------------------------------------------------------------------------


def _shapes() -> ModuleType:
    path = BENCH_DIR / "shapes.py"
    # bench/ is part of the repository: a missing file is a broken checkout
    assert path.exists(), f"{path} not found: the repository's bench/ folder is incomplete"
    name = "rattan_bench_shapes_for_builder_tests"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(30)
def test_bench_s1_pipeline() -> None:
    tree = _shapes().s1_pipeline()
    assert len(_all_node_ids(tree)) == 18  # subprocess internals included
    pg = next(g for g in tree["gateways"].values() if g["type"] == "ParallelGateway")
    tree = _check(tree)
    assert tree["gateways"][pg["id"]]["converge_gateway_id"] in tree["gateways"]


@pytest.mark.timeout(30)
def test_bench_parallel_pipeline() -> None:
    tree = _shapes().parallel_pipeline()
    assert len(tree["activities"]) == 1000
    assert len(tree["gateways"]) == 2
    _check(tree)


@pytest.mark.timeout(30)
def test_bench_chain_pipeline() -> None:
    tree = _shapes().chain_pipeline(1000)
    assert len(tree["activities"]) == 1000
    assert len(tree["flows"]) == 1001
    _check(tree)


@pytest.mark.timeout(30)
def test_bench_one_act_pipeline() -> None:
    tree = _shapes().one_act_pipeline()
    assert len(tree["activities"]) == 1
    assert next(iter(tree["activities"].values()))["component"]["code"] == "bench_poll"
    _check(tree)

"""``build_tree``: exact tree shapes (SPEC 1.10, 1.11, 2.2, 2.3)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import rattan.builder
import rattan.builder.builder
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ExecutableEndEvent,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.builder.flow import Element
from rattan.spec.model import TREE_SCHEMA_VERSION

ID_RE = re.compile(r"^[a-z][0-9a-f]{32}$")


def _rename_flows(tree: dict[str, Any]) -> dict[str, Any]:
    """Return a JSON copy of ``tree`` with flow ids renamed f1, f2, ... in creation order (per level)."""
    names = {flow_id: f"f{i}" for i, flow_id in enumerate(tree["flows"], 1)}

    def sub(value: Any) -> Any:
        if isinstance(value, str):
            return names.get(value, value)
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    out: dict[str, Any] = json.loads(json.dumps(tree))
    out["flows"] = {names[fid]: {**flow, "id": names[fid]} for fid, flow in out["flows"].items()}
    nodes = [out["start_event"], out["end_event"], *out["activities"].values(), *out["gateways"].values()]
    for node in nodes:
        node["incoming"] = sub(node["incoming"])
        node["outgoing"] = sub(node["outgoing"])
        if "conditions" in node:
            node["conditions"] = {names[k]: v for k, v in node["conditions"].items()}
        if node.get("default_condition"):
            node["default_condition"] = {"flow_id": names[node["default_condition"]["flow_id"]]}
        if node["type"] == "SubProcess":
            node["pipeline"] = _rename_flows(node["pipeline"])
    return out


def _flow(tree: dict[str, Any], flow_id: str) -> tuple[str, str]:
    flow = tree["flows"][flow_id]
    assert flow["id"] == flow_id
    assert flow["is_default"] is False
    return flow["source"], flow["target"]


def _act(id: str, name: str | None = None, code: str = "example_component") -> ServiceActivity:
    return ServiceActivity(component_code=code, id=id, name=name)


def _act_node(id: str, incoming: list[str], outgoing: str, name: str | None = None) -> dict[str, Any]:
    return {
        "incoming": incoming,
        "outgoing": outgoing,
        "type": "ServiceActivity",
        "id": id,
        "name": name,
        "error_ignorable": False,
        "timeout": None,
        "skippable": True,
        "retryable": True,
        "component": {"code": "example_component", "inputs": {}},
        "optional": False,
    }


def test_exports() -> None:
    assert sorted(rattan.builder.__all__) == sorted(
        [
            "build_tree",
            "EmptyStartEvent",
            "EmptyEndEvent",
            "ExecutableEndEvent",
            "ServiceActivity",
            "SubProcess",
            "ParallelGateway",
            "ExclusiveGateway",
            "ConditionalParallelGateway",
            "ConvergeGateway",
            "Data",
            "Params",
            "Var",
            "DataInput",
            "NodeOutput",
            "RewritableNodeOutput",
            "InitializedRewritableNodeOutput",
            "generate_pipeline_token",
        ]
    )
    assert rattan.builder.builder.generate_pipeline_token is rattan.builder.generate_pipeline_token


def test_spec_1_10_example_shape() -> None:
    start = EmptyStartEvent(id="e_s")
    act = ServiceActivity(component_code="example_component", name="act_1", id="e_a")
    act.component.inputs.param_1 = Var(type=Var.SPLICE, value="${constant_1}")
    end = EmptyEndEvent(id="e_e")
    start.extend(act).extend(end)
    data = Data()
    data.inputs["${constant_1}"] = Var(type=Var.PLAIN, value="value_1")

    tree = build_tree(start, id="p1", data=data)

    expected_act = _act_node("e_a", ["f1"], "f2", name="act_1")
    expected_act["component"]["inputs"] = {"param_1": {"type": "splice", "value": "${constant_1}"}}
    assert _rename_flows(tree) == {
        "id": "p1",
        "start_event": {
            "incoming": "",
            "outgoing": "f1",
            "type": "EmptyStartEvent",
            "id": "e_s",
            "name": None,
        },
        "end_event": {"incoming": ["f2"], "outgoing": "", "type": "EmptyEndEvent", "id": "e_e", "name": None},
        "activities": {"e_a": expected_act},
        "gateways": {},
        "flows": {
            "f1": {"is_default": False, "source": "e_s", "target": "e_a", "id": "f1"},
            "f2": {"is_default": False, "source": "e_a", "target": "e_e", "id": "f2"},
        },
        "data": {
            "inputs": {"${constant_1}": {"type": "plain", "value": "value_1"}},
            "outputs": [],
            "pre_render_keys": [],
        },
        "schema_version": TREE_SCHEMA_VERSION,
    }
    assert list(tree) == [
        "id",
        "start_event",
        "end_event",
        "activities",
        "gateways",
        "flows",
        "data",
        "schema_version",
    ]


def test_spec_1_11_parallel_example_shape() -> None:
    start, end = EmptyStartEvent(id="e_s"), EmptyEndEvent(id="e_e")
    pg, cg = ParallelGateway(id="e_pg"), ConvergeGateway(id="e_cg")
    a1, a2 = _act("e_a1"), _act("e_a2")
    start.extend(pg).connect(a1, a2).to(pg).converge(cg).extend(end)

    tree = build_tree(start, id="p2")

    assert _rename_flows(tree) == {
        "id": "p2",
        "start_event": {
            "incoming": "",
            "outgoing": "f1",
            "type": "EmptyStartEvent",
            "id": "e_s",
            "name": None,
        },
        "end_event": {"incoming": ["f6"], "outgoing": "", "type": "EmptyEndEvent", "id": "e_e", "name": None},
        "activities": {"e_a1": _act_node("e_a1", ["f2"], "f4"), "e_a2": _act_node("e_a2", ["f3"], "f5")},
        "gateways": {
            "e_pg": {
                "id": "e_pg",
                "incoming": ["f1"],
                "outgoing": ["f2", "f3"],
                "type": "ParallelGateway",
                "name": None,
            },
            "e_cg": {
                "id": "e_cg",
                "incoming": ["f4", "f5"],
                "outgoing": "f6",
                "type": "ConvergeGateway",
                "name": None,
            },
        },
        "flows": {
            "f1": {"is_default": False, "source": "e_s", "target": "e_pg", "id": "f1"},
            "f2": {"is_default": False, "source": "e_pg", "target": "e_a1", "id": "f2"},
            "f3": {"is_default": False, "source": "e_pg", "target": "e_a2", "id": "f3"},
            "f4": {"is_default": False, "source": "e_a1", "target": "e_cg", "id": "f4"},
            "f5": {"is_default": False, "source": "e_a2", "target": "e_cg", "id": "f5"},
            "f6": {"is_default": False, "source": "e_cg", "target": "e_e", "id": "f6"},
        },
        "data": {"inputs": {}, "outputs": []},
        "schema_version": TREE_SCHEMA_VERSION,
    }
    assert "converge_gateway_id" not in tree["gateways"]["e_pg"]


def test_sequence_idiom() -> None:
    start, act1, act2, end = EmptyStartEvent(), ServiceActivity(), ServiceActivity(), EmptyEndEvent()
    start.extend(act1).extend(act2).extend(end)
    tree = build_tree(start)

    assert isinstance(tree["start_event"]["outgoing"], str)
    assert tree["start_event"]["incoming"] == ""
    a1, a2 = tree["activities"][act1.id], tree["activities"][act2.id]
    assert _flow(tree, tree["start_event"]["outgoing"]) == (start.id, act1.id)
    assert a1["incoming"] == [tree["start_event"]["outgoing"]]
    assert isinstance(a1["outgoing"], str)
    assert _flow(tree, a1["outgoing"]) == (act1.id, act2.id)
    assert a2["incoming"] == [a1["outgoing"]]
    assert _flow(tree, a2["outgoing"]) == (act2.id, end.id)
    assert tree["end_event"]["incoming"] == [a2["outgoing"]]
    assert tree["end_event"]["outgoing"] == ""
    assert len(tree["flows"]) == 3
    assert tree["gateways"] == {}


def test_parallel_block_idiom() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    a1, a2, a3 = ServiceActivity(), ServiceActivity(), ServiceActivity()
    start.extend(pg).connect(a1, a2, a3).to(pg).converge(cg).extend(end)
    tree = build_tree(start)

    pg_node, cg_node = tree["gateways"][pg.id], tree["gateways"][cg.id]
    assert isinstance(pg_node["outgoing"], list) and len(pg_node["outgoing"]) == 3
    assert [_flow(tree, f) for f in pg_node["outgoing"]] == [(pg.id, a1.id), (pg.id, a2.id), (pg.id, a3.id)]
    assert pg_node["incoming"] == [tree["start_event"]["outgoing"]]
    assert "conditions" not in pg_node
    assert cg_node["incoming"] == [tree["activities"][a.id]["outgoing"] for a in (a1, a2, a3)]
    assert [_flow(tree, f)[1] for f in cg_node["incoming"]] == [cg.id] * 3
    assert isinstance(cg_node["outgoing"], str)
    assert _flow(tree, cg_node["outgoing"]) == (cg.id, end.id)
    assert tree["end_event"]["incoming"] == [cg_node["outgoing"]]
    assert len(tree["flows"]) == 8


def test_exclusive_straight_to_end_idiom() -> None:
    start, a1, a2, a3, end = (
        EmptyStartEvent(),
        ServiceActivity(),
        ServiceActivity(),
        ServiceActivity(),
        EmptyEndEvent(),
    )
    eg = ExclusiveGateway(conditions={0: "${x} < 0", 1: "${x} >= 0"})
    start.extend(a1).extend(eg).connect(a2, a3).to(eg).converge(end)
    tree = build_tree(start)

    eg_node = tree["gateways"][eg.id]
    f_a2, f_a3 = eg_node["outgoing"]
    assert (_flow(tree, f_a2), _flow(tree, f_a3)) == ((eg.id, a2.id), (eg.id, a3.id))
    assert eg_node["conditions"] == {f_a2: {"evaluate": "${x} < 0"}, f_a3: {"evaluate": "${x} >= 0"}}
    assert list(eg_node["conditions"]) == [f_a2, f_a3]
    assert eg_node["default_condition"] == {}
    assert eg_node["incoming"] == [tree["activities"][a1.id]["outgoing"]]
    end_in = tree["end_event"]["incoming"]
    assert end_in == [tree["activities"][a2.id]["outgoing"], tree["activities"][a3.id]["outgoing"]]
    assert list(eg_node) == ["id", "incoming", "outgoing", "type", "name", "conditions", "default_condition"]


def test_exclusive_branch_with_next_idiom_and_default_condition() -> None:
    start, cg, end = EmptyStartEvent(), ConvergeGateway(), EmptyEndEvent()
    b1, b2, b1_next = ServiceActivity(), ServiceActivity(), ServiceActivity()
    eg = ExclusiveGateway(conditions={1: "b", 0: "a"}, default_condition_outgoing=1)
    start.extend(eg).connect(b1, b2).to(b1).extend(b1_next).to(eg).converge(cg).extend(end)
    tree = build_tree(start)

    eg_node = tree["gateways"][eg.id]
    f_b1, f_b2 = eg_node["outgoing"]
    assert _flow(tree, f_b1) == (eg.id, b1.id)
    assert _flow(tree, f_b2) == (eg.id, b2.id)
    # conditions are keyed by flow id in connection order, not in the order of the conditions dict
    assert list(eg_node["conditions"].items()) == [(f_b1, {"evaluate": "a"}), (f_b2, {"evaluate": "b"})]
    assert eg_node["default_condition"] == {"flow_id": f_b2}
    assert _flow(tree, tree["activities"][b1.id]["outgoing"]) == (b1.id, b1_next.id)
    cg_node = tree["gateways"][cg.id]
    assert sorted(_flow(tree, f)[0] for f in cg_node["incoming"]) == sorted([b1_next.id, b2.id])
    assert _flow(tree, cg_node["outgoing"]) == (cg.id, end.id)


def test_conditional_parallel_gateway_shape() -> None:
    start, cg, end = EmptyStartEvent(), ConvergeGateway(), EmptyEndEvent()
    a, b = ServiceActivity(), ServiceActivity()
    cpg = ConditionalParallelGateway(conditions={0: "x", 1: "y"}, default_condition_outgoing=0, name="cpg")
    start.extend(cpg).connect(a, b).to(cpg).converge(cg).extend(end)
    node = build_tree(start)["gateways"][cpg.id]
    assert node["type"] == "ConditionalParallelGateway"
    assert node["name"] == "cpg"
    fa, fb = node["outgoing"]
    assert node["conditions"] == {fa: {"evaluate": "x"}, fb: {"evaluate": "y"}}
    assert node["default_condition"] == {"flow_id": fa}


def test_subprocess_entry() -> None:
    sub_start, sub_act, sub_end = EmptyStartEvent(), ServiceActivity(component_code="c"), EmptyEndEvent()
    sub_start.extend(sub_act).extend(sub_end)
    sub_data = Data(inputs={"${k}": DataInput(type=Var.PLAIN, value=1)})
    params = Params({"${k}": Var(type=Var.SPLICE, value="${outer}")})
    sub = SubProcess(start=sub_start, data=sub_data, params=params, global_outputs={"x": 1}, name="sub")
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    tree = build_tree(start)

    node = tree["activities"][sub.id]
    assert list(node) == ["id", "incoming", "name", "outgoing", "type", "params", "pipeline"]
    assert node["type"] == "SubProcess" and node["name"] == "sub"
    assert node["params"] == {"${k}": {"type": "splice", "value": "${outer}"}}
    assert isinstance(node["incoming"], list) and isinstance(node["outgoing"], str)
    nested = node["pipeline"]
    assert nested["id"] == sub.id
    assert nested["data"] == {
        "inputs": {"${k}": {"type": "plain", "value": 1, "is_param": True}},
        "outputs": [],
        "pre_render_keys": [],
    }
    assert nested["start_event"]["id"] == sub_start.id
    assert list(nested["activities"]) == [sub_act.id]
    assert set(nested["flows"]).isdisjoint(tree["flows"])
    assert "global_outputs" not in json.dumps(node)


def test_subprocess_raw_params_and_data_and_default_params() -> None:
    sub_start, sub_end = EmptyStartEvent(), EmptyEndEvent()
    sub_start.extend(ServiceActivity()).extend(sub_end)
    raw_data = {"inputs": {"${a}": {"type": "plain", "value": 1}}, "outputs": ["${a}"]}
    raw_params = {"${a}": {"type": "plain", "value": 2}}
    sub = SubProcess(start=sub_start, data=raw_data, params=raw_params)
    start = EmptyStartEvent()
    start.extend(sub).extend(EmptyEndEvent())
    node = build_tree(start)["activities"][sub.id]
    assert node["params"] == raw_params
    assert node["pipeline"]["data"] == raw_data

    sub_start2 = EmptyStartEvent()
    sub_start2.extend(ServiceActivity()).extend(EmptyEndEvent())
    sub2 = SubProcess(start=sub_start2)
    start2 = EmptyStartEvent()
    start2.extend(sub2).extend(EmptyEndEvent())
    node2 = build_tree(start2)["activities"][sub2.id]
    assert node2["params"] == {}
    assert node2["pipeline"]["data"] == {"inputs": {}, "outputs": []}


def test_data_arguments() -> None:
    def chain() -> EmptyStartEvent:
        start = EmptyStartEvent()
        start.extend(ServiceActivity()).extend(EmptyEndEvent())
        return start

    assert build_tree(chain())["data"] == {"inputs": {}, "outputs": []}
    raw = {"inputs": {"${a}": {"type": "plain", "value": 1}}, "outputs": []}
    assert build_tree(chain(), data=raw)["data"] is raw
    assert build_tree(chain(), data={})["data"] == {"inputs": {}, "outputs": []}


def test_ids_prefix_and_length() -> None:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    start.extend(pg).connect(ServiceActivity(), ServiceActivity()).to(pg).converge(cg).extend(end)
    tree = build_tree(start)
    assert ID_RE.match(tree["id"]) and tree["id"][0] == "p" and len(tree["id"]) == 33
    node_ids = [tree["start_event"]["id"], tree["end_event"]["id"], *tree["activities"], *tree["gateways"]]
    for node_id in node_ids:
        assert ID_RE.match(node_id) and node_id[0] == "e" and len(node_id) == 33
    for flow_id in tree["flows"]:
        assert ID_RE.match(flow_id) and flow_id[0] == "f" and len(flow_id) == 33
    assert build_tree(start, id="my_id")["id"] == "my_id"
    assert build_tree(start)["id"] != tree["id"]


def test_tree_is_json_serialisable() -> None:
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="c"), EmptyEndEvent()
    act.component.inputs.p = Var(type=Var.LAZY, value="v", custom_type="upper_case")
    start.extend(act).extend(end)
    data = Data(inputs={"${a}": Var(type=Var.PLAIN, value={"nested": [1, 2]})}, outputs=["${a}"])
    tree = build_tree(start, data=data)
    assert json.loads(json.dumps(tree)) == tree


def test_executable_end_event_incoming_is_string_with_one_predecessor() -> None:
    start, act, end = EmptyStartEvent(), ServiceActivity(), ExecutableEndEvent(type="MyEndEvent")
    start.extend(act).extend(end)
    tree = build_tree(start)
    assert tree["end_event"]["type"] == "MyEndEvent"
    assert tree["end_event"]["incoming"] == tree["activities"][act.id]["outgoing"]
    assert isinstance(tree["end_event"]["incoming"], str)


def test_executable_end_event_with_two_predecessors_gets_a_list() -> None:
    start, a2, a3 = EmptyStartEvent(), ServiceActivity(), ServiceActivity()
    eg, end = ExclusiveGateway(conditions={0: "True", 1: "False"}), ExecutableEndEvent(type="MyEndEvent")
    start.extend(eg).connect(a2, a3).to(eg).converge(end)
    tree = build_tree(start)
    assert tree["end_event"]["incoming"] == [tree["activities"][a.id]["outgoing"] for a in (a2, a3)]


def test_activity_extra_successors_are_dropped() -> None:
    start, act, end = EmptyStartEvent(), ServiceActivity(), EmptyEndEvent()
    start.extend(act)
    act.connect(end, end)
    tree = build_tree(start)
    assert isinstance(tree["activities"][act.id]["outgoing"], str)
    assert tree["end_event"]["incoming"] == [tree["activities"][act.id]["outgoing"]]
    assert len(tree["flows"]) == 2


def test_element_reached_twice_is_emitted_once() -> None:
    start, eg, act, end = (
        EmptyStartEvent(),
        ExclusiveGateway(conditions={0: "a", 1: "b"}),
        ServiceActivity(),
        EmptyEndEvent(),
    )
    start.extend(eg).connect(act, act)
    act.extend(end)
    tree = build_tree(start)
    assert list(tree["activities"]) == [act.id]
    assert tree["activities"][act.id]["incoming"] == tree["gateways"][eg.id]["outgoing"]


def test_missing_condition_index_raises_value_error() -> None:
    start, eg = EmptyStartEvent(), ExclusiveGateway(conditions={0: "True"}, name="my_gateway")
    start.extend(eg).connect(ServiceActivity(), ServiceActivity()).to(eg).converge(EmptyEndEvent())
    with pytest.raises(ValueError, match=r"my_gateway") as info:
        build_tree(start)
    assert eg.id in str(info.value)
    assert "index 1" in str(info.value)


def test_missing_condition_index_cpg_raises_value_error() -> None:
    start, cpg, cg = EmptyStartEvent(), ConditionalParallelGateway(), ConvergeGateway()
    start.extend(cpg).connect(ServiceActivity(), ServiceActivity()).to(cpg).converge(cg).extend(
        EmptyEndEvent()
    )
    with pytest.raises(ValueError, match="index 0"):
        build_tree(start)


def test_bad_default_condition_index_raises_value_error() -> None:
    start, eg = EmptyStartEvent(), ExclusiveGateway(conditions={0: "a", 1: "b"}, default_condition_outgoing=5)
    start.extend(eg).connect(ServiceActivity(), ServiceActivity()).to(eg).converge(EmptyEndEvent())
    with pytest.raises(ValueError, match="default_condition_outgoing"):
        build_tree(start)


def test_unknown_element_raises_type_error() -> None:
    class Strange(Element):
        def type(self) -> str:
            return "Strange"

    start = EmptyStartEvent()
    start.extend(Strange()).extend(EmptyEndEvent())
    with pytest.raises(TypeError, match="Strange"):
        build_tree(start)

"""``parse_pipeline`` / ``load_pipeline``: the frozen model built from a validated tree (SPEC 1)."""

from __future__ import annotations

import copy
from types import MappingProxyType
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
    InitializedRewritableNodeOutput,
    NodeOutput,
    ParallelGateway,
    Params,
    RewritableNodeOutput,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)
from rattan.errors import TreeInvalidException
from rattan.spec import (
    TREE_SCHEMA_VERSION,
    DataInputItem,
    EventNode,
    GatewayNode,
    InputItem,
    NodeType,
    PipelineSpec,
    ServiceActivityNode,
    SourceRef,
    SubProcessNode,
    parse_pipeline,
)
from rattan.validator import load_pipeline


def hand_tree() -> dict[str, Any]:
    return {
        "id": "p1",
        "start_event": {"id": "s", "name": None, "type": "EmptyStartEvent", "incoming": "", "outgoing": "f1"},
        "end_event": {
            "id": "e",
            "name": "the end",
            "type": "EmptyEndEvent",
            "incoming": "f3",
            "outgoing": "",
        },
        "activities": {
            "a": {
                "id": "a",
                "name": "act",
                "type": "ServiceActivity",
                "incoming": "f1",
                "outgoing": "f2",
                "component": {
                    "code": "comp",
                    "inputs": {
                        "p1": {"type": "plain", "value": {"x": [1]}},
                        "p2": {"type": "splice", "value": "${k}", "need_render": False},
                        "p3": {"type": "lazy", "value": "abc", "custom_type": "upper_case"},
                    },
                },
                "loop_config": {"enable": True, "loop_times": 2},
                "timeout_config": {"enable": True, "action": "forced_fail", "seconds": 10},
                "events": {"timer_events": [{"enable": True, "timer_type": "single", "defined": "PT1S"}]},
                "labels": ["host-key"],
            },
            "b": {
                "id": "b",
                "type": "ServiceActivity",
                "incoming": ["f2"],
                "outgoing": "f3",
                "error_ignorable": True,
                "skippable": False,
                "retryable": False,
                "component": {"code": "comp2", "version": "2.0", "inputs": {}},
            },
        },
        "gateways": {},
        "flows": {
            "f1": {"id": "f1", "source": "s", "target": "a", "is_default": False},
            "f2": {"id": "f2", "source": "a", "target": "b"},
            "f3": {"id": "f3", "source": "b", "target": "e", "is_default": True},
        },
        "data": {
            "inputs": {
                "${k}": {"type": "plain", "value": 1},
                "${out}": {"type": "splice", "value": None, "source_act": "a", "source_key": "key"},
                "${rw}": {
                    "type": "plain",
                    "value": 5,
                    "source_act": [
                        {"source_act": "a", "source_key": "x"},
                        {"source_act": "b", "source_key": "y"},
                    ],
                    "need_initialization": True,
                },
                "${param}": {"type": "plain", "value": "d", "is_param": True},
                "${lz}": {"type": "lazy", "value": "", "custom_type": "now"},
            },
            "outputs": ["${out}"],
            "pre_render_keys": ["${lz}"],
        },
        "schema_version": 1,
        "line": [],
    }


def test_service_activity_fields_and_defaults() -> None:
    spec = load_pipeline(hand_tree())
    assert isinstance(spec, PipelineSpec)
    a = spec.nodes["a"]
    assert isinstance(a, ServiceActivityNode)
    assert (a.id, a.name, a.type, a.kind) == ("a", "act", "ServiceActivity", NodeType.ServiceActivity)
    assert a.component_code == "comp" and a.component_version == "legacy"
    assert (a.error_ignorable, a.can_skip, a.can_retry) == (False, True, True)
    assert a.incoming == ("f1",) and a.outgoing == ("f2",)
    assert a.inputs["p1"] == InputItem(type="plain", value={"x": [1]})
    assert a.inputs["p2"].need_render is False
    assert a.inputs["p3"] == InputItem(type="lazy", value="abc", custom_type="upper_case")
    assert list(a.inputs) == ["p1", "p2", "p3"]
    assert a.loop_config is not None and a.loop_config["loop_times"] == 2
    assert a.timeout_config is not None and a.timeout_config["seconds"] == 10
    assert a.timer_events[0]["defined"] == "PT1S"
    assert a.raw["labels"] == ["host-key"]  # host extension keys stay reachable through raw
    b = spec.nodes["b"]
    assert isinstance(b, ServiceActivityNode)
    assert (b.error_ignorable, b.can_skip, b.can_retry) == (True, False, False)
    assert b.component_version == "2.0"
    assert b.loop_config is None and b.timeout_config is None and b.timer_events == ()
    assert b.name is None


def test_events_flows_and_pipeline_fields() -> None:
    spec = load_pipeline(hand_tree())
    assert (spec.id, spec.start_event_id, spec.end_event_id) == ("p1", "s", "e")
    assert isinstance(spec.start_event, EventNode) and spec.start_event.kind is NodeType.EmptyStartEvent
    assert spec.start_event.incoming == () and spec.start_event.outgoing == ("f1",)
    assert spec.end_event.kind is NodeType.EmptyEndEvent and spec.end_event.incoming == ("f3",)
    assert spec.end_event.outgoing == ()
    assert spec.flows["f3"].is_default is True and spec.flows["f2"].is_default is False
    assert spec.next_node_id("a") == "b"
    assert set(spec.nodes) == {"s", "e", "a", "b"}


def test_data_items() -> None:
    data = load_pipeline(hand_tree()).data
    assert data.outputs == ("${out}",) and data.pre_render_keys == ("${lz}",)
    assert data.inputs["${k}"] == DataInputItem(key="${k}", type="plain", value=1)
    out = data.inputs["${out}"]
    assert out.sources == (SourceRef("a", "key"),) and out.is_node_output and not out.need_initialization
    rw = data.inputs["${rw}"]
    assert rw.sources == (SourceRef("a", "x"), SourceRef("b", "y"))
    assert rw.need_initialization is True and rw.value == 5
    assert data.inputs["${param}"].is_param is True
    assert data.inputs["${lz}"].custom_type == "now"


def test_mappings_are_read_only() -> None:
    spec = load_pipeline(hand_tree())
    for mapping in (spec.nodes, spec.flows, spec.data.inputs, spec.nodes["a"].raw):
        assert isinstance(mapping, MappingProxyType)
    with pytest.raises(TypeError):
        spec.nodes["x"] = spec.nodes["a"]  # type: ignore[index]


def test_load_pipeline_validates_in_place() -> None:
    tree = hand_tree()
    load_pipeline(tree)
    assert tree["end_event"]["incoming"] == ["f3"]
    assert tree["activities"]["a"]["incoming"] == ["f1"]


def test_load_pipeline_rejects_invalid_tree() -> None:
    tree = hand_tree()
    tree["schema_version"] = TREE_SCHEMA_VERSION + 1
    with pytest.raises(TreeInvalidException):
        load_pipeline(tree)


def test_parse_of_unvalidated_garbage_is_tree_invalid() -> None:
    with pytest.raises(TreeInvalidException):
        parse_pipeline({"id": "x"})


def test_executable_end_event_kind() -> None:
    tree = hand_tree()
    tree["end_event"]["type"] = "MyEndEvent"
    spec = load_pipeline(tree, sink_types=["MyEndEvent"])
    assert spec.end_event.kind is NodeType.ExecutableEndEvent
    assert spec.end_event.type == "MyEndEvent"


def test_gateways_from_builder() -> None:
    start = EmptyStartEvent()
    eg = ExclusiveGateway(conditions={0: "${x} > 1", 1: "${x} <= 1"}, default_condition_outgoing=1)
    a, b = ServiceActivity(component_code="c"), ServiceActivity(component_code="c")
    cg = ConvergeGateway()
    cpg = ConditionalParallelGateway(conditions={0: "True", 1: "False"})
    c, d = ServiceActivity(component_code="c"), ServiceActivity(component_code="c")
    cg2 = ConvergeGateway()
    pg = ParallelGateway()
    e1, e2 = ServiceActivity(component_code="c"), ServiceActivity(component_code="c")
    cg3 = ConvergeGateway()
    end = EmptyEndEvent()
    start.extend(eg).connect(a, b).to(eg).converge(cg).extend(cpg).connect(c, d).to(cpg).converge(cg2).extend(
        pg
    ).connect(e1, e2).to(pg).converge(cg3).extend(end)
    tree = build_tree(start)
    tree["gateways"][eg.id]["extra_info"] = {"strategy": "first"}
    spec = load_pipeline(tree)

    g = spec.nodes[eg.id]
    assert isinstance(g, GatewayNode) and g.kind is NodeType.ExclusiveGateway
    flows = tree["gateways"][eg.id]["outgoing"]
    assert [(c.flow_id, c.evaluate) for c in g.conditions] == [
        (flows[0], "${x} > 1"),
        (flows[1], "${x} <= 1"),
    ]
    assert g.default_flow_id == flows[1]
    assert g.converge_gateway_id == cg.id
    assert g.extra_info["strategy"] == "first"
    assert g.outgoing == tuple(flows)

    g2 = spec.nodes[cpg.id]
    assert isinstance(g2, GatewayNode) and g2.kind is NodeType.ConditionalParallelGateway
    assert g2.default_flow_id is None and g2.converge_gateway_id == cg2.id and dict(g2.extra_info) == {}

    g3 = spec.nodes[pg.id]
    assert isinstance(g3, GatewayNode) and g3.kind is NodeType.ParallelGateway
    assert g3.conditions == () and g3.converge_gateway_id == cg3.id
    conv = spec.nodes[cg3.id]
    assert isinstance(conv, GatewayNode) and conv.kind is NodeType.ConvergeGateway
    assert conv.converge_gateway_id is None


def test_subprocess_from_builder() -> None:
    sub_start = EmptyStartEvent()
    sub_act = ServiceActivity(component_code="c")
    sub_act.component.inputs.k = Var(type=Var.SPLICE, value="${sub_in}")
    sub_start.extend(sub_act).extend(EmptyEndEvent())
    sub_data = Data()
    sub_data.inputs["${sub_in}"] = DataInput(type=Var.PLAIN, value="default")
    sub_data.inputs["${sub_out}"] = NodeOutput(source_act=sub_act.id, source_key="r")
    sub_data.outputs = ["${sub_out}"]
    sub = SubProcess(
        start=sub_start, data=sub_data, params=Params({"${sub_in}": Var(type=Var.SPLICE, value="${top}")})
    )
    start = EmptyStartEvent()
    start.extend(sub).extend(EmptyEndEvent())
    data = Data()
    data.inputs["${top}"] = Var(type=Var.PLAIN, value="v")
    data.inputs["${rw}"] = RewritableNodeOutput(
        source_act=[{"source_act": sub.id, "source_key": "${sub_out}"}], type=Var.PLAIN
    )
    data.inputs["${irw}"] = InitializedRewritableNodeOutput(
        source_act=[{"source_act": sub.id, "source_key": "_loop"}], type=Var.PLAIN, value=0
    )
    tree = build_tree(start, data=data)
    spec = load_pipeline(tree)

    node = spec.nodes[sub.id]
    assert isinstance(node, SubProcessNode) and node.kind is NodeType.SubProcess
    assert node.params["${sub_in}"] == InputItem(type="splice", value="${top}")
    inner = node.pipeline
    assert inner.id == sub.id
    assert inner.data.inputs["${sub_in}"].is_param is True
    assert inner.data.inputs["${sub_out}"].sources == (SourceRef(sub_act.id, "r"),)
    assert inner.data.outputs == ("${sub_out}",)
    inner_act = inner.nodes[sub_act.id]
    assert isinstance(inner_act, ServiceActivityNode)
    assert inner_act.inputs["k"].type == "splice"
    assert spec.data.inputs["${rw}"].sources == (SourceRef(sub.id, "${sub_out}"),)
    assert spec.data.inputs["${irw}"].need_initialization is True
    assert {n.id for _, n in spec.iter_all()} >= {sub.id, sub_act.id}


def test_parse_is_deterministic_and_does_not_touch_tree() -> None:
    tree = hand_tree()
    load_pipeline(tree)
    before = copy.deepcopy(tree)
    assert parse_pipeline(tree) == parse_pipeline(tree)
    assert tree == before


@pytest.mark.timeout(60)
def test_deeply_nested_parse_is_iterative() -> None:
    # 300 nested subprocesses: parse must not recurse per level
    def level(i: int, inner: dict[str, Any] | None) -> dict[str, Any]:
        body_type = "SubProcess" if inner is not None else "ServiceActivity"
        body: dict[str, Any] = {
            "id": f"n{i}",
            "type": body_type,
            "incoming": [f"f{i}a"],
            "outgoing": f"f{i}b",
        }
        if inner is None:
            body["component"] = {"code": "c", "inputs": {}}
        else:
            body["pipeline"] = inner
        return {
            "id": f"p{i}" if i else "root",
            "start_event": {"id": f"s{i}", "type": "EmptyStartEvent", "incoming": "", "outgoing": f"f{i}a"},
            "end_event": {"id": f"e{i}", "type": "EmptyEndEvent", "incoming": [f"f{i}b"], "outgoing": ""},
            "activities": {f"n{i}": body},
            "gateways": {},
            "flows": {
                f"f{i}a": {"id": f"f{i}a", "source": f"s{i}", "target": f"n{i}"},
                f"f{i}b": {"id": f"f{i}b", "source": f"n{i}", "target": f"e{i}"},
            },
        }

    depth = 300
    tree: dict[str, Any] | None = None
    for i in range(depth, -1, -1):
        tree = level(i, tree)
        if i:
            tree["id"] = f"n{i - 1}"
    assert tree is not None
    spec = parse_pipeline(tree)
    node = spec.nodes["n0"]
    count = 0
    while isinstance(node, SubProcessNode):
        count += 1
        node = node.pipeline.nodes[f"n{count}"]
    assert count == depth


def test_the_parser_passes_node_fields_in_the_models_order() -> None:
    # parse._common hands the shared Node fields to every node class positionally
    import dataclasses

    from rattan.spec import parse
    from rattan.spec.model import EventNode, GatewayNode, Node, ServiceActivityNode, SubProcessNode

    for cls in (Node, EventNode, GatewayNode, ServiceActivityNode, SubProcessNode):
        names = tuple(f.name for f in dataclasses.fields(cls))
        assert names[: len(parse.NODE_FIELDS)] == parse.NODE_FIELDS, cls.__name__


def test_parsing_an_unvalidated_tree_that_nests_itself_fails_clearly() -> None:
    start = EmptyStartEvent()
    sub_start = EmptyStartEvent()
    sub_start.extend(EmptyEndEvent())
    sub = SubProcess(start=sub_start)
    start.extend(sub).extend(EmptyEndEvent())
    tree = build_tree(start)
    nested = tree["activities"][sub.id]["pipeline"]
    nested["activities"] = {sub.id: tree["activities"][sub.id]}  # the subprocess now contains itself
    with pytest.raises(TreeInvalidException, match="appears more than once"):
        parse_pipeline(tree)

"""Turn a validated tree dict into the frozen model of ``rattan.spec.model`` (SPEC 1).

``parse_pipeline`` trusts that the tree passed ``validate_and_process_pipeline``; ``load_pipeline`` (in
``rattan.spec``) does both. Nested subprocesses are parsed children-first without recursion.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from rattan.errors import TreeInvalidException

from .model import (
    Condition,
    DataInputItem,
    EventNode,
    Flow,
    GatewayNode,
    InputItem,
    Node,
    NodeType,
    PipelineData,
    PipelineSpec,
    ServiceActivityNode,
    SourceRef,
    SubProcessNode,
)

LEGACY_VERSION = "legacy"
_GATEWAY_KINDS = {
    "ParallelGateway": NodeType.ParallelGateway,
    "ExclusiveGateway": NodeType.ExclusiveGateway,
    "ConditionalParallelGateway": NodeType.ConditionalParallelGateway,
    "ConvergeGateway": NodeType.ConvergeGateway,
}


def _ro(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only shallow copy (values themselves are shared with the tree)."""
    return MappingProxyType(dict(mapping or {}))


def _flow_ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(value)
    if not value:
        return ()
    return (value,)


def _common(node: Mapping[str, Any], kind: NodeType) -> dict[str, Any]:
    name = node.get("name")
    return {
        "id": node["id"],
        "name": name if isinstance(name, str) else None,
        "type": node["type"],
        "kind": kind,
        "incoming": _flow_ids(node.get("incoming")),
        "outgoing": _flow_ids(node.get("outgoing")),
        "raw": MappingProxyType(node),
    }


def parse_input_item(item: Mapping[str, Any]) -> InputItem:
    need_render = item.get("need_render")
    return InputItem(
        type=item["type"],
        value=item.get("value"),
        custom_type=item.get("custom_type"),
        need_render=need_render if isinstance(need_render, bool) else None,
    )


def _input_map(items: Mapping[str, Any] | None) -> Mapping[str, InputItem]:
    return MappingProxyType({key: parse_input_item(item) for key, item in (items or {}).items()})


def parse_data_item(key: str, item: Mapping[str, Any]) -> DataInputItem:
    src = item.get("source_act")
    if isinstance(src, str):
        sources: tuple[SourceRef, ...] = (SourceRef(src, item["source_key"]),)
    elif isinstance(src, list):
        sources = tuple(SourceRef(ref["source_act"], ref["source_key"]) for ref in src)
    else:
        sources = ()
    return DataInputItem(
        key=key,
        type=item["type"],
        value=item.get("value"),
        custom_type=item.get("custom_type"),
        sources=sources,
        need_initialization=item.get("need_initialization") is True,
        is_param=bool(item.get("is_param", False)),
    )


def parse_data(data: Mapping[str, Any] | None) -> PipelineData:
    data = data or {}
    inputs = data.get("inputs") or {}
    return PipelineData(
        inputs=MappingProxyType({key: parse_data_item(key, item) for key, item in inputs.items()}),
        outputs=tuple(data.get("outputs") or ()),
        pre_render_keys=tuple(data.get("pre_render_keys") or ()),
    )


def _service_activity(node: Mapping[str, Any]) -> ServiceActivityNode:
    comp = node["component"]
    events = node.get("events") or {}
    return ServiceActivityNode(
        **_common(node, NodeType.ServiceActivity),
        component_code=comp["code"],
        component_version=comp.get("version") or LEGACY_VERSION,
        inputs=_input_map(comp.get("inputs")),
        error_ignorable=node.get("error_ignorable", False) is True,
        can_skip=node.get("skippable", True) is not False,
        can_retry=node.get("retryable", True) is not False,
        loop_config=_ro(node["loop_config"]) if node.get("loop_config") is not None else None,
        timeout_config=_ro(node["timeout_config"]) if node.get("timeout_config") is not None else None,
        timer_events=tuple(_ro(t) for t in events.get("timer_events") or ()),
    )


def _gateway(node: Mapping[str, Any]) -> GatewayNode:
    conditions = tuple(
        Condition(flow_id=fid, evaluate=cond["evaluate"])
        for fid, cond in (node.get("conditions") or {}).items()
    )
    default = node.get("default_condition") or {}
    return GatewayNode(
        **_common(node, _GATEWAY_KINDS[node["type"]]),
        conditions=conditions,
        default_flow_id=_str_or_none(default.get("flow_id")),
        extra_info=_ro(node.get("extra_info")),
        converge_gateway_id=_str_or_none(node.get("converge_gateway_id")),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _end_event(node: Mapping[str, Any]) -> EventNode:
    kind = NodeType.EmptyEndEvent if node["type"] == "EmptyEndEvent" else NodeType.ExecutableEndEvent
    return EventNode(**_common(node, kind))


def _build(tree: Mapping[str, Any], children: Mapping[str, PipelineSpec]) -> PipelineSpec:
    nodes: dict[str, Node] = {}
    start, end = tree["start_event"], tree["end_event"]
    nodes[start["id"]] = EventNode(**_common(start, NodeType.EmptyStartEvent))
    nodes[end["id"]] = _end_event(end)
    for nid, node in tree["activities"].items():
        if node["type"] == "SubProcess":
            nodes[nid] = SubProcessNode(
                **_common(node, NodeType.SubProcess),
                params=_input_map(node.get("params")),
                pipeline=children[nid],
            )
        else:
            nodes[nid] = _service_activity(node)
    for nid, node in tree["gateways"].items():
        nodes[nid] = _gateway(node)
    flows = {
        fid: Flow(id=fid, source=f["source"], target=f["target"], is_default=f.get("is_default") is True)
        for fid, f in tree["flows"].items()
    }
    return PipelineSpec(
        id=tree["id"],
        start_event_id=start["id"],
        end_event_id=end["id"],
        nodes=MappingProxyType(nodes),
        flows=MappingProxyType(flows),
        data=parse_data(tree.get("data")),
    )


def parse_pipeline(tree: Mapping[str, Any]) -> PipelineSpec:
    """Parse an already validated tree (see ``rattan.spec.load_pipeline``) into a ``PipelineSpec``."""
    try:
        # post-order over nested pipelines with an explicit stack: children are built before parents
        built: dict[int, PipelineSpec] = {}
        stack: list[tuple[Mapping[str, Any], bool]] = [(tree, False)]
        while stack:
            current, expanded = stack.pop()
            subs = [n for n in current["activities"].values() if n["type"] == "SubProcess"]
            if not expanded:
                stack.append((current, True))
                stack.extend((n["pipeline"], False) for n in subs)
                continue
            children = {n["id"]: built[id(n["pipeline"])] for n in subs}
            built[id(current)] = _build(current, children)
        return built[id(tree)]
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        raise TreeInvalidException(
            f"cannot parse pipeline tree ({type(exc).__name__}: {exc}); validate it first with "
            "rattan.validator.validate_and_process_pipeline or use rattan.spec.load_pipeline"
        ) from exc

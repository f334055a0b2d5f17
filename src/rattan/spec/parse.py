"""Turn a validated tree dict into the frozen model of ``rattan.spec.model``.

``parse_pipeline`` trusts that the tree passed ``validate_and_process_pipeline``; ``load_pipeline``
(in ``rattan.validator``) does both. Nested subprocesses are parsed children-first without recursion.
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


# One shared empty read-only mapping for every absent/empty optional mapping (``extra_info``, ``inputs``,
# ``params``...): nothing can ever be stored in it, so sharing it is indistinguishable from a fresh copy.
_EMPTY: Mapping[str, Any] = MappingProxyType({})

# ``_common`` returns the ``Node`` fields positionally, in this order (tests/spec pins it to the model)
NODE_FIELDS = ("id", "name", "type", "kind", "incoming", "outgoing", "raw")


def _ro(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only shallow copy (values themselves are shared with the tree)."""
    return MappingProxyType(dict(mapping)) if mapping else _EMPTY


def _flow_ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(value)
    if not value:
        return ()
    return (value,)


_NodeFields = tuple[str, str | None, str, NodeType, tuple[str, ...], tuple[str, ...], Mapping[str, Any]]


def _common(node: Mapping[str, Any], kind: NodeType) -> _NodeFields:
    """The ``Node`` fields of ``node`` in field order (``NODE_FIELDS``).

    Callers pass them positionally (``Cls(*_common(node, kind), ...)``): building and unpacking a
    keyword dict per node was a measurable part of parsing. The tree is read in the same order as
    before, so a malformed tree fails with the same error.
    """
    name = node.get("name")
    return (
        node["id"],
        name if isinstance(name, str) else None,
        node["type"],
        kind,
        _flow_ids(node.get("incoming")),
        _flow_ids(node.get("outgoing")),
        MappingProxyType(node),
    )


def parse_input_item(item: Mapping[str, Any]) -> InputItem:
    need_render = item.get("need_render")
    return InputItem(
        type=item["type"],
        value=item.get("value"),
        custom_type=item.get("custom_type"),
        need_render=need_render if isinstance(need_render, bool) else None,
    )


def _input_map(items: Mapping[str, Any] | None) -> Mapping[str, InputItem]:
    if not items:
        return _EMPTY
    return MappingProxyType({key: parse_input_item(item) for key, item in items.items()})


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
    inputs = data.get("inputs")
    return PipelineData(
        inputs=MappingProxyType({key: parse_data_item(key, item) for key, item in inputs.items()})
        if inputs
        else _EMPTY,
        outputs=tuple(data.get("outputs") or ()),
        pre_render_keys=tuple(data.get("pre_render_keys") or ()),
    )


# The two builders below evaluate the tree's fields in the same order as the original keyword-dict form
# (all arguments are evaluated left to right), so an unvalidated tree raises the same first error.
def _service_activity(node: Mapping[str, Any]) -> ServiceActivityNode:
    comp = node["component"]
    events = node.get("events") or {}
    return ServiceActivityNode(
        *_common(node, NodeType.ServiceActivity),
        component_code=comp["code"],
        component_version=comp.get("version") or LEGACY_VERSION,
        inputs=_input_map(comp.get("inputs")),
        error_ignorable=node.get("error_ignorable", False) is True,
        can_skip=node.get("skippable", True) is not False,
        can_retry=node.get("retryable", True) is not False,
        loop_config=_ro(node["loop_config"]) if node.get("loop_config") is not None else None,
        timeout_config=_ro(node["timeout_config"]) if node.get("timeout_config") is not None else None,
        timer_events=tuple([_ro(t) for t in events.get("timer_events") or ()]),
    )


def _gateway(node: Mapping[str, Any]) -> GatewayNode:
    conds = node.get("conditions")
    conditions = (
        tuple([Condition(flow_id=fid, evaluate=cond["evaluate"]) for fid, cond in conds.items()])
        if conds
        else ()
    )
    default = node.get("default_condition") or {}
    return GatewayNode(
        *_common(node, _GATEWAY_KINDS[node["type"]]),
        conditions=conditions,
        default_flow_id=_str_or_none(default.get("flow_id")),
        extra_info=_ro(node.get("extra_info")),
        converge_gateway_id=_str_or_none(node.get("converge_gateway_id")),
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _end_event(node: Mapping[str, Any]) -> EventNode:
    kind = NodeType.EmptyEndEvent if node["type"] == "EmptyEndEvent" else NodeType.ExecutableEndEvent
    return EventNode(*_common(node, kind))


def _build(tree: Mapping[str, Any], children: Mapping[str, PipelineSpec]) -> PipelineSpec:
    nodes: dict[str, Node] = {}
    start, end = tree["start_event"], tree["end_event"]
    nodes[start["id"]] = EventNode(*_common(start, NodeType.EmptyStartEvent))
    nodes[end["id"]] = _end_event(end)
    for nid, node in tree["activities"].items():
        if node["type"] == "SubProcess":
            nodes[nid] = SubProcessNode(
                *_common(node, NodeType.SubProcess),
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
    """Parse an already validated tree (see ``rattan.validator.load_pipeline``) into a ``PipelineSpec``."""
    try:
        # post-order over nested pipelines with an explicit stack: children are built before parents
        built: dict[int, PipelineSpec] = {}
        # (pipeline, its subprocess nodes once expanded, else None): the subprocess list is computed
        # once per pipeline and kept for the second visit, which builds the pipeline
        stack: list[tuple[Mapping[str, Any], list[Mapping[str, Any]] | None]] = [(tree, None)]
        expanded: set[int] = set()
        while stack:
            current, subs = stack.pop()
            if subs is None:
                if id(current) in expanded:
                    # a pipeline dict nested in itself (or shared) would be expanded forever; the
                    # validator reports it as structure.shared_object
                    raise ValueError("a subprocess pipeline dict appears more than once in the tree")
                expanded.add(id(current))
                subs = [n for n in current["activities"].values() if n["type"] == "SubProcess"]
                stack.append((current, subs))
                stack.extend((n["pipeline"], None) for n in subs)
                continue
            children = {n["id"]: built[id(n["pipeline"])] for n in subs}
            built[id(current)] = _build(current, children)
        return built[id(tree)]
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        raise TreeInvalidException(
            f"cannot parse pipeline tree ({type(exc).__name__}: {exc}); validate it first with "
            "rattan.validator.validate_and_process_pipeline or use rattan.validator.load_pipeline"
        ) from exc

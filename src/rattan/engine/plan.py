"""The run plan: everything the engine derives from a validated tree, computed once per run.

Per node: its pipeline, its static inputs (lazy inputs hoisted into the context), the
output mapping from node outputs to context keys (4.7) and the successor. Per pipeline: the initial
context rows and the export list (4.8). The plan is cached by root id; it is pure data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rattan.context import TYPE_OF_ITEM, ContextValueType
from rattan.errors import TreeInvalidException
from rattan.spec.model import (
    InputItem,
    Node,
    NodeType,
    PipelineSpec,
    ServiceActivityNode,
    SubProcessNode,
)

MAX_HOISTED_KEY = 128

# (need_render, value)
StaticInputs = dict[str, tuple[bool, Any]]


@dataclass(slots=True)
class NodeInfo:
    node: Node
    pipeline: PipelineSpec
    pipeline_id: str
    inputs: StaticInputs = field(default_factory=dict)
    output_map: dict[str, str] = field(default_factory=dict)
    # the context keys ``inputs`` read, found on first use (inputs.static_references)
    refs: frozenset[str] | None = None

    @property
    def kind(self) -> NodeType:
        return self.node.kind

    def next_id(self) -> str:
        return self.pipeline.next_node_id(self.node.id)


@dataclass(slots=True)
class RunPlan:
    root: PipelineSpec
    nodes: dict[str, NodeInfo]
    pipelines: dict[str, PipelineSpec]
    # pipeline id -> {key: (type, value, code)}
    initial_context: dict[str, dict[str, tuple[int, Any, str | None]]]

    def info(self, node_id: str) -> NodeInfo:
        return self.nodes[node_id]


def _plain_name(key: str) -> str:
    return key[2:-1] if key.startswith("${") and key.endswith("}") else key


def _static(items: Mapping[str, InputItem]) -> StaticInputs:
    out: StaticInputs = {}
    for key, item in items.items():
        need = item.type != "plain"
        if item.need_render is False:
            need = False
        out[key] = (need, item.value)
    return out


def _hoist(
    owner_id: str,
    items: Mapping[str, InputItem],
    inputs: StaticInputs,
    ctx: dict[str, tuple[int, Any, str | None]],
) -> None:
    """Move lazy inputs of ``owner_id`` into ``ctx`` as COMPUTE values."""
    for key, item in items.items():
        if item.type != "lazy":
            continue
        hoisted = "${" + _plain_name(key) + "_" + owner_id + "}"
        if len(hoisted) > MAX_HOISTED_KEY:
            raise TreeInvalidException(
                f"node {owner_id}: lazy input {key!r} gives a context key longer than "
                f"{MAX_HOISTED_KEY} characters; shorten the input key"
            )
        ctx[hoisted] = (ContextValueType.COMPUTE, item.value, item.custom_type or "")
        need = item.need_render is not False
        inputs[key] = (need, hoisted)


def build_plan(
    root: PipelineSpec,
    root_pipeline_context: Mapping[str, Any] | None = None,
    subprocess_context: Mapping[str, Any] | None = None,
) -> RunPlan:
    nodes: dict[str, NodeInfo] = {}
    pipelines: dict[str, PipelineSpec] = {}
    contexts: dict[str, dict[str, tuple[int, Any, str | None]]] = {}
    stack: list[tuple[PipelineSpec, bool]] = [(root, True)]
    while stack:
        spec, is_root = stack.pop()
        pipelines[spec.id] = spec
        ctx: dict[str, tuple[int, Any, str | None]] = {}
        contexts[spec.id] = ctx
        outputs: dict[str, dict[str, str]] = {}
        for key, item in spec.data.inputs.items():
            if item.is_node_output:
                for src in item.sources:
                    outputs.setdefault(src.source_act, {})[src.source_key] = key
                if not item.need_initialization:
                    continue
            ctx[key] = (TYPE_OF_ITEM.get(item.type, ContextValueType.PLAIN), item.value, item.custom_type)
        for node in spec.nodes.values():
            info = NodeInfo(node, spec, spec.id, output_map=outputs.get(node.id, {}))
            if isinstance(node, ServiceActivityNode):
                info.inputs = _static(node.inputs)
                _hoist(node.id, node.inputs, info.inputs, ctx)
            elif isinstance(node, SubProcessNode):
                info.inputs = _static(node.params)
                _hoist(node.id, node.params, info.inputs, ctx)
                stack.append((node.pipeline, False))
            nodes[node.id] = info
        preset = root_pipeline_context if is_root else subprocess_context
        for key, value in (preset or {}).items():
            ctx[key] = (ContextValueType.PLAIN, value, None)
    return RunPlan(root, nodes, pipelines, contexts)

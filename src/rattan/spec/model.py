"""The immutable, typed pipeline model the engine runs.

A pipeline tree dict is validated and then parsed into these frozen dataclasses once;
the engine never reads the raw dict on its hot path. ``raw`` keeps each node's original dict so host
extensions (``labels``, ``stage_name``, ...) survive untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

TREE_SCHEMA_VERSION = 1


class NodeType(StrEnum):
    EmptyStartEvent = "EmptyStartEvent"
    EmptyEndEvent = "EmptyEndEvent"
    ExecutableEndEvent = "ExecutableEndEvent"  # any registered sink type key other than EmptyEndEvent
    ServiceActivity = "ServiceActivity"
    SubProcess = "SubProcess"
    ParallelGateway = "ParallelGateway"
    ExclusiveGateway = "ExclusiveGateway"
    ConditionalParallelGateway = "ConditionalParallelGateway"
    ConvergeGateway = "ConvergeGateway"


PARALLEL_TYPES = frozenset({NodeType.ParallelGateway, NodeType.ConditionalParallelGateway})
GATEWAY_TYPES = frozenset(
    {
        NodeType.ParallelGateway,
        NodeType.ExclusiveGateway,
        NodeType.ConditionalParallelGateway,
        NodeType.ConvergeGateway,
    }
)


@dataclass(frozen=True, slots=True)
class InputItem:
    """A node input or subprocess param."""

    type: str  # "plain" | "splice" | "lazy"
    value: Any
    custom_type: str | None = None
    need_render: bool | None = None  # explicit override from the tree, None when absent


@dataclass(frozen=True, slots=True)
class SourceRef:
    source_act: str
    source_key: str


@dataclass(frozen=True, slots=True)
class DataInputItem:
    """One entry of ``data.inputs``."""

    key: str
    type: str  # "plain" | "splice" | "lazy"
    value: Any
    custom_type: str | None = None
    # node-output declaration: one or several (source_act, source_key) pairs; empty when not an output
    sources: tuple[SourceRef, ...] = ()
    need_initialization: bool = False
    is_param: bool = False

    @property
    def is_node_output(self) -> bool:
        return bool(self.sources)


@dataclass(frozen=True, slots=True)
class PipelineData:
    inputs: Mapping[str, DataInputItem]
    outputs: tuple[str, ...] = ()
    pre_render_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    source: str
    target: str
    is_default: bool = False


@dataclass(frozen=True, slots=True)
class Condition:
    flow_id: str
    evaluate: str


@dataclass(frozen=True, slots=True)
class Node:
    """Fields shared by every node. ``type`` is the tree's type string (a sink may use its own key)."""

    id: str
    name: str | None
    type: str
    kind: NodeType
    incoming: tuple[str, ...]
    outgoing: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class EventNode(Node):
    pass


@dataclass(frozen=True, slots=True)
class ServiceActivityNode(Node):
    component_code: str
    component_version: str  # "legacy" when the tree gives none
    inputs: Mapping[str, InputItem]
    error_ignorable: bool = False
    can_skip: bool = True
    can_retry: bool = True
    loop_config: Mapping[str, Any] | None = None
    timeout_config: Mapping[str, Any] | None = None
    timer_events: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class GatewayNode(Node):
    conditions: tuple[Condition, ...] = ()
    default_flow_id: str | None = None
    extra_info: Mapping[str, Any] = field(default_factory=dict)
    converge_gateway_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubProcessNode(Node):
    params: Mapping[str, InputItem]
    pipeline: PipelineSpec


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """One (sub)pipeline: its nodes, flows and context declaration. ``nodes`` includes the events."""

    id: str
    start_event_id: str
    end_event_id: str
    nodes: Mapping[str, Node]
    flows: Mapping[str, Flow]
    data: PipelineData

    @property
    def start_event(self) -> Node:
        return self.nodes[self.start_event_id]

    @property
    def end_event(self) -> Node:
        return self.nodes[self.end_event_id]

    def next_node_id(self, node_id: str) -> str:
        """Target of the single (first) outgoing flow of ``node_id``."""
        return self.flows[self.nodes[node_id].outgoing[0]].target

    def flow_target(self, flow_id: str) -> str:
        return self.flows[flow_id].target

    def iter_all(self) -> list[tuple[PipelineSpec, Node]]:
        """Every node of this pipeline and of nested subprocesses, with its pipeline, depth first."""
        out: list[tuple[PipelineSpec, Node]] = []
        for node in self.nodes.values():
            out.append((self, node))
            if isinstance(node, SubProcessNode):
                out.extend(node.pipeline.iter_all())
        return out

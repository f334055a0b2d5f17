"""The parsed, immutable pipeline model and the tree -> model loader."""

from __future__ import annotations

from .model import (
    GATEWAY_TYPES,
    PARALLEL_TYPES,
    TREE_SCHEMA_VERSION,
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
from .parse import parse_pipeline

__all__ = [
    "GATEWAY_TYPES",
    "PARALLEL_TYPES",
    "TREE_SCHEMA_VERSION",
    "Condition",
    "DataInputItem",
    "EventNode",
    "Flow",
    "GatewayNode",
    "InputItem",
    "Node",
    "NodeType",
    "PipelineData",
    "PipelineSpec",
    "ServiceActivityNode",
    "SourceRef",
    "SubProcessNode",
    "parse_pipeline",
]

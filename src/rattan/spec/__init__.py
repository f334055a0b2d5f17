"""The parsed, immutable pipeline model and the tree -> model loader."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


def load_pipeline(
    tree: Any, *, cycle_tolerate: bool = False, sink_types: Iterable[str] | None = None
) -> PipelineSpec:
    """Validate ``tree`` (in place, as ``run_pipeline`` does) and parse it into a ``PipelineSpec``."""
    from rattan.validator import validate_and_process_pipeline

    validate_and_process_pipeline(tree, cycle_tolerate=cycle_tolerate, sink_types=sink_types)
    return parse_pipeline(tree)


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
    "load_pipeline",
    "parse_pipeline",
]

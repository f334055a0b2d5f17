"""Pipeline tree validation, with bamboo's public function names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rattan.spec import PipelineSpec, parse_pipeline

from ._common import DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES, MAX_IN, MAX_OUT, add_sink_type
from .api import (
    get_allowed_start_node_ids,
    get_skipped_execute_node_ids,
    validate_and_process_pipeline,
    validate_gateways,
    validate_graph_connection,
    validate_graph_without_circle,
    validate_pipeline_start_node,
    validate_stream,
)
from .components import ComponentSource, check_component_codes, component_keys, unregistered_message


def load_pipeline(
    tree: Any, *, cycle_tolerate: bool = False, sink_types: Iterable[str] | None = None
) -> PipelineSpec:
    """Validate ``tree`` (in place, as ``run_pipeline`` does) and parse it into a ``PipelineSpec``."""
    validate_and_process_pipeline(tree, cycle_tolerate=cycle_tolerate, sink_types=sink_types)
    return parse_pipeline(tree)


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_NODES",
    "MAX_IN",
    "MAX_OUT",
    "ComponentSource",
    "add_sink_type",
    "check_component_codes",
    "component_keys",
    "get_allowed_start_node_ids",
    "get_skipped_execute_node_ids",
    "load_pipeline",
    "unregistered_message",
    "validate_and_process_pipeline",
    "validate_gateways",
    "validate_graph_connection",
    "validate_graph_without_circle",
    "validate_pipeline_start_node",
    "validate_stream",
]

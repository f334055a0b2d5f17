"""Pipeline tree validation (SPEC 3), with the peer's public function names."""

from __future__ import annotations

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

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_NODES",
    "MAX_IN",
    "MAX_OUT",
    "add_sink_type",
    "get_allowed_start_node_ids",
    "get_skipped_execute_node_ids",
    "validate_and_process_pipeline",
    "validate_gateways",
    "validate_graph_connection",
    "validate_graph_without_circle",
    "validate_pipeline_start_node",
    "validate_stream",
]

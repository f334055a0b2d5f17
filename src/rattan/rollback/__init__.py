"""Rollback (bamboo's ``pipeline.contrib.rollback.api``): take a pipeline back from the node
where it stands to an earlier finished node and run again from there.

Enable it with ``rattan.Engine(..., pipeline_enable_rollback=True)``. Two modes: ``TOKEN`` walks
back along the executed path inside one sequential region and calls each node's
``Service.rollback(data, parent_data, rollback_data)``; ``ANY`` jumps straight back without calling
anything. See docs/rollback.md.
"""

from __future__ import annotations

from rattan.rollback.api import (
    cancel_reserved_rollback,
    get_allowed_rollback_node_id_list,
    reserve_rollback,
    retry_rollback_failed_node,
    rollback,
)
from rattan.rollback.checks import ANY, TOKEN
from rattan.rollback.extension import install_rollback

__all__ = [
    "ANY",
    "TOKEN",
    "cancel_reserved_rollback",
    "get_allowed_rollback_node_id_list",
    "install_rollback",
    "reserve_rollback",
    "retry_rollback_failed_node",
    "rollback",
]

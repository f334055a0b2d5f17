"""Node timeouts: ``timeout_config`` on service activities.

rattan arms the deadline itself when a node goes RUNNING (a durable timer row; no Redis, no
scanner process), so ``batch_create_node_timeout_config`` has nothing left to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rattan.engine.policies import BUILTIN_TIMEOUT_ACTIONS, TIMEOUT_EX_DATA
from rattan.errors import BadInputError
from rattan.results import EngineAPIResult


class NodeTimeoutStrategy:
    """Base of custom timeout actions, registered in ``Settings.pipeline_node_timeout_handler``."""

    TIMEOUT_NODE_OPERATOR = TIMEOUT_EX_DATA

    def deal_with_timeout_node(self, node_id: str) -> Any:
        """Called (on a worker, outside any transaction) when ``node_id`` times out."""
        return None


def _walk(tree: dict[str, Any], configs: Mapping[str, Mapping[str, Any]]) -> None:
    for node_id, act in tree.get("activities", {}).items():
        if act.get("type") == "SubProcess" and isinstance(act.get("pipeline"), dict):
            _walk(act["pipeline"], configs)
        elif node_id in configs:
            act["timeout_config"] = dict(configs[node_id])


def apply_node_timeout_configs(
    pipeline_tree: dict[str, Any], configs: Mapping[str, Mapping[str, Any]]
) -> EngineAPIResult:
    """Write ``timeout_config`` into the matching activities of ``pipeline_tree`` (recursing into
    subprocesses). Mutates and returns the tree (bamboo's version returned a stale copy)."""
    for node_id, cfg in configs.items():
        if not isinstance(cfg, Mapping):
            exc = BadInputError(f"timeout config of node {node_id} must be a dict")
            return EngineAPIResult(False, str(exc), exc)
    _walk(pipeline_tree, configs)
    return EngineAPIResult(True, "success", data=pipeline_tree)


apply_node_timout_configs = apply_node_timeout_configs  # bamboo's spelling, kept


def batch_create_node_timeout_config(root_pipeline_id: str, pipeline_tree: dict[str, Any]) -> EngineAPIResult:
    """Kept for compatibility: ``run_pipeline`` arms timeouts itself."""
    return EngineAPIResult(True, "success")


__all__ = [
    "BUILTIN_TIMEOUT_ACTIONS",
    "NodeTimeoutStrategy",
    "apply_node_timeout_configs",
    "apply_node_timout_configs",
    "batch_create_node_timeout_config",
]

"""Automatic failure policies: retry with backoff, skip after N failures (see engine/policies.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rattan.engine.policies import backoff


def apply_failure_policies(
    pipeline_tree: dict[str, Any], policies: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Write ``failure_policy`` into the matching activities (recursing into subprocesses);
    returns the tree. Policies are validated by ``run_pipeline``."""
    for node_id, act in pipeline_tree.get("activities", {}).items():
        if act.get("type") == "SubProcess" and isinstance(act.get("pipeline"), dict):
            apply_failure_policies(act["pipeline"], policies)
        elif node_id in policies:
            act["failure_policy"] = dict(policies[node_id])
    return pipeline_tree


__all__ = ["apply_failure_policies", "backoff"]

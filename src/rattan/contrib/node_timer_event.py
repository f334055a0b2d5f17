"""Timer boundary events: bamboo's contrib names. The timers themselves, their
parsing and the action classes live in ``rattan.engine.timers``; this module keeps the helpers
that write configs into trees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rattan.engine.timers import (
    BaseAction,
    ExampleAction,
    ForcedFailAction,
    ForcedFailAndSkipAction,
    enabled_events,
    parse_duration,
    parse_timer,
)
from rattan.errors import BadInputError
from rattan.results import EngineAPIResult


def apply_node_timer_event_configs(
    pipeline_tree: dict[str, Any], configs: Mapping[str, list[Mapping[str, Any]]]
) -> EngineAPIResult:
    """Write ``events.timer_events`` into the matching activities (recursing into subprocesses);
    returns the mutated tree."""
    for node_id, events in configs.items():
        if not isinstance(events, list):
            exc = BadInputError(f"timer events of node {node_id} must be a list")
            return EngineAPIResult(False, str(exc), exc)

    def walk(tree: dict[str, Any]) -> None:
        for node_id, act in tree.get("activities", {}).items():
            if act.get("type") == "SubProcess" and isinstance(act.get("pipeline"), dict):
                walk(act["pipeline"])
            elif node_id in configs:
                act.setdefault("events", {})["timer_events"] = [dict(c) for c in configs[node_id]]

    walk(pipeline_tree)
    return EngineAPIResult(True, "success", data=pipeline_tree)


def batch_create_node_timer_event_config(
    root_pipeline_id: str, pipeline_tree: dict[str, Any]
) -> EngineAPIResult:
    """Kept for compatibility: ``run_pipeline`` arms timer events itself."""
    return EngineAPIResult(True, "success")


__all__ = [
    "BaseAction",
    "ExampleAction",
    "ForcedFailAction",
    "ForcedFailAndSkipAction",
    "apply_node_timer_event_configs",
    "batch_create_node_timer_event_config",
    "enabled_events",
    "parse_duration",
    "parse_timer",
]

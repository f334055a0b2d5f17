"""Activity self-loops (``loop_config``): a node re-runs itself ``loop_times`` times."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rattan.context import ContextValueType
from rattan.spec.model import ServiceActivityNode

if TYPE_CHECKING:
    from rattan.engine.plan import NodeInfo
    from rattan.engine.step import Step


def loop_config(info: NodeInfo) -> dict[str, Any] | None:
    node = info.node
    if isinstance(node, ServiceActivityNode) and node.loop_config and node.loop_config.get("enable"):
        return dict(node.loop_config)
    return None


def outputs_context_key(cfg: dict[str, Any]) -> str:
    key = str(cfg.get("outputs_key") or "outputs")
    return key if key.startswith("${") else "${" + key + "}"


def record_pass(
    step: Step, info: NodeInfo, cfg: dict[str, Any], outputs: dict[str, Any], inner_loop: int
) -> None:
    """Append this pass's outputs to the loop's PLAIN list in the context (instead of the mapping)."""
    key = outputs_context_key(cfg)
    ctx = step.tx.context(info.pipeline_id)
    current = ctx.get(key)
    items = list(current[1]) if current is not None and isinstance(current[1], list) else []
    inner = outputs.get(step.core.settings.loop_outputs_inner_key)
    item = dict(inner) if isinstance(inner, dict) else {}
    item["result"] = outputs.get("_result")
    item["inner_loop"] = inner_loop
    items.append(item)
    step.put_context(info.pipeline_id, {key: items}, ContextValueType.PLAIN)


def next_after_pass(info: NodeInfo, cfg: dict[str, Any], inner_loop: int) -> str:
    """The node itself while passes remain, else the successor."""
    times = int(cfg.get("loop_times") or 1)
    return info.node.id if inner_loop < times else info.next_id()


def reset_outputs(step: Step, info: NodeInfo, drop_last_only: bool) -> None:
    """On retry: empty the loop's list (normal retry) or drop the last pass (loop retry)."""
    cfg = loop_config(info)
    if cfg is None:
        return
    key = outputs_context_key(cfg)
    ctx = step.tx.context(info.pipeline_id)
    if key not in ctx:
        return
    value = ctx[key][1]
    items = list(value[:-1]) if drop_last_only and isinstance(value, list) else []
    step.put_context(info.pipeline_id, {key: items}, ContextValueType.PLAIN)

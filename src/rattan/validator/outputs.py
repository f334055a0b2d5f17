"""Node outputs read from subprocesses: the key must be one the subprocess exports.

A ``data.inputs`` entry with ``source_act``/``source_key`` copies an output of node ``source_act``
into the context when that node finishes. A subprocess node's outputs are exactly its pipeline's
``data.outputs`` plus ``_loop`` and ``_inner_loop``, all known from the tree: any other key would
never be written, and templates reading the context key would silently render as their own text.
(A service activity's outputs depend on its code, so they are not checked here.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rattan.expr.suggest import did_you_mean

from ._common import SUBPROCESS, Problems, short

RULE = "data.node_output"
# a subprocess node also outputs its loop counters (besides its pipeline's exports)
SYSTEM_OUTPUTS = ("_loop", "_inner_loop")


def node_output_sources(item: Any) -> Iterator[tuple[str, str]]:
    """The ``(source_act, source_key)`` pairs a ``data.inputs`` item declares (none when it is not a
    node output); the one-source and the list (rewritable) forms alike."""
    if not isinstance(item, dict) or "source_act" not in item:
        return
    src = item["source_act"]
    if isinstance(src, str) and isinstance(item.get("source_key"), str):
        yield src, item["source_key"]
    elif isinstance(src, list):
        for ref in src:
            if isinstance(ref, dict):
                act, key = ref.get("source_act"), ref.get("source_key")
                if isinstance(act, str) and isinstance(key, str):
                    yield act, key


def exports_of(pipeline: Any) -> list[str]:
    """The keys a (sub)pipeline exports: its ``data.outputs``."""
    data = pipeline.get("data") if isinstance(pipeline, dict) else None
    outputs = data.get("outputs") if isinstance(data, dict) else None
    return [k for k in outputs if isinstance(k, str)] if isinstance(outputs, list) else []


def check_node_outputs(pipelines: list[dict[str, Any]]) -> Problems:
    """Problems (rule ``data.node_output``) for each node output read from a subprocess of the same
    pipeline under a key that subprocess does not export. ``pipelines``: structurally checked."""
    problems = Problems()
    for p in pipelines:
        data = p.get("data")
        inputs = data.get("inputs") if isinstance(data, dict) else None
        if not isinstance(inputs, dict):
            continue
        activities = p["activities"]
        for key, item in inputs.items():
            for act, source_key in node_output_sources(item):
                node = activities.get(act)
                if not isinstance(node, dict) or node.get("type") != SUBPROCESS:
                    continue
                exports = exports_of(node.get("pipeline"))
                if source_key in exports or source_key in SYSTEM_OUTPUTS:
                    continue
                listed = ", ".join(repr(k) for k in exports) if exports else "nothing"
                problems.add(
                    p["id"],
                    RULE,
                    f"data.inputs[{short(key)}] reads output {short(source_key)} of subprocess {act}, which"
                    f" does not export it{did_you_mean(source_key, exports)}; the subprocess exports"
                    f" {listed} (its data.outputs)",
                )
    return problems

"""Shared helpers of the engine behaviour tests: bounded polling and state/context readers."""

from __future__ import annotations

from typing import Any

import rattan
from rattan import api
from waits import (  # re-exported: the suite imports them from here
    DEFAULT_TIMEOUT as DEFAULT_TIMEOUT,
)
from waits import (
    state_name as state_name,
)
from waits import (
    wait_finished as wait_finished,
)
from waits import (
    wait_for as wait_for,
)
from waits import (
    wait_idle as wait_idle,
)
from waits import (
    wait_state as wait_state,
)


def run(engine: rattan.Engine, tree: dict[str, Any], **kwargs: Any) -> str:
    """Run ``tree`` through the API, asserting acceptance; return the root id."""
    res = api.run_pipeline(engine, tree, **kwargs)
    assert res.result, (res.message, res.exc_trace)
    assert res.data is None
    return str(tree["id"])


def node_states(engine: rattan.Engine, root_id: str) -> dict[str, str]:
    """``{node_id: state}`` for every state under ``root_id`` (root excluded)."""
    res = api.get_pipeline_states(engine, root_id)
    assert res.result, res.message
    if not res.data:
        return {}
    return {nid: entry["state"] for nid, entry in res.data[root_id]["children"].items()}


def context_dict(engine: rattan.Engine, pipeline_id: str) -> dict[str, tuple[Any, Any, Any]]:
    """``{key: (type, value, code)}`` of a pipeline's context."""
    return {cv.key: (cv.type, cv.value, cv.code) for cv in engine.get_context(pipeline_id)}


def outputs(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_outputs(engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def inputs(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_inputs(engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def all_ids(tree: dict[str, Any]) -> set[str]:
    """Every node id of a tree, subprocess contents included."""
    ids = {tree["start_event"]["id"], tree["end_event"]["id"], *tree["activities"], *tree["gateways"]}
    for node in tree["activities"].values():
        if node["type"] == "SubProcess":
            ids |= all_ids(node["pipeline"])
    return ids

"""Shared helpers of the engine behaviour tests: bounded polling and state/context readers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import rattan
from rattan import api

DEFAULT_TIMEOUT = 10.0


def wait_for(fn: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, interval: float = 0.005) -> Any:
    """Call ``fn`` until it returns a truthy value; return it. Fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


def state_name(engine: rattan.Engine, node_id: str) -> str | None:
    st = engine.get_state_or_none(node_id)
    return None if st is None else st.name


def wait_state(engine: rattan.Engine, node_id: str, state: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Wait until ``node_id`` is in ``state``; return its state record."""

    def check() -> Any:
        st = engine.get_state_or_none(node_id)
        return st if st is not None and st.name == state else None

    try:
        return wait_for(check, timeout)
    except AssertionError:
        raise AssertionError(
            f"node {node_id} not {state} within {timeout}s: now {state_name(engine, node_id)!r}"
        ) from None


def wait_finished(engine: rattan.Engine, root_id: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    return wait_state(engine, root_id, "FINISHED", timeout)


def wait_idle(engine: rattan.Engine, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Wait until the engine has no queued or running work."""
    assert engine.wait_idle(timeout), f"engine not idle within {timeout}s"


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

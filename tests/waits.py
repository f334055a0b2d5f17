"""Bounded polling shared by every test suite: wait on states, never sleep-and-hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import rattan

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

"""Helpers of the hook and event tests: bounded polling, a hook-recording service, tree builders."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree

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


def wait_idle(engine: rattan.Engine, timeout: float = DEFAULT_TIMEOUT) -> None:
    assert engine.wait_idle(timeout), f"engine not idle within {timeout}s"


def register(reg: rattan.Registry, code: str, service: type[rattan.Service]) -> None:
    type(
        f"Comp_{code}",
        (rattan.Component,),
        {"name": code, "code": code, "bound_service": service},
        registry=reg,
    )


def linear(*acts: ServiceActivity) -> tuple[dict[str, Any], EmptyStartEvent, EmptyEndEvent]:
    """``start -> acts... -> end``; returns the tree, start and end."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    elem: Any = start
    for act in acts:
        elem = elem.extend(act)
    elem.extend(end)
    return build_tree(start), start, end


def act(code: str, **inputs: Any) -> ServiceActivity:
    node = ServiceActivity(component_code=code, error_ignorable=bool(inputs.pop("error_ignorable", False)))
    for key, value in inputs.items():
        node.component.inputs[key] = Var(type=Var.PLAIN, value=value)
    return node


class HookLog:
    """A thread-safe list of hook calls: ``(node_id, hook, inputs, outputs, callback_data)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], dict[str, Any], Any]] = []
        self._lock = threading.Lock()

    def add(self, entry: tuple[str, str, dict[str, Any], dict[str, Any], Any]) -> None:
        with self._lock:
            self.calls.append(entry)

    def names(self, node_id: str | None = None) -> list[str]:
        with self._lock:
            return [c[1] for c in self.calls if node_id is None or c[0] == node_id]

    def of(self, hook: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any], Any]]:
        with self._lock:
            return [c for c in self.calls if c[1] == hook]


EXECUTE = "execute"
SCHEDULE = "schedule"

"""Helpers of the hook and event tests: bounded polling, a hook-recording service, tree builders."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from waits import (  # re-exported: the suite imports them from here
    DEFAULT_TIMEOUT as DEFAULT_TIMEOUT,
)
from waits import (
    state_name as state_name,
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


def register(reg: rattan.Registry, code: str, service: type[rattan.Service]) -> None:
    type(
        f"Comp_{code}",
        (rattan.Component,),
        {"name": code, "code": code, "bound_service": service},
        registry=reg,
    )


def linear(*acts: ServiceActivity, data: Any = None) -> tuple[dict[str, Any], EmptyStartEvent, EmptyEndEvent]:
    """``start -> acts... -> end`` (with the context declaration ``data``); returns the tree, start, end."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    elem: Any = start
    for act in acts:
        elem = elem.extend(act)
    elem.extend(end)
    return build_tree(start, data=data), start, end


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

HOOK_NAMES: tuple[str, ...] = rattan.components.service.HOOK_NAMES


def recording_service(
    log: HookLog,
    *,
    execute: str = "ok",
    schedule: str | None = None,
    polls: int = 2,
    hooks: bool = True,
    writes: dict[str, Any] | None = None,
    returns: dict[str, Any] | None = None,
    raises: frozenset[str] = frozenset(),
    sleeps: dict[str, float] | None = None,
) -> type[rattan.Service]:
    """A service recording every hook call (and execute/schedule) in ``log``.

    execute: "ok" | "raise" | "false". schedule: None | "poll" (finishes on poll ``polls``) |
    "callback" | "raise" | "false". ``writes[hook]`` is set as ``data.outputs[hook]`` inside that
    hook; ``returns[hook]`` is its return value (default True); hooks in ``raises`` raise;
    ``sleeps[hook]`` seconds are slept at the end of that hook, then ``"<hook>:end"`` is recorded.
    """
    writes = writes or {}
    returns = returns or {}
    sleeps = sleeps or {}

    def record(self: Any, name: str, data: Any, callback_data: Any = None) -> None:
        log.add((self.id, name, dict(data.inputs), dict(data.outputs), callback_data))

    def make_hook(name: str) -> Callable[..., Any]:
        def hook(self: Any, data: Any, parent_data: Any, callback_data: Any = None) -> Any:
            record(self, name, data, callback_data)
            if name in writes:
                data.outputs[name] = writes[name]
            if name in sleeps:
                time.sleep(sleeps[name])
                log.add((self.id, f"{name}:end", dict(data.inputs), dict(data.outputs), callback_data))
            if name in raises:
                raise RuntimeError(f"hook {name} broke")
            return returns.get(name, True)

        hook.__name__ = name
        return hook

    def do_execute(self: Any, data: Any, parent_data: Any) -> bool:
        record(self, EXECUTE, data)
        data.outputs.executed = True
        if execute == "raise":
            raise ValueError("execute broke")
        return execute != "false"

    def do_schedule(self: Any, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        record(self, SCHEDULE, data, callback_data)
        data.outputs.polls = data.outputs.get("polls", 0) + 1
        if callback_data is not None:
            data.outputs.got = callback_data
        if schedule == "raise":
            raise ValueError("schedule broke")
        if schedule == "false":
            return False
        if schedule == "poll" and data.outputs.polls >= polls:
            self.finish_schedule()
        return True

    attrs: dict[str, Any] = {"execute": do_execute, "__need_run_hook__": hooks}
    if schedule is not None:
        attrs["schedule"] = do_schedule
        attrs["__need_schedule__"] = True
        if schedule == "callback":
            attrs["interval"] = None
        else:
            attrs["interval"] = rattan.StaticIntervalGenerator(0)
    for name in HOOK_NAMES:
        attrs[name] = make_hook(name)
    return type("Recording", (rattan.Service,), attrs)

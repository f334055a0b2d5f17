"""Shared by the HTTP API tests: tokens of every scope, the test components (registered by
``make_registry``), exact values and their JSON, and tree builders. (A module of its own, not the
conftest, so the suites' conftest modules never shadow each other.)"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
from typing import Any

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from rattan.server import Token

ADMIN = "admin-token-000000000001"
READER = "read-token-0000000000001"
OPERATOR = "operate-token-0000000001"
WRONG = "not-a-configured-token-01"
TOKENS = [
    Token(ADMIN, frozenset({"admin"})),
    Token(READER, frozenset({"read"})),
    Token(OPERATOR, frozenset({"operate"})),
]
WHEN = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
# what the exact-values component outputs, and the JSON each comes back as
EXACT: dict[str, Any] = {
    "when": WHEN,
    "day": dt.date(2026, 3, 29),
    "span": dt.timedelta(minutes=1, microseconds=500000),
    "id": ID,
    "amount": decimal.Decimal("12.3400"),
    "blob": b"\x00\xffrattan",
    "tags": {"b", "a"},
    "odd": {1: "one", ID: "uuid"},
    "nan": float("nan"),
}
EXACT_JSON: dict[str, Any] = {
    "when": "2026-03-29T01:30:15.123456+02:00",
    "day": "2026-03-29",
    "span": 60.5,
    "id": "12345678-1234-5678-1234-567812345678",
    "amount": "12.3400",
    "blob": "AP9yYXR0YW4=",
    "tags": ["a", "b"],
    "odd": {"1": "one", "12345678-1234-5678-1234-567812345678": "uuid"},
    "nan": "nan",
}


class Echo(rattan.Service):
    """Outputs its input ``x`` (doubled) and logs a line."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        self.logger.info("echo got %s", data.get_one_of_inputs("x"))
        data.outputs.doubled = data.get_one_of_inputs("x", 0) * 2
        data.outputs.region = parent_data.get_one_of_inputs("region")
        return True


class Exact(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.update(EXACT)
        return True


class FailUnlessOk(rattan.Service):
    """Fails until retried with ``ok`` true in its inputs."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        if not data.get_one_of_inputs("ok", False):
            data.outputs.ex_data = "not ok yet"
            return False
        data.outputs.done = True
        return True


class WaitCallback(rattan.Service):
    """Waits for one callback and stores its payload."""

    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.received = callback_data
        self.finish_schedule()
        return True


GATES: dict[str, threading.Event] = {}
FLAKY = {"fail": True}  # the srv_flaky variable raises while this is True


class Gate(rattan.Service):
    """Blocks until the test opens its gate (a RUNNING node to pause a pipeline around)."""

    def execute(self, data: Any, parent_data: Any) -> bool:
        assert GATES.setdefault(self.id, threading.Event()).wait(30)
        return True


def make_registry() -> rattan.Registry:
    """A fresh registry holding the test components and the ``srv_flaky`` lazy variable."""
    reg = rattan.Registry("server-tests")
    for code, service in (
        ("srv_echo", Echo),
        ("srv_exact", Exact),
        ("srv_fail", FailUnlessOk),
        ("srv_wait", WaitCallback),
        ("srv_gate", Gate),
    ):
        type(
            f"{code}_component",
            (rattan.Component,),
            {"name": code, "code": code, "bound_service": service},
            registry=reg,
        )

    class Flaky(rattan.LazyVariable, registry=reg):
        code = "srv_flaky"

        def get_value(self) -> Any:
            if FLAKY["fail"]:
                raise RuntimeError("not ready")
            return "ready"

    return reg


def linear(*acts: ServiceActivity, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """start -> acts... -> end as a tree (``data``: root pipeline inputs as plain vars)."""
    start: Any = EmptyStartEvent()
    node = start
    for act in acts:
        node = node.extend(act)
    node.extend(EmptyEndEvent())
    return build_tree(start)


def act(code: str, **inputs: Any) -> ServiceActivity:
    node = ServiceActivity(component_code=code)
    for key, value in inputs.items():
        node.component.inputs[key] = Var(type=Var.PLAIN, value=value)
    return node

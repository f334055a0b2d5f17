"""Test kits for rattan users: the component test kit (SPEC 8.6), ``FakeClock`` (time under the
test's control), and the contract suites every store and dispatcher must pass."""

from __future__ import annotations

from rattan.testing.clock import FakeClock
from rattan.testing.component import (
    Call,
    CallAssertion,
    ComponentTestCase,
    ComponentTestMixin,
    ExecuteAssertion,
    Patcher,
    ScheduleAssertion,
    run_component_case,
)

__all__ = [
    "Call",
    "CallAssertion",
    "ComponentTestCase",
    "ComponentTestMixin",
    "ExecuteAssertion",
    "FakeClock",
    "Patcher",
    "ScheduleAssertion",
    "run_component_case",
]

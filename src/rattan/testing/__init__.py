"""Test kits for rattan users. ``rattan.testing`` currently ships the component test kit (SPEC 8.6)."""

from __future__ import annotations

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
    "Patcher",
    "ScheduleAssertion",
    "run_component_case",
]

"""Test kits for rattan users: the component test kit (bamboo's ``ComponentTestMixin`` vocabulary,
and declarative ``Case`` objects run by ``run_case`` in plain pytest), whole-pipeline assertions
(``assert_states``, ``assert_outputs``, ...) for the pytest plugin's ``engine`` fixture,
``FakeClock`` (time under the test's control), and the contract suites every store and dispatcher
must pass."""

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
from rattan.testing.kit import Callback, Case, CaseFailure, CaseResult, Poll, StepResult, run_case
from rattan.testing.pipeline import (
    advance,
    assert_events,
    assert_histories,
    assert_outputs,
    assert_states,
    run_and_wait,
    wait_state,
)

__all__ = [
    "Call",
    "CallAssertion",
    "Callback",
    "Case",
    "CaseFailure",
    "CaseResult",
    "ComponentTestCase",
    "ComponentTestMixin",
    "ExecuteAssertion",
    "FakeClock",
    "Patcher",
    "Poll",
    "ScheduleAssertion",
    "StepResult",
    "advance",
    "assert_events",
    "assert_histories",
    "assert_outputs",
    "assert_states",
    "run_and_wait",
    "run_case",
    "run_component_case",
    "wait_state",
]

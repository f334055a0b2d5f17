"""The component test kit (SPEC 8.6), on seed-like example components."""

from __future__ import annotations

import unittest
from typing import Any

import pytest

from rattan.components import Component, DataObject, Service
from rattan.components.builtin import PipeExampleComponent
from rattan.components.interval import StaticIntervalGenerator
from rattan.io import InputItem, OutputItem, StringItemSchema
from rattan.testing import (
    Call,
    CallAssertion,
    ComponentTestCase,
    ComponentTestMixin,
    ExecuteAssertion,
    Patcher,
    ScheduleAssertion,
    run_component_case,
)

HERE = __name__


def external_api(job: str) -> dict[str, Any]:  # patched in tests
    raise RuntimeError("the real API must not be called in tests")


class JobService(Service):
    """Submits a job, then polls it until ``done``; fails when the job fails."""

    __need_schedule__ = True
    interval = StaticIntervalGenerator(0)

    def inputs_format(self) -> list[InputItem]:
        return [InputItem(name="job", key="job", type="string", schema=StringItemSchema(description="job"))]

    def outputs_format(self) -> list[OutputItem]:
        return [OutputItem(name="state", key="state", type="string")]

    def execute(self, data: DataObject, parent_data: DataObject) -> bool:
        job = data.get_one_of_inputs("job")
        if not job:
            data.outputs.ex_data = "job is required"
            return False
        data.set_outputs("executor", parent_data.get_one_of_inputs("executor"))
        data.set_outputs("polls", 0)
        return True

    def schedule(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
        data.outputs.polls += 1
        state = external_api(data.inputs.job)["state"]
        data.set_outputs("state", state)
        if state == "failed":
            data.outputs.ex_data = "job failed"
            return False
        if state == "done":
            self.finish_schedule()
        return True


class JobComponent(Component, register=False):
    name = "job"
    code = "kit_job"
    bound_service = JobService


class ApprovalService(Service):
    __need_schedule__ = True

    def execute(self, data: DataObject, parent_data: DataObject) -> bool:
        data.set_outputs("node", self.id)
        return True

    def schedule(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
        assert callback_data is not None
        data.set_outputs("approved", callback_data["ok"])
        return bool(callback_data["ok"])


class ApprovalComponent(Component, register=False):
    name = "approval"
    code = "kit_approval"
    bound_service = ApprovalService


class VoteService(ApprovalService):
    __multi_callback_enabled__ = True

    def schedule(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
        assert callback_data is not None
        votes = data.get_one_of_outputs("votes", 0) + 1
        data.set_outputs("votes", votes)
        if votes >= 2:
            self.finish_schedule()
        return True


class VoteComponent(Component, register=False):
    name = "vote"
    code = "kit_vote"
    bound_service = VoteService


def _job_case(states: list[str], **kwargs: Any) -> ComponentTestCase:
    return ComponentTestCase(
        name="poll",
        inputs={"job": "j1"},
        parent_data={"executor": "alice"},
        execute_assertion=ExecuteAssertion(success=True, outputs={"executor": "alice", "polls": 0}),
        patchers=[Patcher(target=f"{HERE}.external_api", side_effect=[{"state": s} for s in states])],
        **kwargs,
    )


class TestJobComponent(ComponentTestMixin):
    """Collected by pytest as a plain class."""

    def component_cls(self) -> type[Component]:
        return JobComponent

    def cases(self) -> list[ComponentTestCase]:
        return [
            ComponentTestCase(
                name="missing job",
                inputs={},
                parent_data={},
                execute_assertion=ExecuteAssertion(success=False, outputs={"ex_data": "job is required"}),
                schedule_assertion=None,
            ),
            _job_case(
                ["running", "done"],
                schedule_assertion=[
                    ScheduleAssertion(
                        success=True,
                        schedule_finished=False,
                        outputs={"executor": "alice", "polls": 1, "state": "running"},
                    ),
                    ScheduleAssertion(
                        success=True,
                        schedule_finished=True,
                        outputs={"executor": "alice", "polls": 2, "state": "done"},
                    ),
                ],
                schedule_call_assertion=[
                    CallAssertion(func=f"{HERE}.external_api", calls=[Call("j1"), Call("j1")]),
                ],
            ),
            _job_case(
                ["failed"],
                schedule_assertion=ScheduleAssertion(
                    success=False,
                    outputs={"executor": "alice", "polls": 1, "state": "failed", "ex_data": "job failed"},
                ),
            ),
        ]


class ApprovalUnitTest(ComponentTestMixin, unittest.TestCase):
    """Collected as a unittest.TestCase."""

    def component_cls(self) -> type[Component]:
        return ApprovalComponent

    def cases(self) -> list[ComponentTestCase]:
        return [
            ComponentTestCase(
                inputs={},
                parent_data={},
                execute_assertion=ExecuteAssertion(success=True, outputs={"node": "node-1"}),
                schedule_assertion=ScheduleAssertion(
                    callback_data={"ok": True}, success=True, outputs={"node": "node-1", "approved": True}
                ),
                service_id="node-1",
            ),
            ComponentTestCase(
                inputs={},
                parent_data={},
                execute_assertion=ExecuteAssertion(success=True, outputs={"node": "node-2"}),
                schedule_assertion=ScheduleAssertion(
                    {"ok": False}, False, False, {"node": "node-2", "approved": False}
                ),
                service_id="node-2",
            ),
        ]


class TestVoteComponent(ComponentTestMixin):
    def component_cls(self) -> type[Component]:
        return VoteComponent

    def cases(self) -> list[ComponentTestCase]:
        return [
            ComponentTestCase(
                inputs={},
                parent_data={},
                execute_assertion=ExecuteAssertion(success=True, outputs={"node": "n"}),
                schedule_assertion=[
                    ScheduleAssertion(
                        callback_data={"v": 1}, success=True, outputs={"node": "n", "votes": 1}
                    ),
                    ScheduleAssertion(
                        callback_data={"v": 2},
                        schedule_finished=True,
                        success=True,
                        outputs={"node": "n", "votes": 2},
                    ),
                ],
                service_id="n",
            )
        ]


class TestPipeExample(ComponentTestMixin):
    def component_cls(self) -> type[Component]:
        return PipeExampleComponent

    def cases(self) -> list[ComponentTestCase]:
        return [
            ComponentTestCase(
                {"a": 1, "b": [2]}, {}, ExecuteAssertion(True, {"a": 1, "b": [2]}), None, "copies inputs"
            )
        ]


def test_wrong_outputs_are_reported() -> None:
    case = ComponentTestCase(
        name="bad",
        inputs={"a": 1},
        parent_data={},
        execute_assertion=ExecuteAssertion(success=True, outputs={"a": 2}),
        schedule_assertion=None,
    )
    with pytest.raises(AssertionError, match=r"PipeExampleComponent case 0:bad fail: execute outputs"):
        run_component_case(PipeExampleComponent, case)


def test_wrong_success_and_finish_flags_are_reported() -> None:
    case = _job_case(
        ["done"],
        schedule_assertion=ScheduleAssertion(
            success=True, outputs={"executor": "alice", "polls": 1, "state": "done"}
        ),
    )
    with pytest.raises(AssertionError, match="schedule_finished assertion failed"):
        run_component_case(JobComponent, case)
    fail = ComponentTestCase({}, {}, ExecuteAssertion(True, {"ex_data": "job is required"}), None)
    with pytest.raises(AssertionError, match="execute success assertion failed"):
        run_component_case(JobComponent, fail)


def test_call_assertions_are_checked() -> None:
    case = _job_case(
        ["done"],
        schedule_assertion=ScheduleAssertion(
            success=True, schedule_finished=True, outputs={"executor": "alice", "polls": 1, "state": "done"}
        ),
        execute_call_assertion=[CallAssertion(func=f"{HERE}.external_api", calls=[Call("j1")])],
    )
    with pytest.raises(AssertionError, match="call assertion"):
        run_component_case(JobComponent, case)


def test_call_assertion_with_callable_and_any_order() -> None:
    from unittest.mock import MagicMock

    m = MagicMock()
    m(2)
    m(1)
    CallAssertion(m, [Call(1), Call(2)], any_order=True).do_assert()
    assert m.call_count == 0  # reset after the check
    CallAssertion(m, []).do_assert()
    m(1)
    with pytest.raises(AssertionError, match="called 2 times, called 1"):
        CallAssertion(m, [Call(1), Call(1)]).do_assert()


def test_raising_service_is_reported() -> None:
    case = _job_case(["boom"], schedule_assertion=None)
    case.patchers = [Patcher(target=f"{HERE}.external_api", side_effect=KeyError("x"))]
    case.schedule_assertion = ScheduleAssertion(success=False, outputs={})
    with pytest.raises(AssertionError, match="schedule #1 raised KeyError"):
        run_component_case(JobComponent, case)


def test_mixin_requires_implementation() -> None:
    with pytest.raises(TypeError, match="component_cls"):
        ComponentTestMixin().test_component()

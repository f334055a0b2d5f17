"""The declarative component kit (``rattan.testing.Case`` / ``run_case``) on the components of
examples/: a plain one, failing ones, a polling one and a callback one talking HTTP (patched)."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from kit_examples import load

import rattan
from rattan.testing import (
    Callback,
    Case,
    CaseFailure,
    ComponentTestCase,
    ComponentTestMixin,
    ExecuteAssertion,
    Poll,
    run_case,
)

pytestmark = pytest.mark.timeout(30)

quickstart = load("01_quickstart.py")
http = load("05_http_poll_and_callback.py")
operator = load("06_operator_controls.py")
variables = load("03_variables.py")

BASE = "http://svc"
CALL = "rattan_example_05.call"  # where the example's components look the HTTP helper up


DOUBLE_CASES = [
    Case("doubles", inputs={"n": 21}, outputs={"result": 42}, logs=["[INFO] doubled 21"]),
    Case("doubles a negative", inputs={"n": -2}, outputs={"result": -4}),
    # strings double too, but break outputs_format (result: int) once the engine checks it
    Case(
        "a string breaks the output format",
        inputs={"n": "ab"},
        validate_outputs=True,
        success=False,
        outputs={"result": "abab"},
        ex_data="outputs do not match outputs_format: result: expected int, got str",
    ),
]


@pytest.mark.parametrize("case", DOUBLE_CASES, ids=str)
def test_the_quickstart_component(case: Case) -> None:
    result = run_case(quickstart.DoubleComponent, case)
    assert [step.step for step in result.steps] == ["execute"]
    assert result.finished is case.success


def test_a_step_that_returns_false_fails_with_the_ex_data_it_wrote() -> None:
    result = run_case(
        operator.ChargeComponent,
        Case("declined", inputs={"card": "1111"}, success=False, outputs={}, ex_data="card 1111 declined"),
    )
    assert result.outputs == {"ex_data": "card 1111 declined"}
    assert result.steps[0].error is None
    ok = run_case(
        operator.ChargeComponent, Case("paid", inputs={"card": "4242"}, outputs={"receipt": "R-4242"})
    )
    assert ok.outputs == {"receipt": "R-4242"}


def test_an_exception_fails_the_step_with_its_traceback_as_in_the_engine() -> None:
    result = run_case(
        operator.NotifyComponent,
        Case("smtp down", success=False, outputs={}, ex_data="ConnectionError: smtp server unreachable"),
    )
    assert isinstance(result.steps[0].error, ConnectionError)
    assert result.outputs["ex_data"].startswith("Traceback (most recent call last):")


def test_the_polling_component_polls_until_the_job_is_done() -> None:
    replies = [{"status_url": "/jobs/1"}, {"status": "running"}, {"status": "done", "artifact": "a.tar"}]
    result = run_case(
        http.BuildComponent,
        Case(
            "done after two polls",
            inputs={"target": "web"},
            parent_data={"base_url": BASE},
            patches={CALL: mock.MagicMock(side_effect=replies)},
            outputs={"status_url": "/jobs/1"},
            polls=[
                Poll(outputs={"status_url": "/jobs/1"}, delay=0.05),
                Poll(outputs={"status_url": "/jobs/1", "artifact": "a.tar"}, finished=True),
            ],
            calls={
                CALL: [
                    mock.call(BASE + "/jobs", {"target": "web"}),
                    mock.call(BASE + "/jobs/1"),
                    mock.call(BASE + "/jobs/1"),
                ]
            },
        ),
    )
    assert [(s.step, s.success, s.finished, s.delay) for s in result.steps] == [
        ("execute", True, False, None),
        ("poll #1", True, False, 0.05),
        ("poll #2", True, True, None),
    ]
    assert result.mocks[CALL].call_count == 3


APPROVAL = {"node_id": "n-approve", "version": "v7", "item": "a.tar"}


@pytest.mark.parametrize(
    ("answer", "success"),
    [({"approved": True, "by": "release-bot"}, True), ({"approved": False, "by": "auditor"}, False)],
    ids=["approved", "rejected"],
)
def test_the_callback_component_completes_on_the_callback(answer: dict[str, object], success: bool) -> None:
    result = run_case(
        http.ApproveComponent,
        Case(
            "approval",
            inputs={"item": "a.tar"},
            parent_data={"base_url": BASE},
            node_id="n-approve",
            version="v7",
            patches={CALL: {"accepted": True}},  # a plain value: the mock's return value
            outputs={},
            callbacks=[
                Callback(
                    data=answer, success=success, finished=success, outputs={"approved_by": answer["by"]}
                )
            ],
            calls={CALL: [mock.call(BASE + "/approvals", APPROVAL)]},
        ),
    )
    assert result.finished is success


def test_a_service_refused_by_the_remote_side_fails_execute() -> None:
    run_case(
        http.ApproveComponent,
        Case(
            "refused",
            inputs={"item": "a.tar"},
            parent_data={"base_url": BASE},
            patches={CALL: {"accepted": False}},
            success=False,
            outputs={},
        ),
    )


def test_a_component_with_several_inputs_and_outputs() -> None:
    run_case(
        variables.CreateOrderComponent,
        Case("order", inputs={"prices": [40, 2]}, outputs={"order_id": "ORD-242", "total": 42}),
    )


# -- failures say what differs ---------------------------------------------------------------------


def test_a_wrong_output_is_reported_key_by_key() -> None:
    with pytest.raises(CaseFailure) as failure:
        run_case(
            quickstart.DoubleComponent, Case("wrong", inputs={"n": 21}, outputs={"result": 40, "extra": 1})
        )
    assert str(failure.value) == (
        "DoubleComponent case 'wrong', execute: outputs differ\n"
        "    missing keys: 'extra'\n"
        "    key 'result':\n"
        "      expected 40\n"
        "      actual   42"
    )


def test_an_unexpected_failure_shows_the_end_of_the_traceback() -> None:
    with pytest.raises(CaseFailure, match=r"expected it to succeed, it failed; ex_data: .*ConnectionError"):
        run_case(operator.NotifyComponent, Case("smtp down"))


def test_wrong_calls_are_reported_with_both_lists() -> None:
    with pytest.raises(CaseFailure) as failure:
        run_case(
            http.ApproveComponent,
            Case(
                "calls",
                inputs={"item": "a.tar"},
                parent_data={"base_url": BASE},
                patches={CALL: {"accepted": True}},
                calls={CALL: []},
            ),
        )
    message = str(failure.value)
    assert message.startswith("ApproveComponent case 'calls': calls of rattan_example_05.call differ\n")
    assert "expected []" in message and "actual   [call('http://svc/approvals'" in message


def test_polls_after_the_schedule_finished_are_refused() -> None:
    replies = [{"status_url": "/jobs/1"}, {"status": "done", "artifact": "a"}]
    with pytest.raises(CaseFailure, match=r"poll #1 finished the schedule, but the case lists 2 polls"):
        run_case(
            http.BuildComponent,
            Case(
                "too many polls",
                parent_data={"base_url": BASE},
                inputs={"target": "web"},
                patches={CALL: mock.MagicMock(side_effect=replies)},
                polls=[Poll(finished=True), Poll()],
            ),
        )


def test_a_case_that_does_not_fit_the_service_is_a_bad_input() -> None:
    from rattan.errors import BadInputError

    with pytest.raises(BadInputError, match="lists polls but the service waits for a callback"):
        run_case(
            http.ApproveComponent,
            Case(
                parent_data={"base_url": BASE},
                inputs={"item": "x"},
                patches={CALL: {"accepted": True}},
                polls=[Poll()],
            ),
        )
    with pytest.raises(BadInputError, match=r"cannot patch 'rattan_example_05\.no_such_name'"):
        run_case(http.ApproveComponent, Case(patches={"rattan_example_05.no_such_name": 1}))
    with pytest.raises(BadInputError, match=r"calls names 'x\.y', which is not in patches"):
        run_case(quickstart.DoubleComponent, Case(inputs={"n": 1}, calls={"x.y": []}))


# -- what the kit does as the engine does -------------------------------------------------------------


class Collect(rattan.Service):
    """Takes callbacks until one says ``last``."""

    __need_schedule__ = True
    __multi_callback_enabled__ = True

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("got", ())  # a tuple: stored as JSON, it comes back a list
        return True

    def schedule(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        data.set_outputs("got", [*data.outputs.got, callback_data["n"]])
        if callback_data.get("last"):
            self.finish_schedule()
        return True


class Sticky(rattan.Service):
    """Keeps state on ``self`` between steps: works in a test that reuses the instance, never in the
    engine, which makes a new service for every step."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(1)

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        self.token = "t-1"
        return True

    def schedule(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, callback_data: Any = None
    ) -> bool:
        data.set_outputs("token", self.token)
        self.finish_schedule()
        return True


class Unstorable(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("handle", object())
        return True


def test_multi_callbacks_run_until_finish_schedule() -> None:
    result = run_case(
        Collect,
        Case(
            "three callbacks",
            outputs={"got": []},
            callbacks=[
                Callback(data={"n": 1}, outputs={"got": [1]}, finished=False),
                Callback(data={"n": 2}, outputs={"got": [1, 2]}, finished=False),
                Callback(data={"n": 3, "last": True}, outputs={"got": [1, 2, 3]}, finished=True),
            ],
        ),
    )
    assert [step.step for step in result.steps] == ["execute", "callback #1", "callback #2", "callback #3"]


def test_state_kept_on_self_fails_as_it_would_in_the_engine() -> None:
    result = run_case(Sticky, Case("sticky", polls=[Poll(success=False, ex_data="AttributeError")]))
    assert isinstance(result.steps[1].error, AttributeError)


def test_an_output_the_store_cannot_keep_fails_the_step_naming_the_key() -> None:
    case = Case("object", success=False, ex_data="outputs['handle'] holds an object value")
    result = run_case(Unstorable, case)
    assert list(result.outputs) == ["ex_data"]


class DoubleCases(ComponentTestMixin):
    """bamboo's vocabulary on the quickstart component; two of its three cases are wrong."""

    def component_cls(self) -> type[rattan.Component]:
        return quickstart.DoubleComponent

    def cases(self) -> list[ComponentTestCase]:
        def case(name: str, n: int, result: int) -> ComponentTestCase:
            return ComponentTestCase(
                name=name,
                inputs={"n": n},
                parent_data={},
                execute_assertion=ExecuteAssertion(success=True, outputs={"result": result}),
                schedule_assertion=None,
            )

        return [case("right", 1, 2), case("wrong", 2, 5), case("also wrong", 3, 7)]


def test_the_mixin_reports_every_failing_case() -> None:
    with pytest.raises(AssertionError) as failed:
        DoubleCases().test_component()
    lines = str(failed.value).splitlines()
    assert lines[0] == "2 of 3 cases failed:"
    assert lines[1] == "DoubleComponent case 1:wrong fail: execute outputs assertion failed:"
    assert "DoubleComponent case 2:also wrong fail: execute outputs assertion failed:" in lines

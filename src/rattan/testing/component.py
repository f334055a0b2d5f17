"""Component test kit: run a component's service in isolation.

The vocabulary is bamboo's (``pipeline.component_framework.test``), without Django: a class mixing
in ``ComponentTestMixin`` gets a ``test_component`` method that pytest and ``unittest`` both run.

Unlike bamboo's kit, every step (execute, each poll or callback) uses a NEW service instance with
runtime attributes set, exactly as the engine does, so a service that keeps state on ``self``
between steps fails here rather than in production.
"""

from __future__ import annotations

import contextlib
import importlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

from rattan.components.component import Component
from rattan.components.data import DataObject
from rattan.components.service import ScheduleType, Service

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

#: Alias of ``unittest.mock.call`` (bamboo's name).
Call = mock.call


class ExecuteAssertion:
    """Expected result of ``execute``.

    Args:
        success: whether ``execute`` should succeed (return ``True``/``None``).
        outputs: the expected ``data.outputs`` afterwards.
    """

    def __init__(self, success: bool, outputs: dict[str, Any]) -> None:
        self.success = success
        self.outputs = outputs


class ScheduleAssertion(ExecuteAssertion):
    """Expected result of one ``schedule`` call.

    Args:
        callback_data: the payload passed to ``schedule`` (callback services).
        schedule_finished: expected ``is_schedule_finished()`` afterwards (checked for POLL and
            MULTIPLE_CALLBACK services).
        *args: ``success`` and ``outputs``, as for ``ExecuteAssertion``.
        **kwargs: ``success`` and ``outputs`` by keyword.
    """

    def __init__(
        self, callback_data: Any = None, schedule_finished: bool = False, *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.callback_data = callback_data
        self.schedule_finished = schedule_finished


def _resolve(path: str) -> Any:
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr)
        return target
    raise ImportError(f"cannot resolve {path!r}")


class CallAssertion:
    """Expected calls of a patched callable.

    Args:
        func: the mock, or the dotted path of a patched attribute.
        calls: the expected calls (``Call(...)``); empty means "never called".
        any_order: accept the calls in any order.
    """

    def __init__(self, func: Callable[..., Any] | str, calls: Sequence[Any], any_order: bool = False) -> None:
        self.func = func
        self.calls = list(calls)
        self.any_order = any_order

    def do_assert(self) -> None:
        """Check the calls, then reset the mock.

        Raises:
            AssertionError: the calls differ.
        """
        func: Any = _resolve(self.func) if isinstance(self.func, str) else self.func
        if not self.calls:
            func.assert_not_called()
        else:
            if func.call_count != len(self.calls):
                raise AssertionError(
                    f"expected {func!r} to be called {len(self.calls)} times, called {func.call_count} times"
                    f" ({func.call_args_list!r})"
                )
            func.assert_has_calls(calls=self.calls, any_order=self.any_order)
        func.reset_mock()


class Patcher:
    """Patch ``target`` (a dotted path) with a ``MagicMock`` while a case runs.

    Args:
        target: dotted path of the attribute to patch.
        return_value: the mock's return value.
        side_effect: the mock's side effect.
    """

    def __init__(self, target: str, return_value: Any = None, side_effect: Any = None) -> None:
        self.target = target
        self.return_value = return_value
        self.side_effect = side_effect

    def mock_patcher(self) -> Any:
        """Return an (unstarted) ``unittest.mock.patch``."""
        return mock.patch(
            target=self.target,
            new=mock.MagicMock(return_value=self.return_value, side_effect=self.side_effect),
        )


class ComponentTestCase:
    """One scenario: inputs, then the expected execute and schedule results.

    Args:
        inputs: ``data.inputs``.
        parent_data: ``parent_data.inputs`` (the root pipeline data).
        execute_assertion: expected ``execute`` result.
        schedule_assertion: expected ``schedule`` result(s): one, a list (one per poll or callback),
            or ``None`` for services that do not schedule.
        name: label in failure messages.
        patchers: ``Patcher``s active during the whole case.
        execute_call_assertion: ``CallAssertion``s checked after ``execute``.
        schedule_call_assertion: ``CallAssertion``s checked after scheduling.
        service_id: the runtime ``id`` (random when omitted).
        root_pipeline_id: the runtime ``root_pipeline_id`` (random when omitted).
    """

    def __init__(
        self,
        inputs: dict[str, Any],
        parent_data: dict[str, Any],
        execute_assertion: ExecuteAssertion,
        schedule_assertion: ScheduleAssertion | list[ScheduleAssertion] | None,
        name: str = "",
        patchers: list[Patcher] | None = None,
        execute_call_assertion: list[CallAssertion] | None = None,
        schedule_call_assertion: list[CallAssertion] | None = None,
        service_id: str | None = None,
        root_pipeline_id: str | None = None,
    ) -> None:
        self.inputs = inputs
        self.parent_data = parent_data
        self.execute_assertion = execute_assertion
        self.schedule_assertion = schedule_assertion
        self.name = name
        self.patchers = patchers or []
        self.execute_call_assertion = execute_call_assertion or []
        self.schedule_call_assertion = schedule_call_assertion or []
        self.service_id = service_id or "n" + uuid.uuid4().hex
        self.root_pipeline_id = root_pipeline_id or "p" + uuid.uuid4().hex


class _CaseRunner:
    def __init__(self, component_cls: type[Component], case: ComponentTestCase, no: int) -> None:
        self.component_cls = component_cls
        self.case = case
        self.no = no
        self.data = DataObject(inputs=case.inputs)
        self.parent_data = DataObject(inputs=case.parent_data)

    def fail(self, msg: str) -> AssertionError:
        return AssertionError(f"{self.component_cls.__name__} case {self.no}:{self.case.name} fail: {msg}")

    def service(self, version: int) -> Service:
        service = self.component_cls.bound_service()
        service.setup_runtime_attrs(
            id=self.case.service_id,
            version="v" + str(version),
            top_pipeline_id=self.case.root_pipeline_id,
            root_pipeline_id=self.case.root_pipeline_id,
            loop=1,
            inner_loop=1,
        )
        return service

    def step(self, method: str, assertion: ExecuteAssertion, call: Callable[[], Any]) -> bool:
        """Run one step, check it; return whether it succeeded."""
        try:
            result = call()
        except Exception as exc:
            raise self.fail(f"{method} raised {exc!r}") from exc
        success = result is None or result is True
        if success != bool(assertion.success):
            outcome = "succeeded" if success else f"failed (returned {result!r})"
            raise self.fail(
                f"{method} success assertion failed: {method} {outcome}; outputs {self.outputs()}"
            )
        if self.outputs() != assertion.outputs:
            raise self.fail(
                f"{method} outputs assertion failed:\n  expected {assertion.outputs!r}"
                f"\n  actual   {self.outputs()!r}"
            )
        return success

    def outputs(self) -> dict[str, Any]:
        return dict(self.data.outputs)

    def calls(self, assertions: list[CallAssertion]) -> None:
        for assertion in assertions:
            try:
                assertion.do_assert()
            except AssertionError as exc:
                raise self.fail(f"call assertion for {assertion.func!r} failed: {exc}") from exc

    def run(self) -> None:
        service = self.service(0)
        ok = self.step(
            "execute", self.case.execute_assertion, lambda: service.execute(self.data, self.parent_data)
        )
        self.calls(self.case.execute_call_assertion)
        schedule_type = service.schedule_type()
        if not ok or schedule_type is None:
            return
        assertions = self.case.schedule_assertion
        if assertions is None:
            raise self.fail("the service schedules but the case has no schedule_assertion")
        for index, assertion in enumerate(assertions if isinstance(assertions, list) else [assertions]):
            step = self.service(index + 1)
            callback = None if schedule_type is ScheduleType.POLL else assertion.callback_data

            def do_schedule(step: Service = step, callback: Any = callback) -> Any:
                if callback is None:
                    return step.schedule(self.data, self.parent_data)
                return step.schedule(self.data, self.parent_data, callback)

            ok = self.step(f"schedule #{index + 1}", assertion, do_schedule)
            if schedule_type is not ScheduleType.CALLBACK:
                finished = step.is_schedule_finished()
                if finished != bool(assertion.schedule_finished):
                    raise self.fail(
                        f"schedule #{index + 1} schedule_finished assertion failed: expected"
                        f" {assertion.schedule_finished}, got {finished}"
                    )
            if not ok:
                break
        self.calls(self.case.schedule_call_assertion)


def run_component_case(component_cls: type[Component], case: ComponentTestCase, no: int = 0) -> None:
    """Run one case against ``component_cls`` with its patchers active.

    Raises:
        AssertionError: an expectation failed (the message names the component, case and step).
    """
    with contextlib.ExitStack() as stack:
        for patcher in case.patchers:
            stack.enter_context(patcher.mock_patcher())
        _CaseRunner(component_cls, case, no).run()


class ComponentTestMixin:
    """Mix into a test class; implement ``component_cls()`` and ``cases()``.

    ``test_component`` checks the component's formats, then runs every case in order and, as
    bamboo's kit does, reports every failing case at the end (one message each), not only the first.
    """

    def component_cls(self) -> type[Component]:
        """Return the component class under test."""
        raise TypeError(f"{type(self).__name__} must implement component_cls()")

    def cases(self) -> list[ComponentTestCase]:
        """Return the cases to run."""
        raise TypeError(f"{type(self).__name__} must implement cases()")

    def input_output_format_valid(self) -> None:
        """Check that the component's input and output formats build."""
        component = self.component_cls()
        for item in [*component.inputs_format(), *component.outputs_format()]:
            if not isinstance(item, dict) or "key" not in item:
                raise AssertionError(f"{component.__name__}: invalid IO format item {item!r}")

    def test_component(self) -> None:
        """Run every case."""
        self.input_output_format_valid()
        component = self.component_cls()
        cases = self.cases()
        failures: list[str] = []
        for no, case in enumerate(cases):
            try:
                run_component_case(component, case, no)
            except AssertionError as exc:
                failures.append(str(exc))
        if failures:
            raise AssertionError(f"{len(failures)} of {len(cases)} cases failed:\n" + "\n".join(failures))

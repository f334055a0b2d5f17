"""Declarative component cases in plain pytest: ``run_case(Component, Case(...))``.

A ``Case`` says what goes in (inputs, root pipeline data, patched calls) and what must come out of
each step: ``execute``, then the polls or callbacks in order, each with its expected outputs,
success, whether the schedule is finished, its ``ex_data`` and, for polls, the delay before the
next one. ``run_case`` runs the steps as the engine does and raises ``CaseFailure`` (an
``AssertionError``) naming the case, the step and what differs, key by key, for example:

    from unittest import mock
    from rattan.testing import Case, Poll, run_case

    def test_build_polls_until_done():
        run_case(BuildComponent, Case(
            "done after two polls",
            inputs={"target": "web"},
            parent_data={"base_url": "http://svc"},
            patches={"myapp.build.call": mock.MagicMock(side_effect=[
                {"status_url": "/jobs/1"}, {"status": "running"}, {"status": "done", "artifact": "a"},
            ])},
            outputs={"status_url": "/jobs/1"},
            polls=[Poll(outputs={"status_url": "/jobs/1"}, delay=0.05),
                   Poll(outputs={"status_url": "/jobs/1", "artifact": "a"}, finished=True)],
        ))

What the engine does and the kit copies: every step runs on a NEW service instance with the runtime
attributes set (``id``, ``version``, ``root_pipeline_id``, ``loop``, ...); ``data.inputs`` carries
``_loop`` and ``_inner_loop``; a step that returns ``None`` or a truthy value succeeds; an
exception fails the step with its traceback in ``outputs["ex_data"]``; outputs go through the
store's encoding between steps (a tuple comes back a list, an unstorable value fails the step); the
first poll runs right after ``execute`` and the delay before poll n+1 is the interval generator's
``next()`` with ``count = n - 1``; one callback completes a callback service, a multi-callback or
polling service completes at ``finish_schedule()``. The engine's own keys (``_result``, ``_loop``,
``_inner_loop``) are not added to outputs; ``ex_data`` is compared only through ``ex_data=``
(a substring of the text) unless the expected outputs list it.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from rattan.components.component import Component
from rattan.components.data import DataObject
from rattan.components.service import ScheduleType, Service
from rattan.engine.services import NodeLogger
from rattan.errors import BadInputError, UnstorableValueError
from rattan.model.codec import dumps, loads
from rattan.testing.diff import describe_difference

__all__ = ["Callback", "Case", "CaseFailure", "CaseResult", "Poll", "StepResult", "run_case"]


class CaseFailure(AssertionError):
    """A component case did not come out as expected; the message names the case, the step and
    each difference."""


@dataclass(frozen=True)
class Poll:
    """One expected poll (``schedule(data, parent_data)`` of a service with an ``interval``).

    Args:
        outputs: the expected ``data.outputs`` after the poll (``None``: not checked).
        success: whether the poll succeeds.
        finished: whether the schedule is finished after it (``finish_schedule()`` was called).
        ex_data: text expected within ``outputs["ex_data"]`` (a failed poll's message or traceback).
        delay: the seconds the engine waits before the next poll (``None``: not checked).
    """

    outputs: Mapping[str, Any] | None = None
    success: bool = True
    finished: bool = False
    ex_data: str | None = None
    delay: float | None = None


@dataclass(frozen=True)
class Callback:
    """One expected callback (``schedule(data, parent_data, callback_data)``).

    Args:
        data: the callback's payload, as ``api.callback(engine, node_id, version, data)`` sends it.
        outputs: the expected ``data.outputs`` afterwards (``None``: not checked).
        success: whether the callback step succeeds.
        finished: whether the node is complete afterwards (``None``: not checked). A callback
            service completes at its first successful callback; a multi-callback one at
            ``finish_schedule()``.
        ex_data: text expected within ``outputs["ex_data"]``.
    """

    data: Any = None
    outputs: Mapping[str, Any] | None = None
    success: bool = True
    finished: bool | None = None
    ex_data: str | None = None


@dataclass
class Case:
    """One scenario of a component, from inputs to the last expected step.

    Args:
        name: shown in failures (and a good pytest id: ``ids=str``).
        inputs: ``data.inputs`` (the rendered node inputs).
        parent_data: ``parent_data.inputs`` (the root pipeline data).
        outputs: the expected ``data.outputs`` after ``execute`` (``None``: not checked).
        success: whether ``execute`` succeeds.
        ex_data: text expected within ``outputs["ex_data"]`` after ``execute``.
        polls: the expected polls, in order (services with an ``interval``).
        callbacks: the expected callbacks, in order, each with its payload (callback services).
        patches: ``unittest.mock`` targets (``"pkg.module.name"``) patched during the whole case:
            a mock is used as it is, any other value becomes ``MagicMock(return_value=value)``.
        calls: target -> the exact, ordered ``mock.call(...)`` list the patched mock must have
            received over the whole case (``[]``: never called).
        logs: the exact ``self.logger`` lines at INFO or above, as ``"[INFO] text"`` (``None``:
            not checked), as ``engine.get_plain_log_for_node`` would return them.
        validate_outputs: check each successful step's outputs against ``outputs_format()`` and
            fail the step on a mismatch, as the engine does with ``validate_io_schemas`` on.
        node_id: the service's ``self.id``.
        root_pipeline_id: its ``self.root_pipeline_id`` and ``self.top_pipeline_id``.
        version: its ``self.version``.
        loop: its ``self.loop`` (and ``data.inputs["_loop"]``).
    """

    name: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    parent_data: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] | None = None
    success: bool = True
    ex_data: str | None = None
    polls: Sequence[Poll] = ()
    callbacks: Sequence[Callback] = ()
    patches: Mapping[str, Any] = field(default_factory=dict)
    calls: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    logs: Sequence[str] | None = None
    validate_outputs: bool = False
    node_id: str = "node"
    root_pipeline_id: str = "pipeline"
    version: str = "v1"
    loop: int = 1

    def __str__(self) -> str:
        return self.name or "case"


@dataclass
class StepResult:
    """What one step did: ``step`` is ``"execute"``, ``"poll #n"`` or ``"callback #n"``."""

    step: str
    success: bool
    outputs: dict[str, Any]
    finished: bool
    delay: float | None = None
    logs: list[str] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class CaseResult:
    """Every step that ran, and the mocks of ``Case.patches`` (target -> mock) for further checks."""

    steps: list[StepResult]
    mocks: dict[str, mock.NonCallableMock]

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs after the last step."""
        return self.steps[-1].outputs

    @property
    def finished(self) -> bool:
        """Whether the node would be complete (successful execute and schedule, if any)."""
        return self.steps[-1].finished

    @property
    def logs(self) -> list[str]:
        """The log lines of every step, in order."""
        return [line for step in self.steps for line in step.logs]


def run_case(component: type[Component] | type[Service], case: Case) -> CaseResult:
    """Run ``case`` against ``component`` (a ``Component`` or its ``Service`` class).

    Returns:
        The steps that ran and the patch mocks.

    Raises:
        CaseFailure: a step, a call or a log line differs from the case (an ``AssertionError``).
        BadInputError: the case does not fit the service (polls for a callback service, ...) or a
            patch target cannot be imported.
    """
    __tracebackhide__ = True  # pytest shows the test's line, not the kit's
    service_cls = _service_class(component)
    label = f"{getattr(component, '__name__', component)} case {str(case)!r}"
    with contextlib.ExitStack() as stack:
        mocks = {target: _patch(stack, target, value, label) for target, value in case.patches.items()}
        steps = _Run(service_cls, case, label).run()
    result = CaseResult(steps, mocks)
    _check_calls(case, mocks, label)
    if case.logs is not None and result.logs != list(case.logs):
        raise CaseFailure(f"{label}: log lines differ\n{describe_difference(list(case.logs), result.logs)}")
    return result


def _service_class(component: type[Component] | type[Service]) -> type[Service]:
    if isinstance(component, type) and issubclass(component, Component):
        return component.bound_service
    if isinstance(component, type) and issubclass(component, Service):
        return component
    raise BadInputError(f"run_case takes a Component or Service subclass, got {component!r}")


def _patch(stack: contextlib.ExitStack, target: str, value: Any, label: str) -> mock.NonCallableMock:
    new = value if isinstance(value, mock.NonCallableMock) else mock.MagicMock(return_value=value)
    try:
        stack.enter_context(mock.patch(target, new=new))
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        raise BadInputError(
            f"{label}: cannot patch {target!r} ({exc}); give the dotted path where the component looks"
            " the name up, e.g. 'myapp.components.requests.get'"
        ) from exc
    return new


def _check_calls(case: Case, mocks: dict[str, mock.NonCallableMock], label: str) -> None:
    for target, expected in case.calls.items():
        if target not in mocks:
            raise BadInputError(f"{label}: calls names {target!r}, which is not in patches")
        actual = list(mocks[target].call_args_list)
        if actual != list(expected):
            diff = describe_difference(list(expected), actual)
            raise CaseFailure(f"{label}: calls of {target} differ\n{diff}")


class _Run:
    """The steps of one case, each on a fresh service, the outputs carried over as stored."""

    def __init__(self, service_cls: type[Service], case: Case, label: str) -> None:
        self.service_cls = service_cls
        self.case = case
        self.label = label
        self.inputs = {**case.inputs, "_loop": case.loop, "_inner_loop": 1}
        self.outputs: dict[str, Any] = {}
        self.steps: list[StepResult] = []

    def service(self) -> Service:
        service = self.service_cls()
        service.setup_runtime_attrs(
            id=self.case.node_id, version=self.case.version, top_pipeline_id=self.case.root_pipeline_id,
            root_pipeline_id=self.case.root_pipeline_id, loop=self.case.loop, inner_loop=1,
            logger=NodeLogger(self.case.node_id, self.case.version, self.case.loop),
        )  # fmt: skip
        return service

    def call(self, name: str, service: Service, method: str, *args: Any) -> StepResult:
        """Call one user step and settle its outputs as the engine stores them."""
        data = DataObject(dict(self.inputs), dict(self.outputs))
        parent = DataObject(dict(self.case.parent_data), {})
        error: BaseException | None = None
        try:
            value = getattr(service, method)(data, parent, *args)
            ok = value is None or bool(value)
        except Exception as exc:
            ok, error = False, exc
            data.outputs["ex_data"] = traceback.format_exc()
        outputs = dict(data.outputs)
        if ok and self.case.validate_outputs:
            problems = [p for item in service.outputs_format() if item.key in outputs
                        for p in item.validate(outputs[item.key])]  # fmt: skip
            if problems:
                ok, outputs["ex_data"] = False, "outputs do not match outputs_format: " + "; ".join(problems)
        try:
            outputs = loads(dumps(outputs))
        except UnstorableValueError as exc:
            ok, outputs = False, {"ex_data": str(exc.of("outputs"))}
        self.outputs = outputs
        logs = list(getattr(service.logger, "lines", []))
        return StepResult(name, ok, outputs, False, logs=logs, error=error)

    def check(self, result: StepResult, want: Any, finished: bool | None) -> None:
        """Compare one step with its expectation (a ``Case``, ``Poll`` or ``Callback``)."""
        problems: list[str] = []
        if result.success != want.success:
            said = "succeeded" if result.success else "failed"
            detail = f"; ex_data: {_tail(result.outputs.get('ex_data'))}" if not result.success else ""
            problems.append(f"expected it to {'succeed' if want.success else 'fail'}, it {said}{detail}")
        if want.outputs is not None:
            actual = result.outputs
            if "ex_data" not in want.outputs:
                actual = {k: v for k, v in actual.items() if k != "ex_data"}
            if dict(want.outputs) != actual:
                problems.append("outputs differ\n" + describe_difference(dict(want.outputs), actual, "    "))
        if want.ex_data is not None and want.ex_data not in str(result.outputs.get("ex_data", "")):
            problems.append(
                f"ex_data does not contain {want.ex_data!r}: {_tail(result.outputs.get('ex_data'))}"
            )
        if finished is not None and result.finished != finished:
            problems.append(f"expected finished={finished}, got finished={result.finished}")
        if problems:
            raise CaseFailure(f"{self.label}, {result.step}: " + "\n  ".join(problems))

    def run(self) -> list[StepResult]:
        case = self.case
        service = self.service()
        result = self.call("execute", service, "execute")
        kind = service.schedule_type() if result.success else None
        result.finished = result.success and kind is None
        self.steps.append(result)
        self.check(result, case, None)
        if case.polls and case.callbacks:
            raise BadInputError(f"{self.label}: a case has polls or callbacks, not both")
        if (case.polls or case.callbacks) and not result.success:
            raise BadInputError(f"{self.label}: execute failed, so the listed polls/callbacks never run")
        if case.polls:
            self.polls(kind)
        elif case.callbacks:
            self.callbacks(kind)
        return self.steps

    def polls(self, kind: ScheduleType | None) -> None:
        if kind is not ScheduleType.POLL:
            raise BadInputError(f"{self.label}: the case lists polls but the service {_kind(kind)}")
        for index, want in enumerate(self.case.polls):
            self.before_step(index, len(self.case.polls), "poll")
            service = self.service()
            result = self.call(f"poll #{index + 1}", service, "schedule")
            result.finished = result.success and service.is_schedule_finished()
            if result.success and not result.finished and service.interval is not None:
                service.interval.count = index  # as the engine: this is poll index+1
                delay = service.interval.next()
                if delay is None:  # the engine fails the node (docs/components.md)
                    result.success, result.outputs["ex_data"] = False, "interval generator returned None"
                else:
                    result.delay = max(0.0, float(delay))
            self.steps.append(result)
            self.check(result, want, want.finished)
            if want.delay is not None and result.delay != want.delay:
                raise CaseFailure(
                    f"{self.label}, {result.step}: expected the next poll after {want.delay} s,"
                    f" the interval gives {result.delay}"
                )

    def callbacks(self, kind: ScheduleType | None) -> None:
        if kind not in (ScheduleType.CALLBACK, ScheduleType.MULTIPLE_CALLBACK):
            raise BadInputError(f"{self.label}: the case lists callbacks but the service {_kind(kind)}")
        for index, want in enumerate(self.case.callbacks):
            self.before_step(index, len(self.case.callbacks), "callback")
            service = self.service()
            result = self.call(f"callback #{index + 1}", service, "schedule", want.data)
            one_shot = kind is ScheduleType.CALLBACK
            result.finished = result.success and (one_shot or service.is_schedule_finished())
            self.steps.append(result)
            self.check(result, want, want.finished)

    def before_step(self, index: int, total: int, what: str) -> None:
        """A step after one that failed or finished would never run in the engine."""
        last = self.steps[-1]
        if index and (not last.success or last.finished):
            why = "failed" if not last.success else "finished the schedule"
            raise CaseFailure(f"{self.label}: {last.step} {why}, but the case lists {total} {what}s")


def _kind(kind: ScheduleType | None) -> str:
    if kind is None:
        return "does not wait (no __need_schedule__)"
    return {ScheduleType.POLL: "polls", ScheduleType.CALLBACK: "waits for a callback"}.get(
        kind, "waits for callbacks"
    )


def _tail(ex_data: Any, lines: int = 3) -> str:
    """The end of an ex_data text (the exception line of a traceback)."""
    text = str(ex_data or "").strip()
    return " | ".join(text.splitlines()[-lines:]) if text else "(none)"

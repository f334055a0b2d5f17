"""LAZY variable and executable end event classes (SPEC 4.4, 8.5)."""

from __future__ import annotations

from typing import Any

import pytest

from rattan.components import (
    ExecutableEndEvent,
    LazyVariable,
    OriginalValue,
    Registry,
    collecting_into,
    compute_lazy_value,
    registry,
)
from rattan.errors import ComponentConflictError, NotFoundError


def test_lazy_variable_registration_and_compute() -> None:
    reg = Registry()
    with collecting_into(reg):

        class Abstract(LazyVariable):
            name = "abstract"

            def helper(self) -> str:
                return "h"

        class Upper(Abstract):
            code = "upper_test_var"
            type = "general"
            tag = "upper.tag"

            def get_value(self) -> Any:
                return (
                    str(self.value).upper(),
                    self.original_value.value,
                    self.original_value.get(),
                    self.pipeline_data,
                    self.inner_loop,
                    self.code,
                    self.helper(),
                )

    assert reg.lazy_variables() == [Upper]
    assert reg.get_lazy_variable("upper_test_var") is Upper
    assert not registry.has_lazy_variable("upper_test_var")
    original = OriginalValue("${x}", render=lambda raw: "rendered")
    value = compute_lazy_value(
        reg.get_lazy_variable("upper_test_var"),
        value="abc",
        original_value=original,
        pipeline_data={"k": 1},
        inner_loop=2,
    )
    assert value == ("ABC", "${x}", "rendered", {"k": 1}, 2, "upper_test_var", "h")
    assert OriginalValue(3).get() == 3
    with pytest.raises(NotFoundError, match="nope"):
        reg.get_lazy_variable("nope")

    with pytest.raises(ComponentConflictError), collecting_into(reg):

        class Clash(LazyVariable):
            code = "upper_test_var"

            def get_value(self) -> Any:
                return 1

    with collecting_into(reg):

        class Replacer(LazyVariable):
            code = "upper_test_var"
            __replace__ = True

            def get_value(self) -> Any:
                return 2

    assert reg.get_lazy_variable("upper_test_var") is Replacer
    inst = Replacer(value=1, pipeline_data={"a": 1}, inner_loop=3)
    assert (inst.value, inst.original_value.value, inst.pipeline_data, inst.inner_loop) == (1, 1, {"a": 1}, 3)


def test_compute_with_custom_init() -> None:
    class Odd(LazyVariable, register=False):
        code = "odd"

        def __init__(self, required: int) -> None:
            super().__init__()

        def get_value(self) -> Any:
            return self.value

    assert compute_lazy_value(Odd, value=5, original_value=OriginalValue(5), pipeline_data={}) == 5


def test_end_event_registration_and_execute() -> None:
    reg = Registry()
    calls: list[tuple[Any, ...]] = []
    with collecting_into(reg):

        class Notify(ExecutableEndEvent):
            code = "notify_end"

            def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
                calls.append((self.id, in_subprocess, root_pipeline_id, current_pipeline_id))

        class NoCode(ExecutableEndEvent):
            def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> None:
                raise RuntimeError("x")

    assert reg.sink_types() == frozenset({"notify_end"})
    reg.get_end_event("notify_end")(id="e1").execute(False, "p1", "p1")
    assert calls == [("e1", False, "p1", "p1")]
    reg.register_end_event("MyEndEvent", NoCode)
    assert reg.sink_types() == frozenset({"notify_end", "MyEndEvent"})
    assert reg.get_end_event("MyEndEvent") is NoCode
    with pytest.raises(ComponentConflictError):
        reg.register_end_event("notify_end", NoCode)
    with pytest.raises(NotFoundError, match="absent"):
        reg.get_end_event("absent")
    with pytest.raises(TypeError):
        reg.register_end_event("x", int)
    assert not registry.has_end_event("notify_end")

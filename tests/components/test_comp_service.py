"""Service base class (SPEC 8.1, 9)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rattan.components import DataObject, ScheduleType, Service
from rattan.components.interval import StaticIntervalGenerator
from rattan.components.service import CALLBACK_HOOKS, HOOK_NAMES, READ_ONLY_HOOKS
from rattan.io import InputItem, OutputItem, StringItemSchema


class Plain(Service):
    def execute(self, data: DataObject, parent_data: DataObject) -> bool:
        return True


def _service(need: bool, interval: bool, multi: bool) -> Service:
    attrs: dict[str, Any] = {"__need_schedule__": need, "__multi_callback_enabled__": multi}
    if interval:
        attrs["interval"] = StaticIntervalGenerator(1)
    cls = type("S", (Plain,), attrs)
    return cls()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("need", "interval", "multi", "expected"),
    [
        (False, False, False, None),
        (False, True, True, None),
        (True, True, False, ScheduleType.POLL),
        (True, True, True, ScheduleType.POLL),
        (True, False, True, ScheduleType.MULTIPLE_CALLBACK),
        (True, False, False, ScheduleType.CALLBACK),
    ],
)
def test_schedule_type(need: bool, interval: bool, multi: bool, expected: ScheduleType | None) -> None:
    assert _service(need, interval, multi).schedule_type() is expected


def test_schedule_type_values() -> None:
    assert (ScheduleType.CALLBACK, ScheduleType.MULTIPLE_CALLBACK, ScheduleType.POLL) == (1, 2, 3)


def test_switch_defaults_and_readers() -> None:
    s = Plain()
    assert (s.need_schedule(), s.need_run_hook(), s.multi_callback_enabled(), s.is_idempotent()) == (
        False,
        False,
        False,
        False,
    )
    assert Plain.__idempotent__ is False
    assert s.interval is None
    assert s.name is None
    assert Plain(name="x").name == "x"


def test_execute_is_abstract() -> None:
    class Forgot(Service):
        pass

    with pytest.raises(TypeError, match="Forgot"):
        Forgot()  # type: ignore[abstract]


def test_interval_copied_per_instance() -> None:
    class Poll(Plain):
        __need_schedule__ = True
        interval = StaticIntervalGenerator(3)

    a, b = Poll(), Poll()
    assert a.interval is not Poll.interval and a.interval is not b.interval
    assert a.interval is not None and b.interval is not None
    a.interval.next()
    assert (a.interval.count, b.interval.count, Poll.interval.count) == (1, 0, 0)


def test_schedule_finish_flag() -> None:
    s = Plain()
    assert s.schedule(DataObject({}), DataObject({})) is True
    assert not s.is_schedule_finished()
    s.finish_schedule()
    assert s.is_schedule_finished()
    s.clean_status()
    assert not s.is_schedule_finished()
    assert not Plain().is_schedule_finished()


def test_inputs_and_outputs() -> None:
    class Described(Plain):
        def inputs_format(self) -> list[InputItem]:
            return [InputItem(name="a", key="a", type="string", schema=StringItemSchema("d"))]

        def outputs_format(self) -> list[OutputItem]:
            return self._outs

        _outs = [OutputItem(name="o", key="o", type="int")]

    s = Described()
    assert [i.key for i in s.inputs()] == ["a"]
    outs = s.outputs()
    assert [o.key for o in outs] == ["o", "_result", "_loop", "_inner_loop"]
    assert [o.type for o in outs[1:]] == ["boolean", "int", "int"]
    assert len(Described._outs) == 1  # not mutated
    assert s.outputs() is not outs
    assert [o.key for o in Plain().outputs()] == ["_result", "_loop", "_inner_loop"]
    assert Plain().inputs() == []
    assert Plain.InputItem is InputItem and Plain.OutputItem is OutputItem


def test_rollback_cancel_defaults() -> None:
    s = Plain()
    d = DataObject({})
    assert s.rollback(d, d) is True
    assert s.rollback(d, d, rollback_data={"x": 1}) is True
    s.cancel(d, d)  # a no-op


def test_hooks_default_true_and_lists() -> None:
    s = Plain()
    d = DataObject({})
    assert len(HOOK_NAMES) == 22
    for hook in HOOK_NAMES:
        assert getattr(s, hook)(d, d) is True
    for hook in CALLBACK_HOOKS:
        assert getattr(s, hook)(d, d, callback_data=object()) is True
    assert "pre_callback" in READ_ONLY_HOOKS and "node_finish" not in READ_ONLY_HOOKS


def test_call_hook_passes_callback_data_only_when_accepted() -> None:
    seen: list[tuple[str, Any]] = []

    class Hooked(Plain):
        __need_run_hook__ = True

        def node_finish(self, data: DataObject, parent_data: DataObject) -> bool:  # type: ignore[override]
            seen.append(("finish", None))
            return True

        def pre_callback(self, data: DataObject, parent_data: DataObject, callback_data: Any = None) -> bool:
            seen.append(("pre_cb", callback_data))
            return True

        def post_callback(self, data: DataObject, parent_data: DataObject, **kwargs: Any) -> bool:  # type: ignore[override]
            seen.append(("post_cb", kwargs.get("callback_data")))
            return True

    s = Hooked()
    d = DataObject({})
    s.call_hook("node_finish", d, d, callback_data="cb")
    s.call_hook("pre_callback", d, d, callback_data="cb")
    s.call_hook("post_callback", d, d, callback_data="cb")
    s.call_hook("pre_callback", d, d)
    assert seen == [("finish", None), ("pre_cb", "cb"), ("post_cb", "cb"), ("pre_cb", None)]
    assert s.need_run_hook()


def test_runtime_attrs() -> None:
    s = Plain()
    with pytest.raises(AttributeError):
        _ = s.id
    s.setup_runtime_attrs(id="n1", version="v1", top_pipeline_id="p2", root_pipeline_id="p1", loop=2)
    s.setup_runtime_attrs(inner_loop=1)
    assert (s.id, s.version, s.top_pipeline_id, s.root_pipeline_id, s.loop, s.inner_loop) == (
        "n1",
        "v1",
        "p2",
        "p1",
        2,
        1,
    )
    with pytest.raises(AttributeError, match="nonexistent"):
        _ = s.nonexistent


def test_class_attributes_win_over_runtime_attrs() -> None:
    class WithVersion(Plain):
        version = "mine"

    s = WithVersion()
    s.setup_runtime_attrs(version="v9")
    assert s.version == "mine"


def test_default_logger_carries_node_extras(caplog: pytest.LogCaptureFixture) -> None:
    s = Plain()
    s.setup_runtime_attrs(id="n1", version="v1", loop=3)
    assert isinstance(s.logger, logging.LoggerAdapter)
    with caplog.at_level(logging.INFO, logger="rattan.service"):
        s.logger.info("hello")
        s.setup_runtime_attrs(id="n2")  # refreshes the default adapter
        s.logger.info("again")
    first, second = caplog.records
    assert (first.node_id, first.loop, first.version, first.name) == ("n1", 3, "v1", "rattan.service")  # type: ignore[attr-defined]
    assert second.node_id == "n2"  # type: ignore[attr-defined]


def test_explicit_logger_is_kept() -> None:
    s = Plain()
    custom = logging.LoggerAdapter(logging.getLogger("custom"), {})
    s.setup_runtime_attrs(logger=custom)
    s.setup_runtime_attrs(id="n")
    assert s.logger is custom


def test_subclass_without_super_init() -> None:
    class NoSuper(Plain):
        def __init__(self) -> None:
            pass

    s = NoSuper()
    s.setup_runtime_attrs(id="n")
    assert s.id == "n"
    assert s.logger.extra == {"node_id": "n", "loop": None, "version": None}

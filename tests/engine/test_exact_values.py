"""Values stored exactly (issue 13 item 4): what a component outputs, a callback carries or a run is
given comes back with the same value and type, through the store, or is refused naming the key.

The seeds' engine pickles outputs, so its components keep a ``datetime`` across polls; rattan's
tagged JSON keeps it too (docs/components.md, "What outputs can hold")."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from engine_helpers import inputs, outputs, run, wait_finished, wait_state

import rattan
from rattan import api
from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, NodeOutput, ServiceActivity, Var, build_tree
from rattan.errors import BadInputError, UnstorableValueError

pytestmark = pytest.mark.timeout(60)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# every kind the store keeps exactly (the tuple is the one documented conversion: it becomes a list)
EXACT: dict[str, Any] = {
    "naive": datetime(2026, 12, 7, 3, 4, 5, 678901),
    "utc": datetime(2026, 12, 7, 3, 4, 5, tzinfo=UTC),
    "zoned": datetime(2026, 12, 7, 11, 4, 5, tzinfo=SHANGHAI),
    "day": date(2026, 12, 7),
    "clock": time(23, 59, 58, 1),
    "delta": timedelta(days=-2, seconds=7, microseconds=3),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "uuid_text": "12345678-1234-5678-1234-567812345678",
    "money": Decimal("10.10"),
    "raw": b"\x00\xffbytes",
    "tags": {"a", "b"},
    "frozen": frozenset({1, 2}),
    "huge": 2**100,
    "negative_huge": -(2**80),
    "inf": float("inf"),
    "minus_inf": float("-inf"),
    "int_keys": {1: "one", 2: "two"},
    "tuple_keys": {(1, "a"): "pair"},
    "tag_key": {"__rattan__": ["datetime", "not a tag"]},
    "nested": {"when": [datetime(2020, 1, 1), {"id": uuid.UUID(int=7)}], "none": None},
}


def _same(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key, value in want.items():
        assert key in got, key
        assert got[key] == value, key
        assert type(got[key]) is type(value), key
        if isinstance(value, datetime):
            assert got[key].tzinfo == value.tzinfo, key


def _register(reg: rattan.Registry, code: str, service: type[rattan.Service]) -> None:
    type(
        f"C_{code}", (rattan.Component,), {"name": code, "code": code, "bound_service": service}, registry=reg
    )


class Emit(rattan.Service):
    """Outputs every kind in execute, then on each of three polls checks that what it reads back
    from the store is what it wrote (the seeds' components do date arithmetic on their outputs)."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(0)

    def execute(self, data: Any, parent_data: Any) -> bool:
        for key, value in EXACT.items():
            data.outputs[key] = value
        data.outputs.nan = float("nan")
        data.outputs.polls = []
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        wrong = [k for k, v in EXACT.items() if data.outputs[k] != v or type(data.outputs[k]) is not type(v)]
        nan = data.outputs.nan
        elapsed = data.outputs.naive - datetime(2026, 12, 7)  # arithmetic on the stored datetime
        data.outputs.polls = [*data.outputs.polls, [wrong, isinstance(nan, float) and math.isnan(nan)]]
        data.outputs.elapsed = elapsed
        if len(data.outputs.polls) == 3:
            self.finish_schedule()
        return True


class Take(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.got_type = type(data.inputs.when).__name__
        data.outputs.plus_day = data.inputs.when + timedelta(days=1)
        return True


def _emit_tree() -> tuple[dict[str, Any], ServiceActivity, ServiceActivity]:
    start, emit, take, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="x_emit"),
        ServiceActivity(component_code="x_take"),
        EmptyEndEvent(),
    )
    take.component.inputs.when = Var(type=Var.SPLICE, value="${when}")
    start.extend(emit).extend(take).extend(end)
    data = Data(inputs={"${when}": NodeOutput(source_act=emit.id, source_key="zoned")})
    return build_tree(start, data=data), emit, take


def test_outputs_keep_value_and_type_across_polls_context_and_a_reopened_store(
    tmp_path: Path, reg: rattan.Registry
) -> None:
    _register(reg, "x_emit", Emit)
    _register(reg, "x_take", Take)
    tree, emit, take = _emit_tree()
    db = tmp_path / "exact.db"
    engine = rattan.Engine(str(db), components=reg)
    try:
        root = run(engine, tree)
        wait_finished(engine, root)
    finally:
        engine.close(timeout=10)
    reopened = rattan.Engine(str(db), components=reg, start=False)  # every value read from the file
    try:
        out = outputs(reopened, emit.id)
        assert out["polls"] == [[[], True], [[], True], [[], True]]  # each poll read exact values
        assert out["elapsed"] == timedelta(hours=3, minutes=4, seconds=5, microseconds=678901)
        _same(out, {k: v for k, v in EXACT.items() if k != "nested"})
        assert out["nested"] == {"when": [datetime(2020, 1, 1), {"id": uuid.UUID(int=7)}], "none": None}
        assert math.isnan(out["nan"])
        assert inputs(reopened, take.id)["when"] == EXACT["zoned"]
        assert inputs(reopened, take.id)["when"].tzinfo == SHANGHAI
        assert outputs(reopened, take.id)["got_type"] == "datetime"
        assert outputs(reopened, take.id)["plus_day"] == datetime(2026, 12, 8, 11, 4, 5, tzinfo=SHANGHAI)
        context = {cv.key: cv.value for cv in reopened.get_context(root)}
        assert context["${when}"] == EXACT["zoned"]
    finally:
        reopened.close(timeout=10)


def test_a_tuple_is_stored_as_a_list(engine: rattan.Engine, reg: rattan.Registry) -> None:
    class Tup(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.pair = (1, "a")
            return True

    _register(reg, "x_tup", Tup)
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="x_tup"), EmptyEndEvent()
    start.extend(act).extend(end)
    wait_finished(engine, run(engine, build_tree(start)))
    assert outputs(engine, act.id)["pair"] == [1, "a"]


class WaitForCallback(rattan.Service):
    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.given = data.inputs.given
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        data.outputs.received = callback_data
        data.outputs.received_types = sorted(type(v).__name__ for v in callback_data.values())
        self.finish_schedule()
        return True


def test_callback_data_and_run_data_keep_value_and_type(engine: rattan.Engine, reg: rattan.Registry) -> None:
    _register(reg, "x_wait", WaitForCallback)
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="x_wait"), EmptyEndEvent()
    act.component.inputs.given = Var(type=Var.SPLICE, value="${run_id}")
    start.extend(act).extend(end)
    tree = build_tree(start, data=Data(inputs={"${run_id}": Var(type=Var.PLAIN, value="")}))
    run_id = uuid.UUID(int=42)
    root = run(engine, tree, root_pipeline_context={"${run_id}": run_id})
    version = wait_state(engine, act.id, "RUNNING").version
    sent = {"at": datetime(2026, 1, 1, tzinfo=UTC), "amount": Decimal("3.50"), "ids": {1, 2}}
    res = api.callback(engine, act.id, version, sent)
    assert res.result, res.message
    wait_finished(engine, root)
    out = outputs(engine, act.id)
    assert out["received"] == sent
    assert out["received_types"] == ["Decimal", "datetime", "set"]
    assert out["given"] == run_id and type(out["given"]) is uuid.UUID


@dataclass
class Point:
    x: int


class Bad:
    pass


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Bad(), "outputs['bad'] holds a test_exact_values.Bad value"),
        (Point(1), "outputs['bad'] holds a test_exact_values.Point value"),
        ({"deep": [1, {"x": Bad()}]}, "outputs['bad']['deep'][1]['x'] holds a test_exact_values.Bad value"),
        (bytearray(b"ab"), "outputs['bad'] holds a bytearray value"),
    ],
)
def test_an_output_that_cannot_be_stored_fails_the_node_naming_where_it_is(
    engine: rattan.Engine, reg: rattan.Registry, value: Any, shown: str
) -> None:
    class Out(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.fine = 1
            data.outputs.bad = value
            return True

    _register(reg, "x_bad", Out)
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="x_bad"), EmptyEndEvent()
    start.extend(act).extend(end)
    root = run(engine, build_tree(start))
    wait_state(engine, act.id, "FAILED")
    assert outputs(engine, act.id) == {
        "ex_data": f"{shown}: {UnstorableValueError.HINT}",
        "_result": False,
        "_loop": 1,
        "_inner_loop": 1,
    }
    assert engine.get_state(root).name == "RUNNING"  # a failed node parks its pipeline (SPEC 6.1)


def test_an_output_above_max_output_bytes_fails_the_node_naming_the_key(
    make_engine: Any, reg: rattan.Registry
) -> None:
    engine = make_engine(max_output_bytes=1000)

    class Big(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.outputs.small = "s" * 900  # under the limit on its own: fine
            data.outputs.big = "x" * 1200
            return True

    _register(reg, "x_big", Big)
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="x_big"), EmptyEndEvent()
    start.extend(act).extend(end)
    run(engine, build_tree(start))
    wait_state(engine, act.id, "FAILED")
    assert outputs(engine, act.id)["ex_data"] == (
        "output 'big' is 1202 bytes, above max_output_bytes (1000): store large data elsewhere "
        "(a file, an object store) and output its address"
    )


def test_callback_data_above_max_callback_bytes_is_refused_and_the_node_still_waits(
    make_engine: Any, reg: rattan.Registry
) -> None:
    engine = make_engine(max_callback_bytes=100)
    _register(reg, "x_wait2", WaitForCallback)
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="x_wait2"), EmptyEndEvent()
    act.component.inputs.given = Var(type=Var.PLAIN, value=1)
    start.extend(act).extend(end)
    root = run(engine, build_tree(start))
    version = wait_state(engine, act.id, "RUNNING").version
    big = {"blob": "y" * 200}
    with pytest.raises(BadInputError, match=r"callback data is 211 bytes, above the limit of 100"):
        engine.callback(act.id, version, big)
    res = api.callback(engine, act.id, version, big)
    assert not res.result and res.message.startswith("callback data is 211 bytes, above the limit of 100")
    assert engine.get_state(act.id).name == "RUNNING"
    assert api.callback(engine, act.id, version, {"ok": 1}).result
    wait_finished(engine, root)
    assert outputs(engine, act.id)["received"] == {"ok": 1}

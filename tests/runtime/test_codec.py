"""The stored-value codec (``rattan.model.codec``): plain JSON stays plain and cheap, every kept kind
round-trips to the same value and type, the rest is refused naming where it sits."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rattan.errors import BadInputError, UnstorableValueError
from rattan.model.codec import dumps, loads
from rattan.model.exact import KINDS

pytestmark = pytest.mark.timeout(60)


def _identical(a: Any, b: Any) -> bool:
    """Equal and of the same type all the way down (NaN equals NaN here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, Decimal) and a.is_nan():
        return b.is_nan() and str(a) == str(b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, datetime):
        return a == b and a.tzinfo == b.tzinfo
    return bool(a == b)


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [True, None, 1.5, "x"]},
        [],
        "plain",
        2**64 - 1,
        -(2**63),
    ],
)
def test_plain_json_is_written_as_orjson_writes_it(value: Any) -> None:
    assert dumps(value) == orjson.dumps(value)
    assert loads(dumps(value)) == value


KEPT = [
    datetime(2026, 1, 2, 3, 4, 5, 6),
    datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    date(1, 1, 1),
    time(0, 0, tzinfo=UTC),
    timedelta(days=-999999999),
    uuid.UUID(int=0),
    Decimal("-0.00"),
    Decimal("NaN"),
    Decimal("Infinity"),
    b"",
    set(),
    frozenset({"x", 1}),
    {(1, 2), (3, 4)},
    2**64,
    -(2**63) - 1,
    10**400,
    float("nan"),
    float("inf"),
    {1: 2, None: 3, 1.5: 4, False: 5},
    {uuid.UUID(int=3): "by uuid"},
    {"__rattan__": "a user key that looks like the tag"},
    {"k": [{"__rattan__": ["int", "1"]}]},
    "00000000-0000-0000-0000-000000000000",
]


@pytest.mark.parametrize("value", KEPT, ids=lambda v: type(v).__name__)
def test_kept_kinds_round_trip_to_the_same_value_and_type(value: Any) -> None:
    assert _identical(loads(dumps(value)), value)
    assert _identical(loads(dumps({"nested": [value]})), {"nested": [value]})


def test_every_reader_kind_is_exercised() -> None:
    written = {dumps(v).split(b'"__rattan__":["', 1)[-1].split(b'"', 1)[0].decode() for v in KEPT}
    assert set(KINDS) <= written | {"dict", "ref"}  # refs: tests/runtime/test_values_once.py


def test_conversions_are_the_documented_ones() -> None:
    class Colour(Enum):
        RED = "red"

    class Name(str):
        pass

    assert loads(dumps((1, (2, 3)))) == [1, [2, 3]]  # tuples become lists, as in JSON
    assert loads(dumps(Colour.RED)) == "red"  # an enum member becomes its value
    assert type(loads(dumps(Name("x")))) is str  # a subclass becomes its base type
    assert loads(dumps([Colour.RED, datetime(2020, 1, 1)])) == ["red", datetime(2020, 1, 1)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "the value holds an object value"),
        ({"a": [1, {2: bytearray()}]}, "the value['a'][1][2] holds a bytearray value"),
        ({"f": lambda: 1}, "the value['f'] holds a function value"),
        ([(1, object())], "the value[0][1] holds an object value"),
    ],
)
def test_what_cannot_be_kept_is_refused_naming_where_it_is(value: Any, message: str) -> None:
    with pytest.raises(UnstorableValueError) as caught:
        dumps(value)
    assert str(caught.value) == f"{message}: {UnstorableValueError.HINT}"
    assert isinstance(caught.value, BadInputError) and isinstance(caught.value, TypeError)


def test_nesting_deeper_than_the_limit_is_refused_not_a_recursion_error() -> None:
    value: list[Any] = []
    inner = value
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    with pytest.raises(UnstorableValueError, match="nested deeper than 200 levels"):
        dumps(value)
    with pytest.raises(UnstorableValueError, match="nested deeper than 200 levels"):
        dumps([value, datetime(2020, 1, 1)])  # the tagged path too


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.datetimes(timezones=st.sampled_from([None, UTC, ZoneInfo("Asia/Shanghai")])),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.uuids(),
    st.decimals(allow_nan=False),
    st.binary(max_size=8),
)
keys = st.one_of(st.text(max_size=6), st.integers(), st.just("__rattan__"))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(keys, inner, max_size=4),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=4)), max_size=3),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(values)
def test_any_mix_of_kept_kinds_round_trips(value: Any) -> None:
    assert _identical(loads(dumps(value)), value)

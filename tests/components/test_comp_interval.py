"""Interval generators (SPEC 8.1)."""

from __future__ import annotations

import rattan.interval as ri
from rattan.components import service as service_module
from rattan.components.interval import (
    AbstractIntervalGenerator,
    DefaultIntervalGenerator,
    LinearIntervalGenerator,
    NullIntervalGenerator,
    SquareIntervalGenerator,
    StaticIntervalGenerator,
)


def _take(gen: AbstractIntervalGenerator, n: int) -> list[object]:
    return [gen.next() for _ in range(n)]


def test_count_starts_at_zero_and_next_increments() -> None:
    gen = DefaultIntervalGenerator()
    assert gen.count == 0
    gen.next()
    assert gen.count == 1


def test_sequences() -> None:
    assert _take(DefaultIntervalGenerator(), 4) == [1, 4, 9, 16]
    assert _take(SquareIntervalGenerator(), 4) == [1, 4, 9, 16]
    assert _take(StaticIntervalGenerator(5), 3) == [5, 5, 5]
    assert _take(LinearIntervalGenerator(), 3) == [1, 2, 3]
    assert _take(NullIntervalGenerator(), 2) == [None, None]


def test_engine_style_rebuild_from_count() -> None:
    # Before poll n+1 the engine sets count = n - 1 and calls next().
    gen = DefaultIntervalGenerator()
    gen.count = 2
    assert gen.next() == 9


def test_user_subclass_of_abstract() -> None:
    class Doubling(AbstractIntervalGenerator):
        def next(self) -> int:
            super().next()
            return int(2**self.count)

    assert _take(Doubling(), 3) == [2, 4, 8]
    assert AbstractIntervalGenerator().next() is None


def test_reexports_are_the_same_classes() -> None:
    for name in ri.__all__:
        assert getattr(ri, name) is getattr(service_module, name)

"""Fixtures of the engine behaviour tests (SPEC 4-8)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rattan


@pytest.fixture
def reg() -> rattan.Registry:
    """A fresh, isolated registry for the test's components, lazy variables and end events."""
    return rattan.Registry("engine-tests")


@pytest.fixture
def make_engine(
    reg: rattan.Registry, test_store: Callable[[], str]
) -> Iterator[Callable[..., rattan.Engine]]:
    """Factory of in-memory engines on the test registry (settings overrides as keywords)."""
    made: list[rattan.Engine] = []

    def make(**overrides: Any) -> rattan.Engine:
        eng = rattan.Engine(test_store(), components=reg, **overrides)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.close(timeout=10)


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    """An in-memory engine using the test registry; closed after the test."""
    return make_engine()

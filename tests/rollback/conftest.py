"""Fixtures of the rollback tests (SPEC 11): in-memory engines with rollback enabled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rattan


@pytest.fixture
def reg() -> rattan.Registry:
    return rattan.Registry("rollback-tests")


@pytest.fixture
def make_engine(
    reg: rattan.Registry, test_store: Callable[[], str]
) -> Iterator[Callable[..., rattan.Engine]]:
    made: list[rattan.Engine] = []

    def make(**overrides: Any) -> rattan.Engine:
        overrides.setdefault("pipeline_enable_rollback", True)
        eng = rattan.Engine(test_store(), components=reg, **overrides)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.close(timeout=10)


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    return make_engine()

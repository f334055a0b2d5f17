"""Fixtures of the operator-control tests: an isolated registry holding the lab's components and
in-memory engines on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from control_helpers import Lab, install

import rattan


@pytest.fixture
def lab() -> Lab:
    return Lab()


@pytest.fixture
def reg(lab: Lab) -> rattan.Registry:
    """A fresh registry holding the lab's components (see ``control_helpers.install``)."""
    registry = rattan.Registry("controls-tests")
    install(registry, lab)
    return registry


@pytest.fixture
def make_engine(
    reg: rattan.Registry, lab: Lab, test_store: Callable[[], str]
) -> Iterator[Callable[..., rattan.Engine]]:
    made: list[rattan.Engine] = []

    def make(**overrides: Any) -> rattan.Engine:
        eng = rattan.Engine(test_store(), components=reg, **overrides)
        made.append(eng)
        return eng

    yield make
    for gate in list(lab.gates.values()):  # release anything still blocked before closing
        gate.set()
    for eng in made:
        eng.close(timeout=10)


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    return make_engine()

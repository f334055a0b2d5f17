"""Fixtures of the hook, event-signal, event-log and retention tests (SPEC 9, 10, 13 row 12)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rattan
from rattan import signals


@pytest.fixture
def reg() -> rattan.Registry:
    """A fresh, isolated registry for the test's components."""
    return rattan.Registry("events-tests")


@pytest.fixture
def make_engine(reg: rattan.Registry) -> Iterator[Callable[..., rattan.Engine]]:
    """Factory of engines on the test registry (in memory unless ``store`` is given)."""
    made: list[rattan.Engine] = []

    def make(store: str = ":memory:", **overrides: Any) -> rattan.Engine:
        eng = rattan.Engine(store, components=reg, **overrides)
        made.append(eng)
        return eng

    yield make
    for eng in made:
        eng.close(timeout=10)


@pytest.fixture
def engine(make_engine: Callable[..., rattan.Engine]) -> rattan.Engine:
    """An in-memory engine with event signals ON."""
    return make_engine(enable_pipeline_event_signals=True)


@pytest.fixture
def received() -> Iterator[list[tuple[Any, signals.Event, dict[str, Any]]]]:
    """Every ``pipeline_event`` sent while the test runs: ``(sender, event, extra kwargs)``."""
    got: list[tuple[Any, signals.Event, dict[str, Any]]] = []

    def receiver(sender: Any, event: signals.Event, **kwargs: Any) -> None:
        got.append((sender, event, kwargs))

    signals.pipeline_event.connect(receiver)
    yield got
    signals.pipeline_event.disconnect(receiver)

"""rattan's pytest plugin (entry point ``pytest11: rattan``): loaded by pytest wherever rattan is
installed, nothing to configure.

Fixtures:

- ``engine``: an embedded ``rattan.Engine`` on a SQLite file in the test's ``tmp_path``, on a
  ``FakeClock`` (timers, timeouts and poll intervals move only with ``advance(engine, seconds)``),
  closed after the test. It uses the process's ``rattan.registry`` unless ``rattan_components``
  says otherwise.
- ``rattan_clock``: that engine's ``FakeClock``.
- ``rattan_components``: the ``rattan.Registry`` the engine runs (default ``None``: the process's
  ``rattan.registry``); override it in a conftest.py to use your own.
- ``rattan_engine_options``: keyword arguments for ``rattan.Engine`` (settings overrides such as
  ``pipeline_enable_rollback=True``); default ``{}``.

Marker: ``@pytest.mark.rattan(**options)`` adds engine options for one test (or a module or class
with ``pytestmark``), over ``rattan_engine_options``.

The assertions live in ``rattan.testing.pipeline`` (``assert_states``, ``assert_outputs``,
``assert_histories``, ``assert_events``, ``run_and_wait``, ``advance``, ``wait_state``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rattan.components.registry import Registry
from rattan.facade import Engine
from rattan.testing.clock import FakeClock

__all__ = ["engine", "rattan_clock", "rattan_components", "rattan_engine_options"]

MARKER = "rattan"
CLOSE_TIMEOUT = 10.0  # seconds a closing engine waits for work still running at the end of a test


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(**options): keyword arguments for the rattan `engine` fixture's Engine"
    )


@pytest.fixture
def rattan_clock() -> FakeClock:
    """The ``FakeClock`` of the ``engine`` fixture."""
    return FakeClock()


@pytest.fixture
def rattan_components() -> Registry | None:
    """The registry of the ``engine`` fixture (``None``: the process's ``rattan.registry``)."""
    return None


@pytest.fixture
def rattan_engine_options() -> dict[str, Any]:
    """Keyword arguments for the ``engine`` fixture's ``rattan.Engine``."""
    return {}


@pytest.fixture
def engine(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    rattan_clock: FakeClock,
    rattan_components: Registry | None,
    rattan_engine_options: dict[str, Any],
) -> Iterator[Engine]:
    """An embedded engine on ``tmp_path / "rattan.db"`` and a ``FakeClock``, closed after the test."""
    options = dict(rattan_engine_options)
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # closest marker wins
        options.update(marker.kwargs)
    # a marker may name its own registry or clock; the fixtures' are the defaults
    components = options.pop("components", rattan_components)
    clock = options.pop("clock", rattan_clock)
    runtime = Engine(str(tmp_path / "rattan.db"), components=components, clock=clock, **options)
    try:
        yield runtime
    finally:
        runtime.close(CLOSE_TIMEOUT)

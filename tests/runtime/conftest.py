"""Fixtures of the runtime suites: a SQLite store of their own, in a fresh folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rattan.runtime.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A SQLite store on a new file; any statement trace a test set on its writer is removed."""
    writer = SQLiteStore(str(tmp_path / "c.db"))
    yield writer
    writer._writer.set_trace_callback(None)
    writer.close()

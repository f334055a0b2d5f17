"""The runtimes the end-to-end suite runs on, chosen by ``RATTAN_TEST_RUNTIME`` (a comma list of
``embedded``, ``postgres``, ``celery``; default: all three, each skipped when its servers cannot
be started here, and failed instead when ``RATTAN_REQUIRE_POSTGRES`` / ``RATTAN_REQUIRE_REDIS``
say they must be).

- embedded: a SQLite file and worker threads in the test process (``rattan.Engine(path)``);
- postgres: a PostgreSQL store and worker threads in the test process;
- celery: a PostgreSQL store, a Redis broker and two ``rattan worker`` subprocesses; the test's
  engine only sends (its components run in the workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from runtimes import Runtime, open_runtime, selected_runtimes


@pytest.fixture(scope="module", params=selected_runtimes())
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    folder: Path = tmp_path_factory.mktemp(f"e2e-{request.param}")
    with open_runtime(request.param, folder, request) as rt:
        yield rt

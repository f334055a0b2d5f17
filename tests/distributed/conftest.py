"""Fixtures of the distributed tests: a Redis database per test on the session's server
(``redis_url``, tests/conftest.py), and ``rattan worker`` subprocesses on a shared store.

Each test gets a Redis database of its own (``redis_db_url``), so queues left by one test never
reach another's workers."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from dist_support import WorkerProcess

_DBS = itertools.count(1)


@pytest.fixture
def redis_db_url(redis_url: str) -> Iterator[str]:
    """The session's Redis server, database 1..15 (a different one for each test), emptied after."""
    import redis

    db = next(_DBS) % 15 + 1
    parts = urlsplit(redis_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """A list the test appends its WorkerProcess to; every one is stopped at the end."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop(30)

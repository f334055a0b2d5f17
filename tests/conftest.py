"""Puts tests/ on sys.path so every suite can import the shared ``waits`` helpers, and gives every
suite the session's servers: one PostgreSQL (``postgres_url``) and one Redis (``redis_url``),
started on loopback by ``rattan.testing`` when a test first asks for them (or named by
``RATTAN_TEST_POSTGRES_URL`` / ``RATTAN_TEST_REDIS_URL``).

Without a server on the machine its tests are skipped, saying why; with
``RATTAN_REQUIRE_POSTGRES=1`` / ``RATTAN_REQUIRE_REDIS=1`` (CI) they fail instead."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

from rattan.testing.postgres import postgres_url_fixture
from rattan.testing.redis import redis_url_fixture


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database of its own on a running PostgreSQL server, for this session."""
    yield from postgres_url_fixture()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from redis_url_fixture()


@pytest.fixture
def test_store(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Where the behaviour suites (tests/engine, tests/controls) open their engines: in-memory
    SQLite, or with ``RATTAN_TEST_STORE=postgres`` a fresh schema of the session's PostgreSQL
    each time, so the same tests check the PostgreSQL store's unit of work."""
    if os.environ.get("RATTAN_TEST_STORE") != "postgres":
        return lambda: ":memory:"
    from rattan.testing.postgres import schema_url

    url = request.getfixturevalue("postgres_url")
    return lambda: schema_url(url, f"t_{secrets.token_hex(6)}")

"""Puts tests/ on sys.path so every suite can import the shared ``waits`` helpers, and gives every
suite the session's servers: one PostgreSQL (``postgres_url``) and one Redis (``redis_url``),
started on loopback by ``rattan.testing`` when a test first asks for them (or named by
``RATTAN_TEST_POSTGRES_URL`` / ``RATTAN_TEST_REDIS_URL``).

Without a server on the machine its tests are skipped, saying why; with
``RATTAN_REQUIRE_POSTGRES=1`` / ``RATTAN_REQUIRE_REDIS=1`` (CI) they fail instead."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from rattan.testing.redis import redis_url_fixture


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a database of its own on a running PostgreSQL server, for this session."""
    from rattan.testing.postgres import ENV_REQUIRE, PostgresNotFound, postgres_server

    def unavailable(why: str) -> NoReturn:
        if os.environ.get(ENV_REQUIRE) == "1":
            pytest.fail(f"PostgreSQL is required ({ENV_REQUIRE}=1): {why}", pytrace=False)
        pytest.skip(f"no PostgreSQL for these tests: {why}")

    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        unavailable(f"psycopg is not installed ({exc}): pip install 'rattan[postgres]'")
    try:
        server = postgres_server()
        url = server.__enter__()
    except PostgresNotFound as exc:
        unavailable(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from redis_url_fixture()

"""Fixtures of the HTTP API tests: a real engine on a SQLite file in tmp and the app on top of it
through Starlette's TestClient (real HTTP requests, in process). Shared values and components are
in ``server_helpers``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from server_helpers import ADMIN, FLAKY, GATES, TOKENS, make_registry

import rattan
from rattan.server import Token, create_app

with warnings.catch_warnings():
    # starlette 1.x prefers httpx2 for its TestClient and warns when it finds httpx; the project's
    # test environment has httpx, which works: silence that one warning, at import only
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


@pytest.fixture(scope="session")
def registry() -> rattan.Registry:
    return make_registry()


@pytest.fixture
def engine(tmp_path: Any, registry: rattan.Registry) -> Iterator[rattan.Engine]:
    eng = rattan.Engine(store=f"sqlite:///{tmp_path / 'server.db'}", components=registry)
    yield eng
    for gate in GATES.values():
        gate.set()
    eng.close(timeout=10)
    GATES.clear()
    FLAKY["fail"] = True


@pytest.fixture
def make_client(engine: rattan.Engine) -> Iterator[Callable[..., TestClient]]:
    made: list[TestClient] = []

    def make(token: str | None = ADMIN, extra: list[Token] | None = None, **options: Any) -> TestClient:
        options.setdefault("poll_seconds", 0.02)
        app = create_app(engine, [*TOKENS, *(extra or [])], **options)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = TestClient(app, headers=headers, raise_server_exceptions=False)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()

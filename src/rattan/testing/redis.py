"""A throwaway Redis server for tests: ``redis_server()`` starts a private ``redis-server`` on
127.0.0.1 (a free port, no persistence, its directory a temporary one), yields its URL, then stops
it. With ``RATTAN_TEST_REDIS_URL`` set, that server is used instead.

``redis_url_fixture()`` is the pytest side: without a redis-server on the machine the test is
skipped, saying why; with ``RATTAN_REQUIRE_REDIS=1`` (CI) it fails instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from rattan.testing.servers import unavailable

ENV_URL = "RATTAN_TEST_REDIS_URL"  # use this server instead of starting one
ENV_REQUIRE = "RATTAN_REQUIRE_REDIS"  # "1": a missing Redis fails the tests (CI)
START_SECONDS = 20.0


class RedisNotFound(RuntimeError):
    """No redis-server on this machine (and no RATTAN_TEST_REDIS_URL)."""


def find_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Yield the URL (``redis://127.0.0.1:PORT/0``) of a running Redis server (see the module
    docstring). Raises RedisNotFound when there is neither a server URL nor redis-server."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    server = find_server()
    if server is None:
        raise RedisNotFound(f"no redis-server on PATH or in /usr/bin, and {ENV_URL} is not set")
    root = Path(tempfile.mkdtemp(prefix="rattan-redis-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(5):  # a free port may be taken before the server binds it
            port = _free_port()
            proc = subprocess.Popen(
                [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                 "--dir", str(root), "--logfile", str(root / "redis.log"), "--daemonize", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + START_SECONDS
            while proc.poll() is None and not _answers(port) and time.monotonic() < deadline:
                time.sleep(0.02)
            if proc.poll() is None and _answers(port):
                break
            _stop(proc)
            proc = None
            if attempt == 4:
                log = (root / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start: {log}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def redis_url_fixture() -> Iterator[str]:
    """The body of a pytest fixture yielding a Redis URL (skips, or fails under
    RATTAN_REQUIRE_REDIS=1, when there is no Redis)."""
    try:
        import celery  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        _unavailable(f"celery or redis-py is not installed ({exc}): pip install 'rattan[celery]'")
    try:
        server = redis_server()
        url = server.__enter__()
    except RedisNotFound as exc:
        _unavailable(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def _unavailable(why: str) -> NoReturn:
    unavailable("Redis", ENV_REQUIRE, why)

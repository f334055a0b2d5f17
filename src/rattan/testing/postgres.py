"""A throwaway PostgreSQL server for tests: ``postgres_server()`` starts a private cluster in a
temporary directory (``initdb`` + ``pg_ctl``, found under ``/usr/lib/postgresql/*/bin`` or on
PATH), creates a database in it, yields that database's URL, then stops the server and deletes
the directory. With ``RATTAN_TEST_POSTGRES_URL`` set, that server is used instead: a fresh
database is created in it for the run and dropped afterwards.

The server runs with ``fsync=on``: the store's durability is what the tests are about. It listens
on 127.0.0.1 (a free port) and on a unix socket in its directory. As root, it runs as the
``postgres`` OS user (PostgreSQL refuses to run as root).

``schema_url(url, name)`` gives each test a schema of its own in that database (a URL whose
``search_path`` names it), so tests share the server but never see each other's rows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from rattan.testing.servers import unavailable

ENV_URL = "RATTAN_TEST_POSTGRES_URL"  # use this server instead of starting one
ENV_REQUIRE = "RATTAN_REQUIRE_POSTGRES"  # "1": a missing PostgreSQL fails the tests (CI)
START_SECONDS = 60
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine (and no RATTAN_TEST_POSTGRES_URL)."""


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest under /usr/lib/postgresql,
    else the one on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def with_search_path(url: str, schema: str) -> str:
    parts = urlsplit(url)
    option = "options=" + quote(f"-csearch_path={schema}")
    query = f"{parts.query}&{option}" if parts.query else option
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _sql(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def schema_url(url: str, schema: str) -> str:
    """Create ``schema`` (if needed) in the database at ``url``; return a URL whose connections
    work in it. Safe to call from several threads or processes at once."""
    import psycopg.errors

    if not _NAME.match(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    with contextlib.suppress(psycopg.errors.UniqueViolation):  # a concurrent caller created it
        _sql(url, f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return with_search_path(url, schema)


@contextlib.contextmanager
def _fresh_database(url: str) -> Iterator[str]:
    name = f"rattan_test_{os.getpid()}_{secrets.token_hex(4)}"
    _sql(url, f"CREATE DATABASE {name}")
    try:
        yield with_database(url, name)
    finally:
        _sql(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *args]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(_quote_sh, args))]


def _quote_sh(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=START_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")


@contextlib.contextmanager
def postgres_server(server_options: str = "") -> Iterator[str]:
    """Yield the URL of a fresh, empty database on a running PostgreSQL server (see the module
    docstring). Raises PostgresNotFound when there is neither a server URL nor the binaries.
    ``server_options``: more ``-c name=value`` settings for a private server (the benchmark loads
    pg_stat_statements with them)."""
    given = os.environ.get(ENV_URL)
    if given:
        with _fresh_database(given) as url:
            yield url
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise PostgresNotFound(
            f"no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH, "
            f"and {ENV_URL} is not set"
        )
    root = Path(tempfile.mkdtemp(prefix="rattan-pg-"))
    data = root / "data"
    started = False
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
              "--no-instructions", "--no-sync"])  # fmt: skip
        for attempt in range(5):  # a free port may be taken before the server binds it
            port = _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
                "-c fsync=on -c max_connections=300 -c shared_buffers=64MB " + server_options
            )
            try:
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                      "-t", str(START_SECONDS), "-o", options, "start"])  # fmt: skip
            except RuntimeError:
                if attempt == 4:
                    raise
                continue
            started = True
            break
        server = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _sql(server, "CREATE DATABASE rattan_test")
        yield with_database(server, "rattan_test")
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def postgres_url_fixture() -> Iterator[str]:
    """The body of a pytest fixture yielding the URL of a database of its own on a running
    PostgreSQL server (skips, or fails under RATTAN_REQUIRE_POSTGRES=1, when there is none)."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        unavailable(
            "PostgreSQL", ENV_REQUIRE, f"psycopg is not installed ({exc}): pip install 'rattan[postgres]'"
        )
    try:
        server = postgres_server()
        url = server.__enter__()
    except PostgresNotFound as exc:
        unavailable("PostgreSQL", ENV_REQUIRE, str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)

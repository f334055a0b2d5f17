"""Stores at an older schema version, built as that version of rattan left them: the backend's
migrations up to that version and the version recorded, with the rows a test writes in that
version's tables. Shared by the contract wiring (``make_old_store`` of the SQLite and PostgreSQL
store contracts) and the SQLite store's own migration tests (tests/runtime/test_store.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from rattan.model.codec import dumps
from rattan.model.records import NewRun
from rattan.runtime.sqlite.schema import MIGRATIONS as SQLITE_MIGRATIONS


@contextmanager
def sqlite_at(path: Path, version: int) -> Iterator[sqlite3.Connection]:
    """A SQLite store file at ``path``, at schema ``version``; the connection yielded writes the
    test's rows, committed (and the connection closed) on leaving."""
    with closing(sqlite3.connect(path)) as conn, conn:
        for step in range(1, version + 1):
            for statement in SQLITE_MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute("INSERT INTO rattan_meta(key, value) VALUES ('schema_version', ?)", (str(version),))
        yield conn


@contextmanager
def postgres_at(url: str, version: int) -> Iterator[Any]:
    """The PostgreSQL schema ``url`` names, at schema ``version``; the (autocommit) psycopg
    connection yielded writes the test's rows."""
    import psycopg

    from rattan.runtime.postgres.schema import META, MIGRATIONS

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(META)
        for step in range(1, version + 1):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
        conn.execute("INSERT INTO rattan_meta(key, value) VALUES ('schema_version', %s)", (str(version),))
        yield conn


def write_run(conn: Any, run: NewRun, mark: str) -> None:
    """Write ``run`` as ``create_run`` wrote it before the current version (every version of both
    backends has these tables and columns): its run row, node ids, context rows (values inline),
    root state and first token (no owner). ``mark`` is the driver's placeholder (? or %s)."""
    s, t = run.root_state, run.first_token
    state_columns = (
        "node_id, root_id, parent_id, name, version, loop, inner_loop, retry, skip, error_ignored, "
        "created, started, archived"
    )
    rows: list[tuple[str, list[tuple[Any, ...]]]] = [
        (
            "INSERT INTO runs(root_id, tree, root_data, options, created) VALUES (?,?,?,?,?)",
            [(run.root_id, run.tree_json, dumps(run.root_data), dumps(run.options), run.created)],
        ),
        ("INSERT INTO node_index(node_id, root_id) VALUES (?,?)", [(n, run.root_id) for n in run.node_ids]),
        (
            "INSERT INTO context(pipeline_id, key, type, value, code) VALUES (?,?,?,?,?)",
            [(c.pipeline_id, c.key, int(c.type), dumps(c.value), c.code) for c in run.context],
        ),
        (
            f"INSERT INTO states({state_columns}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    s.node_id,
                    s.root_id,
                    s.parent_id,
                    s.name,
                    s.version,
                    s.loop,
                    s.inner_loop,
                    s.retry,
                    bool(s.skip),
                    bool(s.error_ignored),
                    s.created,
                    s.started,
                    s.archived,
                )
            ],
        ),
        (
            "INSERT INTO processes(root_id, parent_id, current, destination, stack, status, pending, "
            "executing) VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    t.root_id,
                    t.parent_id,
                    t.current,
                    t.destination,
                    dumps(t.stack),
                    t.status,
                    t.pending,
                    t.executing,
                )
            ],
        ),
    ]
    cur = conn.cursor()
    try:
        for sql, args in rows:
            cur.executemany(sql.replace("?", mark), args)
    finally:
        cur.close()

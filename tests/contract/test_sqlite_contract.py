"""The SQLite store against the store contract (``rattan.testing.contract.StoreContract``; its
migration test runs from every older schema version, built by ``old_schemas``), plus what only a
SQLite file has: a store newer than this rattan is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from contract.old_schemas import sqlite_at, write_run
from rattan.errors import BackendUnavailableError
from rattan.model.records import NewRun
from rattan.runtime.interface import Store
from rattan.runtime.sqlite import SQLiteStore
from rattan.runtime.sqlite.schema import SCHEMA_VERSION
from rattan.testing.contract import StoreContract, StoreOpener

# the columns by which a row belongs to a run: its root, or one of its nodes (a pipeline's
# context is keyed by the pipeline's id, which is a node id too)
RUN_COLUMNS = ("root_id", "node_id", "pipeline_id")


def _path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


class TestSQLiteStore(StoreContract):
    schema_version = SCHEMA_VERSION

    def make_store(self, tmp_path: Path) -> Store:
        return SQLiteStore(str(_path(tmp_path)))

    def make_old_store(self, tmp_path: Path, version: int, run: NewRun) -> bool:
        with sqlite_at(_path(tmp_path), version) as conn:
            write_run(conn, run, "?")
        return True

    def open_in_subprocess(self, tmp_path: Path) -> tuple[str, StoreOpener] | None:
        # the class itself is the opener: it pickles by reference into a spawned child
        return str(_path(tmp_path)), SQLiteStore

    def rows_of_run(self, store: Store, root_id: str, node_ids: Sequence[str]) -> dict[str, int]:
        assert isinstance(store, SQLiteStore)
        # a connection of our own: the store's readers are per thread and this is no store API
        conn = sqlite3.connect(store.path)
        try:
            counts: dict[str, int] = {}
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
                where: list[str] = []
                args: list[str] = []
                for column in RUN_COLUMNS:
                    if column not in columns:
                        continue
                    if column == "root_id":
                        where.append("root_id = ?")
                        args.append(root_id)
                    else:
                        where.append(f"{column} IN ({','.join('?' * len(node_ids))})")
                        args += node_ids
                if where:
                    sql = f"SELECT count(*) FROM {table} WHERE {' OR '.join(where)}"
                    counts[table] = conn.execute(sql, args).fetchone()[0]
            return counts
        finally:
            conn.close()

    # -- what only a SQLite file has -----------------------------------------------------------
    def test_a_store_newer_than_this_rattan_is_refused(self, tmp_path: Path) -> None:
        self._open(tmp_path).close()
        with sqlite3.connect(_path(tmp_path)) as conn:
            conn.execute(
                "UPDATE rattan_meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
            )
        conn.close()
        with pytest.raises(BackendUnavailableError, match="newer"):
            self.make_store(tmp_path)

"""The SQLite store against the store contract (``rattan.testing.contract.StoreContract``), plus
what only a SQLite file has: a store left at any older schema version opens with its rows at the
current version, and a store newer than this rattan is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from rattan.errors import BackendUnavailableError
from rattan.model.messages import Advance
from rattan.model.records import OwnerRecord, StateRecord
from rattan.runtime.interface import Store
from rattan.runtime.sqlite import SQLiteStore
from rattan.runtime.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
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
    @pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
    def test_a_store_at_an_older_schema_version_opens_with_its_rows_at_the_current_version(
        self, tmp_path: Path, version: int
    ) -> None:
        with sqlite3.connect(_path(tmp_path)) as conn:
            for step in range(1, version + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
            conn.execute("INSERT INTO rattan_meta(key, value) VALUES ('schema_version', ?)", (str(version),))
            conn.execute(
                "INSERT INTO states(node_id, root_id, parent_id, name, version, loop, inner_loop, retry, "
                "skip, error_ignored, created, started, archived) "
                "VALUES ('old', 'r-old', 'r-old', 'RUNNING', 'v1', 1, 1, 0, 0, 0, 1.0, 1.0, NULL)"
            )
            # a ready token written before tokens had owners: the first lease claims it
            conn.execute(
                "INSERT INTO processes(id, root_id, parent_id, current, destination, stack, status, pending) "
                "VALUES (7, 'r-old', NULL, 'old', NULL, '[\"r-old\"]', 'ready', 0)"
            )
        conn.close()
        store = self._open(tmp_path)
        assert isinstance(store, SQLiteStore)
        assert store.schema_version() == SCHEMA_VERSION == store.migrate()
        old = StateRecord("old", "r-old", "r-old", "RUNNING", "v1", created=1.0, started=1.0)
        assert store.read(lambda r: r.states(["old"])) == [old]
        new = StateRecord("old", "r-old", "r-old", "FINISHED", "v2", created=1.0, started=1.0, archived=2.0)
        store.unit(lambda tx: tx.put_state(new, old))  # the migrated row takes compare-and-set writes
        assert store.read(lambda r: r.states(["old"])) == [new]
        owner = OwnerRecord("A", "host", 1, None, 2e9)
        assert store.unit(lambda tx: tx.lease(owner, 1e9, lambda o: False)) == [(1e9, Advance(7))]

    def test_a_store_newer_than_this_rattan_is_refused(self, tmp_path: Path) -> None:
        self._open(tmp_path).close()
        with sqlite3.connect(_path(tmp_path)) as conn:
            conn.execute(
                "UPDATE rattan_meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
            )
        conn.close()
        with pytest.raises(BackendUnavailableError, match="newer"):
            self.make_store(tmp_path)

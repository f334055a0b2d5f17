"""The PostgreSQL store against the store contract (``rattan.testing.contract.StoreContract``),
plus what only PostgreSQL has: the event cursor and a transaction that commits late, an old
store upgraded by many openers at once, driver errors as rattan's, and a dropped connection. The
contract's migration test runs from every older schema version, built by ``old_schemas``.

Every test works in a schema of its own (named after its tmp_path) in one database of the
session's server (``postgres_url`` in conftest.py)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from contract.old_schemas import postgres_at, write_run
from rattan.errors import BackendUnavailableError, ConflictError
from rattan.model.codec import dumps
from rattan.model.records import NewRun, StateRecord
from rattan.model.spill import SPILL_BYTES
from rattan.runtime.interface import Reads, Store, UnitOfWork
from rattan.testing.contract import StoreContract, StoreOpener
from rattan.testing.contract._children import _child_open, _Children
from rattan.testing.contract._support import _new_run, _run_threads, _state
from rattan.testing.postgres import ENV_REQUIRE, schema_url

# CI (RATTAN_REQUIRE_POSTGRES=1) fails on a missing driver instead of skipping
psycopg = __import__("psycopg") if os.environ.get(ENV_REQUIRE) == "1" else pytest.importorskip("psycopg")

from rattan.runtime.postgres import PostgresStore  # noqa: E402
from rattan.runtime.postgres.schema import SCHEMA_VERSION  # noqa: E402
from rattan.runtime.postgres.unit import PostgresUnit  # noqa: E402

RUN_COLUMNS = ("root_id", "node_id", "pipeline_id")
WAIT = 30.0


def _schema(tmp_path: Path) -> str:
    return "t_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:24]


def _sql(tx: UnitOfWork | Reads, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a statement on the connection of a unit or read (PostgreSQL-only tests)."""
    assert isinstance(tx, PostgresUnit)
    cur = tx.c.execute(sql.encode(), args)
    try:  # a unit runs in pipeline mode: fetching is what waits for the statement's result
        return cur.fetchall()
    except psycopg.ProgrammingError:  # the statement returns no rows
        return []


class TestPostgresStore(StoreContract):
    schema_version = SCHEMA_VERSION

    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        self._base_url = postgres_url

    def url(self, tmp_path: Path) -> str:
        return schema_url(self._base_url, _schema(tmp_path))

    def make_store(self, tmp_path: Path) -> Store:
        return PostgresStore(self.url(tmp_path))

    def make_old_store(self, tmp_path: Path, version: int, run: NewRun) -> bool:
        with postgres_at(self.url(tmp_path), version) as conn:
            write_run(conn, run, "%s")
        return True

    def open_in_subprocess(self, tmp_path: Path) -> tuple[str, StoreOpener] | None:
        # the class itself is the opener: it pickles by reference into a spawned child
        return self.url(tmp_path), PostgresStore

    def rows_of_run(self, store: Store, root_id: str, node_ids: Sequence[str]) -> dict[str, int]:
        def count(r: Reads) -> dict[str, int]:
            columns: dict[str, set[str]] = {}
            for table, column in _sql(
                r,
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()",
            ):
                columns.setdefault(table, set()).add(column)
            counts: dict[str, int] = {}
            for table, names in sorted(columns.items()):
                where: list[str] = []
                args: list[Any] = []
                for column in RUN_COLUMNS:
                    if column in names:
                        where.append(f"{column} = ANY(%s)")
                        args.append([root_id] if column == "root_id" else list(node_ids))
                if where:
                    sql = f"SELECT count(*) FROM {table} WHERE {' OR '.join(where)}"
                    counts[table] = _sql(r, sql, args)[0][0]
            return counts

        return store.read(count)

    # -- the event cursor and a transaction that commits late -----------------------------------
    @pytest.mark.parametrize("older", ["holder", "committer"])
    @pytest.mark.timeout(60)
    def test_the_event_cursor_never_skips_an_event_whose_transaction_commits_late(
        self, tmp_path: Path, older: str
    ) -> None:
        """One unit appends events and stays open while another appends and commits. A reader
        never moves its cursor past the open unit's events: whichever of the two transactions
        began writing first, the late events are read once they commit."""
        store = self._open(tmp_path)
        appended, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def hold(tx: UnitOfWork) -> None:
            tx.append_events("late", [["late", "n1", {"i": 0}], ["late", "n1", {"i": 1}]], 1.0)
            _sql(tx, "SELECT 1")  # a unit's writes are pipelined: wait until the insert has run
            appended.set()
            assert release.wait(WAIT), "the test never released the open unit"

        def holder() -> None:
            try:
                store.unit(hold)
            except BaseException as exc:
                errors.append(exc)

        def commit(tx: UnitOfWork) -> None:
            if older == "committer":  # this transaction takes its id before the holder does
                _sql(tx, "SELECT pg_current_xact_id()")
                thread.start()
                assert appended.wait(WAIT)
            tx.append_events("early", [["early", "n2", {"i": 0}]], 2.0)

        thread = threading.Thread(target=holder, daemon=True)
        if older == "holder":
            thread.start()
            assert appended.wait(WAIT)
        try:
            store.unit(commit)  # commits while the holder's unit is still open
            first = store.read(lambda r: r.events(0, None, 100))
            assert "late" not in [e.root_id for e in first]
            # the committed events are read now only if nothing open can still come before them
            assert [e.root_id for e in first] == (["early"] if older == "committer" else [])
            cursor = first[-1].id if first else 0
        finally:
            release.set()
            thread.join(WAIT)
        assert not thread.is_alive() and not errors
        rest = store.read(lambda r: r.events(cursor, None, 100))
        expected = ["late", "late"] if older == "committer" else ["late", "late", "early"]
        assert [e.root_id for e in rest] == expected
        assert all(e.id > cursor for e in rest)
        everything = store.read(lambda r: r.events(0, None, 100))
        assert everything == first + rest

    # -- what a unit reads ----------------------------------------------------------------------
    @pytest.mark.timeout(60)
    def test_a_state_a_unit_read_is_held_until_it_commits_and_the_next_reader_sees_its_write(
        self, tmp_path: Path
    ) -> None:
        """The pause/resume race: a unit that decides on a state it does not write (here: reads
        the pipeline RUNNING, then parks a token) and a unit that writes that state and then
        looks for parked tokens must not both miss the other. The second waits for the first."""
        store = self._open(tmp_path)
        root = StateRecord("r1", "r1", "", "RUNNING", "v1", created=1.0)
        store.unit(lambda tx: tx.put_state(root, None))
        holding, release = threading.Event(), threading.Event()
        seen: list[str] = []

        def step(tx: UnitOfWork) -> None:
            [state] = tx.states(["r1"])
            seen.append(state.name)
            holding.set()
            assert release.wait(WAIT)
            tx.append_events("r1", [["parked", "r1"]], 1.0)  # what it decided, written late

        def pause(tx: UnitOfWork) -> None:
            [state] = tx.states(["r1"])  # waits for the step's unit to commit
            seen.append(state.name)
            tx.put_state(StateRecord("r1", "r1", "", "SUSPENDED", "v2", created=1.0), state)
            seen.append(",".join(e.event_type for e in tx.events(0, "r1", 10)))

        thread = threading.Thread(target=store.unit, args=(step,), daemon=True)
        thread.start()
        assert holding.wait(WAIT)
        other = threading.Thread(target=store.unit, args=(pause,), daemon=True)
        other.start()
        other.join(0.3)
        assert other.is_alive(), "the second unit read a state the first unit still holds"
        release.set()
        thread.join(WAIT)
        other.join(WAIT)
        assert seen == ["RUNNING", "RUNNING", "parked"]
        assert store.read(lambda r: r.states(["r1"]))[0].name == "SUSPENDED"

    @pytest.mark.timeout(60)
    def test_units_taking_a_node_and_its_root_in_opposite_orders_do_not_deadlock(
        self, tmp_path: Path
    ) -> None:
        """A step reads its node, then the pipeline; an operator reads the pipeline, then the
        node. Each run's root is taken first, so the second unit waits at its first read and
        both commit (locking only the rows read, in the order read, deadlocks them)."""
        store = self._open(tmp_path)
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1"), None))
        first_read, operator_started = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def step(tx: UnitOfWork) -> None:
            tx.states(["r1-n1"])
            first_read.set()
            assert operator_started.wait(WAIT)
            time.sleep(0.3)  # the operator reaches its first read meanwhile
            tx.states(["r1"])

        def operator(tx: UnitOfWork) -> None:
            tx.states(["r1"])
            tx.states(["r1-n1"])

        def run(fn: Any) -> None:
            try:
                store.unit(fn)
            except BaseException as exc:
                errors.append(exc)

        a = threading.Thread(target=run, args=(step,), daemon=True)
        a.start()
        assert first_read.wait(WAIT)
        b = threading.Thread(target=run, args=(operator,), daemon=True)
        b.start()
        operator_started.set()
        a.join(WAIT)
        b.join(WAIT)
        assert not a.is_alive() and not b.is_alive() and errors == []

    def test_a_large_value_is_stored_once_and_goes_with_the_last_run_that_uses_it(
        self, tmp_path: Path
    ) -> None:
        store = self._open(tmp_path)
        big = "x" * (SPILL_BYTES + 10)

        def write(tx: UnitOfWork, root: str) -> None:
            tx.create_run(_new_run(root))
            tx.put_node_data(f"{root}-n1", inputs=dumps({"big": big}), outputs=dumps({"big": big}))

        for root in ("r1", "r2"):
            store.unit(lambda tx, root=root: write(tx, root))  # type: ignore[misc]
        pieces = "SELECT count(*) FROM value_pieces"
        assert store.read(lambda r: _sql(r, pieces)) == [(1,)]
        store.unit(lambda tx: tx.delete_run("r1"))
        assert store.read(lambda r: _sql(r, pieces)) == [(1,)]
        assert store.read(lambda r: r.node_data("r2-n1").outputs) == {"big": big}
        store.unit(lambda tx: tx.delete_run("r2"))
        assert store.read(lambda r: _sql(r, pieces)) == [(0,)]

    # -- schema --------------------------------------------------------------------------------
    @pytest.mark.timeout(60)
    def test_processes_and_threads_upgrading_an_old_store_at_once_all_succeed(self, tmp_path: Path) -> None:
        """The advisory lock: six stores (threads) and two processes open a store at version 1
        at the same moment; one migrates it, the others find the work done."""
        with postgres_at(self.url(tmp_path), 1):
            pass
        versions: list[int] = []
        lock = threading.Lock()

        def open_one() -> None:
            store = self._open(tmp_path)
            with lock:
                versions.append(store.migrate())

        locator, opener = self._subprocess_opener(tmp_path)
        with _Children(tmp_path) as children:
            for name in ("p0", "p1"):
                children.start(_child_open, opener, locator, name)
            children.wait_ready()
            children.go.set()
            _run_threads([open_one] * 6)
            versions += children.results()
        assert versions == [SCHEMA_VERSION] * 8
        assert [s.node_id for s in self._open(tmp_path).read(lambda r: r.states(["p0", "p1"]))] == [
            "p0",
            "p1",
        ]

    def test_a_store_newer_than_this_rattan_is_refused(self, tmp_path: Path) -> None:
        self._open(tmp_path).close()
        with psycopg.connect(self.url(tmp_path), autocommit=True) as conn:
            conn.execute(
                "UPDATE rattan_meta SET value=%s WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
            )
        with pytest.raises(BackendUnavailableError, match="newer"):
            self.make_store(tmp_path)

    # -- driver errors as rattan's -------------------------------------------------------------
    def test_a_unique_violation_is_a_conflict_and_rolls_the_unit_back(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        insert = "INSERT INTO node_index(node_id, root_id) VALUES (%s, %s)"
        store.unit(lambda tx: _sql(tx, insert, ("n1", "r1")))

        def clash(tx: UnitOfWork) -> None:
            _sql(tx, insert, ("n2", "r1"))
            _sql(tx, insert, ("n1", "r2"))

        # node_index's key names a run's node: the error says which id is taken (IdInUseError)
        with pytest.raises(ConflictError, match="node ids already used by another run: n1"):
            store.unit(clash)
        assert store.read(lambda r: r.roots_of(["n1", "n2"])) == {"n1": "r1"}

        def in_savepoint(tx: UnitOfWork) -> None:
            with pytest.raises(ConflictError), tx.savepoint():
                _sql(tx, insert, ("n1", "r3"))
            _sql(tx, insert, ("n3", "r3"))  # the unit goes on

        store.unit(in_savepoint)
        assert store.read(lambda r: r.roots_of(["n1", "n3"])) == {"n1": "r1", "n3": "r3"}

    def test_a_server_that_cannot_be_reached_is_unavailable_and_the_password_is_never_shown(self) -> None:
        with pytest.raises(BackendUnavailableError) as caught:
            PostgresStore("postgresql://rattan:sekrit@127.0.0.1:1/nowhere")
        assert "127.0.0.1:1" in str(caught.value) and "sekrit" not in str(caught.value)

    def test_a_dropped_connection_is_unavailable_and_the_pool_recovers(self, tmp_path: Path) -> None:
        # trust authentication takes any password: the URL carries one that must never show
        url = self.url(tmp_path).replace("postgresql://postgres@", "postgresql://postgres:sekrit@")
        store = PostgresStore(url)
        try:
            assert "sekrit" not in store.url
            pids = {store.unit(lambda tx: _sql(tx, "SELECT pg_backend_pid()")[0][0]) for _ in range(3)}
            with psycopg.connect(self.url(tmp_path), autocommit=True) as killer:
                # every connection this store's pool holds (it may have opened one more meanwhile,
                # under load), not only those the units above happened to use
                pids |= {
                    r[0]
                    for r in killer.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = 'rattan' "
                        "AND datname = current_database() AND pid <> pg_backend_pid()"
                    ).fetchall()
                }
                for pid in pids:
                    killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            with pytest.raises(BackendUnavailableError) as caught:
                store.unit(lambda tx: _sql(tx, "SELECT 1"))
            assert "sekrit" not in str(caught.value) and store.url in str(caught.value)
            assert store.unit(lambda tx: _sql(tx, "SELECT 1")) == [(1,)]  # a fresh connection
            assert store.read(lambda r: _sql(r, "SELECT 2")) == [(2,)]
        finally:
            store.close()

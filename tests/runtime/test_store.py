"""The SQLite store: numbered migrations, group commit, statement budget, store URLs, WAL
checkpoints, page size, and the seam's error contract (conflicts are ConflictError)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlite_helpers import new_run, state, token

import rattan
from contract.old_schemas import sqlite_at  # shared with the store contract's wiring
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.context import ContextValueType
from rattan.errors import BackendUnavailableError, ConflictError, StateVersionNotMatchError
from rattan.model.records import ContextRow
from rattan.runtime.interface import UnitOfWork
from rattan.runtime.sqlite import SQLiteStore, parse_store_url
from rattan.runtime.sqlite import checkpoint as checkpointer
from rattan.runtime.sqlite import store as sqlite_store
from rattan.runtime.sqlite.schema import SCHEMA_VERSION

pytestmark = pytest.mark.timeout(60)


PLAIN = int(ContextValueType.PLAIN)


def plain(pipeline_id: str, key: str, value: object) -> list[ContextRow]:
    """One plain context variable, as ``put_context`` takes it."""
    return [ContextRow(pipeline_id, key, PLAIN, value)]


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_new_store_is_created_at_the_latest_schema_version(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "a.db"))
    try:
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.close()
    assert {"runs", "states", "processes", "schedules", "callbacks", "events", "timers", "owners"} <= tables(
        tmp_path / "a.db"
    )


def test_a_version_1_store_is_migrated_step_by_step_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with sqlite_at(path, 1) as conn:
        conn.execute(
            "INSERT INTO states VALUES ('pold', 'pold', '', 'FINISHED', 'v1', 1, 1, 0, 0, 0, 1.0, 1.0, 2.0)"
        )
    assert "events" not in tables(path)
    store = SQLiteStore(str(path))
    try:
        assert store.schema_version() == SCHEMA_VERSION
        [st] = store.read(lambda tx: tx.states(["pold"]))
        assert st.name == "FINISHED" and st.version == "v1"
    finally:
        store.close()
    assert {"events", "timers"} <= tables(path)


def test_a_version_3_event_log_loses_autoincrement_but_keeps_its_ids_and_high_water(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with sqlite_at(path, 3) as conn:
        for root in ("r1", "r2", "r3"):
            conn.execute(
                "INSERT INTO events(root_id, node_id, event_type, data, schema, created) "
                "VALUES (?, 'n', 'node_finish', x'5b5d', 1, 1.0)",
                (root,),
            )
        conn.execute("DELETE FROM events WHERE root_id='r3'")  # the newest row went: high-water 3
    store = SQLiteStore(str(path))
    try:
        assert store.schema_version() == SCHEMA_VERSION == 7
        with store.raw() as conn:
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()[0]
            assert "AUTOINCREMENT" not in sql
            assert conn.execute("SELECT id, root_id FROM events ORDER BY id").fetchall() == [
                (1, "r1"), (2, "r2"), (3, ""),
            ]  # fmt: skip
            indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE tbl_name='events'")}
            assert "events_root" in indexes
        store.unit(lambda tx: tx.append_events("r4", [["node_finish", "n"]], 2.0))
        with store.raw() as conn:
            rows = conn.execute("SELECT id FROM events WHERE root_id='r4'").fetchall()
        assert [r[0] for r in rows] == [4]
        # an event's id is its row's id * 1000 + its index in the row
        events = store.read(lambda tx: tx.events(0, "r4", 10))
        assert [(e.id, e.node_id, e.event_type) for e in events] == [(4000, "n", "node_finish")]
    finally:
        store.close()


def test_a_store_from_a_newer_rattan_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE rattan_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO rattan_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(BackendUnavailableError, match="newer"):
        SQLiteStore(str(path))


def test_store_urls_are_parsed_and_unknown_schemes_refused() -> None:
    assert parse_store_url(None) == "rattan.db"
    assert parse_store_url("sqlite:///tmp/x.db") == "tmp/x.db"
    assert parse_store_url("sqlite:////abs/x.db") == "/abs/x.db"
    assert parse_store_url(":memory:") == ":memory:"
    assert parse_store_url("plain.db") == "plain.db"
    with pytest.raises(BackendUnavailableError, match="unsupported store URL"):
        parse_store_url("mysql://host/db")


def test_engine_without_arguments_uses_rattan_db_in_the_working_directory(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with rattan.Engine() as engine:
            assert engine.store_url == "sqlite:///rattan.db"
        assert (tmp_path / "rattan.db").exists()
    finally:
        os.chdir(cwd)


def test_concurrent_units_commit_together_and_a_failing_unit_is_rolled_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "g.db"))
    errors: list[BaseException] = []

    def ok(i: int) -> None:
        store.unit(lambda tx: tx.put_context(plain("p", f"${{k{i}}}", i)))

    def bad() -> None:
        def body(tx: UnitOfWork) -> None:
            tx.put_context(plain("p", "${bad}", 1))
            raise StateVersionNotMatchError("simulated conflict")

        try:
            store.unit(body)
        except StateVersionNotMatchError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ok, args=(i,)) for i in range(40)] + [threading.Thread(target=bad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ctx = store.read(lambda tx: tx.context("p"))
    store.close()
    assert len(errors) == 1
    assert sorted(ctx) == sorted(f"${{k{i}}}" for i in range(40))
    assert "${bad}" not in ctx


def test_a_chain_of_activities_costs_a_bounded_number_of_sql_statements_per_node() -> None:
    n = 40
    start = EmptyStartEvent()
    cur = start
    for _ in range(n):
        cur = cur.extend(ServiceActivity(component_code="example_component"))
    cur.extend(EmptyEndEvent())
    tree = build_tree(start)
    engine = rattan.Engine(":memory:", workers=1)
    statements: list[str] = []
    engine.core.store._writer.set_trace_callback(statements.append)
    try:
        assert rattan.api.run_pipeline(engine, tree).result
        deadline = time.time() + 20
        while not engine.is_finished(tree["id"]) and time.time() < deadline:
            time.sleep(0.01)
        assert engine.is_finished(tree["id"])
    finally:
        engine.core.store._writer.set_trace_callback(None)
        engine.close()
    per_node = len(statements) / (n + 2)
    # the peer issues 16-18 statements per node; the budget keeps regressions visible
    assert per_node <= 10.5, f"{per_node:.1f} statements per node"


def test_the_wal_file_is_reset_once_it_grows_past_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "WAL_LIMIT_BYTES", 64 * 1024)
    monkeypatch.setattr(checkpointer, "WAL_RESTART_BYTES", 32 * 1024)
    # the store's own copy caps what a rewind leaves on disk (journal_size_limit)
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_BYTES", 64 * 1024)
    path = tmp_path / "wal.db"
    with rattan.Engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL") as engine:
        for _ in range(30):
            start = EmptyStartEvent()
            start.extend(ServiceActivity(component_code="example_component")).extend(EmptyEndEvent())
            assert rattan.api.run_pipeline(engine, build_tree(start)).result
        assert engine.wait_idle(20)
        wal = Path(f"{path}-wal")
        deadline = time.time() + 10
        while wal.exists() and wal.stat().st_size > 64 * 1024 and time.time() < deadline:
            time.sleep(0.05)
        assert not wal.exists() or wal.stat().st_size <= 64 * 1024, wal.stat().st_size


def test_a_token_saved_with_its_status_and_owner_unchanged_names_neither(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "p.db"))
    statements: list[str] = []
    try:
        pid = store.unit(lambda tx: tx.put_token(token()))
        [proc] = store.read(lambda tx: tx.tokens([pid]))
        assert proc.stored_status == "ready" and proc.rev == 0
        store._writer.set_trace_callback(statements.append)
        proc.current = "n2"
        store.unit(lambda tx: tx.put_token(proc))
        stack = b'["r1"]'.hex()
        # the writer's cache knows the owner it wrote: an unchanged one is not named either
        assert [s for s in statements if s.startswith("UPDATE")] == [
            f"UPDATE processes SET current='n2', destination=NULL, stack=x'{stack}', "
            f"pending=0, executing=NULL, rev=rev+1 WHERE id={pid} AND rev=0"
        ]
        assert proc.rev == 1
        statements.clear()
        proc.status = "sleep"
        store.unit(lambda tx: tx.put_token(proc))
        assert [s for s in statements if s.startswith("UPDATE")] == [
            f"UPDATE processes SET current='n2', destination=NULL, stack=x'{stack}', "
            f"pending=0, executing=NULL, rev=rev+1, status='sleep' WHERE id={pid} AND rev=1"
        ]
        assert proc.stored_status == "sleep" and proc.rev == 2
        statements.clear()
        proc.owner = "o-1"
        store.unit(lambda tx: tx.put_token(proc))
        assert [s for s in statements if s.startswith("UPDATE")] == [
            f"UPDATE processes SET current='n2', destination=NULL, stack=x'{stack}', "
            f"pending=0, executing=NULL, rev=rev+1, owner='o-1' WHERE id={pid} AND rev=2"
        ]
        assert proc.rev == 3
        store._writer.set_trace_callback(None)
        [again] = store.read(lambda tx: tx.tokens([pid]))
        got = (again.current, again.status, again.stack, again.stored_status, again.rev, again.owner)
        assert got == ("n2", "sleep", ["r1"], "sleep", 3, "o-1")
        # the (root_id, status) index still finds it under its new status
        assert [p.id for p in store.read(lambda tx: tx.tokens(root_id="r1", statuses=["sleep"]))] == [pid]
        assert store.read(lambda tx: tx.tokens(root_id="r1", statuses=["ready"])) == []
    finally:
        store._writer.set_trace_callback(None)
        store.close()


def _wal_resets(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: it goes up each time the WAL is rewound."""
    with wal.open("rb") as f:
        header = f.read(16)
    return int.from_bytes(header[12:16], "big") if len(header) == 16 else -1


def test_under_steady_writes_the_wal_is_rewound_at_its_size_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # never quiet: only the size rule rewinds the WAL (PASSIVE checkpoints could not rewind it)
    monkeypatch.setattr(checkpointer, "QUIET_SECONDS", 60.0)
    monkeypatch.setattr(checkpointer, "CHECKPOINT_SECONDS", 0.01)
    monkeypatch.setattr(checkpointer, "WAL_RESTART_BYTES", 256 * 1024)
    path = tmp_path / "steady.db"
    wal = Path(f"{path}-wal")
    store = SQLiteStore(str(path), "NORMAL")
    try:
        i = 0
        deadline = time.time() + 20
        store.unit(lambda tx: tx.put_context(plain("steady", "${k}", 0)))
        first = _wal_resets(wal)
        while time.time() < deadline and (i < 2000 or _wal_resets(wal) < first + 3):
            rows = plain("steady", f"${{k{i % 500}}}", "x" * 300 + str(i))
            store.unit(lambda tx, rows=rows: tx.put_context(rows))
            i += 1
        assert _wal_resets(wal) >= first + 3, "the WAL was not rewound while writes went on"
        ctx = store.read(lambda tx: tx.context("steady"))
        assert len(ctx) == min(i, 500) + 1
        assert ctx[f"${{k{(i - 1) % 500}}}"][1] == "x" * 300 + str(i - 1)
    finally:
        store.close()


def test_a_quiet_store_is_checkpointed_and_its_wal_written_again_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "QUIET_SECONDS", 0.05)
    monkeypatch.setattr(checkpointer, "CHECKPOINT_SECONDS", 0.02)
    path = tmp_path / "burst.db"
    wal = Path(f"{path}-wal")
    store = SQLiteStore(str(path), "NORMAL")

    def burst(tag: str) -> None:
        for i in range(200):
            rows = plain(tag, f"${{k{i}}}", "x" * 200)
            store.unit(lambda tx, rows=rows: tx.put_context(rows))

    def wait_checkpointed(before: int) -> None:
        # the checkpoint copies the burst into the database file
        deadline = time.time() + 10
        while path.stat().st_size <= before and time.time() < deadline:
            time.sleep(0.02)
        assert path.stat().st_size > before, "no checkpoint after the store went quiet"

    try:
        db0 = path.stat().st_size
        burst("a")
        first = wal.stat().st_size
        wait_checkpointed(db0)
        db1 = path.stat().st_size
        burst("b")
        wait_checkpointed(db1)
        burst("c")
        # the same amount of work again reuses the file instead of appending to it
        assert wal.stat().st_size <= first * 1.2, (first, wal.stat().st_size)
        assert sorted(store.read(lambda tx: tx.context("c"))) == sorted(f"${{k{i}}}" for i in range(200))
    finally:
        store.close()


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_store_gets_the_configured_page_size_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    with rattan.Engine(f"sqlite:///{tmp_path / 'default.db'}") as engine:
        assert engine.settings.sqlite_page_size == 2048
    assert _page_size(tmp_path / "default.db") == 2048
    with rattan.Engine(f"sqlite:///{tmp_path / 'big.db'}", sqlite_page_size=8192):
        pass
    assert _page_size(tmp_path / "big.db") == 8192
    # reopened with another setting: the file keeps the size it was made with, and its data
    start = EmptyStartEvent()
    start.extend(ServiceActivity(component_code="example_component")).extend(EmptyEndEvent())
    tree = build_tree(start)
    with rattan.Engine(f"sqlite:///{tmp_path / 'big.db'}", sqlite_page_size=1024) as engine:
        assert rattan.api.run_pipeline(engine, tree).result
        deadline = time.time() + 20
        while not engine.is_finished(tree["id"]) and time.time() < deadline:
            time.sleep(0.01)
        assert engine.is_finished(tree["id"])
    assert _page_size(tmp_path / "big.db") == 8192


@pytest.mark.parametrize("bad", [0, 1000, 4095, 131072, "2048", None])
def test_a_bad_page_size_is_refused_before_anything_is_written(tmp_path: Path, bad: object) -> None:
    path = tmp_path / "bad.db"
    with pytest.raises(ValueError, match="sqlite_page_size must be a power of two from 512 to 65536"):
        rattan.Engine(f"sqlite:///{path}", sqlite_page_size=bad)
    assert not path.exists()


def test_a_reader_holding_a_snapshot_delays_commits_by_the_checkpoint_wait_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "QUIET_SECONDS", 0.0)  # checkpoint at every look
    monkeypatch.setattr(checkpointer, "CHECKPOINT_SECONDS", 0.02)
    monkeypatch.setattr(checkpointer, "CHECKPOINT_WAIT_MS", 200)
    path = tmp_path / "reader.db"
    store = SQLiteStore(str(path), "NORMAL")
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        store.unit(lambda tx: tx.put_context(plain("r", "${k}", 0)))
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM context").fetchone()[0] == 1  # snapshot held
        slowest = 0.0
        end = time.time() + 1.5
        i = 0
        while time.time() < end:
            rows = plain("r", f"${{k{i % 50}}}", i)
            t0 = time.perf_counter()
            store.unit(lambda tx, rows=rows: tx.put_context(rows))
            slowest = max(slowest, time.perf_counter() - t0)
            i += 1
        assert slowest < 1.0, f"a commit waited {slowest:.2f} s behind a checkpoint"
        # the reader still sees its snapshot; the writes are all there for everyone else
        assert reader.execute("SELECT count(*) FROM context").fetchone()[0] == 1
        reader.execute("COMMIT")
        assert len(store.read(lambda tx: tx.context("r"))) == 51  # ${k} and ${k0}..${k49}
    finally:
        reader.close()
        store.close()


def test_closing_an_engine_drops_its_cached_plans(tmp_path: Path) -> None:
    start = EmptyStartEvent()
    start.extend(ServiceActivity(component_code="example_component")).extend(EmptyEndEvent())
    tree = build_tree(start)
    engine = rattan.Engine(f"sqlite:///{tmp_path / 'c.db'}")
    assert rattan.api.run_pipeline(engine, tree).result
    deadline = time.time() + 20
    while not engine.is_finished(tree["id"]) and time.time() < deadline:
        time.sleep(0.01)
    assert engine.is_finished(tree["id"])
    assert tree["id"] in engine.core.plans._plans
    engine.close()
    assert engine.core.plans._plans == {} and engine.core.plans._root_data == {}
    # the stored run is intact for the next engine on the file
    with rattan.Engine(f"sqlite:///{tmp_path / 'c.db'}") as again:
        assert again.get_pipeline_states(tree["id"])[tree["id"]]["state"] == "FINISHED"


# -- the seam's error contract: every conflict is a ConflictError, and leaves the unit rolled back --


def test_inserting_a_state_for_a_node_that_has_one_is_a_state_version_conflict(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "dup.db"))
    try:
        store.unit(lambda tx: tx.put_state(state("a"), None))

        def insert_again(tx: UnitOfWork) -> None:
            tx.put_context(plain("p", "${x}", 1))  # rolled back with the unit
            tx.put_state(state("a", "FAILED", "v2"), None)

        with pytest.raises(StateVersionNotMatchError) as caught:
            store.unit(insert_again)
        assert isinstance(caught.value, ConflictError)
        for read in (store.unit, store.read):
            [st] = read(lambda tx: tx.states(["a"]))
            assert (st.name, st.version) == ("RUNNING", "v1")
            assert read(lambda tx: tx.context("p")) == {}
    finally:
        store.close()


def test_a_token_written_on_a_stale_revision_is_a_conflict_and_leaves_the_row_alone(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "rev.db"))
    try:
        pid = store.unit(lambda tx: tx.put_token(token()))
        [mine] = store.unit(lambda tx: tx.tokens([pid]))
        [theirs] = store.read(lambda tx: tx.tokens([pid]))
        assert mine.rev == theirs.rev == 0
        theirs.current, theirs.status = "n2", "sleep"
        store.unit(lambda tx: tx.put_token(theirs))
        assert theirs.rev == 1
        mine.current, mine.pending = "n3", 5
        with pytest.raises(ConflictError, match="changed concurrently"):
            store.unit(lambda tx: tx.put_token(mine))
        assert mine.rev == 0  # the stale record is not advanced
        for read in (store.unit, store.read):
            [row] = read(lambda tx: tx.tokens([pid]))
            assert (row.current, row.status, row.pending, row.rev) == ("n2", "sleep", 0, 1)
        with store.raw() as conn:
            row_now = conn.execute("SELECT current, rev FROM processes WHERE id=?", (pid,)).fetchone()
        assert row_now == ("n2", 1)
        # re-read and retry: the fresh revision is written
        [fresh] = store.unit(lambda tx: tx.tokens([pid]))
        fresh.current = "n3"
        store.unit(lambda tx: tx.put_token(fresh))
        [row] = store.read(lambda tx: tx.tokens([pid]))
        assert (row.current, row.rev) == ("n3", 2)
    finally:
        store.close()


def test_a_broken_constraint_inside_a_unit_is_a_conflict_not_an_unavailable_store(tmp_path: Path) -> None:
    store = SQLiteStore(str(tmp_path / "ids.db"))
    try:
        store.unit(lambda tx: tx.create_run(new_run("r1", ["a", "b"])))
        # a second run whose node id "b" is used by the first
        with pytest.raises(ConflictError, match="node ids already used") as caught:
            store.unit(lambda tx: tx.create_run(new_run("r2", ["c", "b"])))
        assert not isinstance(caught.value, BackendUnavailableError)
        # a root id already used
        with pytest.raises(ConflictError, match="already used"):
            store.unit(lambda tx: tx.create_run(new_run("r1", ["d"])))
        # nothing of the refused runs stayed; the first run is whole
        assert store.read(lambda tx: tx.run("r2")) is None
        assert store.read(lambda tx: tx.roots_of(["r1", "a", "b", "c", "d", "r2"])) == {
            "r1": "r1", "a": "r1", "b": "r1",
        }  # fmt: skip
        assert [t.current for t in store.read(lambda tx: tx.tokens(root_id="r2"))] == []
        assert [t.current for t in store.read(lambda tx: tx.tokens(root_id="r1"))] == ["a"]

        # a driver IntegrityError that reaches the unit's boundary is translated the same way
        def duplicate_index_row(tx: UnitOfWork) -> None:
            tx.c.execute("INSERT INTO node_index(node_id, root_id) VALUES ('a', 'r9')")  # type: ignore[attr-defined]

        with pytest.raises(ConflictError) as caught:
            store.unit(duplicate_index_row)
        assert not isinstance(caught.value, BackendUnavailableError)
        assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)

        # and inside a savepoint too: the unit goes on without what the savepoint wrote
        def in_savepoint(tx: UnitOfWork) -> str:
            try:
                with tx.savepoint():
                    tx.put_context(plain("p", "${x}", 1))
                    duplicate_index_row(tx)
            except ConflictError:
                return "conflict"
            return "none"

        assert store.unit(in_savepoint) == "conflict"
        assert store.read(lambda tx: tx.context("p")) == {}
        # the store is still usable
        store.unit(lambda tx: tx.put_context(plain("p", "${y}", 2)))
        assert store.read(lambda tx: tx.context("p")) == {"${y}": (PLAIN, 2, None)}
    finally:
        store.close()

"""The writer's cache of token, state, schedule and context rows: a step reads its token and the
states its previous step wrote without a statement, and the cache never shows what is not in the
store (another connection's commit, a rollback, a deletion, a lost compare-and-set). The cache is
private to the SQLite unit of work: no SQL outside the backend's folder writes these tables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlite_helpers import new_run, state, token, trace

import rattan
from rattan.errors import ConflictError, StateVersionNotMatchError
from rattan.model.records import ContextRow, ScheduleRecord, ScheduleType, StateRecord
from rattan.runtime.interface import ScheduleQuery, UnitOfWork
from rattan.runtime.sqlite import SQLiteStore
from rattan.runtime.sqlite import store as sqlite_store
from rattan.runtime.sqlite.schema import MIGRATIONS

pytestmark = pytest.mark.timeout(60)


class Boom(Exception):
    pass


@pytest.fixture
def other(store: SQLiteStore) -> Iterator[SQLiteStore]:
    """A second store (its own writer connection) on the same file."""
    second = SQLiteStore(store.path)
    yield second
    second.close()


def test_a_token_written_by_the_writer_is_read_back_without_a_statement(store: SQLiteStore) -> None:
    pid = store.unit(lambda tx: tx.put_token(token()))
    seen = trace(store)
    [proc] = store.unit(lambda tx: tx.tokens([pid]))
    assert (proc.id, proc.root_id, proc.current, proc.stack, proc.status, proc.stored_status) == (
        pid, "r1", "n1", ["r1"], "ready", "ready",
    )  # fmt: skip
    assert not [s for s in seen if "FROM processes" in s]
    # the record handed out is the caller's own: changing it does not change the cache
    proc.stack.append("sub")
    proc.current = "elsewhere"
    [again] = store.unit(lambda tx: tx.tokens([pid]))
    assert (again.current, again.stack) == ("n1", ["r1"])
    # a save is what the next read sees
    proc.status = "sleep"
    store.unit(lambda tx: tx.put_token(proc))
    [saved] = store.unit(lambda tx: tx.tokens([pid]))
    assert (saved.current, saved.stack, saved.status, saved.stored_status, saved.rev) == (
        "elsewhere", ["r1", "sub"], "sleep", "sleep", 1,
    )  # fmt: skip
    assert not [s for s in seen if "FROM processes" in s]
    [committed] = store.read(lambda tx: tx.tokens([pid]))
    assert (committed.current, committed.status, committed.rev) == ("elsewhere", "sleep", 1)


def test_a_commit_by_another_connection_is_seen_by_the_next_transaction(
    store: SQLiteStore, other: SQLiteStore
) -> None:
    pid = store.unit(lambda tx: tx.put_token(token()))
    assert store.unit(lambda tx: tx.tokens([pid])) != []  # cached now

    def move(tx: UnitOfWork) -> None:
        [proc] = tx.tokens([pid])
        proc.current, proc.status = "n9", "failed"
        tx.put_token(proc)

    other.unit(move)
    [proc] = store.unit(lambda tx: tx.tokens([pid]))
    assert (proc.current, proc.status, proc.rev) == ("n9", "failed", 1)


def test_a_rolled_back_save_is_not_remembered(store: SQLiteStore) -> None:
    pid = store.unit(lambda tx: tx.put_token(token()))

    def save_then_fail(tx: UnitOfWork) -> None:
        [proc] = tx.tokens([pid])
        proc.current, proc.status = "n2", "done"
        tx.put_token(proc)
        raise Boom

    with pytest.raises(Boom):
        store.unit(save_then_fail)
    [proc] = store.unit(lambda tx: tx.tokens([pid]))
    assert (proc.current, proc.status, proc.rev) == ("n1", "ready", 0)

    # an insert that was rolled back is not remembered either
    def insert_then_fail(tx: UnitOfWork) -> None:
        tx.put_token(token("x"))
        raise Boom

    with pytest.raises(Boom):
        store.unit(insert_then_fail)
    assert store.unit(lambda tx: tx.tokens([pid + 1])) == []


def test_pending_counts_and_deleted_rows_are_read_from_the_store(store: SQLiteStore) -> None:
    store.unit(lambda tx: tx.create_run(new_run("r1", ["pg"])))

    def fork(tx: UnitOfWork) -> int:
        pid = tx.put_token(token("pg", "waiting"))
        [proc] = tx.tokens([pid])
        proc.pending = 2
        tx.put_token(proc)
        return pid

    pid = store.unit(fork)

    # a child that finishes decrements its parent's count: read, change, put back
    def child_done(tx: UnitOfWork) -> int:
        [parent] = tx.tokens([pid])
        parent.pending -= 1
        tx.put_token(parent)
        return parent.pending

    assert store.unit(child_done) == 1
    [proc] = store.unit(lambda tx: tx.tokens([pid]))
    assert proc.pending == 1
    [committed] = store.read(lambda tx: tx.tokens([pid]))
    assert committed.pending == 1

    store.unit(lambda tx: tx.delete_run("r1"))
    assert store.unit(lambda tx: tx.tokens([pid])) == []
    # saving a token whose row is gone is a conflict: it writes nothing and remembers nothing
    proc.current = "n3"
    with pytest.raises(ConflictError):
        store.unit(lambda tx: tx.put_token(proc))
    assert store.unit(lambda tx: tx.tokens([pid])) == []
    assert store.read(lambda tx: tx.tokens([pid])) == []


def test_finished_tokens_are_not_kept_and_the_cache_is_bounded(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def finish(tx: UnitOfWork) -> int:
        pid = tx.put_token(token("end"))
        [proc] = tx.tokens([pid])
        proc.status = "done"
        tx.put_token(proc)
        return pid

    done = store.unit(finish)
    assert done not in store._cache.procs
    monkeypatch.setattr(sqlite_store, "CACHE_LIMIT", 3)
    pids = [store.unit(lambda tx: tx.put_token(token("n"))) for _ in range(5)]
    assert store._cache.size() <= 4  # cleared as a transaction began over the limit
    [proc] = store.unit(lambda tx: tx.tokens([pids[0]]))
    assert proc.current == "n"


def test_states_written_or_known_absent_are_read_back_without_a_statement(store: SQLiteStore) -> None:
    # a new run's nodes have no state yet: the writer knows it without looking
    store.unit(lambda tx: tx.create_run(new_run("r1", ["a", "b"])))
    store.unit(lambda tx: tx.put_state(state("a"), None))
    seen = trace(store)
    found = store.unit(lambda tx: tx.states(["a", "b"]))
    assert [(s.node_id, s.name, s.version) for s in found] == [("a", "RUNNING", "v1")]
    assert store.unit(lambda tx: tx.states(["b"])) == []
    assert {s.node_id: s.name for s in store.unit(lambda tx: tx.states(["a", "b"]))} == {"a": "RUNNING"}
    assert not [s for s in seen if "FROM states" in s]
    # the record handed out is the caller's own
    [mine] = store.unit(lambda tx: tx.states(["a"]))
    mine.name = "FAILED"
    [again] = store.unit(lambda tx: tx.states(["a"]))
    assert again.name == "RUNNING"
    # a compare-and-set is what the next read sees; a lost one is read from the store again
    done = state("a", "FINISHED")
    store.unit(lambda tx: tx.put_state(done, state("a")))
    [got] = store.unit(lambda tx: tx.states(["a"]))
    assert got.name == "FINISHED"
    with pytest.raises(StateVersionNotMatchError):
        store.unit(lambda tx: tx.put_state(state("a", "FAILED"), state("a")))
    [got] = store.unit(lambda tx: tx.states(["a"]))
    [committed] = store.read(lambda tx: tx.states(["a"]))
    assert got.name == committed.name == "FINISHED"


def test_state_rows_follow_rollbacks_lost_compare_and_sets_and_other_connections(
    store: SQLiteStore, other: SQLiteStore
) -> None:
    store.unit(lambda tx: tx.put_state(state("a"), None))

    def finish_then_fail(tx: UnitOfWork) -> None:
        tx.put_state(state("a", "FINISHED"), state("a"))
        raise Boom

    with pytest.raises(Boom):
        store.unit(finish_then_fail)
    [st] = store.unit(lambda tx: tx.states(["a"]))
    assert st.name == "RUNNING"
    elsewhere = state("b")
    elsewhere.parent_id = "sub"
    store.unit(lambda tx: tx.put_state(elsewhere, None))
    seen = trace(store)

    # a compare-and-set that expects another version loses: the unit that catches the conflict
    # reads that node from the store again, and the other nodes from the cache
    def lose_then_read(tx: UnitOfWork) -> tuple[str, int]:
        [a] = tx.states(["a"])
        stale = a.copy()
        stale.version = "v0"
        moved = a.copy()
        moved.inner_loop = 0
        with pytest.raises(StateVersionNotMatchError) as caught:
            tx.put_state(moved, stale)
        assert isinstance(caught.value, ConflictError)
        assert not [s for s in seen if "FROM states" in s]
        [b] = tx.states(["b"])  # not the node that lost: still cached
        assert b.inner_loop == 1
        assert not [s for s in seen if "FROM states" in s]
        [a] = tx.states(["a"])
        assert [s for s in seen if "FROM states" in s] == [
            "SELECT node_id, root_id, parent_id, name, version, loop, inner_loop, retry, skip, "
            "error_ignored, created, started, archived FROM states WHERE node_id IN ('a')"
        ]
        return a.version, a.inner_loop

    assert store.unit(lose_then_read) == ("v1", 1)
    seen.clear()
    # a lost compare-and-set that ends the unit: the next unit reads from the store
    lost = state("a")
    lost.inner_loop = 0
    with pytest.raises(StateVersionNotMatchError):
        store.unit(lambda tx: tx.put_state(lost, state("a", version="v0")))
    [st] = store.unit(lambda tx: tx.states(["a"]))
    assert (st.name, st.version, st.inner_loop) == ("RUNNING", "v1", 1)
    assert [s for s in seen if "FROM states" in s] != []
    store._writer.set_trace_callback(None)
    other.unit(lambda tx: tx.put_state(state("a", "FAILED"), state("a")))
    [st] = store.unit(lambda tx: tx.states(["a"]))
    assert st.name == "FAILED"


def test_no_sql_outside_the_sqlite_backend_writes_the_store() -> None:
    # the writer's cache is kept current by the SQLite unit of work alone: SQL elsewhere that
    # changed these tables would leave it stale, so all SQL lives in runtime/sqlite/
    src = Path(rattan.__file__).parent
    backend = src / "runtime" / "sqlite"
    other_store = src / "runtime" / "postgres"
    created = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)")
    schema_tables = {name for ms in MIGRATIONS.values() for s in ms for name in created.findall(s)}
    assert {"states", "processes", "schedules", "context"} <= schema_tables
    names = "|".join(sorted(schema_tables | {"table"}))
    writes = re.compile(rf"(DELETE FROM|UPDATE|INSERT INTO|REPLACE INTO) \{{?({names})\b")
    places: dict[str, list[str]] = {}
    inside: set[str] = set()
    for path in sorted(src.rglob("*.py")):
        found = list(writes.finditer(path.read_text()))
        if backend in path.parents:
            inside.update(m.group(2) for m in found)
        elif other_store in path.parents:
            continue  # another backend's SQL writes its own database, never a SQLite file
        elif found:
            places[path.relative_to(src).as_posix()] = [m.group(0) for m in found]
    assert places == {}
    # the pattern does find the backend's own writes
    assert {"states", "processes", "schedules", "context"} <= inside


def test_live_schedules_and_pipeline_contexts_are_read_back_without_a_statement(store: SQLiteStore) -> None:
    # a new run's pipelines have no context rows yet: the writer knows it without looking
    store.unit(lambda tx: tx.create_run(new_run("r1", ["a"], pipelines=["p1"])))
    store.unit(lambda tx: tx.put_state(state("a"), None))
    sid = store.unit(lambda tx: tx.put_wait(ScheduleRecord(0, "a", "v1", ScheduleType.CALLBACK, 7, due=5.0)))
    store.unit(lambda tx: tx.put_context([ContextRow("p1", "${x}", 1, {"n": 1})]))
    seen = trace(store)

    def schedule_and_state(tx: UnitOfWork) -> tuple[ScheduleRecord, list[StateRecord]]:
        [sched] = tx.waits(ScheduleQuery(id=sid))
        return sched, tx.states([sched.node_id])

    sched, [st] = store.unit(schedule_and_state)
    assert (sched.id, sched.node_id, sched.version, sched.process_id, sched.times, sched.due) == (
        sid, "a", "v1", 7, 0, 5.0,
    )  # fmt: skip
    assert st.version == "v1"
    ctx = store.unit(lambda tx: tx.context("p1"))
    assert ctx == {"${x}": (1, {"n": 1}, None)}
    assert set(store.unit(lambda tx: tx.context("p1"))) == {"${x}"}
    assert [s for s in seen if s.startswith("SELECT")] == []
    # values handed out are the caller's own
    ctx["${x}"][1]["n"] = 99
    assert store.unit(lambda tx: tx.context("p1"))["${x}"][1] == {"n": 1}
    # writes are what the next read sees, and match the store
    sched.times, sched.due = 1, 9.0
    store.unit(lambda tx: tx.put_wait(sched))
    store.unit(lambda tx: tx.put_context([ContextRow("p1", "${x}", 1, "two")], existing_only=True))
    store.unit(lambda tx: tx.put_context([ContextRow("p1", "${absent}", 1, "no")], existing_only=True))
    for read in (store.unit, store.read):
        [again] = read(lambda tx: tx.waits(ScheduleQuery(id=sid)))
        assert (again.times, again.due) == (1, 9.0)
        assert read(lambda tx: tx.context("p1")) == {"${x}": (1, "two", None)}
    # a finished schedule is dropped from the cache and read from the store
    sched.finished, sched.due = True, None
    store.unit(lambda tx: tx.put_wait(sched))
    assert sid not in store._cache.schedules
    [done] = store.unit(lambda tx: tx.waits(ScheduleQuery(id=sid)))
    assert done.finished


def test_a_pipeline_context_not_known_to_be_fresh_is_read_from_the_store_once(
    store: SQLiteStore, other: SQLiteStore
) -> None:
    other.unit(lambda tx: tx.put_context([ContextRow("p1", "${a}", 1, "from other")]))
    # an upsert into a pipeline whose rows are not all known does not make a partial cache
    store.unit(lambda tx: tx.put_context([ContextRow("p1", "${b}", 1, "mine")]))
    assert store.unit(lambda tx: tx.context("p1")) == {
        "${a}": (1, "from other", None), "${b}": (1, "mine", None),
    }  # fmt: skip
    seen = trace(store)
    assert store.unit(lambda tx: tx.context("p1")) == {
        "${a}": (1, "from other", None), "${b}": (1, "mine", None),
    }  # fmt: skip
    assert [s for s in seen if "FROM context" in s] == []

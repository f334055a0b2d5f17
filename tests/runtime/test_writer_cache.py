"""The writer's cache of process and state rows: a step reads its token and the states its previous
step wrote without a statement, and the cache never shows what is not in the store (another
connection's commit, a rollback, a deletion, a bulk write)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import rattan
from rattan.engine.records import StateRecord
from rattan.errors import StateVersionNotMatchError
from rattan.runtime.queries import Tx
from rattan.runtime.sqlite import SQLiteStore

pytestmark = pytest.mark.timeout(60)


class Boom(Exception):
    pass


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    writer = SQLiteStore(str(tmp_path / "c.db"))
    yield writer
    writer._writer.set_trace_callback(None)
    writer.close()


@pytest.fixture
def other(store: SQLiteStore) -> Iterator[SQLiteStore]:
    """A second store (its own writer connection) on the same file."""
    second = SQLiteStore(store._uri)
    yield second
    second.close()


def _statements(store: SQLiteStore) -> list[str]:
    seen: list[str] = []
    store._writer.set_trace_callback(seen.append)
    return seen


def test_a_token_written_by_the_writer_is_read_back_without_a_statement(store: SQLiteStore) -> None:
    pid = store.run(lambda tx: tx.insert_process("r1", None, "n1", None, ["r1"], "ready"))
    seen = _statements(store)
    proc = store.run(lambda tx: tx.get_process(pid))
    assert proc is not None
    assert (proc.id, proc.root_id, proc.current, proc.stack, proc.status, proc.stored_status) == (
        pid, "r1", "n1", ["r1"], "ready", "ready",
    )  # fmt: skip
    assert not [s for s in seen if "FROM processes" in s]
    # the record handed out is the caller's own: changing it does not change the cache
    proc.stack.append("sub")
    proc.current = "elsewhere"
    again = store.run(lambda tx: tx.get_process(pid))
    assert again is not None and (again.current, again.stack) == ("n1", ["r1"])
    # a save is what the next read sees
    proc.status = "sleep"
    store.run(lambda tx: tx.save_process(proc))
    saved = store.run(lambda tx: tx.get_process(pid))
    assert saved is not None
    assert (saved.current, saved.stack, saved.status, saved.stored_status) == (
        "elsewhere", ["r1", "sub"], "sleep", "sleep",
    )  # fmt: skip
    committed = store.read(lambda tx: tx.get_process(pid))
    assert committed is not None and (committed.current, committed.status) == ("elsewhere", "sleep")


def test_a_commit_by_another_connection_is_seen_by_the_next_transaction(
    store: SQLiteStore, other: SQLiteStore
) -> None:
    pid = store.run(lambda tx: tx.insert_process("r1", None, "n1", None, ["r1"], "ready"))
    assert store.run(lambda tx: tx.get_process(pid)) is not None  # cached now

    def move(tx: Tx) -> None:
        proc = tx.get_process(pid)
        assert proc is not None
        proc.current, proc.status = "n9", "failed"
        tx.save_process(proc)

    other.run(move)
    proc = store.run(lambda tx: tx.get_process(pid))
    assert proc is not None and (proc.current, proc.status) == ("n9", "failed")


def test_a_rolled_back_save_is_not_remembered(store: SQLiteStore) -> None:
    pid = store.run(lambda tx: tx.insert_process("r1", None, "n1", None, ["r1"], "ready"))

    def save_then_fail(tx: Tx) -> None:
        proc = tx.get_process(pid)
        assert proc is not None
        proc.current, proc.status = "n2", "done"
        tx.save_process(proc)
        raise Boom

    with pytest.raises(Boom):
        store.run(save_then_fail)
    proc = store.run(lambda tx: tx.get_process(pid))
    assert proc is not None and (proc.current, proc.status) == ("n1", "ready")

    # an insert that was rolled back is not remembered either
    def insert_then_fail(tx: Tx) -> None:
        tx.insert_process("r1", None, "x", None, ["r1"], "ready")
        raise Boom

    with pytest.raises(Boom):
        store.run(insert_then_fail)
    assert store.run(lambda tx: tx.get_process(pid + 1)) is None


def test_pending_counts_and_deleted_rows_are_read_from_the_store(store: SQLiteStore) -> None:

    def fork(tx: Tx) -> int:
        pid = tx.insert_process("r1", None, "pg", None, ["r1"], "waiting")
        proc = tx.get_process(pid)
        assert proc is not None
        proc.pending = 2
        tx.save_process(proc)
        return pid

    pid = store.run(fork)
    assert store.run(lambda tx: tx.decrement_pending(pid)) == 1
    proc = store.run(lambda tx: tx.get_process(pid))
    assert proc is not None and proc.pending == 1

    def delete(tx: Tx) -> None:
        tx.c.execute("DELETE FROM processes WHERE root_id='r1'")
        tx.forget()

    store.run(delete)
    assert store.run(lambda tx: tx.get_process(pid)) is None
    # saving a token whose row is gone writes nothing and remembers nothing
    proc.current = "n3"
    store.run(lambda tx: tx.save_process(proc))
    assert store.run(lambda tx: tx.get_process(pid)) is None


def test_finished_tokens_are_not_kept_and_the_cache_is_bounded(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rattan.runtime.sqlite as sqlite_store

    def finish(tx: Tx) -> int:
        pid = tx.insert_process("r1", None, "end", None, ["r1"], "ready")
        proc = tx.get_process(pid)
        assert proc is not None
        proc.status = "done"
        tx.save_process(proc)
        return pid

    done = store.run(finish)
    assert done not in store._cache.procs
    monkeypatch.setattr(sqlite_store, "CACHE_LIMIT", 3)
    pids = [store.run(lambda tx: tx.insert_process("r1", None, "n", None, ["r1"], "ready")) for _ in range(5)]
    assert store._cache.size() <= 4  # cleared as a transaction began over the limit
    proc = store.run(lambda tx: tx.get_process(pids[0]))
    assert proc is not None and proc.current == "n"


def _record(node_id: str, name: str = "RUNNING", version: str = "v1") -> StateRecord:
    return StateRecord(node_id, "r1", "r1", name, version, 1, 1, 0, False, False, 1.0, 1.0, None)


def test_states_written_or_known_absent_are_read_back_without_a_statement(store: SQLiteStore) -> None:
    store.run(lambda tx: tx.known_absent(["a", "b"]))
    store.run(lambda tx: tx.insert_state(_record("a")))
    seen = _statements(store)
    found = store.run(lambda tx: tx.states_by_ids(["a", "b"]))
    assert [(s.node_id, s.name, s.version) for s in found] == [("a", "RUNNING", "v1")]
    assert store.run(lambda tx: tx.get_state("b")) is None
    assert store.run(lambda tx: tx.state_names(["a", "b"])) == {"a": "RUNNING"}
    assert not [s for s in seen if "FROM states" in s]
    # the record handed out is the caller's own
    mine = store.run(lambda tx: tx.get_state("a"))
    assert mine is not None
    mine.name = "FAILED"
    again = store.run(lambda tx: tx.get_state("a"))
    assert again is not None and again.name == "RUNNING"
    # a compare-and-set is what the next read sees; a lost one is read from the store again
    done = _record("a", "FINISHED")
    store.run(lambda tx: tx.cas_state(done, "RUNNING", "v1"))
    got = store.run(lambda tx: tx.get_state("a"))
    assert got is not None and got.name == "FINISHED"
    with pytest.raises(StateVersionNotMatchError):
        store.run(lambda tx: tx.cas_state(_record("a", "FAILED"), "RUNNING", "v1"))
    got = store.run(lambda tx: tx.get_state("a"))
    committed = store.read(lambda tx: tx.get_state("a"))
    assert got is not None and committed is not None and got.name == committed.name == "FINISHED"


def test_state_rows_follow_rollbacks_bulk_writes_and_other_connections(
    store: SQLiteStore, other: SQLiteStore
) -> None:
    store.run(lambda tx: tx.insert_state(_record("a")))

    def finish_then_fail(tx: Tx) -> None:
        tx.cas_state(_record("a", "FINISHED"), "RUNNING", "v1")
        raise Boom

    with pytest.raises(Boom):
        store.run(finish_then_fail)
    st = store.run(lambda tx: tx.get_state("a"))
    assert st is not None and st.name == "RUNNING"
    elsewhere = _record("b")
    elsewhere.parent_id = "sub"
    store.run(lambda tx: tx.insert_state(elsewhere))
    store.run(lambda tx: tx.reset_inner_loops("r1", "r1"))
    seen = _statements(store)
    st = store.run(lambda tx: tx.get_state("b"))  # not a child of r1: still cached
    assert st is not None and st.inner_loop == 1
    assert not [s for s in seen if "FROM states" in s]
    st = store.run(lambda tx: tx.get_state("a"))
    assert st is not None and st.inner_loop == 0
    store._writer.set_trace_callback(None)
    other.run(lambda tx: tx.cas_state(_record("a", "FAILED"), "RUNNING", "v1"))
    st = store.run(lambda tx: tx.get_state("a"))
    assert st is not None and st.name == "FAILED"


def test_every_write_to_processes_or_states_outside_the_tx_methods_forgets_the_cache() -> None:
    # own SQL that changes these tables must call Tx.forget(), or the writer's cache goes stale
    src = Path(rattan.__file__).parent
    writes = re.compile(r"(DELETE FROM|UPDATE|INSERT INTO) \{?(states|processes|schedules|context|table)\b")
    places = {}
    for path in sorted(src.rglob("*.py")):
        if path.parent.name == "runtime" and path.name in {"queries.py", "queries_jobs.py", "rows.py"}:
            continue  # the Tx methods themselves
        text = path.read_text()
        if writes.search(text):
            places[path.relative_to(src).as_posix()] = "forget()" in text
    assert places == {"engine/retention.py": True, "rollback/store.py": True}


def test_live_schedules_and_pipeline_contexts_are_read_back_without_a_statement(store: SQLiteStore) -> None:
    store.run(lambda tx: tx.insert_state(_record("a")))
    sid = store.run(lambda tx: tx.insert_schedule("a", "v1", 1, 7, 5.0))
    store.run(lambda tx: tx.fresh_context(["p1"]))
    store.run(lambda tx: tx.upsert_context([("p1", "${x}", 1, {"n": 1}, None)]))
    seen = _statements(store)
    sched, state = store.run(lambda tx: tx.schedule_and_state(sid))
    assert sched is not None and state is not None
    assert (sched.id, sched.node_id, sched.version, sched.process_id, sched.times, sched.due) == (
        sid, "a", "v1", 7, 0, 5.0,
    )  # fmt: skip
    assert state.version == "v1"
    ctx = store.run(lambda tx: tx.load_context("p1"))
    assert ctx == {"${x}": (1, {"n": 1}, None)}
    assert store.run(lambda tx: tx.context_keys("p1")) == {"${x}"}
    assert [s for s in seen if s.startswith("SELECT")] == []
    # values handed out are the caller's own
    ctx["${x}"][1]["n"] = 99
    assert store.run(lambda tx: tx.load_context("p1"))["${x}"][1] == {"n": 1}
    # writes are what the next read sees, and match the store
    sched.times, sched.due = 1, 9.0
    store.run(lambda tx: tx.save_schedule(sched))
    store.run(lambda tx: tx.update_context_existing("p1", "${x}", 1, "two", None))
    store.run(lambda tx: tx.update_context_existing("p1", "${absent}", 1, "no", None))
    for read in (store.run, store.read):
        again = read(lambda tx: tx.get_schedule(sid))
        assert again is not None and (again.times, again.due) == (1, 9.0)
        assert read(lambda tx: tx.load_context("p1")) == {"${x}": (1, "two", None)}
    # a finished schedule is dropped from the cache and read from the store
    sched.finished, sched.due = True, None
    store.run(lambda tx: tx.save_schedule(sched))
    assert sid not in store._cache.schedules
    done = store.run(lambda tx: tx.get_schedule(sid))
    assert done is not None and done.finished


def test_a_pipeline_context_not_known_to_be_fresh_is_read_from_the_store_once(
    store: SQLiteStore, other: SQLiteStore
) -> None:
    other.run(lambda tx: tx.upsert_context([("p1", "${a}", 1, "from other", None)]))
    # an upsert into a pipeline whose rows are not all known does not make a partial cache
    store.run(lambda tx: tx.upsert_context([("p1", "${b}", 1, "mine", None)]))
    assert store.run(lambda tx: tx.load_context("p1")) == {
        "${a}": (1, "from other", None), "${b}": (1, "mine", None),
    }  # fmt: skip

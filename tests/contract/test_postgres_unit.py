"""What the PostgreSQL unit of work does beyond the store contract: it holds writes back and sends
them at once (``runtime/postgres/behind.py``), knows the rows it read or wrote, reads a round's rows
in advance (``prefetch``), takes ids from sequence blocks, and keeps ids byte-compared.

Each test works in a schema of its own on the session's server (``postgres_url``)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from rattan.errors import ConflictError, StateVersionNotMatchError
from rattan.model.codec import dumps
from rattan.model.records import ContextRow, ScheduleRecord, ScheduleType
from rattan.model.states import TokenStatus
from rattan.runtime.interface import ScheduleQuery, UnitOfWork
from rattan.testing.contract._support import NOW, _new_run, _state, _token
from rattan.testing.postgres import ENV_REQUIRE, schema_url

psycopg = __import__("psycopg") if os.environ.get(ENV_REQUIRE) == "1" else pytest.importorskip("psycopg")

from rattan.runtime.postgres import PostgresStore  # noqa: E402
from rattan.runtime.postgres.keyed import ID_BLOCK  # noqa: E402
from rattan.runtime.postgres.unit import PostgresUnit  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def store(postgres_url: str, tmp_path: Path) -> Any:
    name = "u_" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:24]
    s = PostgresStore(schema_url(postgres_url, name))
    yield s
    s.close()


def _count(store: Any, sql: str, *args: Any) -> Any:
    with store.raw() as conn:
        return conn.execute(sql, args).fetchone()[0]


def _pu(tx: UnitOfWork) -> PostgresUnit:
    assert isinstance(tx, PostgresUnit)
    return tx


def test_writes_are_held_back_until_the_unit_ends_and_read_back_inside_it(store: Any) -> None:
    store.unit(lambda tx: tx.create_run(_new_run("r1")))
    seen: dict[str, Any] = {}

    def body(tx: UnitOfWork) -> None:
        u = _pu(tx)
        st = _state("r1-n1", "r1")
        tx.put_state(st, None)
        moved = st.copy()
        moved.name = "FINISHED"
        tx.put_state(moved, st)  # an insert and an update of one row: one row is sent
        tx.put_node_data("r1-n1", inputs=dumps({"a": 1}), outputs=dumps({"b": 2}))
        tx.put_context([ContextRow("r1", "${k}", 0, "v")])
        assert u.pending and u.pending.state_inserts and not u.pending.state_updates
        with store.raw() as other:  # nothing reached the server yet
            assert other.execute("SELECT count(*) FROM states WHERE node_id='r1-n1'").fetchone()[0] == 0
        seen["state"] = tx.states(["r1-n1"])[0].name
        seen["data"] = tx.node_data("r1-n1").outputs
        seen["context"] = tx.context("r1")["${k}"][1]

    store.unit(body)
    assert seen == {"state": "FINISHED", "data": {"b": 2}, "context": "v"}
    assert store.read(lambda r: r.states(["r1-n1"]))[0].name == "FINISHED"
    assert store.read(lambda r: r.node_data("r1-n1")).inputs == {"a": 1}
    assert store.read(lambda r: r.context("r1"))["${k}"][1] == "v"


def test_a_compare_and_set_on_a_row_the_unit_did_not_read_fails_at_the_flush_and_nothing_commits(
    store: Any,
) -> None:
    store.unit(lambda tx: tx.create_run(_new_run("r1")))
    store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1", version="v1"), None))
    # another writer moved the node on; this unit still expects v0 and never read the row
    stale = _state("r1-n1", "r1", version="v0")
    new = _state("r1-n1", "r1", name="FINISHED", version="v0")

    def body(tx: UnitOfWork) -> None:
        tx.put_state(_state("r1-n2", "r1"), None)  # written in the same unit: must not commit
        tx.put_state(new, stale)

    with pytest.raises(
        StateVersionNotMatchError, match=r"r1-n1: state changed concurrently \(expected RUNNING/v0\)"
    ):
        store.unit(body)
    assert [s.node_id for s in store.read(lambda r: r.states(["r1-n1", "r1-n2"]))] == ["r1-n1"]
    assert store.read(lambda r: r.states(["r1-n1"]))[0].version == "v1"


def test_a_compare_and_set_on_a_row_the_unit_read_fails_at_the_write(store: Any) -> None:
    store.unit(lambda tx: tx.create_run(_new_run("r1")))
    store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1", version="v1"), None))

    def body(tx: UnitOfWork) -> str:
        (st,) = tx.states(["r1-n1"])  # read, so locked: its name and version are the stored ones
        with pytest.raises(StateVersionNotMatchError):
            tx.put_state(st.copy(), _state("r1-n1", "r1", version="v9"))
        with pytest.raises(StateVersionNotMatchError, match="exists already"):
            tx.put_state(st.copy(), None)
        return st.version

    assert store.unit(body) == "v1"


def test_a_token_written_from_a_stale_read_is_a_conflict_at_the_flush(store: Any) -> None:
    tid = store.unit(lambda tx: tx.create_run(_new_run("r1")))
    stale = store.read(lambda r: r.tokens([tid]))[0]

    def move(tx: UnitOfWork) -> None:
        (t,) = tx.tokens([tid])
        t.current = "r1-n2"
        tx.put_token(t)

    store.unit(move)
    stale.current = "r1-n1"
    with pytest.raises(ConflictError, match=rf"token {tid}: changed concurrently \(expected revision 0\)"):
        store.unit(lambda tx: tx.put_token(stale))
    (now,) = store.read(lambda r: r.tokens([tid]))
    assert (now.current, now.rev) == ("r1-n2", 1)


def test_a_savepoint_that_rolls_back_drops_its_held_back_writes_and_what_the_unit_knew(store: Any) -> None:
    store.unit(lambda tx: tx.create_run(_new_run("r1")))

    def body(tx: UnitOfWork) -> None:
        u = _pu(tx)
        tx.put_state(_state("r1-n1", "r1"), None)
        with pytest.raises(RuntimeError), tx.savepoint():
            tx.put_state(_state("r1-n2", "r1"), None)
            tx.put_context([ContextRow("r1", "${gone}", 0, 1)])
            assert u.rows is not None and "r1-n2" in u.rows.states
            raise RuntimeError("undo")
        assert u.rows is not None and "r1-n2" not in u.rows.states
        assert tx.states(["r1-n2"]) == []
        assert "${gone}" not in tx.context("r1")

    store.unit(body)
    assert [s.node_id for s in store.read(lambda r: r.states(["r1-n1", "r1-n2"]))] == ["r1-n1"]
    assert "${gone}" not in store.read(lambda r: r.context("r1"))


class _NoStatements:
    """Stands in for the connection while a test checks that reads are answered from memory."""

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a statement was sent: {args[0]!r}")


def test_prefetch_reads_a_rounds_rows_at_once_and_later_reads_use_them(store: Any) -> None:
    tid = store.unit(lambda tx: tx.create_run(_new_run("r1")))
    store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1"), None))
    sid = store.unit(
        lambda tx: tx.put_wait(ScheduleRecord(0, "r1-n1", "v1", ScheduleType.POLL, tid, due=NOW))
    )

    def body(tx: UnitOfWork) -> dict[str, Any]:
        u = _pu(tx)
        u.prefetch(states=["r1", "r1-n1", "r1-n2"], contexts=["r1"], schedules=[sid], data=["r1-n1"])
        assert u.rows is not None
        known = {
            "states": {k: (v[3] if v else None) for k, v in u.rows.states.items()},
            "roots": sorted(u.roots),
        }
        real, u.conn = u.conn, _NoStatements()  # type: ignore[assignment]
        try:
            known["read"] = [s.node_id for s in tx.states(["r1-n1", "r1-n2", "r1"])]
            known["schedule"] = tx.waits(ScheduleQuery(id=sid))[0].node_id
            known["outputs"] = tx.node_data("r1-n1").outputs
            known["context"] = sorted(tx.context("r1"))
        finally:
            u.conn = real
        return known

    assert store.unit(body) == {
        "states": {"r1": "RUNNING", "r1-n1": "RUNNING", "r1-n2": None},
        "roots": ["r1"],
        "read": ["r1-n1", "r1"],
        "schedule": "r1-n1",
        "outputs": None,
        "context": sorted(store.read(lambda r: r.context("r1"))),
    }


def test_token_and_schedule_ids_come_from_blocks_unique_across_stores(store: Any, postgres_url: str) -> None:
    other = PostgresStore(store._conninfo)
    try:
        store.unit(lambda tx: tx.create_run(_new_run("r1", first_status=TokenStatus.SLEEP)))
        ids: list[int] = []
        lock = threading.Lock()

        def make(s: Any) -> None:
            for _ in range(ID_BLOCK + 5):
                t = s.unit(lambda tx: tx.put_token(_token("r1", "r1-n1", status=TokenStatus.SLEEP)))
                with lock:
                    ids.append(t)

        threads = [threading.Thread(target=make, args=(s,)) for s in (store, other)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(50)
        assert len(ids) == 2 * (ID_BLOCK + 5) and len(set(ids)) == len(ids)
        stored = store.read(lambda r: r.tokens(root_id="r1"))
        assert {t.id for t in stored} >= set(ids)
    finally:
        other.close()


def test_ids_compare_as_bytes(store: Any) -> None:
    """Schema 4: id columns use the "C" collation (index lookups compare bytes, not locale rules)."""
    collations = {
        (r[0], r[1]): r[2]
        for r in _rows(
            store,
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = 'text' "
            "AND column_name IN ('node_id', 'root_id', 'pipeline_id', 'id', 'hash')",
        )
    }
    assert collations and set(collations.values()) == {"C"}, collations


def _rows(store: Any, sql: str) -> list[tuple[Any, ...]]:
    with store.raw() as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def test_a_held_back_event_row_gets_its_transactions_id(store: Any) -> None:
    store.unit(lambda tx: tx.create_run(_new_run("r1")))

    def body(tx: UnitOfWork) -> None:
        tx.append_events("r1", [["node_finish", "r1-n1"]], NOW)
        tx.append_events("r1", [["node_start", "r1-n2"]], NOW)

    store.unit(body)
    events = store.read(lambda r: r.events(-1, "r1", 10))
    assert [(e.event_type, e.node_id) for e in events][-2:] == [
        ("node_finish", "r1-n1"),
        ("node_start", "r1-n2"),
    ]
    assert _count(store, "SELECT count(DISTINCT xact) FROM events WHERE root_id='r1' AND part IN (0, 1)") >= 1

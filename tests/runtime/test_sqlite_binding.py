"""How the SQLite store binds and writes rows cheaply without changing what is stored: identity
adapters for the parameter types it binds most (bytes, None, token statuses), and a state's
compare-and-set that leaves the run index alone unless the run or parent really changes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_helpers import state, token, trace

from rattan.errors import StateVersionNotMatchError
from rattan.model.states import TokenStatus
from rattan.runtime.sqlite import SQLiteStore
from rattan.runtime.sqlite.store import bind_as_they_are

pytestmark = pytest.mark.timeout(60)


def test_bytes_none_and_token_statuses_bind_as_the_values_they_are(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "x.db"))
    try:
        row = conn.execute(
            "SELECT ?, typeof(?), ? IS NULL, ?, typeof(?)",
            (b"\x00{}", b"\x00{}", None, TokenStatus.SLEEP, TokenStatus.SLEEP),
        ).fetchone()
    finally:
        conn.close()
    assert row == (b"\x00{}", "blob", 1, "sleep", "text")
    assert type(row[3]) is str


def test_an_adapter_the_application_registered_is_kept() -> None:
    key = (bytes, sqlite3.PrepareProtocol)
    ours = sqlite3.adapters[key]
    try:

        def theirs(value: bytes) -> bytes:
            return value[::-1]

        sqlite3.register_adapter(bytes, theirs)
        bind_as_they_are()
        assert sqlite3.adapters[key] is theirs
        assert sqlite3.connect(":memory:").execute("SELECT ?", (b"ab",)).fetchone() == (b"ba",)
    finally:
        sqlite3.register_adapter(bytes, ours)


def test_a_token_status_is_stored_and_read_back_as_plain_text(store: SQLiteStore) -> None:
    proc = token(status=TokenStatus.SLEEP)
    pid = store.unit(lambda tx: tx.put_token(proc))
    raw = store._writer.execute("SELECT status, typeof(status) FROM processes WHERE id=?", (pid,)).fetchone()
    assert raw == ("sleep", "text")
    [back] = store.read(lambda tx: tx.tokens([pid]))
    assert back.status == TokenStatus.SLEEP


def test_a_state_update_names_the_run_and_parent_only_when_they_change(store: SQLiteStore) -> None:
    store.unit(lambda tx: tx.put_state(state("a"), None))
    seen = trace(store)
    store.unit(lambda tx: tx.put_state(state("a", "FINISHED"), state("a")))
    updates = [s for s in seen if s.startswith("UPDATE states")]
    assert len(updates) == 1 and "root_id=" not in updates[0] and "parent_id=" not in updates[0]
    # a caller that does move the node (none in the engine today) gets the long form
    moved = state("a", "FAILED")
    moved.root_id, moved.parent_id = "r2", "sub"
    seen.clear()
    store.unit(lambda tx: tx.put_state(moved, state("a", "FINISHED")))
    updates = [s for s in seen if s.startswith("UPDATE states")]
    assert len(updates) == 1 and "root_id='r2'" in updates[0] and "parent_id='sub'" in updates[0]
    [got] = store.read(lambda tx: tx.states(["a"]))
    assert (got.name, got.root_id, got.parent_id) == ("FAILED", "r2", "sub")
    assert [s.node_id for s in store.read(lambda tx: tx.states(root_id="r2"))] == ["a"]
    assert store.read(lambda tx: tx.states(root_id="r1")) == []
    # both forms are compare-and-sets: a stale expectation loses and writes nothing
    with pytest.raises(StateVersionNotMatchError):
        store.unit(lambda tx: tx.put_state(state("a", "RUNNING"), state("a", "FINISHED")))
    [still] = store.read(lambda tx: tx.states(["a"]))
    assert (still.name, still.root_id) == ("FAILED", "r2")

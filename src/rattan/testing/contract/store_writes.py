"""Store tests of writes and reads: compare-and-set, atomic units, savepoints, and what a unit
and a reader see."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from rattan.errors import ConflictError
from rattan.model.codec import dumps
from rattan.model.records import (
    CallbackRecord,
    ContextRow,
    EventRecord,
    RollbackJob,
    RollbackSnapshot,
    ScheduleRecord,
    ScheduleType,
    StateRecord,
    TimerRecord,
)
from rattan.model.spill import SPILL_BYTES
from rattan.model.states import TokenStatus
from rattan.runtime.interface import (
    INTERFACE_VERSION,
    CallbackQuery,
    NodeData,
    Reads,
    ScheduleQuery,
    UnitOfWork,
)
from rattan.testing.contract._store_base import StoreBase
from rattan.testing.contract._support import (
    NOW,
    PLAIN,
    WAIT,
    _Boom,
    _new_run,
    _nodes,
    _put_state,
    _put_wait,
    _run_view,
    _state,
    _token,
)


class StoreWrites(StoreBase):
    """Compare-and-set writes, atomic units and savepoints, and committed reads."""

    # -- basics --------------------------------------------------------------------------------
    def test_a_store_names_itself_and_implements_this_interface_version(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        assert isinstance(store.url, str) and store.url
        assert store.interface_version[0] == INTERFACE_VERSION[0]
        assert store.waiting() is False  # no other caller of this process waits to write
        assert store.unit(lambda tx: 42) == 42  # a unit returns what its function returned
        assert store.read(lambda r: r.run("no-such-run")) is None

    # -- compare-and-set -----------------------------------------------------------------------
    def test_put_state_replaces_a_row_only_while_it_keeps_the_expected_name_and_version(
        self, tmp_path: Path
    ) -> None:
        store = self._open(tmp_path)
        first = _state("r1-n1", "r1", "READY", "v1")
        store.unit(lambda tx: tx.put_state(first, None))
        second = _state("r1-n1", "r1", "RUNNING", "v2")
        for expect in (_state("r1-n1", "r1", "READY", "stale"), _state("r1-n1", "r1", "RUNNING", "v1")):
            with pytest.raises(ConflictError):
                store.unit(partial(_put_state, new=second, expect=expect))
            assert store.read(lambda r: r.states(["r1-n1"])) == [first]
        store.unit(lambda tx: tx.put_state(second, first))
        assert store.read(lambda r: r.states(["r1-n1"])) == [second]
        with pytest.raises(ConflictError):  # what was read before that write no longer matches
            store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1", "FINISHED", "v3"), first))
        assert store.read(lambda r: r.states(["r1-n1"])) == [second]

    def test_put_state_refuses_to_insert_a_second_state_for_a_node(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        first = _state("r1-n1", "r1")
        store.unit(lambda tx: tx.put_state(first, None))
        with pytest.raises(ConflictError):
            store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1", "READY", "v9"), None))
        assert store.read(lambda r: r.states(["r1-n1"])) == [first]

    def test_put_token_refuses_a_stale_or_missing_row_and_leaves_the_row_unchanged(
        self, tmp_path: Path
    ) -> None:
        store = self._open(tmp_path)
        token = _token("r1", "r1-n1")
        token_id = store.unit(lambda tx: tx.put_token(token))
        assert token_id > 0 and token.id == token_id  # an insert sets the id on the record
        [read] = store.read(lambda r: r.tokens([token_id]))
        moved = dataclasses.replace(read, current="r1-n2")
        assert store.unit(lambda tx: tx.put_token(moved)) == token_id
        assert moved.rev == read.rev + 1  # a replace moves the record's rev on with the row's
        [after] = store.read(lambda r: r.tokens([token_id]))
        assert (after.current, after.rev) == ("r1-n2", read.rev + 1)
        stale = dataclasses.replace(read, current="r1-n3")  # still holds the rev read first
        with pytest.raises(ConflictError):
            store.unit(lambda tx: tx.put_token(stale))
        assert store.read(lambda r: r.tokens([token_id])) == [after]
        ghost = dataclasses.replace(read, id=token_id + 1000)
        with pytest.raises(ConflictError):  # replacing a row that is not there
            store.unit(lambda tx: tx.put_token(ghost))
        assert store.read(lambda r: r.tokens([token_id + 1000])) == []

    def test_a_callback_may_not_reuse_an_idempotency_key_of_its_node(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        first = CallbackRecord(0, "r1-n1", "v1", {"n": 1}, idem_key="key-1", created=NOW)
        first_id = store.unit(lambda tx: tx.put_wait(first))
        assert first_id > 0 and first.id == first_id
        again = CallbackRecord(0, "r1-n1", "v1", {"n": 2}, idem_key="key-1", created=NOW)
        with pytest.raises(ConflictError):
            store.unit(lambda tx: tx.put_wait(again))
        stored = store.read(lambda r: r.waits(CallbackQuery(node_id="r1-n1")))
        assert [(c.id, c.data, c.idem_key) for c in stored] == [(first_id, {"n": 1}, "key-1")]
        # callbacks without a key never clash
        for n in (3, 4):
            store.unit(partial(_put_wait, wait=CallbackRecord(0, "r1-n1", "v1", {"n": n}, created=NOW)))
        stored = store.read(lambda r: r.waits(CallbackQuery(node_id="r1-n1")))
        assert [c.data["n"] for c in stored] == [1, 3, 4]

    @pytest.mark.parametrize("clash", ["root id", "node id"])
    @pytest.mark.parametrize("in_savepoint", [False, True], ids=["unit", "savepoint"])
    def test_create_run_refuses_a_used_id_and_stores_nothing_of_the_new_run(
        self, tmp_path: Path, clash: str, in_savepoint: bool
    ) -> None:
        store = self._open(tmp_path)
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        if clash == "root id":
            root, nodes = "r1", ["r1", "x-n1", "x-n2", "x-sub"]
        else:  # one node of the new run is a node of r1
            root, nodes = "r2", ["r2", "r2-n1", "r1-n2", "r2-sub"]
        fresh = [n for n in nodes if n not in _nodes("r1")]
        before = store.read(lambda r: _run_view(r, "r1", _nodes("r1")))

        if in_savepoint:

            def attempt(tx: UnitOfWork) -> None:
                with pytest.raises(ConflictError), tx.savepoint():
                    tx.create_run(_new_run(root, nodes))
                tx.put_state(_state("marker", "r9"), None)  # the unit goes on and commits

            store.unit(attempt)
            assert [s.node_id for s in store.read(lambda r: r.states(["marker"]))] == ["marker"]
        else:
            with pytest.raises(ConflictError):
                store.unit(lambda tx: tx.create_run(_new_run(root, nodes)))

        assert store.read(lambda r: _run_view(r, "r1", _nodes("r1"))) == before
        assert store.read(lambda r: r.roots_of(fresh)) == {}
        if root != "r1":
            assert store.read(lambda r: (r.run(root), r.states(root_id=root), r.tokens(root_id=root))) == (
                None, [], [],
            )  # fmt: skip
        assert store.read(lambda r: [r.context(p) for p in fresh]) == [{} for _ in fresh]

    # -- atomic units --------------------------------------------------------------------------
    def test_a_unit_that_raises_writes_nothing(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        store.unit(lambda tx: tx.create_run(_new_run("r1")))
        before = store.read(lambda r: _run_view(r, "r1", _nodes("r1")))
        timer = TimerRecord(0, "node_timeout", "r1-n1", "v1", NOW + 5)

        def doomed(tx: UnitOfWork) -> None:
            tx.create_run(_new_run("r2"))
            tx.put_state(_state("r1-n1", "r1"), None)
            [token] = tx.tokens(root_id="r1")
            token.current = "r1-n2"
            tx.put_token(token)
            tx.put_context([ContextRow("r1", "${a}", PLAIN, "changed")])
            tx.put_node_data("r1-n1", inputs=b"{}", outputs=b'{"o":1}', logs=("v1", ["undone"]))
            tx.put_wait(CallbackRecord(0, "r1-n1", "v1", {}, idem_key="k", created=NOW))
            tx.put_wait(timer)
            tx.append_events("r1", [["undone", "r1-n1", {"k": 1}]], NOW)
            tx.rollback.put_tokens("r1", {"r1-n1": "t"})
            raise _Boom

        with pytest.raises(_Boom):
            store.unit(doomed)
        assert timer.id
        assert store.read(lambda r: _run_view(r, "r1", _nodes("r1"))) == before
        assert store.read(lambda r: (r.run("r2"), r.roots_of(_nodes("r2")))) == (None, {})
        assert store.read(lambda r: r.waits(CallbackQuery(node_id="r1-n1"))) == []
        assert store.read(lambda r: (r.logs("r1-n1", None), r.rollback.tokens("r1"))) == ([], None)
        assert store.read(lambda r: r.events(0, None, 100)) == []
        # the store goes on, and a unit reads the committed rows, not those undone
        assert store.unit(lambda tx: _run_view(tx, "r1", _nodes("r1"))) == before
        assert store.unit(lambda tx: tx.take_timer(timer.id)) is None

    def test_a_savepoint_undoes_only_its_own_body(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        a1 = _state("a", "r1")

        def work(tx: UnitOfWork) -> list[StateRecord]:
            tx.put_state(a1, None)
            with pytest.raises(_Boom), tx.savepoint():
                tx.put_state(_state("b", "r1"), None)
                tx.put_state(_state("a", "r1", "FINISHED", "v2"), a1)
                tx.append_events("r1", [["undone", "b", {}]], NOW)
                raise _Boom
            seen = tx.states(["a", "b"])  # the unit reads what it had before the savepoint
            with tx.savepoint():  # a savepoint that ends normally keeps its writes
                tx.put_state(_state("c", "r1"), None)
                with pytest.raises(_Boom), tx.savepoint():  # nested: undoes the inner body only
                    tx.put_state(_state("d", "r1"), None)
                    raise _Boom
            tx.put_state(_state("e", "r1"), None)
            return seen

        assert store.unit(work) == [a1]
        names = ["a", "b", "c", "d", "e"]
        assert store.read(lambda r: r.states(names)) == [a1, _state("c", "r1"), _state("e", "r1")]
        assert store.read(lambda r: r.events(0, None, 100)) == []

    def test_a_conflict_inside_a_savepoint_lets_the_unit_go_on(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        store.unit(lambda tx: tx.put_state(_state("a", "r1"), None))

        def work(tx: UnitOfWork) -> None:
            with pytest.raises(ConflictError), tx.savepoint():
                tx.put_state(_state("b", "r1"), None)
                tx.put_state(_state("a", "r1", "READY", "v9"), None)  # "a" has a state already
            tx.put_state(_state("c", "r1"), None)

        store.unit(work)
        assert [s.node_id for s in store.read(lambda r: r.states(["a", "b", "c"]))] == ["a", "c"]

    # -- what reads see ------------------------------------------------------------------------
    def test_a_unit_sees_its_own_writes(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        other = self._open(tmp_path)
        n1 = "r1-n1"
        # created after the root's state: states(root_id=...) lists them in creation order
        stored = dataclasses.replace(_state(n1, "r1"), created=NOW + 1)

        def write(tx: UnitOfWork) -> None:
            token_id = tx.create_run(_new_run("r1"))
            tx.put_state(stored, None)
            tx.put_node_data(n1, inputs=b'{"a":1}', outputs=b'{"b":2}')
            tx.put_node_data(n1, history=stored, override={"a": 3}, logs=("v1", ["one", "two"]))
            tx.put_context([ContextRow("r1", "${c}", PLAIN, "new")])
            tx.put_wait(ScheduleRecord(0, n1, "v1", ScheduleType.POLL, token_id, due=NOW + 5))
            tx.put_wait(CallbackRecord(0, n1, "v1", {"ok": 1}, idem_key="k", created=NOW))
            tx.append_events("r1", [["started", n1], ["custom", n1, {"x": 1}]], NOW)
            tx.rollback.put_tokens("r1", {n1: "t1"})
            tx.rollback.put_job(RollbackJob("r1", n1, "r1-n2", "ANY", token_id, [n1], [n1], [], "running"))

        def look(r: Reads) -> dict[str, Any]:
            return {
                "run": r.run("r1"),
                "roots": r.roots_of([n1, "r1-sub"]),
                "states": [s.node_id for s in r.states(root_id="r1")],
                "tokens": [(t.current, t.status) for t in r.tokens(root_id="r1")],
                "node data": r.node_data(n1),
                "history": [(h.version, h.inputs, h.outputs) for h in r.histories(n1)],
                "logs": r.logs(n1, "v1"),
                "context": r.context("r1"),
                "schedules": [(s.version, s.due) for s in r.waits(ScheduleQuery(node_id=n1))],
                "callbacks": [(c.data, c.idem_key) for c in r.waits(CallbackQuery(node_id=n1))],
                "events": [(e.event_type, e.node_id) for e in r.events(0, "r1", 100)],
                "rollback": (r.rollback.tokens("r1"), r.rollback.job("r1") is not None),
            }

        def write_and_look(tx: UnitOfWork) -> tuple[dict[str, Any], dict[str, Any]]:
            write(tx)
            return look(tx), other.read(look)  # the other connection sees nothing yet

        inside, outside = store.unit(write_and_look)
        assert inside["run"] is not None and inside["run"].tree == {"id": "r1"}
        assert inside["roots"] == {n1: "r1", "r1-sub": "r1"}
        assert inside["states"] == ["r1", n1]
        assert inside["tokens"] == [("r1-n1", TokenStatus.SLEEP)]
        assert inside["node data"] == NodeData({"a": 1}, {"b": 2}, {"a": 3})
        assert inside["history"] == [("v1", {"a": 1}, {"b": 2})]
        assert inside["logs"] == ["one", "two"]
        assert inside["context"] == {"${a}": (PLAIN, {"v": 1}, None), "${c}": (PLAIN, "new", None)}
        assert inside["schedules"] == [("v1", NOW + 5)]
        assert inside["callbacks"] == [({"ok": 1}, "k")]
        assert inside["events"] == [("started", n1), ("custom", n1)]
        assert inside["rollback"] == ({n1: "t1"}, True)
        assert outside["run"] is None and outside["states"] == [] and outside["events"] == []
        assert store.read(look) == inside == other.read(look)  # committed, as the unit saw it

    def test_large_and_tagged_values_read_back_exactly_everywhere_they_are_written(
        self, tmp_path: Path
    ) -> None:
        """Values above the spill size and values of the tagged kinds (docs/components.md) come
        back equal and of the same type from node data, histories, context, callbacks and
        rollback snapshots (a store may keep a large value apart, once: rattan.model.spill)."""
        store = self._open(tmp_path)
        n1 = "r1-n1"
        big = "b" * (SPILL_BYTES + 1)
        value = {"big": big, "when": datetime(2026, 1, 2, 3, 4, 5), "id": uuid.UUID(int=9), "n": 2**70}

        def write(tx: UnitOfWork) -> None:
            token_id = tx.create_run(_new_run("r1"))
            tx.put_state(_state(n1, "r1"), None)
            tx.put_node_data(n1, inputs=dumps(value), outputs=dumps({**value, "other": big}))
            tx.put_node_data(n1, history=_state(n1, "r1"))
            tx.put_context([ContextRow("r1", "${big}", PLAIN, big), ContextRow("r1", "${v}", PLAIN, value)])
            tx.put_wait(ScheduleRecord(0, n1, "v1", ScheduleType.CALLBACK, token_id))
            tx.put_wait(CallbackRecord(0, n1, "v1", value, created=NOW))
            tx.rollback.add_snapshot(RollbackSnapshot(0, "r1", n1, "c", "1", "v1", 1, 1, value, value, None))

        store.unit(write)
        data = store.read(lambda r: r.node_data(n1))
        assert data.inputs == value and data.outputs == {**value, "other": big}
        assert type(data.inputs["when"]) is datetime and type(data.inputs["id"]) is uuid.UUID
        history = store.read(lambda r: r.histories(n1))
        assert [(h.inputs, h.outputs) for h in history] == [(value, {**value, "other": big})]
        context = store.read(lambda r: r.context("r1"))
        assert context["${big}"] == (PLAIN, big, None) and context["${v}"] == (PLAIN, value, None)
        assert [c.data for c in store.read(lambda r: r.waits(CallbackQuery(node_id=n1)))] == [value]
        snapshots = store.read(lambda r: r.rollback.snapshots("r1"))
        assert [(s.inputs, s.outputs) for s in snapshots] == [(value, value)]

    @pytest.mark.timeout(60)
    def test_reads_see_committed_data_only(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        other = self._open(tmp_path)
        first = _state("a", "r1")
        store.unit(lambda tx: tx.put_state(first, None))
        inside, release = threading.Event(), threading.Event()
        second = _state("a", "r1", "FINISHED", "v2")

        def slow(tx: UnitOfWork) -> None:
            tx.put_state(second, first)
            tx.put_state(_state("b", "r1"), None)
            tx.append_events("r1", [["e", "a", {}]], NOW)
            inside.set()
            assert release.wait(WAIT), "the test never released the unit"

        def look(r: Reads) -> tuple[list[StateRecord], list[EventRecord]]:
            return r.states(["a", "b"]), r.events(0, None, 10)

        writer = threading.Thread(target=store.unit, args=(slow,), daemon=True)
        writer.start()
        try:
            assert inside.wait(WAIT)
            assert store.read(look) == ([first], [])
            assert other.read(look) == ([first], [])
        finally:
            release.set()
            writer.join(WAIT)
        assert not writer.is_alive()
        for reader in (store, other):
            states, events = reader.read(look)
            assert states == [second, _state("b", "r1")] and [e.event_type for e in events] == ["e"]

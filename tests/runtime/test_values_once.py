"""A large value is stored once (issue 13): one output that feeds the context, the inputs of the
next node and archived passes is one row of ``value_pieces``, and goes when its last run does."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, NodeOutput, ServiceActivity, Var, build_tree
from rattan.model.codec import dumps, loads
from rattan.model.spill import SPILL_BYTES, load, spill

pytestmark = pytest.mark.timeout(60)

BIG = "x" * 2_000_000  # 2 MB: the database must stay well under two copies of it


class Emit(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.blob = BIG
        data.outputs.small = 1
        return True


class Read(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.n = len(data.inputs.b)
        return data.outputs.n == len(BIG)


@pytest.fixture
def reg() -> rattan.Registry:
    reg = rattan.Registry("values-once")
    for code, service in (("v_emit", Emit), ("v_read", Read)):
        type(
            f"C_{code}",
            (rattan.Component,),
            {"name": code, "code": code, "bound_service": service},
            registry=reg,
        )
    return reg


def _tree() -> tuple[dict[str, Any], ServiceActivity, ServiceActivity]:
    start, emit, read, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="v_emit"),
        ServiceActivity(component_code="v_read"),
        EmptyEndEvent(),
    )
    read.component.inputs.b = Var(type=Var.SPLICE, value="${blob}")
    start.extend(emit).extend(read).extend(end)
    data = Data(inputs={"${blob}": NodeOutput(type=Var.SPLICE, source_act=emit.id, source_key="blob")})
    return build_tree(start, data=data), emit, read


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def test_one_large_output_is_stored_once_and_read_back_everywhere(
    tmp_path: Path, reg: rattan.Registry
) -> None:
    db = tmp_path / "once.db"
    engine = rattan.Engine(str(db), components=reg)
    try:
        tree, emit, read = _tree()
        engine.run_pipeline(tree)
        assert engine.wait_pipeline(tree["id"], timeout=30)["state"] == "FINISHED"
    finally:
        engine.close(timeout=10)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert _count(db, "SELECT count(*) FROM value_pieces") == 1
    assert _count(db, "SELECT count(*) FROM value_refs") == 1
    assert os.path.getsize(db) < 1.5 * len(BIG)  # one copy plus the rest of the run
    again = rattan.Engine(str(db), components=reg, start=False)
    try:
        assert again.get_execution_data_outputs(emit.id)["blob"] == BIG
        assert again.get_execution_data_inputs(read.id)["b"] == BIG
        assert again.get_execution_data_outputs(read.id)["n"] == len(BIG)
        assert {cv.key: cv.value for cv in again.get_context(tree["id"])}["${blob}"] == BIG
    finally:
        again.close(timeout=10)


def test_a_piece_goes_with_the_last_run_that_refers_to_it(tmp_path: Path, reg: rattan.Registry) -> None:
    db = tmp_path / "shared.db"
    engine = rattan.Engine(str(db), components=reg)
    try:
        (first, _, _), (second, _, _) = _tree(), _tree()
        for tree in (first, second):
            engine.run_pipeline(tree)
            assert engine.wait_pipeline(tree["id"], timeout=30)["state"] == "FINISHED"
        assert _count(db, "SELECT count(*) FROM value_pieces") == 1  # both runs share the piece
        assert _count(db, "SELECT count(*) FROM value_refs") == 2
        store = engine._store
        store.unit(lambda tx: tx.delete_run(first["id"]))
        assert _count(db, "SELECT count(*) FROM value_pieces") == 1  # the second run still uses it
        assert store.read(lambda r: r.context(second["id"]))["${blob}"][1] == BIG
        store.unit(lambda tx: tx.delete_run(second["id"]))
        assert _count(db, "SELECT count(*) FROM value_pieces") == 0
        assert _count(db, "SELECT count(*) FROM value_refs") == 0
    finally:
        engine.close(timeout=10)


def test_spill_moves_only_large_top_level_values_and_keeps_their_bytes() -> None:
    small = dumps({"a": 1, "b": "y" * 100})
    assert spill(small, False) == (small, {})
    value = {"big": "z" * SPILL_BYTES, "when": datetime(2020, 1, 1), "n": 1}
    blob, pieces = spill(dumps(value), False)
    assert list(pieces.values()) == [dumps(value["big"])]  # the same bytes as the value alone
    assert len(blob) < 200
    whole, whole_pieces = spill(dumps(value["big"]), True)
    assert whole_pieces == pieces  # so the context value and the output share one piece
    assert load(blob, pieces.__getitem__) == value
    assert load(whole, pieces.__getitem__) == value["big"]
    assert loads(dumps(value)) == value

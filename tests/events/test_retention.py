"""Retention (SPEC 13 row 12): ``Engine.archive`` exports finished runs as JSON lines and deletes
them; running pipelines are untouched; the ``rattan archive`` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from events_helpers import HookLog, act, linear, recording_service, register, wait_for, wait_idle, wait_state

import rattan
from rattan.builder import Data, Var
from rattan.engine.retention import read_archive

pytestmark = pytest.mark.timeout(60)

RECORD_KEYS = {
    "archive_schema_version", "root_id", "tree", "root_pipeline_data", "states", "execution_data",
    "histories", "context", "events",
}  # fmt: skip


def _finished(engine: rattan.Engine, **run_kwargs: Any) -> tuple[str, Any]:
    a = act("pipe_example_component")
    tree, _, _ = linear(a, data=Data(inputs={"${color}": Var(type=Var.PLAIN, value="green")}))
    engine.run_pipeline(tree, **run_kwargs)
    root = str(tree["id"])
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    return root, a


def _waiting(engine: rattan.Engine, reg: rattan.Registry) -> tuple[str, Any]:
    register(reg, "r_cb", recording_service(HookLog(), schedule="callback"))
    gate = act("r_cb")
    tree, _, _ = linear(gate)
    engine.run_pipeline(tree)
    wait_state(engine, gate.id, "RUNNING")
    wait_for(lambda: engine.get_execution_data_outputs(gate.id).get("_result"))
    wait_idle(engine)
    return str(tree["id"]), gate


def _records(path: Path) -> list[dict[str, Any]]:
    with open(path, "rb") as f:
        return read_archive(f)


def test_archive_exports_and_deletes_finished_runs_only(
    engine: rattan.Engine, reg: rattan.Registry, tmp_path: Path
) -> None:
    done, a = _finished(engine, root_pipeline_data={"op": "bob"})
    running, gate = _waiting(engine, reg)
    expected_events = engine.events(done)
    assert [cv.key for cv in engine.get_context(done)] == ["${color}"]
    out = tmp_path / "archive.jsonl"

    assert engine.archive(0, str(out)) == [done]

    lines = out.read_bytes().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == RECORD_KEYS
    assert record["archive_schema_version"] == 1
    assert record["root_id"] == done
    assert record["tree"]["id"] == done
    assert record["root_pipeline_data"] == {"op": "bob"}
    assert {s["node_id"]: s["name"] for s in record["states"]}[a.id] == "FINISHED"
    assert {s["node_id"] for s in record["states"]} >= {done, a.id}
    assert record["execution_data"][a.id]["outputs"]["_result"] is True
    assert record["histories"] == []
    assert record["context"][done]["${color}"]["value"] == "green"
    archived_types = [e["event_type"] for e in record["events"]]
    assert [e["id"] for e in record["events"]] == [e["id"] for e in expected_events]
    assert archived_types == [e["event_type"] for e in expected_events]
    # deleted: states, data, events, context
    assert engine.get_state_or_none(done) is None
    assert engine.get_state_or_none(a.id) is None
    assert engine.events(done) == []
    with pytest.raises(rattan.NotFoundError):
        engine.get_exec_data(a.id)
    assert engine.get_context(done) == []
    # the running pipeline is untouched and still completes
    assert engine.get_state(running).name == "RUNNING"
    engine.callback(gate.id, engine.get_state(gate.id).version, {"late": True})
    wait_state(engine, running, "FINISHED")
    assert engine.get_execution_data_outputs(gate.id)["got"] == {"late": True}


def test_archive_deletes_every_event_of_the_run(engine: rattan.Engine) -> None:
    done, _ = _finished(engine)
    assert engine.archive(0) == [done]
    assert engine.events() == []


def test_archive_without_delete_keeps_the_runs(engine: rattan.Engine, tmp_path: Path) -> None:
    done, a = _finished(engine)
    out = tmp_path / "keep.jsonl"
    before = engine.events(done)
    assert engine.archive(0, str(out), delete=False) == [done]
    assert [r["root_id"] for r in _records(out)] == [done]
    assert engine.get_state(done).name == "FINISHED"
    assert engine.get_execution_data_outputs(a.id)["_result"] is True
    assert engine.events(done) == before


def test_runs_newer_than_the_cutoff_are_kept(engine: rattan.Engine, tmp_path: Path) -> None:
    done, _ = _finished(engine)
    out = tmp_path / "none.jsonl"
    assert engine.archive(3600, str(out)) == []
    assert out.read_bytes() == b""
    assert engine.get_state(done).name == "FINISHED"


def test_a_revoked_pipeline_is_archived(engine: rattan.Engine, reg: rattan.Registry, tmp_path: Path) -> None:
    running, gate = _waiting(engine, reg)
    engine.revoke_pipeline(running)
    wait_idle(engine)
    out = tmp_path / "revoked.jsonl"
    assert engine.archive(0, str(out)) == [running]
    record = _records(out)[0]
    assert {s["node_id"]: s["name"] for s in record["states"]}[running] == "REVOKED"
    types = [e["event_type"] for e in record["events"]]
    assert types[-2:] == ["pre_revoke_pipeline", "post_revoke_pipeline"]
    assert engine.get_state_or_none(running) is None
    assert engine.get_state_or_none(gate.id) is None


def test_archive_in_batches(engine: rattan.Engine, tmp_path: Path) -> None:
    roots = [_finished(engine)[0] for _ in range(5)]
    out = tmp_path / "batches.jsonl"
    assert sorted(engine.archive(0, str(out), batch=2)) == sorted(roots)
    assert sorted(r["root_id"] for r in _records(out)) == sorted(roots)
    for root in roots:
        assert engine.get_state_or_none(root) is None


def test_a_failed_pipeline_is_not_archived(engine: rattan.Engine, reg: rattan.Registry) -> None:
    register(reg, "r_false", recording_service(HookLog(), execute="false"))
    a = act("r_false")
    tree, _, _ = linear(a)
    engine.run_pipeline(tree)
    wait_state(engine, a.id, "FAILED")
    wait_idle(engine)
    assert engine.archive(0) == []
    assert engine.get_state(a.id).name == "FAILED"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    src = str(Path(rattan.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "rattan", *args], capture_output=True, text=True, env=env, timeout=50
    )


def test_rattan_archive_command(make_engine: Callable[..., rattan.Engine], tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    engine = make_engine(store=f"sqlite:///{db}")
    done, _ = _finished(engine)
    engine.close()
    out = tmp_path / "cli.jsonl"
    res = _cli("archive", "--db", str(db), "--older-than", "0", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"archived and deleted 1 pipeline(s) -> {out}"
    assert [r["root_id"] for r in _records(out)] == [done]
    with rattan.Engine(store=f"sqlite:///{db}", start=False) as again:
        assert again.get_state_or_none(done) is None
    # nothing left: still exit 0
    res = _cli("archive", "--db", str(db), "--older-than", "0", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"archived and deleted 0 pipeline(s) -> {out}"


def test_rattan_archive_command_keep_and_missing_db(
    make_engine: Callable[..., rattan.Engine], tmp_path: Path
) -> None:
    db = tmp_path / "keep.db"
    engine = make_engine(store=f"sqlite:///{db}")
    done, _ = _finished(engine)
    engine.close()
    out = tmp_path / "keep.jsonl"
    res = _cli("archive", "--db", str(db), "--older-than", "0", "--out", str(out), "--keep")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"archived 1 pipeline(s) -> {out}"
    with rattan.Engine(store=f"sqlite:///{db}", start=False) as again:
        assert again.get_state(done).name == "FINISHED"
    res = _cli("archive", "--db", str(tmp_path / "missing.db"), "--older-than", "0")
    assert res.returncode == 3
    assert not (tmp_path / "missing.db").exists()


def test_retention_setting_archives_in_the_background(
    make_engine: Callable[..., rattan.Engine], tmp_path: Path
) -> None:
    folder = tmp_path / "archives"
    engine = make_engine(retention_seconds=0, retention_archive_dir=str(folder), retention_interval=0.05)
    a = act("pipe_example_component")
    tree, _, _ = linear(a)
    engine.run_pipeline(tree)
    root = str(tree["id"])
    wait_for(lambda: engine.get_state_or_none(root) is None and folder.exists() and list(folder.iterdir()))
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].name.startswith("rattan-archive-") and files[0].suffix == ".jsonl"
    wait_for(lambda: [r["root_id"] for r in _records(files[0])] == [root])

"""The durable event log (``Engine.events``): schema, order, cursor, filtering, and a consumer
process that is killed and restarted catching up with every event exactly once."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from events_helpers import HookLog, act, linear, recording_service, register, wait_for, wait_idle, wait_state

import rattan

pytestmark = pytest.mark.timeout(60)

KEYS = {"id", "event_type", "data", "node_id", "root_id", "schema_version", "created_time"}


def _run_one(engine: rattan.Engine, code: str = "pipe_example_component") -> tuple[str, dict[str, Any], Any]:
    a = act(code)
    tree, start, end = linear(a)
    engine.run_pipeline(tree)
    return str(tree["id"]), {"start": start, "a": a, "end": end}, tree


def test_events_of_a_run_in_order_with_schema(engine: rattan.Engine) -> None:
    root, n, _ = _run_one(engine)
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    events = engine.events(root)
    assert [(e["event_type"], e["node_id"]) for e in events] == [
        ("pre_prepare_run_pipeline", None),
        ("post_prepare_run_pipeline", None),
        ("node_finish", n["start"].id),
        ("node_enter", n["a"].id),
        ("pre_execute", n["a"].id),
        ("post_execute", n["a"].id),
        ("node_finish", n["a"].id),
        ("node_finish", n["end"].id),
        ("pipeline_finish", n["end"].id),
    ]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for e in events:
        assert set(e) == KEYS
        assert isinstance(e["id"], int)
        assert e["root_id"] == root
        assert e["schema_version"] == 1
        assert isinstance(e["created_time"], datetime.datetime)
        assert e["created_time"].tzinfo is not None
        assert e["created_time"].utcoffset() == datetime.timedelta(0)
    assert events[-1]["data"] == {"pipeline_id": root, "root_pipeline_id": root, "node_id": n["end"].id}
    assert events[3]["data"] == {"root_pipeline_id": root, "node_id": n["a"].id}


def test_the_unfiltered_log_names_every_events_pipeline(engine: rattan.Engine) -> None:
    root, _, _ = _run_one(engine)
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert {e["root_id"] for e in engine.events()} == {root}


def test_cursor_returns_only_newer_events(engine: rattan.Engine) -> None:
    first, _, _ = _run_one(engine)
    wait_state(engine, first, "FINISHED")
    wait_idle(engine)
    before = engine.events()
    cursor = before[-1]["id"]
    assert engine.events(after=cursor) == []
    second, _, _ = _run_one(engine)
    wait_state(engine, second, "FINISHED")
    wait_idle(engine)
    newer = engine.events(after=cursor)
    assert newer
    assert all(e["id"] > cursor for e in newer)
    assert [e["event_type"] for e in newer][-1] == "pipeline_finish"
    assert engine.events() == before + newer
    # any id works as a cursor, also one in the middle of a stored batch
    every = engine.events()
    for i, e in enumerate(every):
        assert engine.events(after=e["id"]) == every[i + 1 :]


def test_limit_pages_through_the_log(engine: rattan.Engine) -> None:
    roots = [_run_one(engine)[0] for _ in range(3)]
    for root in roots:
        wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    every = engine.events()
    pages: list[dict[str, Any]] = []
    cursor = 0
    while True:
        page = engine.events(after=cursor, limit=4)
        assert len(page) <= 4
        if not page:
            break
        pages += page
        cursor = page[-1]["id"]
    assert pages == every
    assert len(every) == 27


def test_filtering_by_pipeline(engine: rattan.Engine) -> None:
    a, _, _ = _run_one(engine)
    b, _, _ = _run_one(engine)
    for root in (a, b):
        wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    only_a = engine.events(a)
    assert only_a and {e["root_id"] for e in only_a} == {a}
    assert only_a == [e for e in engine.events() if e["root_id"] == a]
    assert engine.events("no-such-pipeline") == []
    assert engine.events(a, after=only_a[-1]["id"]) == []


def test_subprocess_events_belong_to_the_root(engine: rattan.Engine) -> None:
    from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, SubProcess, build_tree

    s_start, s_act, s_end = EmptyStartEvent(), act("pipe_example_component"), EmptyEndEvent()
    s_start.extend(s_act).extend(s_end)
    sub = SubProcess(start=s_start, data=Data())
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(sub).extend(end)
    tree = build_tree(start)
    root = str(tree["id"])
    engine.run_pipeline(tree)
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    events = engine.events(root)
    assert [e["node_id"] for e in events if e["event_type"] == "node_finish"] == [
        start.id, sub.id, s_start.id, s_act.id, s_end.id, end.id,
    ]  # fmt: skip
    assert [e["event_type"] for e in events].count("pipeline_finish") == 1


def test_polling_while_pipelines_run_sees_every_event_once(engine: rattan.Engine) -> None:
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        cursor = 0
        try:
            while True:
                done = stop.is_set()
                page = engine.events(after=cursor, limit=7)
                seen.extend(page)
                if page:
                    cursor = page[-1]["id"]
                elif done:
                    return
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    roots = [_run_one(engine)[0] for _ in range(15)]
    for root in roots:
        wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    stop.set()
    t.join(30)
    assert not t.is_alive() and not errors
    every = engine.events(limit=100_000)
    assert [e["id"] for e in seen] == [e["id"] for e in every]
    assert seen == every
    assert len(every) == 15 * 9


def test_cursor_never_goes_backwards_after_an_archive(engine: rattan.Engine, tmp_path: Path) -> None:
    # a consumer keeps the last id; deleting the newest rows must not let new events reuse ids
    first, _, _ = _run_one(engine)
    wait_state(engine, first, "FINISHED")
    wait_idle(engine)
    cursor = engine.events()[-1]["id"]
    assert engine.archive(0) == [first]
    second, _, _ = _run_one(engine)
    wait_state(engine, second, "FINISHED")
    wait_idle(engine)
    newer = engine.events(after=cursor)
    assert [e["event_type"] for e in newer][-1] == "pipeline_finish"
    assert len(newer) == 9
    assert {e["root_id"] for e in newer} == {second}


# -- a consumer process that is killed and restarted -----------------------------------------------
CONSUMER = textwrap.dedent(
    """
    import json, os, sys, time
    import rattan

    db, cursor_file, seen_file, stop_file = sys.argv[1:5]

    def recover_cursor():
        # the seen file is the truth: drop a torn last line, then start after its last id
        cursor = 0
        if os.path.exists(cursor_file):
            with open(cursor_file) as f:
                cursor = int(f.read() or 0)
        if os.path.exists(seen_file):
            with open(seen_file, "rb") as f:
                data = f.read()
            keep = data[: data.rfind(b"\\n") + 1]
            if keep != data:
                with open(seen_file, "wb") as f:
                    f.write(keep)
            lines = keep.splitlines()
            if lines:
                cursor = max(cursor, json.loads(lines[-1])["id"])
        return cursor

    cursor = recover_cursor()
    engine = rattan.Engine(store="sqlite:///" + db, start=False)
    with open(seen_file, "ab") as out:
        while True:
            stopping = os.path.exists(stop_file)
            page = engine.events(after=cursor, limit=5)
            for e in page:
                line = {"id": e["id"], "type": e["event_type"], "root": e["root_id"]}
                out.write(json.dumps(line).encode() + b"\\n")
            if page:
                out.flush()
                os.fsync(out.fileno())
                cursor = page[-1]["id"]
                tmp = cursor_file + ".tmp"
                with open(tmp, "w") as f:
                    f.write(str(cursor))
                os.replace(tmp, cursor_file)
            elif stopping:
                break
            else:
                time.sleep(0.01)
    engine.close()
    """
)


def _start_consumer(script: Path, db: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    src = str(Path(rattan.__file__).resolve().parents[1])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    with open(tmp_path / "consumer.err", "ab") as err:
        return subprocess.Popen(
            [sys.executable, str(script), str(db), str(tmp_path / "cursor"), str(tmp_path / "seen.jsonl"),
             str(tmp_path / "stop")],
            env=env, stderr=err,
        )  # fmt: skip


def _seen(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "seen.jsonl"
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[:-1]]  # a torn last line is not counted


def test_a_killed_consumer_process_catches_up_exactly_once(
    make_engine: Callable[..., rattan.Engine], reg: rattan.Registry, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    engine = make_engine(store=f"sqlite:///{db}")
    register(reg, "log_poll", recording_service(HookLog(), schedule="poll", polls=3))
    script = tmp_path / "consumer.py"
    script.write_text(CONSUMER)
    roots: list[str] = []

    def batch(n: int) -> None:
        for i in range(n):
            roots.append(_run_one(engine, "log_poll" if i % 2 else "pipe_example_component")[0])

    consumer = _start_consumer(script, db, tmp_path)
    try:
        batch(6)
        wait_for(lambda: len(_seen(tmp_path)) >= 10, timeout=30)
        batch(4)
        os.kill(consumer.pid, signal.SIGKILL)  # down in the middle of the traffic
        assert consumer.wait(10) == -signal.SIGKILL
        killed_at = len(_seen(tmp_path))
        batch(6)  # produced while the consumer is down
        for root in roots:
            wait_state(engine, root, "FINISHED", timeout=30)
        wait_idle(engine)
        assert len(engine.events(limit=100_000)) > killed_at
        consumer = _start_consumer(script, db, tmp_path)
        batch(4)
        for root in roots:
            wait_state(engine, root, "FINISHED", timeout=30)
        wait_idle(engine)
        (tmp_path / "stop").write_text("")
        assert consumer.wait(30) == 0, (tmp_path / "consumer.err").read_text()
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
    every = engine.events(limit=100_000)
    seen = _seen(tmp_path)
    assert [s["id"] for s in seen] == [e["id"] for e in every]
    assert [(s["type"], s["root"]) for s in seen] == [(e["event_type"], e["root_id"]) for e in every]
    assert len({s["id"] for s in seen}) == len(seen)
    assert {e["root_id"] for e in every if e["event_type"] == "pipeline_finish"} == set(roots)
    assert int((tmp_path / "cursor").read_text()) == every[-1]["id"]


def test_plain_node_events_are_stored_compactly_and_read_back_whole(engine: rattan.Engine) -> None:
    root, n, _ = _run_one(engine)
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    with engine.core.store.raw() as conn:
        blobs = [json.loads(r[0]) for r in conn.execute("SELECT data FROM events WHERE root_id=?", (root,))]
    entries = [e for blob in blobs for e in blob]
    # a payload of nothing but {root_pipeline_id, node_id} is stored as [type, node_id] ...
    assert ["node_enter", n["a"].id] in entries
    assert ["post_execute", n["a"].id] in entries
    # ... any other payload whole
    finish = [e for e in entries if e[0] == "pipeline_finish"]
    assert finish == [["pipeline_finish", n["end"].id, {"pipeline_id": root, "root_pipeline_id": root,
                                                         "node_id": n["end"].id}]]  # fmt: skip
    by_type = {(e["event_type"], e["node_id"]): e["data"] for e in engine.events(root)}
    assert by_type[("node_enter", n["a"].id)] == {"root_pipeline_id": root, "node_id": n["a"].id}
    assert by_type[("post_execute", n["a"].id)] == {"root_pipeline_id": root, "node_id": n["a"].id}


def test_rows_written_with_full_payloads_still_read(engine: rattan.Engine) -> None:
    # rows from before the compact form hold [type, node_id, payload] for every event
    with engine.core.store.raw() as conn:
        conn.execute(
            "INSERT INTO events(root_id, node_id, event_type, data, schema, created) VALUES (?,?,?,?,?,?)",
            ("pold", "nold", "node_enter",
             json.dumps([["node_enter", "nold", {"root_pipeline_id": "pold", "node_id": "nold"}],
                         ["node_finish", "nold", {"root_pipeline_id": "pold", "node_id": "nold"}]]).encode(),
             1, 1.0),
        )  # fmt: skip
    events = engine.events("pold")
    assert [(e["event_type"], e["node_id"], e["data"]) for e in events] == [
        ("node_enter", "nold", {"root_pipeline_id": "pold", "node_id": "nold"}),
        ("node_finish", "nold", {"root_pipeline_id": "pold", "node_id": "nold"}),
    ]
    assert events[0]["id"] + 1 == events[1]["id"]


def test_archiving_the_newest_runs_leaves_one_empty_placeholder_and_no_visible_event(
    engine: rattan.Engine,
) -> None:
    # the placeholder keeps the id high-water mark; it is not an event and never piles up
    for _ in range(2):
        root, _, _ = _run_one(engine)
        wait_state(engine, root, "FINISHED")
        wait_idle(engine)
        top = engine.events()[-1]["id"]
        assert engine.archive(0) == [root]
        assert engine.events() == []
        with engine.core.store.raw() as conn:
            rows = conn.execute("SELECT root_id, event_type, data FROM events").fetchall()
        assert rows == [("", "", b"[]")]
    third, _, _ = _run_one(engine)
    wait_state(engine, third, "FINISHED")
    wait_idle(engine)
    events = engine.events()
    assert events[0]["id"] > top
    assert {e["root_id"] for e in events} == {third}

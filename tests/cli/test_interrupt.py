"""Ctrl-C: ``rattan demo`` and ``rattan archive`` stop with exit code 130 and one line saying
what the store keeps, never a traceback; the store stays readable and consistent."""

from __future__ import annotations

import contextlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import cli
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.engine import retention
from rattan.testing import FakeClock
from waits import wait_state

pytestmark = pytest.mark.timeout(90)

WAIT = 10.0  # bounded waits of this test (seconds)

# A shell that starts a job in the background makes it ignore SIGINT, and the child would inherit
# that: give it Python's usual handler, then run ``python -m rattan`` as usual.
RUN_RATTAN = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'rattan'; runpy.run_module('rattan', run_name='__main__', alter_sys=True)"
)


@contextlib.contextmanager
def _demo(*args: str, cwd: Path) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None]]]:
    """``rattan demo ARGS`` running, with its stdout lines arriving in a queue."""
    with subprocess.Popen(
        [sys.executable, "-c", RUN_RATTAN, "demo", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            yield proc, lines
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=WAIT)
            reader.join(timeout=WAIT)


def _read_until(lines: queue.Queue[str | None], needle: str) -> list[str]:
    """The lines read up to and including the first one containing ``needle``."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        assert line is not None, f"the demo ended before {needle!r}: {''.join(seen)}"
        seen.append(line)
        if needle in line:
            return seen


def _root_of(first_line: str) -> str:
    found = re.match(r"rattan \S+: running demo pipeline (\w+) \(store: ", first_line)
    assert found, first_line
    return found.group(1)


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=WAIT * 3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=WAIT)
        raise
    assert proc.stderr is not None
    return code, proc.stderr.read()


def test_ctrl_c_during_the_demo_leaves_the_pipeline_saved_and_exits_130(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    # wait_for_job waits a minute: the interrupt lands while the pipeline is waiting on it
    with _demo("--db", str(db), "--wait", "60", "--timeout", "80", cwd=tmp_path) as (proc, lines):
        root = _root_of(_read_until(lines, "wait_for_job RUNNING")[0])
        code, err = _interrupt(proc)
    assert code == cli.EXIT_INTERRUPTED, err
    assert err == (
        f"interrupted: pipeline {root} is still RUNNING; it is saved in {db.resolve()} "
        "and resumes the next time rattan demo runs on that file\n"
    )
    with rattan.Engine(store=str(db), start=False) as engine:
        states = engine.get_pipeline_states(root)[root]
        assert states["state"] == "RUNNING"
        children = Counter(str(child["state"]) for child in states["children"].values())
    # start, prepare, choose, big_batch, choice_done, fan_out, notify, audit; wait_for_job waits
    assert children == {"FINISHED": 8, "RUNNING": 1}


def test_the_next_demo_run_on_the_file_finishes_an_interrupted_pipeline(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    # its job is due 5 s after it starts: the interrupt comes first (as soon as the job waits)
    with _demo("--db", str(db), "--wait", "5", cwd=tmp_path) as (proc, lines):
        root = _root_of(_read_until(lines, "wait_for_job RUNNING")[0])
        code, err = _interrupt(proc)
    assert code == cli.EXIT_INTERRUPTED, err
    # the next demo's own job waits 6 s: long enough for the first pipeline's job to come due
    again = subprocess.run(
        [sys.executable, "-m", "rattan", "demo", "--db", str(db), "--wait", "6"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT * 6,
        check=False,
    )
    assert again.returncode == cli.EXIT_OK, again.stdout + again.stderr
    with rattan.Engine(store=str(db), start=False) as engine:
        assert engine.get_state(root).name == "FINISHED"


def test_ctrl_c_during_a_demo_in_memory_says_nothing_was_kept(tmp_path: Path) -> None:
    with _demo("--db", ":memory:", "--wait", "60", "--timeout", "80", cwd=tmp_path) as (proc, lines):
        root = _root_of(_read_until(lines, "wait_for_job RUNNING")[0])
        code, err = _interrupt(proc)
    assert code == cli.EXIT_INTERRUPTED, err
    assert err == f"interrupted: pipeline {root} ran in memory only (--db :memory:) and is gone\n"
    assert list(tmp_path.iterdir()) == []


def _finished_long_ago(db: Path, n: int) -> list[str]:
    roots = []
    with rattan.Engine(store=str(db), clock=FakeClock(start=time.time() - 10 * 86400)) as engine:
        for _ in range(n):
            start, act, end = (
                EmptyStartEvent(),
                ServiceActivity(component_code="example_component"),
                EmptyEndEvent(),
            )
            start.extend(act).extend(end)
            tree = build_tree(start)
            engine.run_pipeline(tree)
            roots.append(str(tree["id"]))
        for root in roots:
            wait_state(engine, root, "FINISHED")
    return roots


def test_ctrl_c_during_archive_says_how_far_it_got(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "runs.db"
    out = tmp_path / "a.jsonl"
    roots = _finished_long_ago(db, 3)
    real_delete = retention.delete_run
    calls: list[str] = []

    def delete_then_interrupt(step: Any, root_id: str) -> None:
        calls.append(root_id)
        if len(calls) == 2:  # Ctrl-C while the second run is being deleted
            raise KeyboardInterrupt
        real_delete(step, root_id)

    monkeypatch.setattr(retention, "delete_run", delete_then_interrupt)
    args = ["archive", "--db", str(db), "--older-than", "5", "--out", str(out)]
    assert cli.main(args) == cli.EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == (
        f"interrupted: 1 of 3 pipeline(s) deleted (exported to {out}); 2 still in {db}: "
        "run the command again to finish"
    )
    with rattan.Engine(store=str(db), start=False) as engine:
        left = [r for r in roots if engine.get_state_or_none(r) is not None]
    assert left == [r for r in roots if r != calls[0]]
    # the run interrupted while being deleted was already exported: running again exports it anew
    assert len(out.read_text().splitlines()) == 2
    monkeypatch.setattr(retention, "delete_run", real_delete)
    assert cli.main(args) == cli.EXIT_OK
    assert capsys.readouterr().out == f"archived and deleted 2 pipeline(s) -> {out}\n"
    assert len(out.read_text().splitlines()) == 4

"""Crash recovery under SIGKILL (SPEC 13 rows 3, 6, 8, 9; Appendix D.2).

A child process (``crashy_worker.py``) runs a pipeline set on a SQLite file and is killed with
SIGKILL at random moments; new children resume the file and are killed again; a final, uninterrupted
in-process ``rattan.Engine`` settles everything. Then:

* nothing is lost: every pipeline whose ``run_pipeline`` returned exists;
* nothing is stuck: every pipeline is FINISHED, except that a non-idempotent node interrupted by a
  kill is FAILED with ``ex_data`` starting ``execution interrupted``; no node is RUNNING; no token or
  poll is left live in the store;
* no completed work is redone: after each kill the store is snapshotted; a node FINISHED (or FAILED)
  in a snapshot is never executed or polled again; a node runs ``execute`` at most once per process
  and at most ``1 + (kills that caught it executing)`` times in all; a non-idempotent node runs it at
  most once, ever;
* the results equal a clean run's (states, outputs, context of every pipeline).

The RNG seed is printed; set ``RATTAN_RECOVERY_SEED`` to replay the kill moments (thread timing is
not replayable, the kill delays are).
"""

from __future__ import annotations

import copy
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import recovery_components as rc

import rattan

HERE = Path(__file__).resolve().parent
WORKER = HERE / "crashy_worker.py"
SEED = int(os.environ.get("RATTAN_RECOVERY_SEED") or random.SystemRandom().randrange(2**31))
MIXED_TAG = "r"
SETTLE_TIMEOUT = 30.0
INTERRUPTED_PREFIX = "execution interrupted"
ERROR_MARKERS = ("Traceback", "engine error", "worker failed", "could not record")


# -- store snapshots ---------------------------------------------------------------------------
@dataclass
class Snapshot:
    """The store as a kill left it (nothing writes to it until the next process starts)."""

    states: dict[str, tuple[str, str]] = field(default_factory=dict)  # node -> (state, version)
    executing: set[tuple[str, str]] = field(default_factory=set)  # (node, version) with execute in flight
    schedules: dict[str, tuple[int, float | None, bool, bool]] = field(default_factory=dict)

    def running_executing(self, node_id: str) -> bool:
        st = self.states.get(node_id)
        return st is not None and st[0] == "RUNNING" and (node_id, st[1]) in self.executing


def snapshot(db: Path) -> Snapshot:
    snap = Snapshot()
    if not db.exists():
        return snap
    conn = sqlite3.connect(str(db), timeout=10)
    try:
        try:
            rows = conn.execute("SELECT node_id, name, version FROM states").fetchall()
        except sqlite3.OperationalError:  # killed before the schema existed
            return snap
        snap.states = {n: (s, v) for n, s, v in rows}
        for cur, ver in conn.execute("SELECT current, executing FROM processes WHERE executing IS NOT NULL"):
            snap.executing.add((cur, ver))
        for node, times, due, fin, exp in conn.execute(
            "SELECT node_id, times, due, finished, expired FROM schedules"
        ):
            snap.schedules[node] = (int(times), due, bool(fin), bool(exp))
    finally:
        conn.close()
    return snap


def live_rows(db: Path) -> tuple[list[Any], list[Any], list[Any]]:
    """Tokens not parked/finished, live schedules, unapplied callbacks (all must be empty)."""
    conn = sqlite3.connect(str(db), timeout=10)
    try:
        procs = conn.execute(
            "SELECT id, root_id, current, status, executing FROM processes"
            " WHERE status NOT IN ('done', 'failed') OR executing IS NOT NULL"
        ).fetchall()
        scheds = conn.execute(
            "SELECT id, node_id, times, due FROM schedules WHERE finished=0 AND expired=0"
        ).fetchall()
        cbs = conn.execute("SELECT id, node_id FROM callbacks WHERE applied=0").fetchall()
    finally:
        conn.close()
    return procs, scheds, cbs


# -- child processes ---------------------------------------------------------------------------
@dataclass
class Kill:
    pid: int
    delay: float
    alldone: bool
    snap: Snapshot


class Crasher:
    """Starts workers on one store and SIGKILLs them; remembers every kill."""

    def __init__(self, tmp: Path, tag: str, which: str, workers: int = 4) -> None:
        self.tmp = tmp
        self.db = tmp / "run.db"
        self.journal = tmp / "journal.log"
        self.tag = tag
        self.which = which
        self.workers = workers
        self.kills: list[Kill] = []
        self.children = 0

    def spawn(self, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
        self.children += 1
        out = self.tmp / f"child-{self.children}.out"
        err = self.tmp / f"child-{self.children}.err"
        cmd = [
            sys.executable, str(WORKER), "--db", str(self.db), "--journal", str(self.journal),
            "--tag", self.tag, "--set", self.which, "--workers", str(self.workers), *extra,
        ]  # fmt: skip
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL)
        return proc, out

    def kill(self, proc: subprocess.Popen[bytes], out: Path, delay: float) -> Kill:
        if proc.poll() is not None:
            raise AssertionError(
                f"worker {proc.pid} exited by itself (rc {proc.returncode}):\n{self.child_errors()}"
            )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return self.record(proc, out, delay)

    def record(self, proc: subprocess.Popen[bytes], out: Path, delay: float) -> Kill:
        assert proc.returncode == -signal.SIGKILL, f"worker rc {proc.returncode}:\n{self.child_errors()}"
        kill = Kill(proc.pid, delay, b"ALLDONE" in out.read_bytes(), snapshot(self.db))
        self.kills.append(kill)
        return kill

    def spawn_and_kill(self, delay: float, *extra: str) -> Kill:
        proc, out = self.spawn(*extra)
        try:
            time.sleep(delay)
            return self.kill(proc, out, delay)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    def child_errors(self) -> str:
        texts = []
        for path in sorted(self.tmp.glob("child-*.err")):
            text = path.read_text(errors="replace")
            if any(m in text for m in ERROR_MARKERS):
                texts.append(f"--- {path.name}\n{text}")
        return "\n".join(texts)


def wait_for(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.01)


# -- results -----------------------------------------------------------------------------------
@dataclass
class Result:
    """Everything compared between a crashed run and a clean one, per pipeline."""

    states: dict[str, str]
    outputs: dict[str, dict[str, Any]]
    context: dict[str, dict[str, Any]]
    root_state: str


def collect(engine: rattan.Engine, pipes: list[rc.Pipe]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for pipe in pipes:
        states = engine.get_pipeline_states(pipe.root_id)
        assert states, f"pipeline {pipe.root_id} ({pipe.kind}) was lost"
        top = states[pipe.root_id]
        children = {nid: c["state"] for nid, c in top["children"].items()}
        outputs = {nid: engine.get_execution_data_outputs(nid) for nid in pipe.codes if nid in children}
        pipeline_ids = [pipe.root_id] + [nid for nid in children if nid.endswith("sp")]
        context = {
            pid: {cv.key: (cv.type, cv.value, cv.code) for cv in engine.get_context(pid)}
            for pid in pipeline_ids
        }
        results[pipe.root_id] = Result(children, outputs, context, top["state"])
    return results


def settle(engine: rattan.Engine, pipes: list[rc.Pipe]) -> None:
    def done() -> bool:
        return all(rc.settled(engine, p) for p in pipes)

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not done():
        if time.monotonic() > deadline:
            stuck = {
                p.root_id: {
                    n: c["state"]
                    for n, c in engine.get_pipeline_states(p.root_id)[p.root_id]["children"].items()
                }
                for p in pipes
                if engine.get_pipeline_states(p.root_id) and not rc.settled(engine, p)
            }
            raise AssertionError(f"pipelines not settled within {SETTLE_TIMEOUT}s (stuck): {stuck}")
        time.sleep(0.01)
    assert engine.wait_idle(10), "engine not idle after every pipeline settled"


def clean_run(tmp: Path, pipes: list[rc.Pipe]) -> dict[str, Result]:
    """The reference: the same pipelines on a fresh store, no crash, no journal."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(rc.JOURNAL_ENV, raising=False)
        engine = rattan.Engine(f"sqlite:///{tmp / 'reference.db'}", components=rc.REG)
        try:
            for pipe in pipes:
                engine.run_pipeline(copy.deepcopy(pipe.tree))
            settle(engine, pipes)
            results = collect(engine, pipes)
        finally:
            engine.close(timeout=10)
    for root, res in results.items():
        assert res.root_state == "FINISHED", f"reference run of {root} did not finish: {res.states}"
    return results


@pytest.fixture(scope="module")
def mixed_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    return clean_run(tmp_path_factory.mktemp("reference"), rc.build_named(MIXED_TAG, "mixed"))


@pytest.fixture(autouse=True)
def _no_engine_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Engine-side errors are logged at ERROR by the parent's in-process engine: none allowed."""
    caplog.set_level("WARNING", logger="rattan")
    yield
    errors = [
        r for r in caplog.records if r.name.startswith("rattan") and r.levelname in ("ERROR", "CRITICAL")
    ]
    assert not errors, "engine logged errors:\n" + "\n".join(r.getMessage() for r in errors)


# -- the final recovery and the checks ---------------------------------------------------------
def final_recovery(
    crasher: Crasher, pipes: list[rc.Pipe], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Result]:
    """Resume the store in-process (uninterrupted), submit what no child got to, settle, collect."""
    monkeypatch.setenv(rc.JOURNAL_ENV, str(crasher.journal))
    engine = rattan.Engine(f"sqlite:///{crasher.db}", components=rc.REG, start=False)
    try:
        # submission is durable: every run_pipeline that returned left its pipeline in the store
        submitted = {e.node_id for e in rc.read_journal(crasher.journal) if e.kind == "submitted"}
        lost = sorted(r for r in submitted if not engine.has_state(r))
        assert not lost, f"submitted pipelines lost by a crash: {lost}"
        engine.start()
        for pipe in pipes:
            if not engine.has_state(pipe.root_id):
                engine.run_pipeline(copy.deepcopy(pipe.tree))
        settle(engine, pipes)
        results = collect(engine, pipes)
    finally:
        engine.close(timeout=10)
    return results


def check_results(
    pipes: list[rc.Pipe], results: dict[str, Result], reference: dict[str, Result]
) -> list[str]:
    """Final states and data; returns the nodes failed as interrupted (non-idempotent only)."""
    interrupted: list[str] = []
    for pipe in pipes:
        res, ref = results[pipe.root_id], reference[pipe.root_id]
        running = sorted(n for n, s in res.states.items() if s == "RUNNING")
        assert not running, f"{pipe.root_id}: nodes left RUNNING {running}"
        if res.root_state != "FINISHED":
            failed = sorted(n for n, s in res.states.items() if s == "FAILED")
            assert pipe.kind == "once", f"{pipe.root_id} ({pipe.kind}) did not finish: {res.states}"
            assert failed == [f"{pipe.root_id}a1"], f"{pipe.root_id}: unexpected failed nodes {failed}"
            ex_data = res.outputs[failed[0]].get("ex_data", "")
            assert str(ex_data).startswith(INTERRUPTED_PREFIX), f"{failed[0]} failed with {ex_data!r}"
            assert res.root_state == "RUNNING", res.root_state
            # everything before the interrupted node equals the clean run; nothing after it ran
            assert set(res.states) == {f"{pipe.root_id}s", f"{pipe.root_id}a0", failed[0]}, res.states
            assert res.outputs[f"{pipe.root_id}a0"] == ref.outputs[f"{pipe.root_id}a0"]
            interrupted.append(failed[0])
            continue
        assert res.states == ref.states, f"{pipe.root_id}: states differ from a clean run"
        assert res.outputs == ref.outputs, f"{pipe.root_id}: outputs differ from a clean run"
        assert res.context == ref.context, f"{pipe.root_id}: context differs from a clean run"
    return interrupted


def check_journal(
    pipes: list[rc.Pipe], results: dict[str, Result], kills: list[Kill], entries: list[rc.Entry]
) -> None:
    """Execution counts against the kills that could justify a re-run (see the module docstring)."""
    codes = rc.all_activity_ids(pipes)
    final_pid = os.getpid()
    order = {k.pid: i for i, k in enumerate(kills)}
    order[final_pid] = len(kills)
    unknown = {e.pid for e in entries} - set(order)
    assert not unknown, f"journal lines from unknown processes {unknown}"
    begins: dict[str, list[rc.Entry]] = {}
    ends: Counter[str] = Counter()
    polls: dict[str, list[rc.Entry]] = {}
    for e in entries:
        if e.kind == "execute-begin":
            begins.setdefault(e.node_id, []).append(e)
        elif e.kind == "execute":
            ends[e.node_id] += 1
        elif e.kind == "schedule-begin":
            polls.setdefault(e.node_id, []).append(e)
    states = {n: s for r in results.values() for n, s in r.states.items()}
    for node, code in codes.items():
        node_begins = begins.get(node, [])
        per_pid = Counter(e.pid for e in node_begins)
        twice = {p: c for p, c in per_pid.items() if c > 1}
        assert not twice, f"{node}: execute ran more than once in one process {twice}"
        # a node settled (FINISHED/FAILED) in the store at kill i is never executed or polled later
        for i, kill in enumerate(kills):
            st = kill.snap.states.get(node)
            if st is None or st[0] not in ("FINISHED", "FAILED"):
                continue
            later = [e for e in node_begins + polls.get(node, []) if order[e.pid] > i]
            assert not later, f"{node} was {st[0]} at kill #{i + 1} but ran again: {later}"
        caught = sum(1 for k in kills if k.snap.running_executing(node))
        assert len(node_begins) <= 1 + caught, (
            f"{node}: {len(node_begins)} executions, only {caught} kills caught it executing"
        )
        if code not in rc.IDEMPOTENT_CODES:
            assert len(node_begins) <= 1, f"non-idempotent {node} executed {len(node_begins)} times"
            if states.get(node) == "FAILED":
                assert caught >= 1, f"{node} failed as interrupted but no kill caught it executing"
        if states.get(node) == "FINISHED":
            assert ends[node] >= 1, f"{node} FINISHED without a completed execute in the journal"
            if code not in rc.IDEMPOTENT_CODES:
                assert len(node_begins) == 1 and ends[node] == 1, (node, node_begins, ends[node])
        if code in rc.POLL_CODES and states.get(node) == "FINISHED":
            n_polls = len(polls.get(node, []))
            during = sum(1 for k in kills if k.snap.states.get(node, ("", ""))[0] == "RUNNING")
            assert 2 <= n_polls <= 2 + during, f"{node}: {n_polls} polls with {during} kills while it waited"


def report(name: str, crasher: Crasher, entries: list[rc.Entry], started: float) -> None:
    inflight = 0
    for k in crasher.kills:
        open_calls = Counter()
        for e in entries:
            if e.pid == k.pid and e.kind in ("execute-begin", "schedule-begin"):
                open_calls[(e.node_id, e.kind.split("-")[0])] += 1
            elif e.pid == k.pid and e.kind in ("execute", "schedule"):
                open_calls[(e.node_id, e.kind)] -= 1
        n = sum(1 for v in open_calls.values() if v > 0)
        inflight += n > 0
        print(
            f"  kill pid={k.pid} after {k.delay:.3f}s alldone={k.alldone} calls in flight={n} "
            f"running={sum(1 for s in k.snap.states.values() if s[0] == 'RUNNING')}"
        )
    print(
        f"{name}: seed={SEED} kills={len(crasher.kills)} (with user code in flight: {inflight}) "
        f"{time.monotonic() - started:.1f}s"
    )


# -- tests -------------------------------------------------------------------------------------
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case,workers", [(0, 4), (1, 2), (2, 8), (3, 1)])
def test_random_sigkills_lose_nothing_and_redo_nothing(
    case: int,
    workers: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mixed_reference: dict[str, Result],
) -> None:
    started = time.monotonic()
    rng = random.Random(f"{SEED}-{case}")
    print(f"seed {SEED} (case {case}, {workers} workers): RATTAN_RECOVERY_SEED={SEED} to replay")
    pipes = rc.build_named(MIXED_TAG, "mixed")
    crasher = Crasher(tmp_path, MIXED_TAG, "mixed", workers)
    for _ in range(6):
        crasher.spawn_and_kill(rng.uniform(0.05, 1.5), "--stagger", "0.06")
    results = final_recovery(crasher, pipes, monkeypatch)
    entries = rc.read_journal(crasher.journal)
    report(f"random kills case {case}", crasher, entries, started)
    assert not crasher.child_errors(), crasher.child_errors()
    interrupted = check_results(pipes, results, mixed_reference)
    print(f"  non-idempotent nodes failed as interrupted: {interrupted}")
    check_journal(pipes, results, crasher.kills, entries)
    procs, scheds, cbs = live_rows(crasher.db)
    assert not procs, f"tokens left live: {procs}"
    assert not scheds, f"schedules left live: {scheds}"
    assert not cbs, f"callbacks left unapplied: {cbs}"


@pytest.mark.timeout(120)
def test_kill_during_poll_wait_resumes_the_poll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC 13 row 8: the next poll's due time is a stored row; a restart re-dispatches it."""
    started = time.monotonic()
    pipes = rc.build_named("w", "slowpoll")
    reference = clean_run(tmp_path, pipes)
    node = "wwp"
    crasher = Crasher(tmp_path, "w", "slowpoll")

    def polls_done() -> int:
        return sum(1 for e in rc.read_journal(crasher.journal) if e.node_id == node and e.kind == "schedule")

    # 1. kill while the node waits between its 1st and 2nd poll
    proc, out = crasher.spawn()
    t0 = time.monotonic()
    try:
        wait_for(polls_done, 15, "first poll")
        time.sleep(0.3)  # the poll's result is committed long before
        first = crasher.kill(proc, out, time.monotonic() - t0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    times, due, finished, expired = first.snap.schedules[node]
    assert (times, finished, expired) == (1, False, False), first.snap.schedules
    assert due is not None, "the next poll's due time is not stored"
    assert first.snap.states[node][0] == "RUNNING"
    # 2. a restart before the due time must not poll early, and a kill then must not lose the wait
    proc, out = crasher.spawn()
    t0 = time.monotonic()
    try:
        wait_for(lambda: b"STARTED" in out.read_bytes(), 15, "second worker start")
        time.sleep(0.1)
        second = crasher.kill(proc, out, time.monotonic() - t0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # 3. the final run polls again at (not before) the stored due time and finishes
    results = final_recovery(crasher, pipes, monkeypatch)
    entries = rc.read_journal(crasher.journal)
    report("poll wait", crasher, entries, started)
    assert not crasher.child_errors(), crasher.child_errors()
    check_results(pipes, results, reference)
    check_journal(pipes, results, crasher.kills, entries)
    polls = [e for e in entries if e.node_id == node and e.kind == "schedule-begin"]
    assert len(polls) >= 2, polls
    assert all(e.time >= due - 0.01 for e in polls[1:]), (due, polls)
    if second.snap.schedules[node][0] == 1:  # the second worker did not reach the due time
        assert polls[-1].pid == os.getpid()
    assert results["ww"].outputs[node]["count"] == 2
    procs, scheds, cbs = live_rows(crasher.db)
    assert not procs and not scheds and not cbs, (procs, scheds, cbs)


@pytest.mark.timeout(120)
def test_pipeline_submitted_right_before_sigkill_is_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_pipeline is one durable transaction: once it returned, a SIGKILL cannot lose the run."""
    started = time.monotonic()
    pipes = rc.build_named("u", "chains")
    reference = clean_run(tmp_path, pipes)
    crasher = Crasher(tmp_path, "u", "chains")
    for _ in pipes:  # each worker resumes the store, submits one more pipeline and kills itself
        proc, out = crasher.spawn("--die-after-submit")
        t0 = time.monotonic()
        proc.wait(30)
        crasher.record(proc, out, time.monotonic() - t0)
    submitted = [e.node_id for e in rc.read_journal(crasher.journal) if e.kind == "submitted"]
    assert submitted == [p.root_id for p in pipes]
    results = final_recovery(crasher, pipes, monkeypatch)
    entries = rc.read_journal(crasher.journal)
    report("submission", crasher, entries, started)
    assert not crasher.child_errors(), crasher.child_errors()
    check_results(pipes, results, reference)
    check_journal(pipes, results, crasher.kills, entries)
    procs, scheds, cbs = live_rows(crasher.db)
    assert not procs and not scheds and not cbs, (procs, scheds, cbs)


def lines(entries: list[rc.Entry], node_id: str) -> str:
    return "journal:\n" + "\n".join(
        f"  {e.kind} pid={e.pid} t={e.time:.3f}" for e in entries if e.node_id == node_id
    )


def count(entries: list[rc.Entry], node_id: str, kind: str, pid: int | None = None) -> int:
    return sum(
        1 for e in entries if e.node_id == node_id and e.kind == kind and (pid is None or e.pid == pid)
    )


@pytest.mark.timeout(120)
def test_kills_while_user_code_is_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deterministic windows: nodes block inside execute()/schedule() until the worker is killed.

    SPEC 13 row 3 / Appendix D.2: the interrupted idempotent execute is re-run (once per kill that
    caught it), the non-idempotent one is FAILED ``execution interrupted`` and never re-run; an
    interrupted poll is re-run without re-running execute.
    """
    started = time.monotonic()
    pipes = rc.build_named("h", "held")
    reference = clean_run(tmp_path, pipes)
    idem, once, poll = "hia1", "hna1", "hqp"
    crasher = Crasher(tmp_path, "h", "held")

    def in_flight(proc_pid: int, round_: int) -> bool:
        """The idempotent execute and a poll of ``poll`` are blocked in ``proc_pid`` (round 0: the
        2nd poll, so the 1st one - run inline after execute - was recorded; round 1: its re-run)."""
        entries = rc.read_journal(crasher.journal)
        begun = count(entries, poll, "schedule-begin", proc_pid)
        ended = count(entries, poll, "schedule", proc_pid)
        return (
            count(entries, idem, "execute-begin", proc_pid) == 1
            and begun == ended + 1
            and ended >= (1 if round_ == 0 else 0)
        )

    # 1. both activities and the 2nd poll are blocked inside user code: kill
    for round_ in range(2):
        proc, out = crasher.spawn("--hold")
        t0 = time.monotonic()
        try:
            wait_for(lambda p=proc.pid, r=round_: in_flight(p, r), 20, f"held calls, round {round_ + 1}")
            if round_ == 0:
                wait_for(
                    lambda p=proc.pid: count(rc.read_journal(crasher.journal), once, "execute-begin", p),
                    20,
                    once,
                )
            else:
                time.sleep(0.2)  # recovery of the non-idempotent node has committed long before
            kill = crasher.kill(proc, out, time.monotonic() - t0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert kill.snap.running_executing(idem), kill.snap.states.get(idem)
        if round_ == 0:
            assert kill.snap.running_executing(once), kill.snap.states.get(once)
        else:
            assert kill.snap.states[once][0] == "FAILED", kill.snap.states[once]
    # 2. the final run (nothing blocks any more)
    results = final_recovery(crasher, pipes, monkeypatch)
    entries = rc.read_journal(crasher.journal)
    report("in-flight kills", crasher, entries, started)
    assert not crasher.child_errors(), crasher.child_errors()
    interrupted = check_results(pipes, results, reference)
    assert interrupted == [once]
    check_journal(pipes, results, crasher.kills, entries)
    assert count(entries, idem, "execute-begin") == 3, lines(entries, idem)  # two kills caught it
    assert count(entries, idem, "execute") == 1, lines(entries, idem)
    assert count(entries, once, "execute-begin") == 1, lines(entries, once)
    assert count(entries, once, "execute") == 0, lines(entries, once)
    # a crash inside a poll re-runs the poll only: execute() had returned and was recorded
    assert count(entries, poll, "execute-begin") == 1, lines(entries, poll)
    assert count(entries, poll, "schedule-begin") == 4, lines(entries, poll)  # poll 1, poll 2 x 3
    assert results["hq"].outputs[poll]["count"] == 2
    procs, scheds, cbs = live_rows(crasher.db)
    assert not procs and not scheds and not cbs, (procs, scheds, cbs)


@pytest.mark.timeout(120)
def test_kill_during_first_poll_of_non_idempotent_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill inside the FIRST schedule() call of a non-idempotent polling component.

    execute() returned; only the poll was interrupted. Polls are at-least-once (SPEC 13 rows 3 and
    8): the poll is re-run after the restart, execute() is not, and the node is not failed as
    ``execution interrupted``.
    """
    started = time.monotonic()
    pipes = rc.build_named("h", "heldpoll")
    reference = clean_run(tmp_path, pipes)
    node = "hmp"
    crasher = Crasher(tmp_path, "h", "heldpoll")
    proc, out = crasher.spawn("--hold")
    t0 = time.monotonic()
    try:
        wait_for(lambda: count(rc.read_journal(crasher.journal), node, "schedule-begin"), 20, "first poll")
        crasher.kill(proc, out, time.monotonic() - t0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    results = final_recovery(crasher, pipes, monkeypatch)
    entries = rc.read_journal(crasher.journal)
    report("first poll kill", crasher, entries, started)
    res = results["hm"]
    assert res.root_state == "FINISHED", (
        f"{node}: execute() had returned and only its first poll was interrupted, but the node ended "
        f"{res.states.get(node)} with {res.outputs.get(node)}"
    )
    assert count(entries, node, "execute-begin") == 1
    check_results(pipes, results, reference)
    check_journal(pipes, results, crasher.kills, entries)

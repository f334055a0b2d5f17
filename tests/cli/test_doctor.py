"""``rattan doctor`` and ``rattan repair`` on stuck situations built for real in a SQLite store:
a poll due later, a paused node and pipeline, a failed node, a callback wait, a token held by an
engine whose lease ran out (registered through the store's ``lease``), a token held by an owner
id with no lease row, and a ready token of a live engine that lost its message. The commands run
in this process through ``rattan.cli.main``; live engines are real ``rattan.Engine`` objects."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import cli
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.model.records import OwnerRecord

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0


class Quick(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.done = True
        return True


class Broken(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.ex_data = "card declined"
        return False


class SlowPoll(rattan.Service):
    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(3600)

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        return True  # the first poll runs at once; the next one is an hour away


class Waiter(rattan.Service):
    __need_schedule__ = True

    def execute(self, data: Any, parent_data: Any) -> bool:
        return True

    def schedule(self, data: Any, parent_data: Any, callback_data: Any = None) -> bool:
        self.finish_schedule()
        return True


def registry() -> rattan.Registry:
    reg = rattan.Registry("doctor-tests")
    for code, service in (
        ("dr_quick", Quick),
        ("dr_broken", Broken),
        ("dr_poll", SlowPoll),
        ("dr_wait", Waiter),
    ):
        type(f"{code}_component", (rattan.Component,), {"name": code, "code": code, "bound_service": service},
             registry=reg)  # fmt: skip
    return reg


def linear(*codes: str) -> tuple[dict[str, Any], list[str]]:
    node: Any = EmptyStartEvent()
    start = node
    ids = []
    for i, code in enumerate(codes):
        act = ServiceActivity(component_code=code, name=f"step{i}")
        ids.append(act.id)
        node = node.extend(act)
    node.extend(EmptyEndEvent())
    return build_tree(start), ids


def doctor(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main([*args, "--store", url])
    out, err = capsys.readouterr()
    return code, out + err


def wait_for(check: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'doctor.db'}"


@pytest.fixture
def live(url: str) -> Iterator[rattan.Engine]:
    engine = rattan.Engine(store=url, components=registry(), sweep_seconds=0.1)
    yield engine
    engine.close(10)


def test_waits_that_are_normal_and_waits_that_need_an_operator(
    live: rattan.Engine, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    poll_tree, (poll,) = linear("dr_poll")
    live.run_pipeline(poll_tree)
    wait_for(lambda: live.wait_pipeline(poll_tree["id"], 0)["waiting"].get(poll, {}).get("for") == "poll")
    code, out = doctor(capsys, url, "doctor", poll_tree["id"], "--json")
    assert code == cli.EXIT_OK
    (run,) = json.loads(out)["pipelines"]
    (finding,) = run["findings"]
    assert (run["state"], run["stuck"], finding["kind"], finding["stuck"]) == (
        "RUNNING",
        False,
        "poll",
        False,
    )
    assert finding["node_id"] == poll and finding["detail"]["polls"] == 1
    assert "in 3599s" in finding["text"] or "in 3600s" in finding["text"]

    failed_tree, (_, broken) = linear("dr_quick", "dr_broken")
    live.run_pipeline(failed_tree)
    assert live.wait_pipeline(failed_tree["id"], WAIT)["failed_nodes"]
    code, out = doctor(capsys, url, "doctor", failed_tree["id"])
    assert code == cli.EXIT_NOT_FINISHED
    lines = out.splitlines()
    assert lines[:3] == [
        f"pipeline {failed_tree['id']}: RUNNING, stuck",
        f"  ! [failed] node step1 ({broken}) FAILED and waits for an operator: card declined",
        f"      fix: rattan retry {broken} | rattan skip {broken}",
    ]
    assert lines[3] == "engines:" and lines[4].startswith(f"  {live.owner_id} live (lease valid;")

    cb_tree, (waiter,) = linear("dr_wait")
    live.run_pipeline(cb_tree)
    wait_for(lambda: live.wait_pipeline(cb_tree["id"], 0)["waiting"].get(waiter, {}).get("for") == "callback")
    version = live.get_state(waiter).version
    code, out = doctor(capsys, url, "doctor", cb_tree["id"])
    assert code == cli.EXIT_NOT_FINISHED
    assert out.splitlines()[1:3] == [
        f"  ! [callback] node step0 ({waiter}) waits for a callback for version {version} "
        f"(held by {live.owner_id}, lease valid)",
        f"      fix: rattan callback {waiter} --data JSON --version {version}",
    ]

    # without an id: only the stuck runs (the failed one and the callback wait), not the poll
    code, out = doctor(capsys, url, "doctor", "--json")
    assert code == cli.EXIT_NOT_FINISHED
    assert sorted(p["id"] for p in json.loads(out)["pipelines"]) == sorted([failed_tree["id"], cb_tree["id"]])


def test_paused_node_and_paused_pipeline(
    live: rattan.Engine, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, (first, second) = linear("dr_wait", "dr_quick")
    live.run_pipeline(tree)
    live.pause_node_appoint(second)  # while the first node waits for its callback
    wait_for(lambda: live.wait_pipeline(tree["id"], 0)["waiting"].get(first, {}).get("for") == "callback")
    live.callback(first, live.get_state(first).version, {})
    wait_for(lambda: live.get_state(second).root_id == tree["id"])
    live.wait_idle(5)
    code, out = doctor(capsys, url, "doctor", tree["id"], "--json")
    assert code == cli.EXIT_NOT_FINISHED
    kinds = [(f["kind"], f["node_id"]) for f in json.loads(out)["pipelines"][0]["findings"]]
    assert kinds == [("paused_node", second)]

    paused, _ = linear("dr_poll")
    live.run_pipeline(paused)
    live.pause_pipeline(paused["id"])
    live.wait_idle(5)
    code, out = doctor(capsys, url, "doctor", paused["id"])
    assert code == cli.EXIT_NOT_FINISHED
    assert f"  ! [paused_pipeline] pipeline {paused['id']} is paused" in out.splitlines()
    assert f"      fix: rattan resume {paused['id']}" in out.splitlines()


def _submit(url: str, tree: dict[str, Any]) -> None:
    """Store a run from an engine that runs no workers: its first token has no owner."""
    with rattan.Engine(store=url, components=registry(), start=False) as client:
        client.run_pipeline(tree)


def _lease(url: str, owner: OwnerRecord, now: float) -> None:
    """Register ``owner`` through the store's lease; it claims the work that has no owner."""
    with rattan.Engine(store=url, start=False) as client:
        client.core.store.unit(lambda tx: tx.lease(owner, now, lambda o: False))


def test_work_of_an_engine_whose_lease_ran_out_waits_for_a_live_engine(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, (act,) = linear("dr_quick")
    _submit(url, tree)
    now = time.time()
    _lease(url, OwnerRecord("o-gone", "elsewhere", 4242, None, now - 100), now - 200)
    code, out = doctor(capsys, url, "doctor", tree["id"], "--json")
    assert code == cli.EXIT_NOT_FINISHED
    report = json.loads(out)
    assert [(f["kind"], f["detail"].get("owner")) for f in report["pipelines"][0]["findings"]] == [
        ("dead_owner", "o-gone"),
        ("no_engine", None),
    ]
    assert report["engines"][0]["id"] == "o-gone" and report["engines"][0]["why"] == "lease ran out"
    # a live engine's first sweep takes the work over: nothing to repair
    code, out = doctor(capsys, url, "repair", tree["id"])
    assert (code, out) == (
        cli.EXIT_OK,
        "nothing to repair\n"
        "2 other finding(s) need an operator, an outside system or a live engine: see rattan doctor\n",
    )
    with rattan.Engine(store=url, components=registry(), sweep_seconds=0.1) as engine:
        assert engine.wait_pipeline(tree["id"], WAIT)["finished"]
        assert engine.get_state(act).name == "FINISHED"


def test_repair_hands_an_orphan_token_to_a_live_engine_with_an_audit_event(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, _ = linear("dr_quick")
    _submit(url, tree)
    with rattan.Engine(store=url, start=False) as client:  # an owner id that never had a lease row

        def orphan(tx: Any) -> None:
            (token,) = tx.tokens(root_id=tree["id"])
            token.owner = "o-ghost"
            tx.put_token(token)

        client.core.store.unit(orphan)
    code, out = doctor(capsys, url, "doctor", tree["id"])
    assert code == cli.EXIT_NOT_FINISHED
    assert (
        "  ! [orphan] token " in out and "held by o-ghost, which has no lease row: no sweep claims it" in out
    )

    code, out = doctor(capsys, url, "repair", tree["id"])  # the plan only
    assert code == cli.EXIT_OK
    assert out.splitlines()[0].startswith(f"would release_owner: {tree['id']}: token ")
    assert "nothing was changed: run again with --yes to carry this out" in out
    code, out = doctor(capsys, url, "repair", tree["id"], "--yes")
    assert code == cli.EXIT_OK
    assert out.splitlines()[:2] == [
        f"done: {tree['id']}: released the lease of owner o-ghost: "
        "a live engine takes its work at its next sweep",
        "note: no engine holds a live lease on this store: the work moves once one runs",
    ]
    with rattan.Engine(store=url, components=registry(), sweep_seconds=0.1) as engine:
        assert engine.wait_pipeline(tree["id"], WAIT)["finished"]
        (event,) = [e for e in engine.events(tree["id"]) if e["event_type"] == "repair"]
        assert event["data"]["action"] == "release_owner" and event["data"]["owner"] == "o-ghost"
        assert event["data"]["reason"] == "orphan" and event["node_id"] == tree["start_event"]["id"]


def test_repair_rearms_a_token_a_live_engine_lost(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    tree, _ = linear("dr_quick")
    _submit(url, tree)
    now = time.time()
    # an engine on another machine whose lease is valid holds the token, but never got its message
    _lease(url, OwnerRecord("o-far", "another-host", 4242, None, now + 3600), now)
    code, out = doctor(capsys, url, "doctor", tree["id"], "--stale", "0", "--json")
    assert code == cli.EXIT_NOT_FINISHED
    (finding,) = json.loads(out)["pipelines"][0]["findings"]
    assert (finding["kind"], finding["repair"]["action"], finding["repair"]["owner"]) == (
        "stale",
        "rearm_token",
        "o-far",
    )
    code, out = doctor(capsys, url, "repair", tree["id"], "--stale", "0", "--yes", "--json")
    assert code == cli.EXIT_OK
    (action,) = json.loads(out)["actions"]
    assert action["action"] == "rearm_token" and action["done"].startswith("re-armed token ")
    with rattan.Engine(store=url, components=registry(), sweep_seconds=0.1) as engine:
        assert engine.wait_pipeline(tree["id"], WAIT)["finished"]
        assert [e["data"]["action"] for e in engine.events(tree["id"]) if e["event_type"] == "repair"] == [
            "rearm_token"
        ]


def test_doctor_exit_codes_for_missing_runs_and_stores(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(capsys, f"sqlite:///{tmp_path / 'none.db'}", "doctor")
    assert code == cli.EXIT_INPUT_ERROR and "no store at" in out
    rattan.Engine(store=url, start=False).close()
    code, out = doctor(capsys, url, "doctor", "pnothere")
    assert (code, out) == (cli.EXIT_NOT_FOUND, "rattan doctor: pipeline pnothere does not exist\n")
    code, out = doctor(capsys, url, "doctor")
    assert (code, out) == (cli.EXIT_OK, "no stuck runs\nengines: none has registered on this store\n")


def test_a_repair_whose_work_moved_on_is_refused_and_changes_nothing(url: str) -> None:
    from rattan.engine import diagnose as dx
    from rattan.engine import repair as repair_mod
    from rattan.errors import InvalidOperationError

    tree, _ = linear("dr_quick")
    _submit(url, tree)
    now = time.time()
    _lease(url, OwnerRecord("o-far", "another-host", 4242, None, now + 3600), now)
    with rattan.Engine(store=url, start=False) as client:
        (finding,) = dx.diagnose(client.core, tree["id"], stale=0).findings
        assert finding.repair is not None and finding.repair.action == "rearm_token"
        repair_mod.apply_repair(client.core, finding)  # the token has no owner now
        with pytest.raises(InvalidOperationError, match=r"token \d+ moved on: nothing to repair"):
            repair_mod.apply_repair(client.core, finding)
        events = [e["data"]["action"] for e in client.events(tree["id"]) if e["event_type"] == "repair"]
        assert events == ["rearm_token"]


def test_repair_rearms_an_overdue_poll_of_a_live_engine(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from rattan.runtime.interface import ScheduleQuery

    tree, (poll,) = linear("dr_poll")
    with rattan.Engine(store=url, components=registry(), sweep_seconds=0.1) as engine:
        engine.run_pipeline(tree)
        wait_for(lambda: engine.wait_pipeline(tree["id"], 0)["waiting"].get(poll, {}).get("for") == "poll")
    # an engine on another machine takes the work over (the first one closed) and never polls
    now = time.time()
    _lease(url, OwnerRecord("o-far", "another-host", 4242, None, now + 3600), now)
    with rattan.Engine(store=url, start=False) as client:

        def overdue(tx: Any) -> None:
            (sched,) = tx.waits(ScheduleQuery(node_id=poll, pending=True))
            assert sched.owner == "o-far"
            sched.due = now - 100
            tx.put_wait(sched)

        client.core.store.unit(overdue)
    code, out = doctor(capsys, url, "doctor", tree["id"], "--stale", "10", "--json")
    assert code == cli.EXIT_NOT_FINISHED
    (finding,) = json.loads(out)["pipelines"][0]["findings"]
    assert (finding["kind"], finding["stuck"], finding["repair"]["action"]) == ("poll", True, "rearm_poll")
    assert re.search(r"\(overdue by 10\ds\) \(held by o-far, lease valid\)$", finding["text"])
    code, out = doctor(capsys, url, "repair", tree["id"], "--stale", "10", "--yes")
    assert code == cli.EXIT_OK
    assert (
        out.splitlines()[0]
        == f"done: {tree['id']}: re-armed the poll of {poll}: a live engine polls it at its next sweep"
    )
    with rattan.Engine(store=url, components=registry(), sweep_seconds=0.1) as engine:

        def polled_again() -> bool:
            found = engine.core.store.read(lambda tx: tx.waits(ScheduleQuery(node_id=poll, pending=True)))
            return bool(found) and found[0].times == 2

        wait_for(polled_again)


CRASHER = """
import sys, time
import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree

class Block(rattan.Service):
    def execute(self, data, parent_data):
        print("executing", flush=True)
        time.sleep(600)
        return True

reg = rattan.Registry("crasher")
attrs = {"name": "b", "code": "dr_block", "bound_service": Block}
type("dr_block_c", (rattan.Component,), attrs, registry=reg)
act = ServiceActivity(component_code="dr_block", id="e" + "7" * 32)
start, end = EmptyStartEvent(), EmptyEndEvent()
start.extend(act).extend(end)
tree = build_tree(start, id="p" + "7" * 32)
engine = rattan.Engine(store=sys.argv[1], components=reg, lease_seconds=600)
engine.run_pipeline(tree)
time.sleep(600)
"""


def test_a_crashed_engine_s_work_is_named_and_handed_over(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess
    import sys

    script = tmp_path / "crasher.py"
    script.write_text(CRASHER)
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "executing\n"
    finally:
        proc.kill()  # kill -9: no lease given up; the lease would run for 600 s
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    root, node = "p" + "7" * 32, "e" + "7" * 32
    code, out = doctor(capsys, url, "doctor", root, "--json")
    assert code == cli.EXIT_NOT_FINISHED
    report = json.loads(out)
    (finding,) = [f for f in report["pipelines"][0]["findings"] if f["kind"] == "dead_owner"]
    assert finding["node_id"] == node and finding["repair"]["action"] == "release_owner"
    assert f"pid {proc.pid}), which is gone (process gone" in finding["text"]
    code, out = doctor(capsys, url, "repair", root, "--yes")
    assert code == cli.EXIT_OK and out.startswith(f"done: {root}: released the lease of owner ")
    # a live engine takes the token over: execute() was interrupted, the service is not idempotent
    block = rattan.Registry("crasher-again")
    type(
        "dr_block_c",
        (rattan.Component,),
        {"name": "b", "code": "dr_block", "bound_service": Quick},
        registry=block,
    )
    with rattan.Engine(store=url, components=block, sweep_seconds=0.1) as engine:
        assert engine.wait_pipeline(root, WAIT)["failed_nodes"][0]["id"] == node
        assert engine.get_execution_data_outputs(node)["ex_data"].startswith("execution interrupted")

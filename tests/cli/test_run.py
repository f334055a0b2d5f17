"""``rattan run``: a tree file or module:function run on a real engine and SQLite store, with its
progress and summary; ``--data``; ``--dry-run`` with mocked nodes (outputs, failures, every
activity), on a throwaway store. The command runs in this process through ``rattan.cli.main``."""

from __future__ import annotations

import io
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rattan import cli
from rattan.cli_run import Progress

pytestmark = pytest.mark.timeout(60)

MODULE = "rattan_run_fixture"
SOURCE = textwrap.dedent(
    """
    import rattan
    from rattan.builder import (
        Data, EmptyEndEvent, EmptyStartEvent, NodeOutput, ServiceActivity, Var, build_tree,
    )

    CALLS = []  # what the real components did (a dry run must not add to it for mocked nodes)


    class Charge(rattan.Service):
        def execute(self, data, parent_data):
            amount = data.get_one_of_inputs("amount")
            CALLS.append(("charge", amount))
            if not isinstance(amount, int) or amount < 0:
                data.outputs.ex_data = f"bad amount {amount!r}"
                return False
            data.outputs.receipt = f"r-{amount}"
            return True


    class Notify(rattan.Service):
        def execute(self, data, parent_data):
            CALLS.append(("notify", data.get_one_of_inputs("receipt")))
            data.outputs.sent = True
            return True


    class ChargeComponent(rattan.Component):
        name = code = "run_fixture_charge"
        bound_service = Charge


    class NotifyComponent(rattan.Component):
        name = code = "run_fixture_notify"
        bound_service = Notify


    class Slow(rattan.Service):
        def execute(self, data, parent_data):
            import time

            time.sleep(0.4)
            return True


    class SlowComponent(rattan.Component):
        name = code = "run_fixture_slow"
        bound_service = Slow


    def build_slow():
        start, end = EmptyStartEvent(), EmptyEndEvent()
        slow = ServiceActivity(component_code="run_fixture_slow", name="slow", id="e" + "6" * 32)
        start.extend(slow).extend(end)
        return build_tree(start)


    def build():
        start, end = EmptyStartEvent(id="e" + "1" * 32), EmptyEndEvent(id="e" + "4" * 32)
        charge = ServiceActivity(component_code="run_fixture_charge", name="charge", id="e" + "2" * 32)
        notify = ServiceActivity(component_code="run_fixture_notify", name="notify", id="e" + "3" * 32)
        charge.component.inputs.amount = Var(type=Var.SPLICE, value="${amount}")
        notify.component.inputs.receipt = Var(type=Var.SPLICE, value="${receipt}")
        start.extend(charge).extend(notify).extend(end)
        data = Data()
        data.inputs["${amount}"] = Var(type=Var.PLAIN, value=5)
        data.inputs["${receipt}"] = NodeOutput(type=Var.SPLICE, source_act=charge.id, source_key="receipt")
        data.outputs = ["${receipt}"]
        return build_tree(start, data=data, id="p" + "9" * 32)
    """
)
ROOT = "p" + "9" * 32
START, CHARGE, NOTIFY, END = ("e" + c * 32 for c in "1234")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory holding the fixture module (imported by module:function)."""
    (tmp_path / f"{MODULE}.py").write_text(SOURCE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(MODULE, None)
    yield tmp_path
    sys.modules.pop(MODULE, None)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def calls() -> list[Any]:
    return list(sys.modules[MODULE].CALLS)


def summary_lines(out: str) -> list[str]:
    """The summary with its duration blanked (it varies)."""
    return re.sub(r"after \d+\.\d\ds", "after Ts", out).splitlines()


def test_a_module_function_runs_to_the_end(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, f"{MODULE}:build", "--store", "runs.db")
    assert code == cli.EXIT_OK, err
    assert summary_lines(out) == [
        f"pipeline {ROOT}: FINISHED after Ts",
        "nodes: 4 FINISHED",
        "outputs:",
        '  ${receipt} = "r-5"',
    ]
    # plain progress lines (standard error is not a terminal): each node as it changes
    progress = [re.sub(r"^\[\s*\d+\.\d\ds\] ", "", line) for line in err.splitlines()]
    assert progress[-4:] == [
        f"FINISHED  EmptyStartEvent ({START})",
        f"FINISHED  charge ({CHARGE})",
        f"FINISHED  notify ({NOTIFY})",
        f"FINISHED  EmptyEndEvent ({END})",
    ]
    assert calls() == [("charge", 5), ("notify", "r-5")]
    assert (workdir / "runs.db").exists()  # a real store: the run is kept


def test_data_sets_inputs_and_a_failure_exits_1_with_its_error(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree.json"
    import importlib

    tree.write_text(json.dumps(importlib.import_module(MODULE).build()))
    code, out, err = run(
        capsys, str(tree), "--data", '{"amount": -3}', "--store", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert code == cli.EXIT_NOT_FINISHED, err
    assert summary_lines(out) == [
        f"pipeline {ROOT}: RUNNING (stopped: failed nodes wait for an operator) after Ts",
        "nodes: 1 FAILED, 1 FINISHED",
        f"failed: charge ({CHARGE})",
        "    bad amount -3",
        "outputs: none (the tree's data.outputs names none)",
    ]
    code, out, err = run(capsys, str(tree), "--data", '{"${amount}": 7}', "--store", "y.db", "--json")
    assert code == cli.EXIT_OK, err
    summary = json.loads(out)
    assert (summary["state"], summary["outputs"], summary["failed_nodes"]) == (
        "FINISHED",
        {"${receipt}": "r-7"},
        [],
    )
    assert summary["node_counts"] == {"FINISHED": 4} and summary["mocked"] == []


def test_dry_run_mocks_outputs_and_failures_on_a_throwaway_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # charge is mocked by name: its outputs flow on; notify runs for real
    code, out, err = run(
        capsys, f"{MODULE}:build", "--dry-run", "--mock", 'charge={"receipt": "MOCK-1"}', "--json"
    )
    assert code == cli.EXIT_OK, err
    summary = json.loads(out)
    assert (summary["state"], summary["outputs"], summary["mocked"]) == (
        "FINISHED",
        {"${receipt}": "MOCK-1"},
        ["charge"],
    )
    assert calls() == [("notify", "MOCK-1")]  # the real charge never ran
    assert not list(workdir.glob("*.db"))  # nothing stored

    # a failure by id, the !text form
    code, out, err = run(capsys, f"{MODULE}:build", "--dry-run", "--mock", f"{CHARGE}=!card declined")
    assert code == cli.EXIT_NOT_FINISHED
    assert summary_lines(out)[2:4] == ["mocked: charge", f"failed: charge ({CHARGE})"]
    assert summary_lines(out)[4] == "    card declined"

    # the __fail__ form keeps its other keys as outputs; --mock-all mocks notify with no outputs
    mock = json.dumps({"__fail__": {"code": 402}, "receipt": "partial"})
    code, out, err = run(
        capsys, f"{MODULE}:build", "--dry-run", "--mock", f"notify={mock}", "--mock-all", "--json"
    )
    assert code == cli.EXIT_NOT_FINISHED
    summary = json.loads(out)
    assert summary["failed_nodes"] == [{"id": NOTIFY, "name": "notify", "ex_data": {"code": 402}}]
    assert summary["mocked"] == ["charge", "notify"]
    assert calls() == [("notify", "MOCK-1")]  # nothing real ran this time


def test_bad_mocks_data_and_trees(workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"{MODULE}:build"
    code, _, err = run(capsys, target, "--mock", "charge={}")
    assert (code, err) == (cli.EXIT_INPUT_ERROR, "rattan run: --mock and --mock-all need --dry-run\n")
    code, _, err = run(capsys, target, "--dry-run", "--mock", "nobody={}")
    assert code == cli.EXIT_INPUT_ERROR
    assert err == "rattan run: --mock nobody: no node has this id or name (names: charge, notify)\n"
    code, _, err = run(capsys, target, "--dry-run", "--mock", f"{START}={{}}")
    assert (code, err) == (
        cli.EXIT_INPUT_ERROR,
        f"rattan run: --mock {START}: node {START} is not a service activity\n",
    )
    code, _, err = run(capsys, target, "--dry-run", "--mock", "charge=[1]")
    assert code == cli.EXIT_INPUT_ERROR and "must be a JSON object" in err
    code, _, err = run(capsys, target, "--dry-run", "--data", "[1]")
    assert (code, err) == (
        cli.EXIT_INPUT_ERROR,
        "rattan run: --data must be a JSON object (variable -> value)\n",
    )
    code, _, err = run(capsys, f"{MODULE}:nothing", "--dry-run")
    assert code == cli.EXIT_INPUT_ERROR and err.startswith(f"rattan run: cannot load {MODULE}:nothing: ")
    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps(
            {"id": "p1", "start_event": {}, "end_event": {}, "activities": {}, "gateways": {}, "flows": {}}
        )
    )
    code, _, err = run(capsys, str(broken), "--dry-run")
    assert code == cli.EXIT_INVALID and err.startswith("rattan run: the tree is invalid")


def test_progress_refreshes_one_line_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = Progress(out, {"a": "first", "b": "second"}, 0.0)
    progress.update({"a": "RUNNING"})
    progress.update({"a": "FINISHED", "b": "FAILED"})
    progress.close()
    frames = out.getvalue().split("\r\x1b[K")
    assert [re.sub(r"^\[\s*\d+\.\ds\] ", "", f) for f in frames[1:]] == [
        "running 1, done 0, failed 0 of 2 nodes",
        "running 0, done 1, failed 1 of 2 nodes\n",
    ]


def test_progress_shows_a_node_while_it_runs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, f"{MODULE}:build_slow", "--dry-run")
    assert code == cli.EXIT_OK, err
    slow = "e" + "6" * 32
    lines = [re.sub(r"^\[\s*\d+\.\d\ds\] ", "", line) for line in err.splitlines()]
    assert lines.index(f"RUNNING   slow ({slow})") < lines.index(f"FINISHED  slow ({slow})")


def test_a_mocked_node_keeps_its_rendered_inputs(workdir: Path) -> None:
    """The mock swaps the component only: the node's inputs are rendered as usual (Python API)."""
    import importlib

    import rattan
    from rattan import dryrun

    tree = importlib.import_module(MODULE).build()
    mocks = dryrun.resolve(tree, [dryrun.parse_mock('notify={"sent": "mocked"}')], mock_all=False)
    mocked = dryrun.mock_tree(tree, mocks)
    assert (
        tree["activities"][NOTIFY]["component"]["code"] == "run_fixture_notify"
    )  # the caller's tree is kept
    assert mocked["activities"][NOTIFY]["component"]["code"] == dryrun.MOCK_CODE
    try:
        with rattan.Engine(":memory:") as engine:
            dryrun.install(engine.core.services.registry)
            engine.run_pipeline(mocked)
            assert engine.wait_pipeline(ROOT, 15)["finished"]
            assert engine.get_execution_data_inputs(NOTIFY)["receipt"] == "r-5"
            assert engine.get_execution_data_outputs(NOTIFY) == {
                "sent": "mocked",
                "_result": True,
                "_loop": 1,
                "_inner_loop": 1,
            }
    finally:
        dryrun.forget(mocks)

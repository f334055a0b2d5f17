"""The ``rattan`` command line: ``python -m rattan demo`` and ``python -m rattan validate``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rattan import cli
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, SubProcess, build_tree

pytestmark = pytest.mark.timeout(120)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rattan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def good_tree() -> dict[str, Any]:
    start = EmptyStartEvent()
    act = ServiceActivity(component_code="example_component", name="act")
    end = EmptyEndEvent()
    start.extend(act).extend(end)
    return build_tree(start)


def test_demo_runs_to_finished_and_exits_zero(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    proc = run_cli("demo", "--db", str(db), cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    out = proc.stdout
    assert "FINISHED" in out
    assert "pipeline FINISHED" in out
    assert "wait_for_job RUNNING" in out
    assert "report/write_report FINISHED" in out
    # count=3 gives total=30: the exclusive gateway takes the big branch only
    assert "big_batch FINISHED" in out
    assert "small_batch" not in out
    assert '"${total}": 30' in out
    assert str(db) in out
    assert db.exists()


def test_bare_rattan_prints_the_commands_and_writes_nothing(tmp_path: Path) -> None:
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: rattan [-h] [--version] COMMAND ...\n")
    # a command's line is indented by 4; its help may wrap onto lines indented further
    commands = [line.split()[0] for line in proc.stdout.splitlines() if re.match(r"    \S", line)]
    assert commands == [
        "demo", "validate", "archive", "worker", "serve", "list", "show", "events", "graph", "history",
        "pause", "resume", "revoke", "retry", "skip", "callback", "force-fail", "migrate", "run", "doctor",
        "repair", "components",
    ]  # fmt: skip
    assert "exit codes:" in proc.stdout
    assert list(tmp_path.iterdir()) == []


def test_demo_writes_rattan_db_in_the_working_directory_by_default(tmp_path: Path) -> None:
    proc = run_cli("demo", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".db") == ["rattan.db"]
    assert f"database: {tmp_path.resolve() / 'rattan.db'}\n" in proc.stdout


def test_demo_refuses_a_negative_wait(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--db", ":memory:", "--wait", "-1"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.endswith(
        "rattan demo: error: argument --wait: must be a number of seconds, 0 or more (got -1)\n"
    )


def test_demo_takes_the_small_branch_when_count_is_small(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["demo", "--db", str(tmp_path / "d.db"), "--count", "1"])
    out = capsys.readouterr().out
    assert code == cli.EXIT_OK, out
    assert "small_batch FINISHED" in out
    assert "big_batch" not in out


def test_validate_accepts_a_good_tree(tmp_path: Path) -> None:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(good_tree()))
    proc = run_cli("validate", str(path), cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert "valid" in proc.stdout


def test_validate_prints_every_problem_of_a_bad_tree_and_exits_two(tmp_path: Path) -> None:
    tree = good_tree()
    # break two nodes: the activity loses its outgoing flow, the end event its incoming one
    act = next(iter(tree["activities"].values()))
    tree["flows"].pop(act["outgoing"])
    act["outgoing"] = ""
    tree["end_event"]["incoming"] = []
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tree))
    proc = run_cli("validate", str(path), cwd=tmp_path)
    assert proc.returncode == cli.EXIT_INVALID, proc.stdout + proc.stderr
    assert "INVALID" in proc.stdout
    problem_lines = [line for line in proc.stdout.splitlines() if line.startswith("  - ")]
    assert len(problem_lines) >= 2, proc.stdout


def test_validate_reports_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(tmp_path / "missing.json")]) == cli.EXIT_INPUT_ERROR
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["validate", str(bad)]) == cli.EXIT_INPUT_ERROR


def test_a_bad_command_line_exits_with_the_usage_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"]) == cli.EXIT_USAGE
    assert cli.main(["--help"]) == cli.EXIT_OK
    assert "exit codes" in capsys.readouterr().out


# -- validate --components -----------------------------------------------------------------------

COMPONENTS_MODULE = """
import rattan


class GreetService(rattan.Service):
    def execute(self, data, parent_data):
        return True


class GreetComponent(rattan.Component):
    name = "greet"
    code = "cli_greet"
    version = "1.0"
    bound_service = GreetService
"""


def components_tree(tmp_path: Path) -> tuple[Path, dict[str, Any], dict[str, str]]:
    """A tree using a registered component right, with a typo, with an unknown version, and an
    unknown code inside a subprocess; saved as tmp_path/tree.json next to the components module."""
    (tmp_path / "cli_components.py").write_text(COMPONENTS_MODULE)
    nested_start, nested, nested_end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="wire_transfer", name="nested"),
        EmptyEndEvent(),
    )
    nested_start.extend(nested).extend(nested_end)
    sub = SubProcess(start=nested_start, name="sub")
    start, end = EmptyStartEvent(), EmptyEndEvent()
    good = ServiceActivity(component_code="cli_greet", name="good")
    typo = ServiceActivity(component_code="cli_gret", name="typo")
    old = ServiceActivity(component_code="cli_greet", name="old")
    start.extend(good).extend(typo).extend(old).extend(sub).extend(end)
    tree = build_tree(start)
    tree["activities"][good.id]["component"]["version"] = "1.0"
    tree["activities"][old.id]["component"]["version"] = "9.9"
    path = tmp_path / "tree.json"
    path.write_text(json.dumps(tree))
    ids = {"good": good.id, "typo": typo.id, "old": old.id, "nested": nested.id}
    return path, tree, ids


def test_validate_with_components_names_each_node_whose_component_is_not_registered(tmp_path: Path) -> None:
    _, _, ids = components_tree(tmp_path)
    proc = run_cli("validate", "tree.json", "--components", "cli_components", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_INVALID, proc.stdout + proc.stderr
    assert proc.stderr == ""
    rule = "[activity.component_unregistered]"
    assert proc.stdout.splitlines() == [
        "INVALID: tree.json: unregistered components, 3 problem(s)",
        f"  - {rule} {ids['typo']} (typo): "
        "component 'cli_gret' version 'legacy' is not registered (did you mean 'cli_greet'?)",
        f"  - {rule} {ids['old']} (old): "
        "component 'cli_greet' version '9.9' is not registered (registered versions: '1.0')",
        f"  - {rule} {ids['nested']} (nested): component 'wire_transfer' version 'legacy' is not registered",
    ]


def test_validate_without_components_does_not_check_codes(tmp_path: Path) -> None:
    _, tree, _ = components_tree(tmp_path)
    proc = run_cli("validate", "tree.json", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert proc.stdout == f"valid: tree.json (pipeline {tree['id']}, 9 nodes)\n"


def test_validate_with_components_accepts_registered_codes_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "cli_components.py").write_text(COMPONENTS_MODULE)
    start, good, builtin, end = (
        EmptyStartEvent(),
        ServiceActivity(component_code="cli_greet", name="good"),
        ServiceActivity(component_code="example_component", name="builtin"),
        EmptyEndEvent(),
    )
    start.extend(good).extend(builtin).extend(end)
    tree = build_tree(start)
    tree["activities"][good.id]["component"]["version"] = "1.0"
    (tmp_path / "tree.json").write_text(json.dumps(tree))
    # the installed console script, not ``python -m``: the module is found in the working directory
    # because validate looks there, not because ``-m`` put it on the path
    script = Path(sys.executable).with_name("rattan")
    assert script.exists(), "install the package (pip install -e .) to get the rattan command"
    proc = subprocess.run(
        [str(script), "validate", "tree.json", "--components", "cli_components"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert proc.stdout == f"valid: tree.json (pipeline {tree['id']}, 4 nodes, every component registered)\n"
    assert proc.stderr == ""


def test_validate_reports_a_components_module_that_does_not_import(tmp_path: Path) -> None:
    (tmp_path / "cli_broken.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "tree.json").write_text(json.dumps(good_tree()))
    proc = run_cli("validate", "tree.json", "--components", "cli_no_such_module", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_INPUT_ERROR, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        "rattan validate: component module 'cli_no_such_module' failed to import: "
        "ModuleNotFoundError(\"No module named 'cli_no_such_module'\")\n"
    )
    proc = run_cli("validate", "tree.json", "--components", "cli_broken", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_INPUT_ERROR, proc.stdout + proc.stderr
    assert proc.stderr == (
        "rattan validate: component module 'cli_broken' failed to import: RuntimeError('boom')\n"
    )


def test_the_command_line_works_without_any_extra_installed(tmp_path: Path) -> None:
    """``pip install rattan`` alone: the optional packages of the extras are not there, and
    ``rattan``, ``rattan demo`` and ``rattan serve`` (which names the extra to install) still work."""
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "EXTRAS = {'starlette', 'uvicorn', 'celery', 'kombu', 'psycopg', 'psycopg_pool', 'redis', 'httpx'}\n"
        "def block(name, *a, **k):\n"
        "    if name.split('.')[0] in EXTRAS:\n"
        "        raise ImportError('not installed: ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = block\n"
        "from rattan.cli import main\n"
        "codes = [main([]), main(['demo', '--db', 'x.db']), main(['serve', '--tokens', 't'])]\n"
        "print('codes', codes)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "codes [0, 0, 2]"
    assert "rattan serve needs the server extra: pip install 'rattan[server]'" in proc.stderr

"""The ``rattan`` command line: ``python -m rattan demo`` and ``python -m rattan validate``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rattan import cli
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree

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


def test_demo_is_the_default_command_and_writes_rattan_db_in_the_working_directory(tmp_path: Path) -> None:
    proc = run_cli(cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stdout + proc.stderr
    assert (tmp_path / "rattan.db").exists()


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

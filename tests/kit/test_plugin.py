"""rattan's pytest plugin, as a user gets it: pytest run in a separate process, in an empty folder
that holds only ``user_suite.py`` (as ``test_user_suite.py``), so the ``engine`` fixture can come
from nothing but the ``pytest11`` entry point of the installed package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent


def run_user_suite(folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / "test_user_suite.py").write_text((HERE / "user_suite.py").read_text(encoding="utf-8"))
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--timeout=60",
            "test_user_suite.py",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_the_plugin_runs_a_users_pipeline_tests(tmp_path: Path) -> None:
    done = run_user_suite(tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr  # the one test that fails on purpose
    assert out.splitlines()[-1].startswith("1 failed, 4 passed"), out
    assert "FAILED test_user_suite.py::test_a_wrong_state_fails_with_a_readable_difference" in out
    # the failure says what differs, node by node, from the test's own line
    assert "differ (a missing key is a node without a state)" in out
    assert "E         missing keys: 'no-such-node'\n" in out
    assert "E           expected 'FAILED'\nE           actual   'FINISHED'\n" in out
    # __tracebackhide__: the failure points at the test's line, not into the helper
    assert '>       assert_states(engine, tree["id"], {act.id: "FAILED", "no-such-node": "FINISHED"})' in out
    assert "rattan/testing/pipeline.py" not in out
    # the engine's database lived in the test's tmp_path, not in the working folder
    assert not (tmp_path / "rattan.db").exists()


def test_the_plugin_is_registered_under_the_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("rattan") == "rattan.testing.plugin"


def test_the_fixture_works_here_too(engine: object, rattan_clock: object) -> None:
    import rattan
    from rattan.testing import FakeClock

    assert isinstance(engine, rattan.Engine)
    assert isinstance(rattan_clock, FakeClock) and engine.clock is rattan_clock

"""Runs every script of examples/ as a user would, and checks what it prints.

Each example runs in a fresh process (sys.executable), in an empty temporary working directory,
with a 60 s limit; it must exit 0, print a few exact lines, and leave nothing behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# lines each example must print (whole lines, in this order; other lines may come between)
EXPECTED: dict[str, list[str]] = {
    "01_quickstart.py": [
        "pipeline state: FINISHED",
        "  double it: FINISHED",
        "double it -> result = 42",
        "log: [INFO] doubled 21",
    ],
    "02_gateways.py": [
        "amount = 250: pipeline FINISHED",
        "  ran: large, email, sms, audit, manager",
        "  not reached: small, finance, archive",
        "amount = 50: pipeline FINISHED",
        "  ran: small, email, sms, audit, archive",
        "  not reached: large, manager, finance",
    ],
    "03_variables.py": [
        "pipeline FINISHED",
        "notify input message: Hello, Ada Lovelace! Order ORD-242: 42 EUR.",
        "notify input tag (LAZY): ADA",
        "pipeline outputs: {'${order_id}': 'ORD-242', '${total}': 42}",
    ],
    "04_subprocess.py": [
        "subprocess 'for the team' exported ${badge} = '<ops-lead>'",
        "subprocess 'with defaults' exported ${badge} = '<guest>'",
        "pipeline FINISHED",
        "summary: <ops-lead> <guest>",
    ],
    "05_http_poll_and_callback.py": [
        "  http: POST /jobs",
        "  http: POST /approvals",
        "  http: calling back: job-web.tar approved",
        "pipeline FINISHED",
        "build: artifact job-web.tar after 3 polls",
        "approve: approved by release-bot (1 callback accepted)",
    ],
    "06_operator_controls.py": [
        "paused: pipeline SUSPENDED, charge reached: False",
        "failed: charge: card 1111 declined",
        "failed: notify: ConnectionError: smtp server unreachable",
        "pipeline FINISHED",
        "  charge: FINISHED retry=1 skip=False",
        "  notify: FINISHED retry=0 skip=True",
        "operator events: post_pause_pipeline, post_resume_pipeline, post_retry_node, post_skip_node",
    ],
    "07_rollback.py": [
        "failed: [('ship', 'carrier rejected the parcel')]",
        "allowed targets: ['reserve stock', 'charge card']",
        "pipeline FINISHED",
        "  refund PAY-2",
        "  release RES-1",
        "rollback events: rollback_start, rollback_finish",
    ],
    "08_hooks_and_event_log.py": [
        "  hook: node_enter",
        "  hook: node_finish",
        "consumer: starting after event 0",
        "consumer: 9 events, 1 pipeline_finish",
        "consumer: 9 events, 1 pipeline_finish",
        "event log: 18 events in all",
    ],
}


def test_every_example_is_checked_and_listed() -> None:
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert scripts == sorted(EXPECTED)
    readme = (EXAMPLES / "README.md").read_text()
    assert [name for name in scripts if f"({name})" not in readme] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "OK"
    position = 0
    for expected in EXPECTED[name]:
        assert expected in lines[position:], f"{expected!r} missing (in order) from:\n{done.stdout}"
        position = lines.index(expected, position) + 1
    assert list(tmp_path.iterdir()) == []  # the store lived in its own temporary directory

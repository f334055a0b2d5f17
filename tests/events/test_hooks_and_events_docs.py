"""docs/hooks-and-events.md: every python block runs (each ends by asserting what it shows)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "hooks-and-events.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = BLOCK.findall(DOC.read_text(encoding="utf-8"))

pytestmark = pytest.mark.timeout(60)


def run_block(source: str, name: str) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        namespace: dict[str, Any] = {"__name__": f"docs_block_{name}"}
        try:
            exec(compile(source, name, "exec"), namespace)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(45)
    assert not thread.is_alive(), f"{name} did not finish"
    if errors:
        raise errors[0]


def test_the_page_has_a_block_per_section() -> None:
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(index: int) -> None:
    run_block(BLOCKS[index], f"hooks-and-events.md[{index}]")


def test_every_spec_event_type_is_documented() -> None:
    from test_signals import EXPECTED_KEYS

    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:pre|post)_\w+|node_\w+|pipeline_finish)`", text))
    expanded = documented | {"post_skip_conditional_parallel_gateway"}  # written as post_… in the table
    assert set(EXPECTED_KEYS) - expanded == set()

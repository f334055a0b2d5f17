"""docs/rollback.md: every ```python block runs (each ends by asserting final states)."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

DOC = Path(__file__).resolve().parents[2] / "docs" / "rollback.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def test_the_guide_has_a_runnable_example() -> None:
    assert len(BLOCKS) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_every_python_block_runs(index: int) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            exec(compile(BLOCKS[index], f"rollback.md[{index}]", "exec"), {"__name__": "rollback_doc"})
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(45)
    assert not thread.is_alive()
    if errors:
        raise errors[0]

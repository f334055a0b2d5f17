"""The documentation's code runs: every ```python block of the docs pages listed in ``RUN_HERE`` and
the README's quickstart is executed in a fresh namespace (the blocks carry their own asserts).

docs/hooks-and-events.md and docs/rollback.md have runners of their own (``RUN_ELSEWHERE``); they
are not run twice, but every page with python blocks must be covered by one runner or the other."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

import rattan.api

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCK_TIMEOUT = 30.0


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def run_block(source: str, name: str) -> None:
    """Exec ``source`` in a fresh namespace on a thread; fail on an exception or after the timeout."""
    errors: list[BaseException] = []

    def target() -> None:
        namespace: dict[str, Any] = {"__name__": f"docs_block_{name}"}
        try:
            exec(compile(source, name, "exec"), namespace)
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BLOCK_TIMEOUT)
    assert not thread.is_alive(), f"{name} did not finish within {BLOCK_TIMEOUT}s"
    if errors:
        raise errors[0]


MIGRATING = python_blocks(ROOT / "docs" / "migrating-from-bamboo.md")
README = python_blocks(ROOT / "README.md")

# pages whose blocks run here (the migration guide has its own test below)
RUN_HERE = ("operations.md", "builder.md", "expressions.md", "api.md")
# pages whose blocks another test module runs
RUN_ELSEWHERE = {
    "hooks-and-events.md": "tests/events/test_hooks_and_events_docs.py",
    "rollback.md": "tests/rollback/test_rollback_docs.py",
    "deployment.md": "tests/e2e/test_deployment_docs.py",
}
PAGE_BLOCKS = [
    (page, index, block)
    for page in RUN_HERE
    for index, block in enumerate(python_blocks(ROOT / "docs" / page))
]


def test_the_migration_guide_has_the_three_seed_examples() -> None:
    assert len(MIGRATING) == 3


@pytest.mark.parametrize("index", range(len(MIGRATING)))
def test_every_python_block_of_the_migration_guide_runs(index: int) -> None:
    run_block(MIGRATING[index], f"migrating-from-bamboo.md[{index}]")


@pytest.mark.parametrize(
    ("page", "index", "block"), PAGE_BLOCKS, ids=[f"{page}[{index}]" for page, index, _ in PAGE_BLOCKS]
)
def test_every_python_block_of_the_other_pages_runs(page: str, index: int, block: str) -> None:
    run_block(block, f"{page}[{index}]")


def test_the_operations_guide_has_its_examples() -> None:
    assert len(python_blocks(ROOT / "docs" / "operations.md")) == 5


def test_every_page_with_python_blocks_has_a_runner() -> None:
    covered = {"migrating-from-bamboo.md", *RUN_HERE, *RUN_ELSEWHERE}
    pages = {path.name for path in (ROOT / "docs").glob("*.md") if python_blocks(path)}
    assert pages - covered == set(), "add the page to RUN_HERE (or to RUN_ELSEWHERE with its runner)"
    for page, runner in RUN_ELSEWHERE.items():
        assert page in (ROOT / runner).read_text(encoding="utf-8"), f"{runner} does not run {page}"


def test_the_readme_quickstart_runs() -> None:
    assert len(README) == 1
    run_block(README[0], "README.md[quickstart]")


def test_every_api_function_is_documented() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    functions = [
        name
        for name, value in vars(rattan.api).items()
        if callable(value)
        and not name.startswith("_")
        and getattr(value, "__module__", "") == "rattan.api"
        and name != "EngineAPIResult"
    ]
    missing = [name for name in functions if f"`{name}(" not in text]
    assert not missing, f"docs/api.md does not document: {missing}"

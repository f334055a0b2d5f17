"""The documentation's code runs, and every code block of docs/*.md is either run or checked here
(or by the runner of its page) or marked as a fragment. The conventions (docs/contributing.md):

- a ```python block runs as it is, on its own: in this process (the pages of ``IN_PROCESS``), in
  a fresh interpreter (every other page), or by its page's own runner (``RUN_ELSEWHERE``);
- ``<!-- pytest -->`` on the line before a ```python block: the block is a test module, run with
  pytest in an empty folder (so only the installed plugin provides ``engine``), every test passing;
- ``<!-- fragment -->`` (or ``<!-- fragment: why -->``) on the line before any block: shown, not
  run (a signature, part of a larger program, output);
- an unmarked ```bash / ```sh / ```console block holds only ``rattan`` commands: each is parsed by
  the real command line parser, and the cheap ones run;
- an unmarked ```json / ```toml block must parse; any other unmarked block fails the test.

The README's quickstart runs too, and the docs site builds with ``mkdocs build --strict``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import rattan.api

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BLOCK_TIMEOUT = 30.0
FENCE = re.compile(r"^( *)(`{3,})(\w*)[^\n]*\n(.*?)^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"^\s*<!--\s*(fragment|pytest)\b[^>]*-->\s*$")

# pages whose python blocks run in this process, as they always have (fast); other pages' blocks
# run in a fresh interpreter each, so the components they define stay out of this process
IN_PROCESS = ("operations.md", "builder.md", "expressions.md", "api.md", "migrating-from-bamboo.md")
# pages whose python blocks another test module runs
RUN_ELSEWHERE = {
    "hooks-and-events.md": "tests/events/test_hooks_and_events_docs.py",
    "rollback.md": "tests/rollback/test_rollback_docs.py",
    "deployment.md": "tests/e2e/test_deployment_docs.py",
}
SHELLS = ("bash", "sh", "shell", "console")
# rattan subcommands cheap enough to run from a doc block (the others are parsed only)
CHEAP = {"components"}


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    marker: str  # "", "fragment" or "pytest"
    source: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].splitlines()
        previous = next((line for line in reversed(before) if line.strip()), "")
        marked = MARKER.match(previous)
        found.append(
            Block(
                path.name,
                len(before) + 1,
                match.group(3),
                marked.group(1) if marked else "",
                textwrap.dedent(match.group(4)),
            )
        )
    return found


PAGES = sorted(DOCS.glob("*.md"))
ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]
PYTHON = [b for b in ALL_BLOCKS if b.lang == "python" and b.marker == "" and b.page not in RUN_ELSEWHERE]
PYTESTS = [b for b in ALL_BLOCKS if b.lang == "python" and b.marker == "pytest"]
SHELL = [b for b in ALL_BLOCKS if b.lang in SHELLS and b.marker == ""]
DATA = [b for b in ALL_BLOCKS if b.lang in ("json", "toml") and b.marker == ""]


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


def run_isolated(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT * 3,
    )


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.name)
def test_every_python_block_runs(block: Block, tmp_path: Path) -> None:
    if block.page in IN_PROCESS:
        run_block(block.source, block.name)
        return
    (tmp_path / "doc_block.py").write_text(block.source, encoding="utf-8")
    done = run_isolated(["doc_block.py"], tmp_path)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block", PYTESTS, ids=lambda b: b.name)
def test_every_pytest_block_passes(block: Block, tmp_path: Path) -> None:
    (tmp_path / "test_doc_block.py").write_text(block.source, encoding="utf-8")
    done = run_isolated(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_doc_block.py"], tmp_path)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"
    assert re.search(r"^\d+ passed in ", done.stdout, re.MULTILINE), done.stdout


def rattan_commands(block: Block) -> list[list[str]]:
    """The argument lists of a shell block's commands (``$`` prompts and comments dropped)."""
    commands = []
    for raw in block.source.splitlines():
        line = raw.strip()
        if block.lang == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        assert words[:1] == ["rattan"], (
            f"{block.name}: {line!r} is not a rattan command: mark the block <!-- fragment --> if it is"
            " not meant to run"
        )
        commands.append(words[1:])
    return commands


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.name)
def test_every_shell_block_holds_valid_rattan_commands(block: Block, tmp_path: Path) -> None:
    from rattan.cli import _parser, _UsageError

    for args in rattan_commands(block):
        try:
            _parser().parse_args(args)
        except _UsageError as exc:
            raise AssertionError(f"{block.name}: rattan {shlex.join(args)}: {exc}") from exc
        except SystemExit:  # --help
            pass
        if args[:1] and args[0] in CHEAP and "--components" not in args:
            done = run_isolated(["-m", "rattan", *args], tmp_path)
            assert done.returncode == 0, f"{block.name}: rattan {shlex.join(args)}:\n{done.stderr}"


@pytest.mark.parametrize("block", DATA, ids=lambda b: b.name)
def test_every_data_block_parses(block: Block) -> None:
    if block.lang == "json":
        json.loads(block.source)
    else:
        tomllib.loads(block.source)


def test_every_other_block_is_marked_as_a_fragment() -> None:
    checked = ("python", *SHELLS, "json", "toml")
    unmarked = [
        b.name + f" ({b.lang or 'no language'})" for b in ALL_BLOCKS if not b.marker and b.lang not in checked
    ]
    assert unmarked == [], "mark these <!-- fragment --> (docs/contributing.md), or make them runnable"


def test_pytest_markers_are_only_on_python_blocks() -> None:
    assert [b.name for b in ALL_BLOCKS if b.marker == "pytest" and b.lang != "python"] == []


def test_every_page_with_python_blocks_has_a_runner() -> None:
    for page, runner in RUN_ELSEWHERE.items():
        assert page in (ROOT / runner).read_text(encoding="utf-8"), f"{runner} does not run {page}"
    assert len(ALL_BLOCKS) > 60  # the scanner found the blocks (a broken pattern finds none)


def test_the_migration_guide_has_the_three_bamboo_examples() -> None:
    assert [b.line for b in PYTHON if b.page == "migrating-from-bamboo.md"] == [
        b.line
        for b in ALL_BLOCKS
        if b.page == "migrating-from-bamboo.md" and b.lang == "python" and not b.marker
    ]
    assert len([b for b in PYTHON if b.page == "migrating-from-bamboo.md"]) == 3


def test_the_operations_guide_has_its_examples() -> None:
    assert len([b for b in PYTHON if b.page == "operations.md"]) == 5


def test_the_readme_quickstart_runs() -> None:
    readme = [b for b in blocks_of(ROOT / "README.md") if b.lang == "python"]
    assert len(readme) == 1
    run_block(readme[0].source, "README.md[quickstart]")


def test_every_api_function_is_documented() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
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


# The project's internal vocabulary: its own documents (the spec, its appendices, design and style
# notes) and its private names for bamboo ("the peer" for bamboo-engine / bamboo-pipeline, "the
# seeds" for bamboo's documentation). "seeded" (random seeds) is fine.
INTERNAL = re.compile(
    r"\.\./shared|\bSPEC(\.md)?\b|DESIGN\.md|STYLE\.md|REVIEW-|Appendix [A-Z]|(?i:\bpeer('s)?\b|\bseeds?\b)"
)


def test_the_docs_speak_to_users_only() -> None:
    """No page points at the project's internal documents or uses its internal vocabulary."""
    found = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNAL.search(line)
    ]
    assert found == []


DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _docstrings(tree: ast.Module) -> list[ast.Constant]:
    """The module, class and function docstrings of a parsed module."""
    found = []
    for owner in ast.walk(tree):
        first = owner.body[0] if isinstance(owner, DOCUMENTED) and owner.body else None
        value = first.value if isinstance(first, ast.Expr) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            found.append(value)
    return found


def test_the_docstrings_speak_to_users_only() -> None:
    """help() and the API docs show docstrings: none uses the project's internal vocabulary."""
    src = ROOT / "src" / "rattan"
    found = []
    for path in sorted(src.rglob("*.py")):
        for doc in _docstrings(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for n, line in enumerate(str(doc.value).splitlines()):
                if INTERNAL.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{doc.lineno + n}: {line.strip()}")
    assert found == []


def test_every_page_is_in_the_site_navigation() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    listed = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, re.MULTILINE))
    assert pages - listed == set() and listed - pages == set()


@pytest.mark.timeout(600)
def test_the_docs_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for page in (
        "index.html",
        "getting-started/index.html",
        "reference/api/index.html",
        "concepts/index.html",
    ):
        assert (tmp_path / "site" / page).is_file(), page
    reference = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "list_components" in reference and "run_pipeline" in reference

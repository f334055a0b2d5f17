"""The layering of src/rattan, checked on every import statement (module level, inside functions
and under TYPE_CHECKING alike): a module may import its own layer and the layers below it, never
one above. The runtime (the seam and the backends behind it) knows nothing of the engine it
serves: no module of rattan.runtime imports one above the seam. And SQL and the database drivers
(sqlite3, psycopg) appear only in the store backends' folders (and, for psycopg, in the test kit's
PostgreSQL server, which creates databases for tests).

The layers, bottom to top (docs/architecture.md draws them):

    base        errors, ids, settings, fancy, context, results (EngineAPIResult)
    model       run records, states, messages (rattan.model; rattan.states is its public path)
    spec        the parsed pipeline model
    tree        expr, validator, builder
    components  Service, Component, registry, IO schemas, interval generators, signals
    seam        runtime.interface (the Protocols), runtime.clock
    engine      how a run advances
    backends    runtime.sqlite, runtime.threads, and the factories in rattan.runtime
    extensions  rollback, contrib
    facade      rattan.Engine (facade, with its reads in queries), rattan.api, plugin_execute
    top         cli, demo, testing, __main__, the rattan package itself (lazy exports)
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import rattan

SRC = Path(rattan.__file__).resolve().parent
LAYERS = [
    ("base", ["errors", "ids", "settings", "fancy", "context", "results", "exceptions", "logs"]),
    ("model", ["model", "states"]),
    ("spec", ["spec"]),
    ("tree", ["expr", "validator", "builder"]),
    ("components", ["components", "io", "interval", "signals"]),
    ("seam", ["runtime.interface", "runtime.clock"]),
    ("engine", ["engine"]),
    ("backends", ["runtime.sqlite", "runtime.threads", "runtime"]),
    ("extensions", ["rollback", "contrib"]),
    ("facade", ["facade", "queries", "api", "plugin_execute", "compat", "server", "metrics"]),
    (
        "top",
        [
            "cli",
            "cli_args",
            "cli_svg",
            "cli_ops",
            "cli_show",
            "cli_worker",
            "cli_components",
            "cli_run",
            "cli_doctor",
            "dryrun",
            "demo",
            "testing",
            "__main__",
            "",
        ],
    ),
]
RANK = {prefix: i for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}
SQL = re.compile(
    r"\b(SELECT\s+[\w*,.() ]+?\s+FROM\s+\w|INSERT\s+INTO\s+\w|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\s+\w|"
    r"CREATE\s+(TABLE|INDEX|SCHEMA|DATABASE)\b|DROP\s+(TABLE|INDEX|SCHEMA|DATABASE)\b|SAVEPOINT\s+\w|PRAGMA\s+\w)"
)
# the store backends: the only folders where SQL and database drivers may appear
BACKENDS = (SRC / "runtime" / "sqlite", SRC / "runtime" / "postgres")
DRIVER = re.compile(r"^\s*(import (sqlite3|psycopg\w*)\b|from (sqlite3|psycopg\w*)[ .])")
# the test kit's PostgreSQL server makes a database (or schema) per test run: the driver and those
# two statements, nothing that reads or writes rattan's tables
TEST_SERVER = SRC / "testing" / "postgres.py"
SERVER_ADMIN = re.compile(r"^(CREATE|DROP)\s+(SCHEMA|DATABASE)$")


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """The rank of the longest layer prefix that names ``module`` (a name inside rattan)."""
    best = ""
    for prefix in RANK:
        if (module == prefix or module.startswith(prefix + ".") or prefix == "") and len(prefix) >= len(best):
            if prefix == "" and module != "":
                continue
            best = prefix
    if best == "" and module != "":
        raise AssertionError(f"rattan.{module} belongs to no layer: add it to LAYERS")
    return RANK[best], best


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module inside rattan) for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(["rattan", *base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # "from rattan import states" imports the module rattan.states
            names = [f"{target}.{a.name}" for a in node.names] if target == "rattan" else [target]
            out += [(node.lineno, n) for n in names]
    return [(line, name[len("rattan.") :]) for line, name in out if name.startswith("rattan.")]


def sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    for path in sources():
        layer_of(module_name(path))


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong: list[str] = []
    for path in sources():
        mine, _ = layer_of(module_name(path))
        for line, target in imports_of(path):
            theirs, _ = layer_of(target)
            if theirs > mine:
                wrong.append(
                    f"{path.relative_to(SRC)}:{line} ({LAYERS[mine][0]}) imports rattan.{target} "
                    f"({LAYERS[theirs][0]})"
                )
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_runtime_knows_nothing_of_the_engine() -> None:
    """rattan.runtime (interface, clock, backends, factories) imports only the seam and below, and
    itself: a backend is handed messages and records, never the engine's code."""
    seam = RANK["runtime.interface"]
    wrong = [
        f"{path.relative_to(SRC)}:{line} imports rattan.{target}"
        for path in sources()
        if module_name(path) == "runtime" or module_name(path).startswith("runtime.")
        for line, target in imports_of(path)
        if layer_of(target)[0] > seam and not (target == "runtime" or target.startswith("runtime."))
    ]
    assert not wrong, "the runtime imports the layers above the seam:\n" + "\n".join(wrong)


def test_sql_and_the_database_drivers_live_only_in_the_store_backends() -> None:
    found: list[str] = []
    for path in sources():
        if any(backend in path.parents for backend in BACKENDS):
            continue
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), start=1):
            driver, sql = DRIVER.search(line), SQL.search(line)
            if path == TEST_SERVER and (
                (driver and "psycopg" in driver.group(0)) or (sql and SERVER_ADMIN.search(sql.group(0)))
            ):
                continue
            if driver or sql:
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not found, "SQL or a driver outside runtime/sqlite/ and runtime/postgres/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("line", "is_driver"),
    [
        ("import sqlite3", True),
        ("    import psycopg.errors", True),
        ("from psycopg_pool import ConnectionPool", True),
        ("from sqlite3 import Connection", True),
        ('    "postgres": ("rattan[postgres]", "psycopg"),', False),
        ("# the psycopg driver", False),
    ],
)
def test_the_driver_check_finds_imports_only(line: str, is_driver: bool) -> None:
    assert bool(DRIVER.search(line)) is is_driver


@pytest.mark.parametrize(
    ("text", "is_sql"),
    [
        ("SELECT id FROM runs WHERE root_id=?", True),
        ('"UPDATE processes SET owner=? WHERE id=?"', True),
        ("DELETE FROM timers WHERE id=?", True),
        ("PRAGMA data_version", True),
        ('_sql(url, f"DROP DATABASE IF EXISTS {name}")', True),
        ("a unit may select from the tokens it wrote", False),
        ("Update the docs", False),
    ],
)
def test_the_sql_check_tells_sql_from_prose(text: str, is_sql: bool) -> None:
    assert bool(SQL.search(text)) is is_sql


def test_the_checker_reads_imports_and_ranks_layers() -> None:
    """The checker itself: it finds absolute, relative, TYPE_CHECKING and function-local imports,
    and ranks the seam below the engine below the backends below the facade."""
    found = {target for _, target in imports_of(SRC / "engine" / "core.py")}
    assert {"model.messages", "engine.plans", "runtime.interface"} <= found  # the last under TYPE_CHECKING
    assert "components.registry" in {t for _, t in imports_of(SRC / "components" / "component.py")}
    assert "validator" in {t for _, t in imports_of(SRC / "cli.py")}  # imported inside a function
    order = [
        layer_of(m)[0]
        for m in ("model", "runtime.interface", "engine.worker", "runtime.sqlite.store", "facade")
    ]
    assert order == sorted(order) and len(set(order)) == len(order)

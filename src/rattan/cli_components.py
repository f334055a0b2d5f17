"""``rattan components``: list the registered components, or print one's JSON Schema.

    rattan components [--components MODULE]... [--no-entry-points] [--no-examples] [--json]
    rattan components --schema CODE[@VERSION] [...]

What is listed is what a ``rattan worker`` with the same ``--components`` would run: the modules
named by ``--components`` (packages with their submodules) and the ``rattan.components``
entry-point group of the installed distributions are imported into ``rattan.registry``, and the
built-in example components are added (``--no-examples`` leaves them out). Split from
``rattan.cli``, which offers it as a subcommand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, TextIO

from rattan.cli import EXIT_INPUT_ERROR, EXIT_NOT_FOUND, EXIT_OK
from rattan.cli_args import add_components
from rattan.components.catalog import list_components
from rattan.components.registry import registry
from rattan.errors import BadInputError, ComponentNotExistException, RattanError

__all__ = ["add_parser", "run"]

DEFAULT_OUTPUTS = ("_result", "_loop", "_inner_loop")  # every service has them: not worth a column


def add_parser(sub: Any) -> None:
    """Add the ``components`` subcommand to the ``rattan`` parser's subparsers."""
    cmd = sub.add_parser(
        "components",
        help="list the registered components (code, versions, inputs, outputs) or one's JSON Schema",
        description="List the components a worker would run: those of the --components modules and of "
        "the 'rattan.components' entry-point group, plus the built-in examples. With --schema, print "
        "the JSON Schema of one component's inputs and outputs.",
    )
    add_components(cmd)
    cmd.add_argument(
        "--no-entry-points", action="store_true",
        help="do not load the 'rattan.components' entry-point group of the installed distributions",
    )  # fmt: skip
    cmd.add_argument("--no-examples", action="store_true", help="leave out the built-in example components")
    cmd.add_argument("--json", action="store_true", help="print every entry as JSON (formats and schemas)")
    cmd.add_argument(
        "--schema", metavar="CODE[@VERSION]",
        help="print the JSON Schema of this component's inputs and outputs (VERSION: needed when the "
        "code has several versions and none is 'legacy')",
    )  # fmt: skip


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run ``rattan components`` (parsed ``args``); return the exit code."""
    out = out or sys.stdout
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as ``python -m``: the user's modules live here
    try:
        if args.components:
            registry.import_modules(args.components)
        if not args.no_entry_points:
            registry.load_entry_points()
        if args.schema:
            code, _, version = args.schema.partition("@")
            entry = _one(code, version or None, not args.no_examples)
            _print_json(_schema_document(entry), out)
            return EXIT_OK
        entries = list_components(registry, include_builtin=not args.no_examples)
    except ComponentNotExistException as exc:
        print(f"rattan components: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (RattanError, ImportError) as exc:
        print(f"rattan components: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    if args.json:
        _print_json(entries, out)
    else:
        _print_table(entries, out)
    return EXIT_OK


def _one(code: str, version: str | None, include_builtin: bool) -> dict[str, Any]:
    """The entry of ``code`` at ``version``; without a version, its only one or ``legacy``."""
    if not code:
        raise BadInputError("--schema needs a component code: --schema CODE or --schema CODE@VERSION")
    entries = list_components(registry, include_builtin=include_builtin, code=code, version=version)
    if len(entries) == 1:
        return entries[0]
    legacy = [entry for entry in entries if entry["version"] == "legacy"]
    if legacy:
        return legacy[0]  # what a node that names no version runs
    versions = ", ".join(entry["version"] for entry in entries)
    raise ComponentNotExistException(
        f"component {code!r} has several versions ({versions}) and no 'legacy' one: say which, "
        f"e.g. --schema {code}@{entries[-1]['version']}"
    )


def _schema_document(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": entry["code"],
        "version": entry["version"],
        "name": entry["name"],
        "inputs": entry["inputs_schema"],
        "outputs": entry["outputs_schema"],
    }


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def _print_table(entries: list[dict[str, Any]], out: TextIO) -> None:
    header = ("CODE", "VERSION", "NAME", "GROUP", "WAITS", "INPUTS", "OUTPUTS")
    rows = [header]
    for entry in entries:
        inputs = [item["key"] + ("*" if item.get("required") else "") for item in entry["inputs"]]
        outputs = [item["key"] for item in entry["outputs"] if item["key"] not in DEFAULT_OUTPUTS]
        rows.append((
            entry["code"], entry["version"], entry["name"], entry["group_name"] or "-",
            entry["schedule"] or "-", ", ".join(inputs) or "-", ", ".join(outputs) or "-",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
    count = len(entries)
    out.write(
        f"{count} component{'s' if count != 1 else ''} (* marks a required input);"
        " rattan components --schema CODE[@VERSION] prints one's JSON Schema\n"
    )

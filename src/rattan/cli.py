"""The ``rattan`` command: ``rattan demo`` runs a demo pipeline, ``rattan validate FILE`` checks a tree.

Exit codes are named at the top of this module and listed in ``rattan --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import rattan
from rattan.errors import BadInputError, RattanError, TreeInvalidException

EXIT_OK = 0  # demo: the pipeline FINISHED; validate: the tree is valid
EXIT_NOT_FINISHED = 1  # demo: the pipeline failed, or did not finish within --timeout
EXIT_INVALID = 2  # validate: the tree breaks at least one rule
EXIT_INPUT_ERROR = 3  # a file could not be read, is not JSON, or the store could not be opened
EXIT_USAGE = 64  # bad command line (sysexits EX_USAGE)

POLL_SECONDS = 0.1
SHOWN_STATES = ("RUNNING", "FINISHED", "FAILED", "SUSPENDED", "REVOKED")

_EPILOG = f"""exit codes:
  {EXIT_OK}   demo finished / tree valid
  {EXIT_NOT_FINISHED}   demo pipeline failed or timed out
  {EXIT_INVALID}   tree invalid (every problem is printed)
  {EXIT_INPUT_ERROR}   unreadable file, bad JSON, or store unavailable
  {EXIT_USAGE}  bad command line
"""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on a usage error; rattan keeps 2 for invalid trees."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _UsageError(f"{self.prog}: error: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rattan",
        description="rattan: a durable process engine (bamboo-engine's pipeline model on SQLite).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rattan {rattan.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run a demo pipeline on an embedded engine (the default command)",
        description="Build a demo pipeline (activity, exclusive and parallel gateways, a polling "
        "activity, a subprocess), run it and print node states as they change.",
    )
    _demo_arguments(demo)

    validate = sub.add_parser(
        "validate",
        help="validate a pipeline tree stored as JSON",
        description="Validate a pipeline tree (the dict build_tree returns, saved as JSON) and "
        "print every broken rule.",
    )
    validate.add_argument("file", metavar="FILE.json", help="the tree; '-' reads standard input")
    validate.add_argument(
        "--cycle-tolerate", action="store_true", help="accept cycles (as run_pipeline(cycle_tolerate=True))"
    )
    arch = sub.add_parser(
        "archive",
        help="archive finished pipelines to JSON lines, then delete them from the store",
        description="Export runs FINISHED or REVOKED more than --older-than days ago (one JSON line "
        "per run: tree, states, data, histories, context, events) and delete them, in batches of "
        "short transactions so running work is not blocked.",
    )
    arch.add_argument("--db", default="rattan.db", help="the engine's SQLite file (default: ./rattan.db)")
    arch.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="age in days")
    arch.add_argument("--out", help="JSON-lines file to append the runs to (omit: delete without export)")
    arch.add_argument("--batch", type=int, default=100, help="runs per batch (default: 100)")
    arch.add_argument("--keep", action="store_true", help="export only; do not delete")
    return parser


def archive(db: str, older_than_days: float, out: str | None, batch: int, keep: bool) -> int:
    """Archive (and delete) finished runs; prints how many. Returns an exit code."""
    if not os.path.exists(db):
        print(f"rattan: no store at {db}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    try:
        with rattan.Engine(store=db, start=False) as engine:
            done = engine.archive(older_than_days * 86400.0, out, batch=batch, delete=not keep)
    except rattan.RattanError as exc:
        print(f"rattan: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    verb = "archived" if keep else ("archived and deleted" if out else "deleted")
    print(f"{verb} {len(done)} pipeline(s)" + (f" -> {out}" if out else ""))
    return EXIT_OK


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", default="rattan.db", help="SQLite file the engine stores runs in (default: ./rattan.db)"
    )
    parser.add_argument(
        "--count", type=int, default=3, help="the demo's ${count} variable; >= 2 takes the big_batch branch"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the pipeline (default: 60)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rattan`` command line and return its exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "demo")  # demo is the default command
    try:
        args = _parser().parse_args(args_list)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if args.command == "validate":
        return validate(args.file, cycle_tolerate=args.cycle_tolerate)
    if args.command == "archive":
        return archive(args.db, args.older_than, args.out, args.batch, args.keep)
    return demo(db=args.db, count=args.count, timeout=args.timeout)


# -- validate ------------------------------------------------------------------------------------


def _load_json(path: str) -> Any:
    if path == "-":
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def validate(path: str, *, cycle_tolerate: bool = False, out: TextIO | None = None) -> int:
    """Validate the tree in ``path``; print every problem. Returns an exit code."""
    from rattan.validator import validate_and_process_pipeline

    out = out or sys.stdout
    try:
        tree = _load_json(path)
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ValueError as exc:
        print(f"{path} is not JSON: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    try:
        validate_and_process_pipeline(tree, cycle_tolerate=cycle_tolerate)
    except TreeInvalidException as exc:
        problems = exc.problems
        print(f"INVALID: {path}: {type(exc).__name__}, {len(problems) or 1} problem(s)", file=out)
        if problems:
            for problem in problems:
                print(f"  - {problem}", file=out)
        else:
            print(f"  - {exc}", file=out)
        return EXIT_INVALID
    except BadInputError as exc:
        print(f"INVALID: {path}: {type(exc).__name__}: {exc}", file=out)
        return EXIT_INVALID
    print(f"valid: {path} (pipeline {tree['id']}, {_count_nodes(tree)} nodes)", file=out)
    return EXIT_OK


def _count_nodes(tree: dict[str, Any]) -> int:
    n = 2 + len(tree["activities"]) + len(tree["gateways"])
    for node in tree["activities"].values():
        if node.get("type") == "SubProcess":
            n += _count_nodes(node["pipeline"])
    return n


# -- demo ----------------------------------------------------------------------------------------


def _flat_states(states: dict[str, Any], root_id: str) -> dict[str, str]:
    """{node id: state name} for the root and every child, from ``get_pipeline_states``."""
    root = states.get(root_id)
    if not root:
        return {}
    flat = {root_id: str(root["state"])}
    for nid, child in root.get("children", {}).items():
        flat[nid] = str(child["state"])
    return flat


def demo(db: str = "rattan.db", count: int = 3, timeout: float = 60.0, out: TextIO | None = None) -> int:
    """Run the demo pipeline on ``Engine(store=db)`` and report progress. Returns an exit code."""
    from rattan.demo import DEMO_REGISTRY, build_demo_tree, node_names

    out = out or sys.stdout
    tree = build_demo_tree(count)
    root_id: str = tree["id"]
    names = node_names(tree)
    path = os.path.abspath(db) if db != ":memory:" else ":memory:"
    try:
        engine = rattan.Engine(store=db, components=DEMO_REGISTRY)
    except RattanError as exc:
        print(f"cannot open the store {path}: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    with engine:
        began = time.monotonic()
        print(f"rattan {rattan.__version__}: running demo pipeline {root_id} (store: {path})", file=out)
        result = rattan.api.run_pipeline(engine, tree)
        if not result.result:
            print(f"run_pipeline refused the tree: {result.message}", file=out)
            return EXIT_NOT_FINISHED
        seen: dict[str, str] = {}
        final = "RUNNING"
        deadline = began + timeout
        while True:
            current = _flat_states(engine.get_pipeline_states(root_id), root_id)
            elapsed = time.monotonic() - began
            for nid, state in current.items():
                if seen.get(nid) != state and nid != root_id and state in SHOWN_STATES:
                    print(f"[{elapsed:6.2f}s] {names.get(nid, nid)} {state}", file=out)
                seen[nid] = state
            final = current.get(root_id, "RUNNING")
            if (
                final in ("FINISHED", "REVOKED")
                or "FAILED" in current.values()
                or time.monotonic() > deadline
            ):
                break
            time.sleep(POLL_SECONDS)
        elapsed = time.monotonic() - began
        _report(engine, root_id, names, seen, out)
        outputs = engine.get_execution_data_outputs(root_id)
        print(f"pipeline outputs: {json.dumps(outputs, ensure_ascii=False, sort_keys=True)}", file=out)
        print(f"database: {path}", file=out)
    if final == "FINISHED":
        print(f"pipeline FINISHED in {elapsed:.2f}s", file=out)
        return EXIT_OK
    if final == "RUNNING" and "FAILED" not in seen.values():
        print(f"pipeline did not finish within {timeout:g}s (state {final})", file=out)
    else:
        print(f"pipeline did not finish: state {final}", file=out)
    return EXIT_NOT_FINISHED


def _report(
    engine: rattan.Engine, root_id: str, names: dict[str, str], seen: dict[str, str], out: TextIO
) -> None:
    print("final states:", file=out)
    for nid, state in seen.items():
        if nid == root_id:
            continue
        line = f"  {names.get(nid, nid):<28} {state}"
        if state == "FAILED":
            ex_data = engine.get_execution_data_outputs(nid).get("ex_data")
            if ex_data:
                line += f"  ex_data: {str(ex_data).strip().splitlines()[-1]}"
        print(line, file=out)
    print(f"  {'(pipeline)':<28} {seen.get(root_id, '?')}", file=out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

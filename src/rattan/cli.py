"""The ``rattan`` command: ``demo`` runs a demo pipeline, ``validate FILE`` checks a tree,
``archive`` exports and deletes old finished runs, ``worker`` runs a Celery worker with the engine
(``rattan[celery]``); the operator commands (``list``, ``show``, ``events``, ``graph``,
``history``, the controls, ``migrate``) are in ``rattan.cli_ops`` and ``rattan.cli_show``.
Bare ``rattan`` prints the help.

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
from rattan.cli_args import STORE_HELP, add_components, amount, default_store, positive_int, sqlite_path
from rattan.errors import BadInputError, Problem, RattanError, TreeInvalidException

EXIT_OK = 0  # demo: the pipeline FINISHED; validate: the tree is valid; archive: done
EXIT_NOT_FINISHED = 1  # demo/run: the pipeline failed or did not finish in time; doctor: runs are stuck
EXIT_INVALID = 2  # validate: the tree breaks at least one rule or names an unknown component
EXIT_INPUT_ERROR = 3  # a file could not be read, is not JSON, or the store could not be opened
EXIT_NOT_FOUND = 4  # an operator command named a pipeline or node that does not exist
EXIT_REFUSED = 5  # the engine refused a control in the target's current state
EXIT_USAGE = 64  # bad command line (sysexits EX_USAGE)
EXIT_INTERRUPTED = 130  # Ctrl-C (the shell's 128 + SIGINT)
# the operator commands (rattan.cli_ops, rattan.cli_show)
OPS_COMMANDS = (
    "list", "show", "events", "graph", "history", "pause", "resume", "revoke", "retry", "skip",
    "callback", "force-fail", "migrate",
)  # fmt: skip

_EPILOG = f"""exit codes:
  {EXIT_OK}    ok: demo finished / tree valid / archive or operator command done
  {EXIT_NOT_FINISHED}    demo or run: the pipeline did not finish (failed node, revoked, timed out);
       doctor: something needs an operator, an outside system or a repair
  {EXIT_INVALID}    tree invalid or names unknown components (every problem is printed)
  {EXIT_INPUT_ERROR}    unreadable file, bad JSON or input, module that fails to import,
       store or broker unavailable
  {EXIT_NOT_FOUND}    no pipeline or node with that id
  {EXIT_REFUSED}    operation refused in the target's current state (e.g. retry of a node that is not FAILED)
  {EXIT_USAGE}   bad command line
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); what was left is saved in the store
"""


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on a usage error; rattan keeps 2 for invalid trees."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise _UsageError(f"{self.prog}: error: {message}")


_days = amount("days")
_seconds = amount("seconds")


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
        help="run a demo pipeline (stored in ./rattan.db, or --db FILE)",
        description="Build a demo pipeline (activity, exclusive and parallel gateways, a polling "
        "activity, a subprocess), run it and print node states as they change. Ctrl-C stops it; "
        "the pipeline stays in the store and resumes the next time the demo runs on it.",
    )
    demo.add_argument(
        "--db", default="rattan.db", help="SQLite file the engine stores runs in (default: ./rattan.db)"
    )
    demo.add_argument(
        "--count", type=int, default=3, help="the demo's ${count} variable; >= 2 takes the big_batch branch"
    )
    demo.add_argument(
        "--timeout", type=_seconds, default=60.0, help="seconds to wait for the pipeline (default: 60)"
    )
    demo.add_argument(
        "--wait", type=_seconds, default=0.2, metavar="SECONDS",
        help="how long wait_for_job waits for its job (default: 0.2)",
    )  # fmt: skip

    validate = sub.add_parser(
        "validate",
        help="validate a pipeline tree stored as JSON",
        description="Validate a pipeline tree (the dict build_tree returns, saved as JSON) and "
        "print every broken rule. With --components, also report every node whose component "
        "(code and version) is not registered once those modules are imported.",
    )
    validate.add_argument("file", metavar="FILE.json", help="the tree; '-' reads standard input")
    validate.add_argument(
        "--cycle-tolerate", action="store_true", help="accept cycles (as run_pipeline(cycle_tolerate=True))"
    )
    add_components(
        validate,
        "import MODULE (a package: with its submodules) so its components register, then "
        "check the tree's component codes and versions; repeat for several modules",
    )

    arch = sub.add_parser(
        "archive",
        help="export old finished pipelines to JSON lines, then delete them",
        description="Export runs FINISHED or REVOKED more than --older-than days ago (one JSON line "
        "per run: tree, states, data, histories, context, events) and delete them, in batches of "
        "short transactions so running work is not blocked. Says how many runs it will touch "
        "first; --dry-run only says that.",
    )
    # --store like the operator commands; --db stays as the older spelling
    arch.add_argument("--store", "--db", dest="db", default=None, metavar="URL", help=STORE_HELP)
    arch.add_argument(
        "--older-than", type=_days, required=True, metavar="DAYS", help="age in days (0 or more)"
    )
    target = arch.add_mutually_exclusive_group()
    target.add_argument("--out", metavar="FILE", help="JSON-lines file to append the runs to")
    target.add_argument(
        "--no-export", action="store_true", help="delete the runs without exporting them anywhere"
    )
    arch.add_argument("--batch", type=positive_int, default=100, help="runs per batch (default: 100)")
    arch.add_argument("--keep", action="store_true", help="export only; do not delete (needs --out)")
    arch.add_argument(
        "--dry-run", action="store_true", help="only say how many runs would be archived; change nothing"
    )
    from rattan.cli_worker import add_worker_parser

    add_worker_parser(sub)
    from rattan import logs

    logs.add_argument(sub.choices["worker"])  # --log-format (rattan.logs)
    from rattan.server.cli import add_parser as add_serve_parser  # argparse only: no server import

    add_serve_parser(sub)
    from rattan import cli_doctor, cli_ops, cli_run

    cli_ops.add_parsers(sub)
    cli_run.add_parser(sub)
    cli_doctor.add_parsers(sub)
    from rattan import cli_components

    cli_components.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rattan`` command line and return its exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not args_list:  # bare ``rattan``: show what there is, touch nothing
        parser.print_help(sys.stdout)
        return EXIT_OK
    try:
        args = parser.parse_args(args_list)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        if args.command == "validate":
            return validate(args.file, cycle_tolerate=args.cycle_tolerate, components=args.components)
        if args.command == "archive":
            return archive(
                args.db, args.older_than, args.out, args.batch, args.keep,
                no_export=args.no_export, dry_run=args.dry_run,
            )  # fmt: skip
        if args.command == "worker":
            from rattan.cli_worker import worker

            return worker(args)
        if args.command == "serve":
            return int(args.func(args))
        if args.command == "components":
            from rattan import cli_components

            return cli_components.run(args)
        if args.command == "run":
            from rattan import cli_run

            return cli_run.run(args)
        if args.command in ("doctor", "repair"):
            from rattan import cli_doctor

            return cli_doctor.run(args)
        if args.command in OPS_COMMANDS:
            from rattan import cli_ops

            return cli_ops.run(args)
        if args.command == "demo":
            return demo(db=args.db, count=args.count, timeout=args.timeout, wait=args.wait)
        parser.print_help(sys.stdout)
        return EXIT_OK
    except KeyboardInterrupt:
        # the commands report what they leave behind themselves; this catches a second Ctrl-C
        # while they shut down, or one before they got going
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# -- validate ------------------------------------------------------------------------------------


def _load_json(path: str) -> Any:
    if path == "-":
        return json.load(sys.stdin)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def validate(
    path: str, *, cycle_tolerate: bool = False, components: Sequence[str] = (), out: TextIO | None = None
) -> int:
    """Validate the tree in ``path``; print every problem. With ``components`` (module names),
    import them and report every node whose component is not registered. Returns an exit code."""
    from rattan.engine.prepare import component_problems
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
    engine = None
    if components:
        # the modules' components and end-event types are what run_pipeline would see: open a
        # throw-away engine with them, as a host process would
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as ``python -m``: the user's modules live here
        try:
            engine = rattan.Engine(":memory:", start=False, component_modules=components)
        except RattanError as exc:
            print(f"rattan validate: {exc}", file=sys.stderr)
            return EXIT_INPUT_ERROR
    try:
        sink_types = engine.core.services.sink_types() if engine else None
        try:
            validate_and_process_pipeline(tree, cycle_tolerate=cycle_tolerate, sink_types=sink_types)
            # the check run_pipeline(check_components=True) makes, with its hints
            unknown = component_problems(engine.core, tree) if engine is not None else []
        except TreeInvalidException as exc:
            _print_problems(path, type(exc).__name__, exc.problems or [str(exc)], out)
            return EXIT_INVALID
        except BadInputError as exc:
            print(f"INVALID: {path}: {type(exc).__name__}: {exc}", file=out)
            return EXIT_INVALID
        if unknown:
            _print_problems(path, "unregistered components", unknown, out)
            return EXIT_INVALID
    finally:
        if engine is not None:
            engine.close()
    checked = ", every component registered" if components else ""
    print(f"valid: {path} (pipeline {tree['id']}, {_count_nodes(tree)} nodes{checked})", file=out)
    return EXIT_OK


def _print_problems(path: str, kind: str, problems: Sequence[Problem | str], out: TextIO) -> None:
    print(f"INVALID: {path}: {kind}, {len(problems)} problem(s)", file=out)
    for problem in problems:
        print(f"  - {problem}", file=out)


def _count_nodes(tree: dict[str, Any]) -> int:
    n = 2 + len(tree["activities"]) + len(tree["gateways"])
    for node in tree["activities"].values():
        if node.get("type") == "SubProcess":
            n += _count_nodes(node["pipeline"])
    return n


# -- archive -------------------------------------------------------------------------------------

# one query lists every eligible run: counting in small pages would read the table many times
_ALL = 2**62


def archive(
    db: str | None,
    older_than_days: float,
    out: str | None,
    batch: int,
    keep: bool,
    *,
    no_export: bool = False,
    dry_run: bool = False,
) -> int:
    """Archive (and delete) finished runs; says how many first. Returns an exit code."""
    db = default_store(db)
    path = sqlite_path(db)
    if path is not None and not os.path.exists(path):
        print(f"rattan: no store at {path} (give --store URL or set RATTAN_STORE)", file=sys.stderr)
        return EXIT_INPUT_ERROR
    if keep and out is None:
        print("rattan archive: --keep exports without deleting: it needs --out FILE", file=sys.stderr)
        return EXIT_USAGE
    if out is None and not no_export and not dry_run:
        # deleting is for good: a copy is the default, going without one must be asked for
        print(
            "rattan archive: give --out FILE to export the runs before they are deleted, "
            "or --no-export to delete them without a copy",
            file=sys.stderr,
        )
        return EXIT_USAGE
    seconds = older_than_days * 86400.0
    cutoff = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() - seconds))
    what = f"pipeline(s) finished or revoked more than {older_than_days:g} day(s) ago (before {cutoff})"
    try:
        with rattan.Engine(store=db, start=False) as engine:
            due = engine.archive(seconds, None, batch=_ALL, delete=False)
            if dry_run:
                print(f"dry run: {len(due)} {what} in {db}; nothing was exported or deleted")
                return EXIT_OK
            if keep:
                plan = f"archiving {len(due)} {what} from {db} to {out}; nothing is deleted"
            elif out:
                plan = f"archiving {len(due)} {what} from {db} to {out}, then deleting them"
            else:
                plan = f"deleting {len(due)} {what} from {db}, without export"
            print(plan, file=sys.stderr, flush=True)
            try:
                done = engine.archive(seconds, out, batch=batch, delete=not keep)
            except KeyboardInterrupt:
                print(_archive_interrupted(engine, db, out, keep, seconds, due), file=sys.stderr)
                return EXIT_INTERRUPTED
    except RattanError as exc:
        print(f"rattan: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    verb = "archived" if keep else ("archived and deleted" if out else "deleted")
    print(f"{verb} {len(done)} pipeline(s)" + (f" -> {out}" if out else ""))
    return EXIT_OK


def _archive_interrupted(
    engine: rattan.Engine, db: str, out: str | None, keep: bool, seconds: float, due: list[str]
) -> str:
    if keep:
        return f"interrupted: the export to {out} is incomplete; nothing was deleted from {db}"
    try:
        left = set(engine.archive(seconds, None, batch=_ALL, delete=False))
    except RattanError:
        return f"interrupted: some pipelines may be left in {db}: run the command again to finish"
    gone = len(set(due) - left)
    exported = f" (exported to {out})" if out else ""
    return (
        f"interrupted: {gone} of {len(due)} pipeline(s) deleted{exported}; {len(left)} still in {db}: "
        "run the command again to finish"
    )


# -- demo ----------------------------------------------------------------------------------------


def demo(
    db: str = "rattan.db", count: int = 3, timeout: float = 60.0, wait: float = 0.2, out: TextIO | None = None
) -> int:
    """Run the demo pipeline on ``Engine(store=db)`` and report progress. Returns an exit code."""
    from rattan.demo import DEMO_REGISTRY, FINISHED, INTERRUPTED, run_demo

    try:
        engine = rattan.Engine(store=db, components=DEMO_REGISTRY)
    except RattanError as exc:
        path = os.path.abspath(db) if db != ":memory:" else db
        print(f"cannot open the store {path}: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    outcome = run_demo(engine, db, count=count, timeout=timeout, wait=wait, out=out)
    if outcome == FINISHED:
        return EXIT_OK
    return EXIT_INTERRUPTED if outcome == INTERRUPTED else EXIT_NOT_FINISHED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

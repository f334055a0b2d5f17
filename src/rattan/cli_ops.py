"""The operator commands of ``rattan``: ``list``, ``show``, ``events``, ``graph``, ``history``, the
controls (``pause``, ``resume``, ``revoke``, ``retry``, ``skip``, ``callback``, ``force-fail``) and
``migrate``.

Each opens ``Engine(store, start=False)`` on ``--store`` (default ``$RATTAN_STORE``, else
``rattan.db``): it reads and writes the store and runs no workers, so what a control writes is
carried out by a running engine on the same store (docs/deployment.md). The read commands
``show``, ``events``, ``history`` and ``graph`` are in ``rattan.cli_show``. Exit codes are those of
``rattan.cli`` (docs/operations.md, "The rattan command").
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import rattan
from rattan.cli import EXIT_INPUT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED
from rattan.cli_args import amount, default_store, positive_int, sqlite_path, store_options
from rattan.errors import (
    BadInputError,
    ConflictError,
    InvalidOperationError,
    NotFoundError,
    RattanError,
)
from rattan.runtime import hide_password
from rattan.states import ALL_STATES

PAGE = 1000  # the engine's largest page of runs or events
FOLLOW_SECONDS = 0.5  # default pause between two looks of ``events --follow``
FORCED_MESSAGE = "forced to fail by an operator (rattan force-fail)"


class Refusal(Exception):
    """A command's own refusal: its exit code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- parsers -----------------------------------------------------------------------------------------


def add_parsers(sub: Any) -> None:
    """Add the operator commands to the ``rattan`` parser's subparsers."""
    common = [store_options()]

    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name, help=help_text, description=description, parents=common
        )
        return parser

    cmd = add(
        "list",
        "list stored pipelines (newest first)",
        "List stored runs, newest first: id, "
        "state, created and finished times, node counts by state, failed nodes.",
    )
    cmd.add_argument("--state", choices=sorted(ALL_STATES), help="only runs whose pipeline is in STATE")
    cmd.add_argument("--failed", action="store_true", help="only runs with FAILED nodes")
    cmd.add_argument(
        "--waiting", action="store_true",
        help="only runs with a node that waits (a callback, a poll, a resume or an operator)",
    )  # fmt: skip
    age = cmd.add_mutually_exclusive_group()
    age.add_argument("--older-than", type=amount("days"), metavar="DAYS", help="created more than DAYS ago")
    age.add_argument("--newer-than", type=amount("days"), metavar="DAYS", help="created less than DAYS ago")
    cmd.add_argument("--limit", type=positive_int, default=50, help="runs to show (default: 50)")
    cmd.add_argument("--offset", type=_count, default=0, help="runs to skip first (default: 0)")

    cmd = add(
        "show",
        "show a run's node states as a tree",
        "Show a run: its state, then each "
        "node reached (subprocess children indented) with its name, type and state, what a "
        "waiting node waits for, and a failed node's error.",
    )
    cmd.add_argument("pipeline_id", metavar="ID")

    cmd = add(
        "events",
        "print events of the durable event log",
        "Print events of the durable log "
        "(of one run, or of every run), one per line with its id. --follow keeps printing "
        "new ones until Ctrl-C; the last id goes to standard error (resume with --after).",
    )
    cmd.add_argument("pipeline_id", metavar="ID", nargs="?", help="a run's id (default: every run)")
    cmd.add_argument("--after", type=_count, default=0, metavar="N", help="only events with id > N")
    cmd.add_argument(
        "--follow", action="store_true", help="keep polling for new events (Ctrl-C or SIGTERM stops)"
    )
    cmd.add_argument(
        "--interval", type=amount("seconds"), default=FOLLOW_SECONDS, metavar="SECONDS",
        help=f"--follow: pause between two looks (default: {FOLLOW_SECONDS})",
    )  # fmt: skip

    cmd = add(
        "graph",
        "print a run's graph (mermaid, dot or a standalone SVG image)",
        "Print the run's graph: nodes with "
        "names and states, gateways, flows (with conditions), subprocesses as subgraphs.",
    )
    cmd.add_argument("pipeline_id", metavar="ID")
    cmd.add_argument(
        "--format", choices=("mermaid", "dot", "svg"), default="mermaid", help="default: mermaid"
    )

    cmd = add(
        "history",
        "show a node's state and past passes",
        "Show a node's current state and its past passes (kept when it is retried, skipped or looped).",
    )
    cmd.add_argument("node_id", metavar="NODE")

    for name, what in (("pause", "pause"), ("resume", "resume"), ("revoke", "revoke")):
        cmd = add(name, f"{what} a pipeline", f"{what.capitalize()} a run (its root pipeline id)"
                  + (" or a subprocess (its node id)." if name != "revoke" else "."))  # fmt: skip
        cmd.add_argument("pipeline_id", metavar="ID")

    cmd = add("retry", "retry a FAILED node", "Run a FAILED node again, optionally with new inputs.")
    cmd.add_argument("node_id", metavar="NODE")
    cmd.add_argument("--data", metavar="JSON", help="new inputs: a JSON object of input key -> value")

    cmd = add("skip", "skip a FAILED node", "Skip a FAILED node: the pipeline goes on past it.")
    cmd.add_argument("node_id", metavar="NODE")

    cmd = add(
        "callback",
        "send a callback to a waiting node",
        "Send a callback to a node that waits for one; a running engine applies it.",
    )
    cmd.add_argument("node_id", metavar="NODE")
    cmd.add_argument("--data", required=True, metavar="JSON", help="the callback's data (any JSON)")
    cmd.add_argument("--version", metavar="V", help="the node's pass (default: its current version)")

    cmd = add("force-fail", "force a RUNNING activity to fail", "Make a RUNNING activity FAILED now.")
    cmd.add_argument("node_id", metavar="NODE")
    cmd.add_argument("--message", default=FORCED_MESSAGE, metavar="TEXT", help="the error recorded")

    add(
        "migrate",
        "bring the store's schema up to date",
        "Create the store if it is a new SQLite "
        "file, bring its schema up to date (safe while engines use it) and print its version.",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


# -- running -----------------------------------------------------------------------------------------


def store_url(args: argparse.Namespace) -> str:
    return default_store(args.store)


def run(args: argparse.Namespace) -> int:
    """Run the operator command ``args.command``; returns its exit code."""
    from rattan import cli_show

    handlers: dict[str, Callable[[rattan.Engine, argparse.Namespace], int]] = {
        "list": list_runs, "show": cli_show.show, "events": cli_show.events, "graph": cli_show.graph,
        "history": cli_show.history, "pause": control, "resume": control, "revoke": control, "retry": control,
        "skip": control, "callback": control, "force-fail": control, "migrate": migrate,
    }  # fmt: skip
    name = f"rattan {args.command}"
    url = store_url(args)
    path = sqlite_path(url)
    try:
        if path is not None and args.command != "migrate" and not os.path.exists(path):
            raise Refusal(EXIT_INPUT_ERROR, f"no store at {path} (give --store URL or set RATTAN_STORE)")
        args.created = path is not None and not os.path.exists(path)
        with rattan.Engine(store=url, start=False) as engine:
            return handlers[args.command](engine, args)
    except Refusal as exc:
        return _fail(name, exc.code, str(exc))
    except NotFoundError as exc:
        return _fail(name, EXIT_NOT_FOUND, str(exc))
    except (InvalidOperationError, ConflictError) as exc:
        return _fail(name, EXIT_REFUSED, f"refused: {exc}")
    except BadInputError as exc:
        return _fail(name, EXIT_INPUT_ERROR, f"bad input: {exc}")
    except RattanError as exc:  # the store cannot be opened or reached
        return _fail(name, EXIT_INPUT_ERROR, str(exc))
    except BrokenPipeError:  # the reader left (``rattan events | head``): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _fail(name: str, code: int, message: str) -> int:
    print(f"{name}: {message}", file=sys.stderr)
    return code


# -- output helpers ----------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return str(value)


def print_json(value: Any) -> None:
    print(json.dumps(value, default=plain, ensure_ascii=False, indent=2, sort_keys=True))


def when(value: datetime | None, fraction: bool = False) -> str:
    """A stored time as ``YYYY-MM-DD HH:MM:SS`` in UTC (``-`` for none)."""
    if value is None:
        return "-"
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[:-3] if fraction else text[:-7]


def counts(node_counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(node_counts.items())) or "-"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Rows as columns aligned under ``header`` (the last column is not padded)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise Refusal(EXIT_INPUT_ERROR, f"{what} is not JSON: {exc}") from None


# -- list --------------------------------------------------------------------------------------------


def list_runs(engine: rattan.Engine, args: argparse.Namespace) -> int:
    now = time.time()
    after = now - args.newer_than * 86400.0 if args.newer_than is not None else None
    before = now - args.older_than * 86400.0 if args.older_than is not None else None
    failed = True if args.failed else None

    def page(limit: int, offset: int) -> list[dict[str, Any]]:
        return engine.list_pipelines(
            args.state, failed, limit, offset, created_after=after, created_before=before
        )

    if not args.waiting:
        found = page(args.limit, args.offset)
    else:  # no store filter for this one: walk the runs, keep those with a waiting node
        found, skipped, offset = [], 0, 0
        while len(found) < args.limit:
            batch = page(PAGE, offset)
            offset += len(batch)
            for item in batch:
                if not engine.wait_pipeline(item["id"], 0)["waiting"]:
                    continue
                if skipped < args.offset:
                    skipped += 1
                elif len(found) < args.limit:
                    found.append(item)
            if len(batch) < PAGE:
                break
    if args.json:
        print_json({"pipelines": found, "limit": args.limit, "offset": args.offset})
        return EXIT_OK
    if not found:
        print("no pipelines")
        return EXIT_OK
    rows = [
        [r["id"], r["state"], when(r["created_time"]), when(r["finished_time"]), counts(r["node_counts"]),
         ", ".join(r["failed_nodes"]) or "-"]
        for r in found
    ]  # fmt: skip
    for line in table(["ID", "STATE", "CREATED", "FINISHED", "NODES", "FAILED"], rows):
        print(line)
    return EXIT_OK


# -- controls ----------------------------------------------------------------------------------------


def control(engine: rattan.Engine, args: argparse.Namespace) -> int:
    command: str = args.command
    target = args.node_id if hasattr(args, "node_id") else args.pipeline_id
    result: dict[str, Any] = {"ok": True, "command": command, "id": target}
    if command == "pause":
        engine.pause_pipeline(target)
        said = f"paused {target}"
    elif command == "resume":
        engine.resume_pipeline(target)
        said = f"resumed {target}"
    elif command == "revoke":
        engine.revoke_pipeline(target)
        said = f"revoked {target}"
    elif command == "retry":
        data = parse_json(args.data, "--data") if args.data is not None else None
        if data is not None and not isinstance(data, dict):
            raise Refusal(EXIT_INPUT_ERROR, f"--data must be a JSON object (input key -> value): {args.data}")
        engine.retry_node(target, data)
        said = f"retrying {target}" + (f" with new inputs: {', '.join(sorted(data))}" if data else "")
    elif command == "skip":
        engine.skip_node(target)
        said = f"skipped {target}"
    elif command == "callback":
        data = parse_json(args.data, "--data")
        current = engine.get_state(target)  # NotFoundError: no such node
        version = args.version or current.version
        try:
            callback_id = engine.callback(target, version, data)
        except NotFoundError as exc:  # the node exists: it does not wait for this callback
            raise InvalidOperationError(str(exc)) from None
        result.update(version=version, callback_id=callback_id)
        said = f"callback {callback_id} accepted for {target} (version {version})"
    else:  # force-fail
        engine.forced_fail_activity(target, args.message)
        said = f"forced {target} to fail: {args.message}"
    if args.json:
        print_json(result)
    else:
        print(said)
    return EXIT_OK


# -- migrate -----------------------------------------------------------------------------------------


def migrate(engine: rattan.Engine, args: argparse.Namespace) -> int:
    version = engine.core.store.migrate()
    url = store_url(args)
    where = sqlite_path(url) or hide_password(url)
    if args.json:
        print_json({"store": where, "schema_version": version, "created": args.created})
    else:
        print(f"{'created' if args.created else 'migrated'} {where}: schema version {version}")
    return EXIT_OK

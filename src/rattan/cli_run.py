"""``rattan run TREE.json | module:function``: run a pipeline on an engine in this process, show
its progress live, and end with a summary (state, duration, failed nodes with their errors, the
pipeline's outputs). ``--dry-run`` runs it on a throwaway store, with chosen activities mocked
(``rattan.dryrun``), so a template can be tried before it touches real systems.

Progress goes to standard error (one line refreshed in place on a terminal, a line per node
change otherwise); the summary goes to standard output (JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from typing import Any, TextIO

import rattan
from rattan import dryrun, logs
from rattan.cli import EXIT_INPUT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_NOT_FINISHED, EXIT_OK
from rattan.cli_args import add_components, amount, sqlite_path
from rattan.cli_ops import Refusal, print_json, store_url
from rattan.errors import BadInputError, RattanError, TreeInvalidException

POLL_SECONDS = 0.1  # between two looks at the run's states
ERROR_LINES = 12  # lines of a failed node's ex_data shown in the summary (the last ones)


def add_parser(sub: Any) -> None:
    cmd: argparse.ArgumentParser = sub.add_parser(
        "run",
        help="run a pipeline (a tree JSON file or module:function) and show its progress",
        description="Run a pipeline on an engine in this process: TARGET is a tree saved as JSON "
        "(the dict build_tree returns; '-' reads standard input) or module:function, a callable "
        "that returns such a tree. Shows node progress, then a summary. Exit 0 when the pipeline "
        "FINISHED, 1 when it stopped on failed nodes, was revoked or --timeout passed.",
    )
    cmd.add_argument("target", metavar="TREE.json|module:function")
    cmd.add_argument(
        "--data", metavar="JSON",
        help="the pipeline's inputs: a JSON object of variable -> value ('{\"n\": 3}' sets ${n})",
    )  # fmt: skip
    cmd.add_argument(
        "--store", default=None, metavar="URL",
        help="the store (default: $RATTAN_STORE, else rattan.db; created when missing)",
    )  # fmt: skip
    add_components(cmd)
    cmd.add_argument(
        "--timeout", type=amount("seconds"), default=None, metavar="SECONDS",
        help="stop waiting after this long (the run goes on in the store); default: no limit",
    )  # fmt: skip
    cmd.add_argument(
        "--dry-run", action="store_true",
        help="run on a throwaway in-memory store (--store is ignored); see --mock and --mock-all",
    )  # fmt: skip
    cmd.add_argument(
        "--mock", action="append", default=[], metavar="NODE=JSON",
        help="with --dry-run: NODE (an id or a name) returns these outputs; NODE=!text fails with "
        'text as its error; {"__fail__": ERROR, ...} fails with ERROR and the other keys as outputs',
    )  # fmt: skip
    cmd.add_argument(
        "--mock-all", action="store_true",
        help="with --dry-run: every service activity without a --mock succeeds with no outputs",
    )  # fmt: skip
    cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    logs.add_argument(cmd)


# -- loading -----------------------------------------------------------------------------------


def load_target(target: str) -> dict[str, Any]:
    """The tree named by ``target``: a JSON file, ``-`` (standard input) or ``module:function``."""
    if target == "-" or target.endswith(".json") or os.path.exists(target):
        try:
            if target == "-":
                tree = json.load(sys.stdin)
            else:
                with open(target, encoding="utf-8") as f:
                    tree = json.load(f)
        except OSError as exc:
            raise Refusal(EXIT_INPUT_ERROR, f"cannot read {target}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise Refusal(EXIT_INPUT_ERROR, f"{target} is not JSON: {exc}") from None
    else:
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise Refusal(EXIT_INPUT_ERROR, f"{target}: give a tree file (.json) or module:function")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # as ``python -m``: the user's modules live here
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise Refusal(EXIT_INPUT_ERROR, f"cannot load {target}: {exc}") from None
        try:
            tree = fn() if callable(fn) else fn
        except Exception as exc:  # the user's builder code: say what it raised
            raise Refusal(EXIT_INPUT_ERROR, f"{target} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(tree, dict) or "id" not in tree or "start_event" not in tree:
        raise Refusal(EXIT_INPUT_ERROR, f"{target} is not a pipeline tree (the dict build_tree returns)")
    return tree


def apply_data(tree: dict[str, Any], text: str | None) -> None:
    """``--data``: each key ``k`` (or ``${k}``) sets the root pipeline's variable ``${k}`` to a
    plain value: the tree's ``data.inputs`` entry of that name is replaced, or added."""
    if text is None:
        return
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise Refusal(EXIT_INPUT_ERROR, f"--data is not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise Refusal(EXIT_INPUT_ERROR, "--data must be a JSON object (variable -> value)")
    inputs = tree.setdefault("data", {}).setdefault("inputs", {})
    for key, value in values.items():
        name = key if key.startswith("${") else f"${{{key}}}"
        inputs[name] = {**inputs.get(name, {}), "type": "plain", "value": value}


# -- progress ----------------------------------------------------------------------------------


def node_names(tree: dict[str, Any]) -> dict[str, str]:
    """Node id -> what to call it (its name, else its type)."""
    return {n["id"]: n.get("name") or n.get("type") or n["id"] for n in dryrun.all_nodes(tree)}


class Progress:
    """Node changes as they happen: plain lines, or one line refreshed in place on a terminal."""

    def __init__(self, out: TextIO, names: dict[str, str], started: float) -> None:
        self.out = out
        self.names = names
        self.started = started
        self.tty = out.isatty()
        self.seen: dict[str, str] = {}

    def update(self, states: dict[str, str]) -> None:
        elapsed = time.monotonic() - self.started
        changed = [(n, s) for n, s in states.items() if self.seen.get(n) != s]
        self.seen.update(states)
        if self.tty:
            counts = {
                s: sum(1 for v in self.seen.values() if v == s) for s in ("RUNNING", "FINISHED", "FAILED")
            }
            line = (
                f"[{elapsed:6.1f}s] running {counts['RUNNING']}, done {counts['FINISHED']}, "
                f"failed {counts['FAILED']} of {len(self.names)} nodes"
            )
            self.out.write(f"\r\x1b[K{line}")
        else:
            for node_id, state in changed:
                self.out.write(
                    f"[{elapsed:6.2f}s] {state:<9} {self.names.get(node_id, node_id)} ({node_id})\n"
                )
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def node_states(engine: rattan.Engine, root_id: str) -> dict[str, str]:
    children = engine.get_pipeline_states(root_id)[root_id]["children"]
    return {node_id: entry["state"] for node_id, entry in children.items()}


# -- the command -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    logs.configure(args.log_format)
    if (args.mock or args.mock_all) and not args.dry_run:
        print("rattan run: --mock and --mock-all need --dry-run", file=sys.stderr)
        return EXIT_INPUT_ERROR
    try:
        tree = load_target(args.target)
        apply_data(tree, args.data)
        mocks: dict[str, dryrun.Mock] = {}
        if args.dry_run:
            parsed = [dryrun.parse_mock(text) for text in args.mock]
            mocks = dryrun.resolve(tree, parsed, args.mock_all)
        url = ":memory:" if args.dry_run else store_url(args)
        return execute(tree, url, args, mocks)
    except Refusal as exc:
        print(f"rattan run: {exc}", file=sys.stderr)
        return exc.code
    except TreeInvalidException as exc:
        print(f"rattan run: the tree is invalid: {exc}", file=sys.stderr)
        for problem in exc.problems or []:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_INVALID
    except BadInputError as exc:
        print(f"rattan run: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except RattanError as exc:  # the store cannot be opened, a module fails to import
        print(f"rattan run: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def execute(tree: dict[str, Any], url: str, args: argparse.Namespace, mocks: dict[str, dryrun.Mock]) -> int:
    names = node_names(tree)
    path = sqlite_path(url)
    if path is not None and os.path.dirname(path) and not os.path.isdir(os.path.dirname(path)):
        raise Refusal(EXIT_INPUT_ERROR, f"no folder for the store {path}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    engine = rattan.Engine(store=url, component_modules=args.components)
    if mocks:
        dryrun.install(engine.core.services.registry)
    to_run = dryrun.mock_tree(tree, mocks) if mocks else tree
    root_id = str(tree["id"])
    started = time.monotonic()
    progress = Progress(sys.stderr, names, started)
    interrupted = False
    try:
        engine.run_pipeline(to_run, check_components=True)
        deadline = None if args.timeout is None else started + args.timeout
        while True:
            wait = (
                POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.monotonic()))
            )
            outcome = engine.wait_pipeline(root_id, wait)
            progress.update(node_states(engine, root_id))
            if not outcome["timed_out"] or (deadline is not None and time.monotonic() >= deadline):
                break
        engine.wait_idle(5)
        progress.update(node_states(engine, root_id))
        summary = summarise(engine, tree, outcome, time.monotonic() - started, names, mocks)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
        engine.close(10)
        dryrun.forget(mocks)
    if interrupted:
        where = "nothing is kept (dry run)" if args.dry_run else f"it is saved in {url} and resumes there"
        print(f"interrupted: pipeline {root_id} is not done; {where}", file=sys.stderr)
        return EXIT_INTERRUPTED
    report(summary, args.json, sys.stdout)
    return EXIT_OK if summary["state"] == "FINISHED" else EXIT_NOT_FINISHED


def summarise(
    engine: rattan.Engine, tree: dict[str, Any], outcome: dict[str, Any], seconds: float,
    names: dict[str, str], mocks: dict[str, dryrun.Mock],
) -> dict[str, Any]:  # fmt: skip
    root_id = str(tree["id"])
    states = node_states(engine, root_id)
    failed = []
    for entry in outcome["failed_nodes"]:
        ex_data = engine.get_execution_data_outputs(entry["id"]).get("ex_data")
        failed.append({"id": entry["id"], "name": entry["name"], "ex_data": ex_data})
    keys = list((tree.get("data") or {}).get("outputs") or [])
    outputs = {cv.key: cv.value for cv in engine.get_context_values(root_id, keys)} if keys else {}
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    return {
        "id": root_id,
        "state": outcome["state"],
        "finished": outcome["state"] == "FINISHED",
        "timed_out": outcome["timed_out"],
        "duration_seconds": round(seconds, 3),
        "node_counts": counts,
        "failed_nodes": failed,
        "outputs": outputs,
        "mocked": sorted(names.get(n, n) for n in mocks),
    }


def report(summary: dict[str, Any], as_json: bool, out: TextIO) -> None:
    if as_json:
        print_json(summary)
        return
    state = summary["state"]
    if summary["timed_out"]:
        state += " (still going: --timeout passed)"
    elif summary["failed_nodes"] and state == "RUNNING":
        state += " (stopped: failed nodes wait for an operator)"
    print(f"pipeline {summary['id']}: {state} after {summary['duration_seconds']:.2f}s", file=out)
    nodes = ", ".join(f"{n} {s}" for s, n in sorted(summary["node_counts"].items())) or "-"
    print(f"nodes: {nodes}", file=out)
    if summary["mocked"]:
        print(f"mocked: {', '.join(summary['mocked'])}", file=out)
    for entry in summary["failed_nodes"]:
        label = f"{entry['name']} ({entry['id']})" if entry["name"] else entry["id"]
        print(f"failed: {label}", file=out)
        lines = str(entry["ex_data"] or "").strip().splitlines()[-ERROR_LINES:]
        for line in lines:
            print(f"    {line}", file=out)
    if summary["outputs"]:
        print("outputs:", file=out)
        for key, value in summary["outputs"].items():
            print(f"  {key} = {json.dumps(value, default=str, ensure_ascii=False)}", file=out)
    else:
        print("outputs: none (the tree's data.outputs names none)", file=out)

"""``rattan doctor [ID]`` says why runs do not progress; ``rattan repair [ID] [--yes]`` hands lost
or orphaned work back to a live engine (``rattan.engine.diagnose``), with a ``repair`` event in
the run's event log for each action. Without ``--yes`` repair prints its plan and changes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import rattan
from rattan.cli import EXIT_INPUT_ERROR, EXIT_NOT_FINISHED, EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED
from rattan.cli_args import amount, sqlite_path, store_options
from rattan.cli_ops import Refusal, print_json, store_url, when
from rattan.engine import diagnose as dx
from rattan.engine import repair as repair_mod
from rattan.errors import InvalidOperationError, NotFoundError, RattanError
from rattan.model.records import to_datetime


def add_parsers(sub: Any) -> None:
    common = store_options()
    common.add_argument(
        "--stale", type=amount("seconds"), default=dx.STALE_SECONDS, metavar="SECONDS",
        help="a ready token (or a due poll) of a live engine that has not moved this long counts "
        f"as lost work (default: {dx.STALE_SECONDS:g})",
    )  # fmt: skip
    cmd = sub.add_parser(
        "doctor",
        parents=[common],
        help="explain why a run (or every stuck run) does not progress",
        description="Say what each live part of a run waits for: a poll due at T, a callback for "
        "version V, a paused node or pipeline, a FAILED node awaiting an operator, work held by an "
        "engine that is gone, a token nobody will advance. Without ID: every RUNNING or SUSPENDED run "
        "that looks stuck. Exit 0 when nothing needs attention, 1 when something does.",
    )
    cmd.add_argument("pipeline_id", metavar="ID", nargs="?", help="a run's id (default: every stuck run)")
    cmd = sub.add_parser(
        "repair",
        parents=[common],
        help="hand lost or orphaned work back to a live engine (plan only without --yes)",
        description="Fix what doctor finds repairable: release the lease of an engine that is gone "
        "(a live engine takes its work at its next sweep) and re-arm a token or poll whose message "
        "was lost. Each action appends a 'repair' event to the run's event log. Without --yes, "
        "print the plan and change nothing.",
    )
    cmd.add_argument("pipeline_id", metavar="ID", nargs="?", help="a run's id (default: every stuck run)")
    cmd.add_argument("--yes", action="store_true", help="carry the plan out")


def run(args: argparse.Namespace) -> int:
    name = f"rattan {args.command}"
    url = store_url(args)
    path = sqlite_path(url)
    try:
        if path is not None and not os.path.exists(path):
            raise Refusal(EXIT_INPUT_ERROR, f"no store at {path} (give --store URL or set RATTAN_STORE)")
        with rattan.Engine(store=url, start=False) as engine:
            if args.command == "doctor":
                return doctor(engine, args)
            return repair(engine, args)
    except Refusal as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.code
    except NotFoundError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except RattanError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR


def _diagnoses(
    engine: rattan.Engine, args: argparse.Namespace
) -> tuple[list[dx.Diagnosis], dict[str, dx.Owner]]:
    core = engine.core
    owners = dx.read_owners(core)
    if args.pipeline_id is not None:
        _require_root(engine, args.pipeline_id)
        return [dx.diagnose(core, args.pipeline_id, owners, args.stale)], owners
    return dx.stuck_runs(core, args.stale), owners


def _require_root(engine: rattan.Engine, pipeline_id: str) -> None:
    st = engine.get_state_or_none(pipeline_id)
    if st is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    if st.root_id != pipeline_id:
        raise NotFoundError(f"{pipeline_id} is a node of pipeline {st.root_id}: give the run's id")


def _owner_lines(owners: dict[str, dx.Owner]) -> list[str]:
    if not owners:
        return ["engines: none has registered on this store"]
    lines = ["engines:"]
    for o in sorted(owners.values(), key=lambda o: (o.status, o.id)):
        until = when(to_datetime(o.expires)) if o.expires > 0 else "-"
        lines.append(f"  {o.id} {o.status} ({o.why}; {o.host or '?'} pid {o.pid}; lease until {until})")
    return lines


def doctor(engine: rattan.Engine, args: argparse.Namespace) -> int:
    found, owners = _diagnoses(engine, args)
    stuck = any(d.stuck for d in found)
    if args.json:
        print_json(
            {"pipelines": [d.as_dict() for d in found], "engines": [vars_of(o) for o in owners.values()]}
        )
        return EXIT_NOT_FINISHED if stuck else EXIT_OK
    if not found:
        print("no stuck runs")
    for d in found:
        if not d.findings:
            print(f"pipeline {d.root_id}: {d.state}: nothing waits" if d.state not in ("FINISHED", "REVOKED")
                  else f"pipeline {d.root_id}: {d.state}: nothing to do")  # fmt: skip
            continue
        verdict = "stuck" if d.stuck else "moving"
        print(f"pipeline {d.root_id}: {d.state}, {verdict}")
        for f in d.findings:
            mark = "!" if f.stuck else "-"
            print(f"  {mark} [{f.kind}] {f.text}")
            if f.fix:
                print(f"      fix: {f.fix}")
    for line in _owner_lines(owners):
        print(line)
    return EXIT_NOT_FINISHED if stuck else EXIT_OK


def vars_of(owner: dx.Owner) -> dict[str, Any]:
    return {
        "id": owner.id, "host": owner.host, "pid": owner.pid, "status": owner.status, "why": owner.why,
        "lease_until": to_datetime(owner.expires) if owner.expires > 0 else None,
    }  # fmt: skip


def _plan(found: list[dx.Diagnosis]) -> list[dx.Finding]:
    """The repairable findings, one per action and run (a released owner may hold several tokens)."""
    plan: list[dx.Finding] = []
    seen: set[tuple[Any, ...]] = set()
    for d in found:
        for f in d.findings:
            if f.repair is None:
                continue
            r = f.repair
            key = (f.root_id, r.action, r.owner, r.token_id, r.schedule_id)
            if key not in seen:
                seen.add(key)
                plan.append(f)
    return plan


def repair(engine: rattan.Engine, args: argparse.Namespace) -> int:
    found, owners = _diagnoses(engine, args)
    plan = _plan(found)
    results: list[dict[str, Any]] = []
    refused = False
    for f in plan:
        action = f.repair.action if f.repair else None
        entry: dict[str, Any] = {
            "pipeline": f.root_id, "node": f.node_id, "action": action, "reason": f.kind, "text": f.text,
        }  # fmt: skip
        if args.yes:
            try:
                entry["done"] = repair_mod.apply_repair(engine.core, f)
            except InvalidOperationError as exc:
                entry["refused"] = str(exc)
                refused = True
        results.append(entry)
    live = any(o.live for o in owners.values())
    if args.json:
        print_json({"applied": bool(args.yes), "actions": results, "live_engine": live})
    else:
        if not plan:
            print("nothing to repair" + ("" if found else ": no stuck runs"))
        for entry in results:
            if "done" in entry:
                print(f"done: {entry['pipeline']}: {entry['done']}")
            elif "refused" in entry:
                print(f"refused: {entry['pipeline']}: {entry['refused']}")
            else:
                print(f"would {entry['action']}: {entry['pipeline']}: {entry['text']}")
        if plan and not args.yes:
            print("nothing was changed: run again with --yes to carry this out")
        if plan and args.yes and not live:
            print("note: no engine holds a live lease on this store: the work moves once one runs")
        left = [f for d in found for f in d.findings if f.stuck and f.repair is None]
        if left:
            who = "an operator, an outside system or a live engine"
            print(f"{len(left)} other finding(s) need {who}: see rattan doctor")
    return EXIT_REFUSED if refused else EXIT_OK

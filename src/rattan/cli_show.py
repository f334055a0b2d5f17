"""The read commands of ``rattan``: ``show ID`` (a run's node states as a tree), ``events``
(the durable event log, followed), ``history NODE`` and ``graph ID`` (the run's graph as Mermaid
or Graphviz dot, coloured by state, drawn from the run's stored tree and states)."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections import deque
from typing import Any

import rattan
from rattan.cli import EXIT_OK
from rattan.cli_ops import PAGE, counts, plain, print_json, table, when
from rattan.errors import NotFoundError

INDENT = "    "
# fill and stroke of each state in the graph; nodes not reached yet are white and dashed
COLOURS = {
    "READY": ("#f5f5f5", "#9e9e9e"),
    "RUNNING": ("#dbeafe", "#2563eb"),
    "SUSPENDED": ("#fef9c3", "#ca8a04"),
    "BLOCKED": ("#ffedd5", "#ea580c"),
    "FINISHED": ("#dcfce7", "#16a34a"),
    "FAILED": ("#fee2e2", "#dc2626"),
    "REVOKED": ("#e5e7eb", "#4b5563"),
    "ROLLING_BACK": ("#ffedd5", "#ea580c"),
}
NOT_REACHED = "NOT_REACHED"


def stored_tree(engine: rattan.Engine, pipeline_id: str) -> dict[str, Any]:
    """The validated tree a run was started with."""
    require_run(engine, pipeline_id)
    record = engine.core.store.read(lambda tx: tx.run(pipeline_id))
    if record is None:
        raise NotFoundError(f"pipeline {pipeline_id} has no stored tree")
    return record.tree


def _nodes(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {
        pipeline["start_event"]["id"]: pipeline["start_event"],
        pipeline["end_event"]["id"]: pipeline["end_event"],
    }
    return {**found, **pipeline["activities"], **pipeline["gateways"]}


def _outgoing(node: dict[str, Any]) -> list[str]:
    out = node.get("outgoing") or []
    return [out] if isinstance(out, str) else list(out)


def tree_order(pipeline: dict[str, Any], order: dict[str, int] | None = None) -> dict[str, int]:
    """Node id -> its place in a walk of the tree from the start event (breadth first, flows in
    their stored order; a subprocess's nodes right after it): a stable order for a run's nodes."""
    order = {} if order is None else order
    nodes, flows = _nodes(pipeline), pipeline["flows"]
    queue = deque([pipeline["start_event"]["id"]])
    while queue:
        node_id = queue.popleft()
        if node_id in order or node_id not in nodes:
            continue
        order[node_id] = len(order)
        node = nodes[node_id]
        if node.get("type") == "SubProcess":
            tree_order(node["pipeline"], order)
        queue.extend(flows[f]["target"] for f in _outgoing(node) if f in flows)
    for node_id in nodes:  # whatever no flow reaches (never in a valid tree)
        order.setdefault(node_id, len(order))
    return order


# -- show --------------------------------------------------------------------------------------------


def _waits(waiting: dict[str, Any] | None) -> str:
    if not waiting:
        return ""
    kind = waiting.get("for")
    if kind == "callback":
        many = "callbacks" if waiting.get("multiple") else "a callback"
        return f"waits for {many} (version {waiting.get('version')})"
    if kind == "poll":
        return f"waits for a poll due {when(waiting.get('due_time'))} (polled {waiting.get('polls')} times)"
    if kind == "resume":
        return "waits for resume (paused)"
    if kind == "operator":
        return "waits for an operator (retry, skip)"
    return f"waits for {kind}"


def show(engine: rattan.Engine, args: argparse.Namespace) -> int:
    pipeline_id: str = args.pipeline_id
    summary = engine.wait_pipeline(pipeline_id, 0)  # the run's summary; NotFoundError for a node id
    summary.pop("timed_out", None)
    states = engine.get_pipeline_states(pipeline_id, flat_children=False, detail=True)[pipeline_id]
    if args.json:
        print_json({"pipeline": summary, "states": states})
        return EXIT_OK
    order = tree_order(stored_tree(engine, pipeline_id))
    errors = {f["id"]: f["error"] for f in summary["failed_nodes"]}
    flat: dict[str, int] = {}
    _count(states, flat)
    print(f"pipeline {pipeline_id}: {states['state']}")
    ended = summary["state"] in ("FINISHED", "REVOKED")
    print(
        f"created {when(states['created_time'])}, finished {when(states['archived_time']) if ended else '-'}"
    )
    print(f"nodes: {counts(flat)}")
    if summary["failed_nodes"]:
        print(f"failed: {', '.join(f['id'] for f in summary['failed_nodes'])}")
    top = _waits(states.get("waiting"))
    if top:
        print(f"pipeline {top}")
    for line in _tree_lines(states["children"], order, errors, 0):
        print(line)
    return EXIT_OK


def _count(entry: dict[str, Any], out: dict[str, int]) -> None:
    for child in entry["children"].values():
        out[child["state"]] = out.get(child["state"], 0) + 1
        _count(child, out)


def _tree_lines(
    children: dict[str, Any], order: dict[str, int], errors: dict[str, str], depth: int
) -> list[str]:
    lines: list[str] = []
    for node_id in sorted(children, key=lambda n: (order.get(n, len(order)), n)):
        entry = children[node_id]
        label = f"{entry['name']} " if entry.get("name") else ""
        details = [d for d in (_waits(entry.get("waiting")),) if d]
        if node_id in errors:
            details.insert(0, f"error: {errors[node_id]}")
        tail = f": {'; '.join(details)}" if details else ""
        lines.append(f"{INDENT * depth}- {label}[{entry.get('type')}] {entry['state']} ({node_id}){tail}")
        lines += _tree_lines(entry["children"], order, errors, depth + 1)
    return lines


# -- history -----------------------------------------------------------------------------------------


def _node_entry(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    found = engine.get_children_states(node_id, detail=True)
    if node_id not in found:
        raise NotFoundError(f"node {node_id} does not exist (or was not reached yet)")
    entry: dict[str, Any] = found[node_id]
    entry.pop("children", None)
    entry.pop("root_id:", None)
    return entry


def history(engine: rattan.Engine, args: argparse.Namespace) -> int:
    entry = _node_entry(engine, args.node_id)
    passes = engine.get_node_histories(args.node_id)
    if args.json:
        print_json({"node": entry, "histories": passes})
        return EXIT_OK
    name = f"{entry['name']}, " if entry.get("name") else ""
    print(f"node {args.node_id} ({name}{entry.get('type')}) of pipeline {entry['root_id']}")
    print(
        f"now: {entry['state']}, version {entry['version']}, loop {entry['loop']}, retry {entry['retry']}, "
        f"started {when(entry['started_time'])}, finished {when(entry['archived_time'])}"
    )
    if not passes:
        print("past passes: none")
        return EXIT_OK
    print(f"past passes: {len(passes)}")
    rows = [
        [str(h["id"]), str(h["loop"]), str(h["retry"]), "yes" if h["skip"] else "no", h["version"],
         when(h["started_time"]), when(h["archived_time"])]
        for h in passes
    ]  # fmt: skip
    for line in table(["ID", "LOOP", "RETRY", "SKIP", "VERSION", "STARTED", "FINISHED"], rows):
        print(f"  {line}")
    return EXIT_OK


# -- events ------------------------------------------------------------------------------------------


def require_run(engine: rattan.Engine, pipeline_id: str) -> None:
    """NotFoundError unless ``pipeline_id`` is the root of a stored run."""
    st = engine.get_state_or_none(pipeline_id)
    if st is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    if st.root_id != pipeline_id:
        raise NotFoundError(f"{pipeline_id} is a node of pipeline {st.root_id}, not a pipeline that was run")


def _event_line(event: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(event, default=plain, ensure_ascii=False, sort_keys=True)
    parts = [str(event["id"]), when(event["created_time"], fraction=True), event["event_type"]]
    return "  ".join([*parts, event["root_id"], event["node_id"] or "-"])


def events(engine: rattan.Engine, args: argparse.Namespace) -> int:
    if args.pipeline_id is not None:
        require_run(engine, args.pipeline_id)
    last = args.after
    # --follow ends on Ctrl-C or SIGTERM: the signal only sets ``stop``, looked at between two
    # events, so an event is never printed without becoming the resume point, nor the other way
    stop = threading.Event()
    if args.follow and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    while not stop.is_set():
        page = engine.events(args.pipeline_id, last, PAGE)
        for event in page:
            if stop.is_set():
                break
            print(_event_line(event, args.json), flush=True)
            last = event["id"]
        if len(page) == PAGE:
            continue
        if not args.follow:
            break
        stop.wait(args.interval)
    if args.follow:  # a signal is how it ends: say where to resume
        print(f"last event id: {last} (resume with --after {last})", file=sys.stderr, flush=True)
    return EXIT_OK


# -- graph -------------------------------------------------------------------------------------------


def graph(engine: rattan.Engine, args: argparse.Namespace) -> int:
    tree = stored_tree(engine, args.pipeline_id)
    states = engine.get_pipeline_states(args.pipeline_id)[args.pipeline_id]
    state_of = {node_id: entry["state"] for node_id, entry in states["children"].items()}
    drawing = Drawing(state_of)
    drawing.walk(tree)
    if args.format == "svg":
        from rattan.cli_svg import svg

        text = svg(drawing, states["state"], COLOURS)
    else:
        text = drawing.mermaid(states["state"]) if args.format == "mermaid" else drawing.dot(states["state"])
    if args.json:
        print_json({"format": args.format, "graph": text})
    else:
        print(text, end="")
    return EXIT_OK


_SAFE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RESERVED = {"end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click", "default"}
_PLAIN_NAMES = {"EmptyStartEvent": "start", "EmptyEndEvent": "end"}
_SHAPES = {"event": ("((", "))"), "gateway": ("{", "}"), "activity": ("[", "]")}


class Drawing:
    """The graph of a tree: nodes (kind, label, state), flows (with conditions), clusters."""

    def __init__(self, state_of: dict[str, str]) -> None:
        self.state_of = state_of
        self.ids: dict[str, str] = {}
        # (pipeline id, label, nodes, inner clusters) per pipeline, root first
        self.clusters: list[tuple[str, str, list[str], int]] = []
        self.nodes: dict[str, tuple[str, str, str]] = {}  # node id -> (kind, label, state)
        self.edges: list[tuple[str, str, str]] = []  # (source, target, label)
        self.entry: dict[str, tuple[str, str]] = {}  # subprocess -> (its start event, its end event)

    def key(self, node_id: str) -> str:
        """A name the formats accept for a node (its id when that is safe)."""
        if node_id not in self.ids:
            safe = _SAFE.match(node_id) and node_id.lower() not in _RESERVED
            self.ids[node_id] = node_id if safe else f"n{len(self.ids)}"
        return self.ids[node_id]

    def walk(self, pipeline: dict[str, Any], depth: int = 0, label: str = "") -> None:
        members: list[str] = []
        index = len(self.clusters)
        self.clusters.append((pipeline["id"], label, members, depth))
        for node_id, node in _nodes(pipeline).items():
            kind = node.get("type", "")
            if kind == "SubProcess":
                inner = node["pipeline"]
                self.entry[node_id] = (inner["start_event"]["id"], inner["end_event"]["id"])
                name = node.get("name") or node_id
                self.walk(inner, depth + 1, f"{name} ({self.state_of.get(node_id, NOT_REACHED)})")
                continue
            shape = (
                "event" if kind.endswith("Event") else "gateway" if kind.endswith("Gateway") else "activity"
            )
            text = node.get("name") or _PLAIN_NAMES.get(kind, kind)
            self.nodes[node_id] = (shape, text, self.state_of.get(node_id, NOT_REACHED))
            members.append(node_id)
        self.clusters[index] = (pipeline["id"], label, members, depth)
        conditions: dict[str, Any] = {}
        for gateway in pipeline["gateways"].values():
            conditions.update(gateway.get("conditions") or {})
            if gateway.get("default_condition"):
                conditions[gateway["default_condition"].get("flow_id", "")] = {"evaluate": "default"}
        for flow_id, flow in pipeline["flows"].items():
            source, target = flow["source"], flow["target"]
            source = self.entry[source][1] if source in self.entry else source
            target = self.entry[target][0] if target in self.entry else target
            cond = conditions.get(flow_id)
            text = cond.get("evaluate", "") if isinstance(cond, dict) else str(cond or "")
            if flow.get("is_default") and not text:
                text = "default"
            self.edges.append((source, target, text))

    # -- mermaid -----------------------------------------------------------------------------------

    def mermaid(self, root_state: str) -> str:
        lines = ["flowchart LR", f"  %% pipeline state: {root_state}"]
        for state, (fill, stroke) in COLOURS.items():
            lines.append(f"  classDef {state} fill:{fill},stroke:{stroke}")
        lines.append("  classDef NOT_REACHED fill:#ffffff,stroke:#9ca3af,stroke-dasharray:4 3")
        lines += self._mermaid_cluster(0, "  ")
        for source, target, text in self.edges:
            label = f'|"{_mm(text)}"|' if text else ""
            lines.append(f"  {self.key(source)} -->{label} {self.key(target)}")
        return "\n".join(lines) + "\n"

    def _mermaid_cluster(self, index: int, pad: str) -> list[str]:
        lines: list[str] = []
        for node_id in self.clusters[index][2]:
            shape, text, state = self.nodes[node_id]
            left, right = _SHAPES[shape]
            lines.append(f'{pad}{self.key(node_id)}{left}"{_mm(text)}<br/>{state}"{right}:::{state}')
        for child in self._children(index):
            pipeline_id, label, _, _ = self.clusters[child]
            lines.append(f'{pad}subgraph {self.key(pipeline_id)}["{_mm(label)}"]')
            lines += self._mermaid_cluster(child, pad + "  ")
            lines.append(f"{pad}end")
        return lines

    def _children(self, index: int) -> list[int]:
        """The clusters directly inside cluster ``index`` (they follow it, one level deeper)."""
        depth = self.clusters[index][3]
        found: list[int] = []
        for i in range(index + 1, len(self.clusters)):
            if self.clusters[i][3] <= depth:
                break
            if self.clusters[i][3] == depth + 1:
                found.append(i)
        return found

    # -- dot ---------------------------------------------------------------------------------------

    def dot(self, root_state: str) -> str:
        root_id = self.clusters[0][0]
        lines = [
            f"digraph {_dq(root_id)} {{",
            f"  label={_dq(f'pipeline {root_id}: {root_state}')};",
            "  rankdir=LR;",
            '  node [fontname="Helvetica", style="filled"];',
        ]
        lines += self._dot_cluster(0, "  ")
        for source, target, text in self.edges:
            label = f" [label={_dq(text)}]" if text else ""
            lines.append(f"  {_dq(source)} -> {_dq(target)}{label};")
        return "\n".join([*lines, "}"]) + "\n"

    def _dot_cluster(self, index: int, pad: str) -> list[str]:
        lines: list[str] = []
        for node_id in self.clusters[index][2]:
            shape, text, state = self.nodes[node_id]
            fill, stroke = COLOURS.get(state, ("#ffffff", "#9ca3af"))
            form = {"event": "circle", "gateway": "diamond", "activity": "box"}[shape]
            dashed = ', style="filled,dashed"' if state == NOT_REACHED else ""
            lines.append(
                f"{pad}{_dq(node_id)} [label={_dq(text, state)}, shape={form}, "
                f'fillcolor="{fill}", color="{stroke}"{dashed}];'
            )
        for child in self._children(index):
            pipeline_id, label, _, _ = self.clusters[child]
            lines.append(f"{pad}subgraph {_dq('cluster_' + pipeline_id)} {{")
            lines.append(f"{pad}  label={_dq(label)};")
            lines += self._dot_cluster(child, pad + "  ")
            lines.append(f"{pad}}}")
        return lines


def _mm(text: str) -> str:
    """Text for a Mermaid label: quotes, pipes and angle brackets as entities."""
    return text.replace('"', "#quot;").replace("|", "#124;").replace("<", "#lt;").replace(">", "#gt;")


def _dq(*lines: str) -> str:
    """A dot quoted string of ``lines`` (joined by dot's line break)."""
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'

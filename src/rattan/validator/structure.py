"""Structural pre-check of a pipeline tree (rattan only, not in bamboo).

Runs before any graph rule so that the graph algorithms can index the tree without ``KeyError``s. It
walks nested subprocesses iteratively (no recursion, so nesting depth is bounded only by ``max_depth``),
collects every problem it finds and raises one ``TreeInvalidException`` listing all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rattan.errors import TreeInvalidException
from rattan.ids import MAX_ID_LENGTH
from rattan.spec.model import TREE_SCHEMA_VERSION

from ._common import (
    ACTIVITY_TYPES,
    GATEWAY_TYPES,
    RESERVED_TYPES,
    START_EVENT,
    Problems,
    nesting_depth,
    node_name,
    short,
    to_list,
)
from .fields import check_data, check_node

CONTAINERS = ("start_event", "end_event", "activities", "gateways", "flows")
_START_TYPES = frozenset({START_EVENT})  # the start event's allowed types, built once (not per node)


@dataclass
class _Ctx:
    sink_types: frozenset[str]
    max_nodes: int
    max_depth: int
    any_sink: bool = False
    problems: Problems = field(default_factory=Problems)
    node_count: int = 0
    all_ids: dict[str, str] = field(default_factory=dict)  # node id -> where it was first seen
    seen_objects: set[int] = field(default_factory=set)


def id_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable id, or None when it is one."""
    if not isinstance(value, str):
        return f"id must be a string, got {short(value)}"
    if not value:
        return "id must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"id is {len(value)} characters long; ids may have at most {MAX_ID_LENGTH} characters"
    return None


def _pid(pipeline: Any, fallback: str) -> str:
    if isinstance(pipeline, dict):
        pid = pipeline.get("id")
        if isinstance(pid, str) and pid:
            return pid
    return fallback


def check_structure(
    tree: Any, *, sink_types: frozenset[str], max_nodes: int, max_depth: int, any_sink: bool = False
) -> list[dict[str, Any]]:
    """Check the whole tree; return every pipeline dict, children before parents (root last).

    ``any_sink`` accepts any custom end-event type key (used by read-only helpers such as the start
    position functions, which the engine calls without its sink registry). Raises
    ``TreeInvalidException`` listing every structural problem.
    """
    ctx = _Ctx(sink_types=sink_types, max_nodes=max_nodes, max_depth=max_depth, any_sink=any_sink)
    order: list[dict[str, Any]] = []
    # (pipeline, expected id (None for the root), depth, label for problems)
    todo: list[tuple[Any, str | None, int, str]] = [(tree, None, 0, _pid(tree, "<root>"))]
    while todo:
        pipeline, expected_id, depth, label = todo.pop()
        if not isinstance(pipeline, dict):
            what = "the pipeline tree" if expected_id is None else f"subprocess {expected_id} 'pipeline'"
            ctx.problems.add(label, "structure.type", f"{what} must be a dict, got {type(pipeline).__name__}")
            continue
        if id(pipeline) in ctx.seen_objects:
            ctx.problems.add(
                label,
                "structure.shared_object",
                "this pipeline dict appears more than once in the tree (a cyclic or shared reference); "
                "give every subprocess its own pipeline dict",
            )
            continue
        ctx.seen_objects.add(id(pipeline))
        if depth > max_depth:
            deepest = nesting_depth(tree)
            raise TreeInvalidException(
                f"subprocesses are nested {deepest} levels deep, more than the limit of {max_depth}",
                _single(
                    label,
                    "structure.too_deep",
                    f"subprocess nesting depth {deepest} exceeds the limit of {max_depth} "
                    "(Settings.max_subprocess_depth); flatten the tree",
                ),
            )
        children = _check_pipeline(pipeline, expected_id, label, ctx)
        order.append(pipeline)
        for child, sub_id in reversed(children):
            todo.append((child, sub_id, depth + 1, sub_id))
    if ctx.problems:
        raise TreeInvalidException("pipeline tree structure is invalid", ctx.problems.items)
    # ``order`` is a pre-order (parents first); reverse it so children come first
    order.reverse()
    return order


def _single(node_id: str, rule: str, message: str) -> list[Any]:
    p = Problems()
    p.add(node_id, rule, message)
    return p.items


def _check_pipeline(
    p: dict[str, Any], expected_id: str | None, label: str, ctx: _Ctx
) -> list[tuple[Any, str]]:
    probs = ctx.problems
    _check_header(p, expected_id, label, ctx)
    ok = True
    for key in CONTAINERS:
        if key not in p:
            probs.add(label, "structure.required_key", f"pipeline is missing the required key {key!r}")
            ok = False
        elif not isinstance(p[key], dict):
            probs.add(
                label,
                "structure.field_type",
                f"pipeline key {key!r} must be a dict, got {type(p[key]).__name__}",
            )
            ok = False
    if "data" in p:
        check_data(p["data"], label, probs)
    if not ok:
        return []
    ctx.node_count += len(p["activities"]) + len(p["gateways"]) + 2
    if ctx.node_count > ctx.max_nodes:
        raise TreeInvalidException(
            f"pipeline tree has more than {ctx.max_nodes} nodes",
            _single(
                label,
                "structure.too_large",
                f"the tree holds at least {ctx.node_count} nodes; the limit (max_nodes) is {ctx.max_nodes}",
            ),
        )
    nodes = _collect_nodes(p, label, ctx)
    children: list[tuple[Any, str]] = []
    for nid, (_kind, node) in nodes.items():
        if check_node(nid, node, ctx.problems):
            children.append((node["pipeline"], nid))
    _check_flows(p["flows"], nodes, label, probs)
    return children


def _check_header(p: dict[str, Any], expected_id: str | None, label: str, ctx: _Ctx) -> None:
    probs = ctx.problems
    if "schema_version" in p:
        sv = p["schema_version"]
        if not isinstance(sv, int) or isinstance(sv, bool) or sv < 1:
            probs.add(
                label, "structure.schema_version", f"schema_version must be a positive int, got {short(sv)}"
            )
        elif sv > TREE_SCHEMA_VERSION:
            probs.add(
                label,
                "structure.schema_version",
                f"tree schema_version {sv} is newer than the newest this rattan reads "
                f"({TREE_SCHEMA_VERSION}); upgrade rattan or re-export the tree",
            )
    if "id" not in p:
        probs.add(label, "structure.required_key", "pipeline is missing the required key 'id'")
        return
    err = id_problem(p["id"])
    if err:
        probs.add(label, "structure.id", f"pipeline {err}")
        return
    if expected_id is None:
        ctx.all_ids.setdefault(p["id"], "the root pipeline id")
    elif p["id"] != expected_id:
        probs.add(
            expected_id,
            "subprocess.pipeline_id",
            f"the nested pipeline's id {short(p['id'])} must equal the subprocess node id {expected_id!r}",
        )


def _collect_nodes(p: dict[str, Any], label: str, ctx: _Ctx) -> dict[str, tuple[str, dict[str, Any]]]:
    """Map node id -> (container key, node dict) for this pipeline, checking ids and types.

    Messages, locations (``where``) and node names are only built when a problem is reported: for a
    valid tree they are never needed, and building them per node was most of this function's cost.
    """
    probs = ctx.problems
    all_ids = ctx.all_ids
    nodes: dict[str, tuple[str, dict[str, Any]]] = {}
    first_seen = f"a node of pipeline {label}"
    groups: tuple[tuple[str, frozenset[str], Any], ...] = (
        ("start_event", _START_TYPES, ((None, p["start_event"]),)),
        ("end_event", ctx.sink_types, ((None, p["end_event"]),)),
        ("activities", ACTIVITY_TYPES, p["activities"].items()),
        ("gateways", GATEWAY_TYPES, p["gateways"].items()),
    )
    for kind, allowed, items in groups:
        for key, node in items:
            if not isinstance(node, dict):
                where = _where(kind, key)
                ref = key if isinstance(key, str) else _pid(node, where)
                probs.add(ref, "structure.field_type", f"{where} must be a dict, got {type(node).__name__}")
                continue
            err = id_problem(node.get("id")) if "id" in node else "node is missing the required key 'id'"
            if err:
                where = _where(kind, key)
                ref = key if isinstance(key, str) else _pid(node, where)
                probs.add(ref, "structure.id", f"{where}: {err}", node_name(node))
                continue
            nid: str = node["id"]
            if key is not None and key != nid:
                where = _where(kind, key)
                probs.add(
                    nid, "structure.id_mismatch", f"{where} holds a node whose id is {nid!r}", node_name(node)
                )
                continue
            ntype = node.get("type")
            # fast path of _check_type: a known type key (isinstance first: ``in`` needs a hashable)
            if not (isinstance(ntype, str) and ntype in allowed) and not _check_type(
                nid, kind, node, node_name(node), ctx
            ):
                continue
            if nid in all_ids or nid in nodes:
                probs.add(
                    nid,
                    "structure.duplicate_id",
                    f"node id {nid!r} is used more than once (also {all_ids.get(nid, 'in this pipeline')}); "
                    "node ids must be unique across the whole tree, nested subprocesses included",
                    node_name(node),
                )
                continue
            all_ids[nid] = first_seen
            nodes[nid] = (kind, node)
    return nodes


def _where(kind: str, key: Any) -> str:
    return kind if key is None else f"{kind}[{short(key)}]"


def _check_type(nid: str, kind: str, node: dict[str, Any], name: str | None, ctx: _Ctx) -> bool:
    if "type" not in node:
        ctx.problems.add(nid, "structure.required_key", "node is missing the required key 'type'", name)
        return False
    ntype = node["type"]
    if kind == "start_event":
        allowed: frozenset[str] = _START_TYPES
    elif kind == "end_event":
        allowed = ctx.sink_types
    elif kind == "activities":
        allowed = ACTIVITY_TYPES
    else:
        allowed = GATEWAY_TYPES
    if isinstance(ntype, str) and ntype in allowed:
        return True
    if (
        kind == "end_event"
        and ctx.any_sink
        and isinstance(ntype, str)
        and ntype
        and ntype not in RESERVED_TYPES
    ):
        return True
    hint = ""
    if kind == "end_event" and isinstance(ntype, str):
        hint = " (register custom end events with add_sink_type or the sink_types argument)"
    ctx.problems.add(
        nid,
        "structure.node_type",
        f"unknown node type {short(ntype)} in {kind}; expected one of {sorted(allowed)}{hint}",
        name,
    )
    return False


def _check_flows(
    flows: dict[Any, Any], nodes: dict[str, tuple[str, dict[str, Any]]], label: str, probs: Problems
) -> None:
    good: dict[str, dict[str, Any]] = {}
    for key, flow in flows.items():
        if not isinstance(flow, dict):
            ref = key if isinstance(key, str) else short(key)
            probs.add(ref, "flow.type", f"flow {ref} must be a dict, got {type(flow).__name__}")
            continue
        fid = flow.get("id")
        err = id_problem(fid)
        if err:
            ref = key if isinstance(key, str) else short(key)
            probs.add(ref, "flow.id", f"flow {ref}: {err}")
            continue
        if fid != key:
            ref = key if isinstance(key, str) else short(key)
            probs.add(ref, "flow.id", f"flows[{ref!r}] holds a flow whose id is {fid!r}")
            continue
        source, target = flow.get("source"), flow.get("target")
        if isinstance(source, str) and source in nodes and isinstance(target, str) and target in nodes:
            good[key] = flow
            continue
        for end, nid in (("source", source), ("target", target)):
            if not isinstance(nid, str) or nid not in nodes:
                probs.add(
                    key,
                    "flow.endpoint",
                    f"flow {key} {end} {short(nid)} is not a node of pipeline {label}",
                )
    _check_references(good, nodes, probs, flows)


def _check_references(
    flows: dict[str, dict[str, Any]],
    nodes: dict[str, tuple[str, dict[str, Any]]],
    probs: Problems,
    all_flows: dict[Any, Any],
) -> None:
    """Cross-check the nodes' flow lists against ``flows`` (the well-formed flows of ``all_flows``)."""
    listed_in: set[str] = set()
    listed_out: set[str] = set()
    for nid, (_kind, node) in nodes.items():
        for key, end, listed in (("incoming", "target", listed_in), ("outgoing", "source", listed_out)):
            value = node.get(key)
            if not isinstance(value, (str, list)):
                continue
            seen: set[str] = set()
            for fid in to_list(value):
                if not isinstance(fid, str) or not fid:
                    continue
                if fid in seen:
                    probs.add(
                        nid, "node.flow_duplicate", f"flow {fid} is listed twice in {key!r}", node_name(node)
                    )
                seen.add(fid)
                listed.add(fid)
                flow = flows.get(fid)
                if flow is None or flow[end] != nid:
                    _reference_problem(nid, node, key, end, fid, flow, all_flows, probs)
    for fid, flow in flows.items():
        if fid not in listed_out:
            probs.add(
                flow["source"], "flow.unlisted", f"flow {fid} is not listed in the 'outgoing' of its source"
            )
        if fid not in listed_in:
            probs.add(
                flow["target"], "flow.unlisted", f"flow {fid} is not listed in the 'incoming' of its target"
            )


def _reference_problem(
    nid: str,
    node: dict[str, Any],
    key: str,
    end: str,
    fid: str,
    flow: dict[str, Any] | None,
    all_flows: dict[Any, Any],
    probs: Problems,
) -> None:
    """Report node ``nid`` listing flow ``fid`` in ``key`` when ``flow`` is missing or not its ``end``."""
    if flow is None:
        if fid not in all_flows:
            probs.add(
                nid, "node.flow_missing", f"{key} flow {fid} does not exist in 'flows'", node_name(node)
            )
    elif flow[end] != nid:
        probs.add(
            nid,
            "node.flow_mismatch",
            f"{key} flow {fid} has {end} {flow[end]!r}, not this node",
            node_name(node),
        )


def normalise(pipeline: dict[str, Any]) -> None:
    """In-place normalisation (Quirk (keep)): ``incoming`` of activities, gateways and end event -> list."""
    for node in pipeline["activities"].values():
        node["incoming"] = to_list(node["incoming"])
    for node in pipeline["gateways"].values():
        node["incoming"] = to_list(node["incoming"])
    end = pipeline["end_event"]
    end["incoming"] = to_list(end["incoming"])


__all__ = ["check_structure", "id_problem", "normalise"]

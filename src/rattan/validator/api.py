"""Public validator entry points, with bamboo's names.

Order: structure (rattan only) -> node outputs read from subprocesses (rattan only)
-> in-place normalisation -> connection -> cycles (unless
``cycle_tolerate``) -> gateway matching (writes ``converge_gateway_id`` in place) -> streams. Nested
subprocess pipelines are handled before their parent. Each stage collects every problem over the whole
tree; the exception raised is the class of the earliest failing stage and lists all problems found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rattan.errors import (
    ConnectionValidateError,
    ConvergeMatchError,
    CycleError,
    StartPositionInvalidException,
    StreamValidateError,
    TreeInvalidException,
)

from ._common import DEFAULT_MAX_DEPTH, DEFAULT_MAX_NODES, Problems, resolve_sink_types
from ._common import add_sink_type as add_sink_type  # bamboo's path: bamboo_engine.validator.api
from .connection import check_connection, check_cycles, find_cycles
from .gateway import GatewayMatcher
from .graph import GraphView, build_view
from .outputs import check_node_outputs
from .start import main_line_nodes, skipped_nodes
from .stream import check_stream
from .structure import check_structure, normalise

CIRCLE_MESSAGE = "pipeline graph has circle"


def _raise_connection(conn: Problems, extra: Problems) -> None:
    detail: dict[str, str] = {}
    for p in conn.items:
        detail[p.node_id] = f"{detail[p.node_id]}\n{p.message}" if p.node_id in detail else p.message
    raise ConnectionValidateError(
        failed_nodes=conn.node_ids(), detail=detail, problems=conn.items + extra.items
    )


def _checked_pipelines(
    pipeline: Any, sink_types: Iterable[str] | None, max_nodes: int, max_depth: int
) -> list[dict[str, Any]]:
    if not isinstance(max_nodes, int) or max_nodes < 1:
        raise TreeInvalidException(f"max_nodes must be a positive int, got {max_nodes!r}")
    if not isinstance(max_depth, int) or isinstance(max_depth, bool) or max_depth < 0:
        raise TreeInvalidException(f"max_depth must be a non-negative int, got {max_depth!r}")
    return check_structure(
        pipeline, sink_types=resolve_sink_types(sink_types), max_nodes=max_nodes, max_depth=max_depth
    )


def _root_view(pipeline: Any, sink_types: Iterable[str] | None) -> GraphView:
    """Structure-check the whole tree and return the view of its root level (no mutation).

    Any custom end-event type is accepted here: these helpers are read-only and the engine calls some
    of them (start positions) without its sink registry; ``validate_and_process_pipeline`` is strict.
    """
    check_structure(
        pipeline,
        sink_types=resolve_sink_types(sink_types),
        max_nodes=DEFAULT_MAX_NODES,
        # no depth limit of its own (the node limit bounds it): these helpers never recurse, and the
        # engine calls one after validating with its own ``Settings.max_subprocess_depth``
        max_depth=DEFAULT_MAX_NODES,
        any_sink=True,
    )
    assert isinstance(pipeline, dict)
    return build_view(pipeline)


def _connected_view(pipeline: Any, sink_types: Iterable[str] | None) -> GraphView:
    view = _root_view(pipeline, sink_types)
    conn = check_connection(view)
    if conn:
        _raise_connection(conn, Problems())
    return view


def _matches(view: GraphView) -> tuple[dict[str, str], GatewayMatcher]:
    matcher = GatewayMatcher(view)
    matches = matcher.run()
    if matcher.problems:
        first = matcher.problems.items[0].node_id
        raise ConvergeMatchError(first, "gateway matching failed", matcher.problems.items)
    return matches, matcher


def validate_and_process_pipeline(
    pipeline: Any,
    cycle_tolerate: bool = False,
    sink_types: Iterable[str] | None = None,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> None:
    """Validate ``pipeline`` (and every nested subprocess) and normalise it in place.

    Mutates the caller's dict (Quirk (keep)): ``incoming`` of activities, gateways and end events become
    lists and diverging gateways get ``converge_gateway_id``. ``sink_types`` adds end-event type keys for
    this call (on top of those registered with ``add_sink_type``). Raises a ``TreeInvalidException``
    subclass listing every problem.
    """
    pipelines = _checked_pipelines(pipeline, sink_types, max_nodes, max_depth)
    outputs = check_node_outputs(pipelines)
    if outputs:
        raise TreeInvalidException("pipeline data is invalid", outputs.items)
    for p in pipelines:
        normalise(p)
    views = [build_view(p) for p in pipelines]
    conn, cycles = Problems(), Problems()
    for view in views:
        conn.extend(check_connection(view))
        if not cycle_tolerate:
            cycles.extend(check_cycles(view))
    if conn:
        _raise_connection(conn, cycles)
    if cycles:
        raise CycleError(CIRCLE_MESSAGE, cycles.items)
    gateway_problems, stream_problems = Problems(), Problems()
    for p, view in zip(pipelines, views, strict=True):
        matcher = GatewayMatcher(view)
        matches = matcher.run()
        if matcher.problems:
            gateway_problems.extend(matcher.problems)
            continue
        for gid, converge in matches.items():
            p["gateways"][gid]["converge_gateway_id"] = converge
        stream_problems.extend(check_stream(view, matches)[0])
    if gateway_problems:
        first = gateway_problems.items[0].node_id
        raise ConvergeMatchError(
            first, "gateway matching failed", gateway_problems.items + stream_problems.items
        )
    if stream_problems:
        first = stream_problems.items[0].node_id
        raise StreamValidateError(first, "stream validation failed", stream_problems.items)


def validate_graph_connection(tree: Any, sink_types: Iterable[str] | None = None) -> None:
    """Connection rules of the tree's top level; raises ``ConnectionValidateError``."""
    _connected_view(tree, sink_types)


def validate_graph_without_circle(tree: Any, sink_types: Iterable[str] | None = None) -> dict[str, Any]:
    """Cycle check returning bamboo's result dict (it does not raise).

    ``{"result": True, "data": []}`` or ``{"result": False, "message": ..., "error_data": [cycle]}``.
    """
    cycles = find_cycles(_root_view(tree, sink_types))
    if cycles:
        return {"result": False, "message": CIRCLE_MESSAGE, "error_data": cycles[0]}
    return {"result": True, "data": []}


def validate_gateways(tree: Any, sink_types: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Match gateways of the tree's top level and write ``converge_gateway_id`` in place.

    Returns converge gateway id -> ids of the gateways it joins. Raises ``ConvergeMatchError``.
    """
    view = _connected_view(tree, sink_types)
    matches, matcher = _matches(view)
    for gid, converge in matches.items():
        tree["gateways"][gid]["converge_gateway_id"] = converge
    return {k: list(v) for k, v in matcher.converged.items()}


def validate_stream(tree: Any, sink_types: Iterable[str] | None = None) -> dict[str, str]:
    """Stream rules of the tree's top level; returns node id -> stream label.

    Raises ``StreamValidateError`` (or ``ConvergeMatchError`` when gateways cannot be matched first).
    """
    view = _connected_view(tree, sink_types)
    matches, _ = _matches(view)
    problems, labels = check_stream(view, matches)
    if problems:
        raise StreamValidateError(problems.items[0].node_id, "stream validation failed", problems.items)
    return labels


def get_allowed_start_node_ids(pipeline: Any, sink_types: Iterable[str] | None = None) -> list[str]:
    """Node ids of the root tree a run may start at. Does not modify ``pipeline``."""
    view = _connected_view(pipeline, sink_types)
    matches, _ = _matches(view)
    return main_line_nodes(view, matches)


def validate_pipeline_start_node(
    pipeline: Any, node_id: Any, sink_types: Iterable[str] | None = None
) -> None:
    """Raise ``StartPositionInvalidException`` unless ``node_id`` is an allowed start position."""
    if not isinstance(node_id, str):
        raise StartPositionInvalidException(f"start node id must be a string, got {type(node_id).__name__}")
    view = _root_view(pipeline, sink_types)
    if node_id == view.start_id:
        return
    allowed = get_allowed_start_node_ids(pipeline, sink_types)
    if node_id in allowed:
        return
    if node_id not in view.types:
        reason = "it is not a node of the root pipeline"
    else:
        reason = (
            f"it is a {view.types[node_id]} that is not on the main line (converge gateways, subprocesses, "
            "end events and nodes inside parallel blocks are not allowed)"
        )
    shown = ", ".join(allowed[:10]) + (", ..." if len(allowed) > 10 else "")
    raise StartPositionInvalidException(
        f"node {node_id!r} is not allowed as a starting node: {reason}; allowed start nodes: {shown}"
    )


def get_skipped_execute_node_ids(
    pipeline: Any, start_node_id: Any, validate: bool = True, sink_types: Iterable[str] | None = None
) -> list[str]:
    """Every node of the root tree that cannot run when the run starts at ``start_node_id``.

    All nodes not reachable from ``start_node_id``, where bamboo gives a truncated path.
    ``[]`` when starting at the start event.
    """
    if validate:
        validate_pipeline_start_node(pipeline, start_node_id, sink_types)
    elif not isinstance(start_node_id, str):
        raise StartPositionInvalidException(
            f"start node id must be a string, got {type(start_node_id).__name__}"
        )
    view = _root_view(pipeline, sink_types)
    if start_node_id not in view.types:
        raise StartPositionInvalidException(f"node {start_node_id!r} is not a node of the root pipeline")
    return skipped_nodes(view, start_node_id)

"""Rollback preconditions and the rollback graph. Every check reads inside the caller's transaction
and raises before anything is written: ``RollBackException`` for a broken rule, ``NotFoundError``
for an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rattan.errors import NotFoundError, RollBackException
from rattan.model import states
from rattan.model.states import TokenStatus
from rattan.spec.model import NodeType

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import NodeInfo
    from rattan.model.records import StateRecord, TokenRecord
    from rattan.runtime.interface import Reads as Tx
    from rattan.spec.model import PipelineSpec


def _state(tx: Tx, node_id: str) -> StateRecord | None:
    found = tx.states([node_id])
    return found[0] if found else None


TOKEN = "TOKEN"
ANY = "ANY"
MODES = (TOKEN, ANY)
KNOWN_OPTIONS = frozenset({"skip_check_token"})
ROLLBACK_KINDS = (NodeType.ServiceActivity, NodeType.EmptyStartEvent)
WALK_KINDS = ROLLBACK_KINDS


@dataclass
class Request:
    root_id: str
    start: str
    target: str
    mode: str = TOKEN
    skip: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def check_token(self) -> bool:
        return self.mode == TOKEN or not self.options.get("skip_check_token")


def check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise RollBackException(f"rollback failed: mode must be 'TOKEN' or 'ANY', not {mode!r}")
    return str(mode)


def check_options(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        raise RollBackException(
            f"rollback failed: unknown option(s) {', '.join(unknown)}; the only option is skip_check_token"
        )


def root_state(tx: Tx, root_id: str) -> StateRecord:
    st = _state(tx, root_id)
    if st is None:
        raise NotFoundError(f"pipeline({root_id}) does not exist")
    if st.root_id != root_id or st.parent_id:
        raise RollBackException(
            f"rollback failed: {root_id} is not a root pipeline (its root is {st.root_id})"
        )
    return st


def check_pipeline(tx: Tx, root_id: str, mode: str) -> StateRecord:
    """TOKEN: the pipeline is RUNNING or ROLL_BACK_FAILED; ANY: RUNNING."""
    st = root_state(tx, root_id)
    allowed = (states.RUNNING, states.ROLL_BACK_FAILED) if mode == TOKEN else (states.RUNNING,)
    if st.name not in allowed:
        raise RollBackException(
            f"rollback failed: pipeline {root_id} is {st.name}; {mode} mode needs it {' or '.join(allowed)}"
        )
    return st


def node_info(core: EngineCore, tx: Tx, root_id: str, node_id: str, role: str) -> NodeInfo:
    owner = tx.roots_of([node_id]).get(node_id)
    if owner is None:
        raise NotFoundError(f"node({node_id}) does not exist")
    if owner != root_id:
        raise RollBackException(
            f"rollback failed: {role} node {node_id} belongs to pipeline {owner}, not {root_id}"
        )
    info = core.plans.plan(root_id).info(node_id)
    if info.kind not in ROLLBACK_KINDS:
        raise RollBackException(
            f"rollback failed: {role} node {node_id} is a {info.kind}; only ServiceActivity (or "
            "EmptyStartEvent) nodes take part in a rollback"
        )
    return info


def node_state(tx: Tx, node_id: str, role: str, allowed: tuple[str, ...]) -> StateRecord:
    st = _state(tx, node_id)
    name = st.name if st is not None else "not executed (no state)"
    if st is None or st.name not in allowed:
        raise RollBackException(
            f"rollback failed: {role} node {node_id} is {name}; it must be {' or '.join(allowed)}"
        )
    return st


def process_at(tx: Tx, root_id: str, node_id: str) -> TokenRecord:
    """The live token whose current node is ``node_id`` (the start must be a tail of the flow)."""
    for proc in tx.tokens(root_id=root_id):
        if proc.current == node_id and proc.status != TokenStatus.DONE:
            return proc
    raise RollBackException(
        f"rollback failed: start node {node_id} is not the current node of any token of pipeline "
        f"{root_id}; a rollback starts from where the flow stands"
    )


def tokens_of(tx: Tx, root_id: str) -> dict[str, str]:
    tokens = tx.rollback.tokens(root_id)
    if tokens is None:
        raise RollBackException(
            f"rollback failed: no rollback tokens for pipeline {root_id} (it was started without "
            "pipeline_enable_rollback)"
        )
    return tokens


def check_token(tokens: dict[str, str], start: str, target: str) -> None:
    a, b = tokens.get(start), tokens.get(target)
    if a is None or b is None:
        missing = start if a is None else target
        raise RollBackException(f"rollback failed: node {missing} has no rollback token")
    if a != b:
        raise RollBackException(
            f"rollback failed: start node {start} and target node {target} have different tokens (they are "
            "not in one sequential region: a parallel branch or a subprocess lies between them)"
        )


def check_no_running(tx: Tx, root_id: str, tokens: dict[str, str], start: str, mode: str) -> None:
    """ANY: no RUNNING node in the pipeline; TOKEN: none with the start node's token."""
    token = tokens.get(start)
    for st in tx.states(root_id=root_id):
        if st.node_id == root_id or st.name != states.RUNNING:
            continue
        if mode == ANY:
            raise RollBackException(
                f"rollback failed: node {st.node_id} is RUNNING; ANY mode needs no running node in {root_id}"
            )
        if tokens.get(st.node_id) == token:
            raise RollBackException(
                f"rollback failed: node {st.node_id} is RUNNING with the start node's token; wait for it"
            )


@dataclass
class Checked:
    proc: TokenRecord
    tokens: dict[str, str]
    start_state: StateRecord


def validate_rollback(core: EngineCore, tx: Tx, req: Request, halted: TokenRecord | None = None) -> Checked:
    """Every precondition of an immediate rollback. ``halted``: the token a reservation stopped."""
    check_mode(req.mode)
    check_options(req.options)
    check_pipeline(tx, req.root_id, req.mode)
    start_info = node_info(core, tx, req.root_id, req.start, "start")
    target_info = node_info(core, tx, req.root_id, req.target, "target")
    start_st = node_state(tx, req.start, "start", (states.FINISHED, states.FAILED))
    node_state(tx, req.target, "target", (states.FINISHED,))
    if req.start == req.target:
        raise RollBackException(f"rollback failed: start and target are the same node {req.start}")
    proc = halted if halted is not None else process_at(tx, req.root_id, req.start)
    tokens = tokens_of(tx, req.root_id)
    if req.check_token:
        check_token(tokens, req.start, req.target)
    if start_info.pipeline_id != target_info.pipeline_id:
        raise RollBackException(
            f"rollback failed: start node {req.start} (in {start_info.pipeline_id}) and target node "
            f"{req.target} (in {target_info.pipeline_id}) are not in the same pipeline"
        )
    check_no_running(tx, req.root_id, tokens, req.start, req.mode)
    return Checked(proc, tokens, start_st)


def validate_reservation(core: EngineCore, tx: Tx, req: Request, cancel: bool = False) -> None:
    check_mode(req.mode)
    check_options(req.options)
    check_pipeline(tx, req.root_id, req.mode)
    node_info(core, tx, req.root_id, req.start, "start")
    node_info(core, tx, req.root_id, req.target, "target")
    node_state(tx, req.start, "start", (states.RUNNING,))
    process_at(tx, req.root_id, req.start)
    node_state(tx, req.target, "target", (states.FINISHED,))
    if cancel:
        return
    if req.check_token:
        check_token(tokens_of(tx, req.root_id), req.start, req.target)
    plans = tx.rollback.plans(req.root_id)
    if plans:
        p = plans[0]
        raise RollBackException(
            f"reserve rollback failed: pipeline {req.root_id} already has a reserved rollback "
            f"({p.start_node_id} -> {p.target_node_id}); cancel it first"
        )


# -- the rollback graph ------------------------------------------------------------------------
@dataclass
class Graph:
    walk: list[str]  # nodes to roll back, in rollback order (start side first, target last)
    clean: list[str]  # every node whose rows are deleted when the rollback ends


def build_graph(core: EngineCore, tx: Tx, root_id: str, start: str, target: str) -> Graph:
    """The executed path from ``target`` to ``start`` (edges actually taken), reversed.

    Subprocess nodes on the path are expanded: their executed contents are rolled back at the
    subprocess's place (inner nodes first), then cleaned with it. Gateways are only cleaned.
    """
    plan = core.plans.plan(root_id)
    pipeline = plan.info(target).pipeline
    executed = {s.node_id: s for s in tx.states(root_id=root_id)}
    order = _path(pipeline, executed, target, start)
    if order is None:
        raise RollBackException(
            f"rollback failed: no executed path leads from target node {target} to start node {start}"
        )
    walk: list[str] = []
    clean: list[str] = []
    _expand(pipeline, order, executed, walk, clean)
    return Graph(walk, clean)


def _expand(
    pipeline: PipelineSpec, order: list[str], executed: dict[str, Any], walk: list[str], clean: list[str]
) -> None:
    for node_id in order:
        node = pipeline.nodes[node_id]
        clean.append(node_id)
        if node.kind == NodeType.SubProcess:
            inner = node.pipeline  # type: ignore[attr-defined]
            inner_order = _path(inner, executed, inner.start_event_id, inner.end_event_id)
            if inner_order is None:  # an unfinished subprocess: its executed nodes, newest first
                inner_order = [n for n in reversed(list(executed)) if n in inner.nodes]
            _expand(inner, inner_order, executed, walk, clean)
        elif node.kind in WALK_KINDS:
            walk.append(node_id)


def _path(pipeline: PipelineSpec, executed: dict[str, Any], source: str, sink: str) -> list[str] | None:
    """Executed nodes of ``pipeline`` on a path ``source`` -> ``sink``, ``sink`` first, ``source`` last."""
    if source not in executed or sink not in executed:
        return None
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for node_id, node in pipeline.nodes.items():
        if node_id not in executed:
            continue
        for flow_id in node.outgoing:
            nxt = pipeline.flow_target(flow_id)
            if nxt in executed and nxt in pipeline.nodes:
                succ.setdefault(node_id, []).append(nxt)
                pred.setdefault(nxt, []).append(node_id)
    forward = _reach(source, succ, stop=sink)
    if sink not in forward:
        return None
    on_path = forward & _reach(sink, pred, stop=source)
    # reverse topological order from the sink: depth-first post-order over predecessors
    out: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, int]] = [(sink, 0)]
    seen.add(sink)
    while stack:
        node_id, i = stack.pop()
        preds = [p for p in pred.get(node_id, []) if p in on_path]
        if i < len(preds):
            stack.append((node_id, i + 1))
            p = preds[i]
            if p not in seen:
                seen.add(p)
                stack.append((p, 0))
        else:
            out.append(node_id)
    out.reverse()  # sink first: every node comes before its predecessors on the path
    return out


def _reach(origin: str, edges: dict[str, list[str]], stop: str) -> set[str]:
    seen = {origin}
    todo = [origin]
    while todo:
        node_id = todo.pop()
        if node_id == stop and node_id != origin:
            continue  # do not walk past the other end (loops would pull in later nodes)
        for nxt in edges.get(node_id, []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen

"""Handlers of the engine-side node types: events, gateways and subprocess entry.

Each handler runs inside the worker's transaction, writes the node's state and moves the token.
It returns the token to continue with, or None when the token stops.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rattan.context import ContextValueType
from rattan.engine.inputs import (
    HydrateError,
    Renderer,
    resolve_inputs,
    static_references,
    store_loop_counters,
)
from rattan.engine.step import Step
from rattan.errors import ExpressionError
from rattan.expr import BoolRuleParseError, evaluate_condition, references
from rattan.model import states
from rattan.model.codec import dumps
from rattan.model.messages import Advance
from rattan.model.records import ContextRow
from rattan.model.states import TokenStatus
from rattan.spec.model import GatewayNode, NodeType, SubProcessNode

if TYPE_CHECKING:
    from rattan.engine.plan import NodeInfo
    from rattan.model.records import StateRecord, TokenRecord


def handle(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord | None:
    kind = info.kind
    if kind == NodeType.EmptyStartEvent:
        return _start(step, proc, info, old, entered)
    if kind in (NodeType.EmptyEndEvent, NodeType.ExecutableEndEvent):
        return _end(step, proc, info, old, entered)
    if kind == NodeType.ConvergeGateway:
        return _pass(step, proc, info, old, entered)
    if kind == NodeType.ExclusiveGateway:
        return _exclusive(step, proc, info, old, entered)
    if kind in (NodeType.ParallelGateway, NodeType.ConditionalParallelGateway):
        return _parallel(step, proc, info, old, entered)
    if kind == NodeType.SubProcess:
        return _subprocess(step, proc, info, old, entered)
    step.fail_node(proc, entered, old, f"unsupported node type {info.node.type}")
    return None


def _move_on(step: Step, proc: TokenRecord, info: NodeInfo, target: str | None = None) -> TokenRecord:
    proc.current = target if target is not None else info.next_id()
    step.node_event("node_finish", proc.root_id, info.node.id)
    return proc


def _pass(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord:
    step.finish_simple(old, entered)
    return _move_on(step, proc, info)


def _renderer(step: Step, proc: TokenRecord, entered: StateRecord) -> Renderer:
    root_data = step.core.plans.root_data(step.tx, proc.root_id)
    return Renderer(step.core, root_data, entered.inner_loop, entered.node_id)


# Rendering is user data and user code (lazy variables): its failures fail the node. Reads and
# writes of the store stay outside those try blocks: a store error is the store's (the unit is
# tried again), never a node's failure.


def _start(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord | None:
    keys = info.pipeline.data.pre_render_keys
    if keys:
        r = _renderer(step, proc, entered)
        ctx = step.tx.context(info.pipeline_id)
        try:
            r.load(ctx, set(keys))
        except Exception as exc:
            step.fail_node(proc, entered, old, f"context hydrate failed({exc}), check node log for details.")
            return None
        rows = [
            ContextRow(info.pipeline_id, key, ContextValueType.PLAIN, r.names.get(key[2:-1]))
            for key in keys
            if key in ctx
        ]
        step.tx.put_context(rows)
    step.finish_simple(old, entered)
    return _move_on(step, proc, info)


def render_exports(
    step: Step, proc: TokenRecord, entered: StateRecord, pipeline_id: str, keys: tuple[str, ...]
) -> dict[str, Any]:
    """Render a pipeline's export list; a key missing from the context yields the key itself."""
    if not keys:
        return {}
    ctx = step.tx.context(pipeline_id)
    present = {k for k in keys if k in ctx}
    r = _renderer(step, proc, entered)
    if present:
        try:
            r.load(ctx, present)
        except Exception as exc:
            raise HydrateError(str(exc)) from exc
    return {k: (r.names.get(k[2:-1]) if k in present else k) for k in keys}


def _end(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord | None:
    tx = step.tx
    if info.kind == NodeType.ExecutableEndEvent:
        error = step.core.services.run_end_event(
            info.node.type, info.node.id, len(proc.stack) > 1, proc.root_id, proc.top_pipeline_id
        )
        if error is not None:
            step.fail_node(proc, entered, old, error)
            return None
    try:
        outputs = render_exports(step, proc, entered, info.pipeline_id, info.pipeline.data.outputs)
    except HydrateError as exc:
        step.fail_node(proc, entered, old, f"context hydrate failed({exc})")
        return None
    step.finish_simple(old, entered)
    step.node_event("node_finish", proc.root_id, info.node.id)
    if len(proc.stack) == 1:  # the root pipeline ends
        tx.put_node_data(proc.root_id, inputs=dumps({}), outputs=dumps(outputs))
        root = step.state(proc.root_id)
        if root is not None:
            new = root.copy()
            new.name = states.FINISHED
            new.archived = step.now
            step.write_state(new, root)
        proc.status = TokenStatus.DONE
        step.save_process(proc)
        step.event(
            "pipeline_finish", pipeline_id=proc.root_id, root_pipeline_id=proc.root_id, node_id=info.node.id
        )
        return None
    # a subprocess ends: its node finishes and the token pops back to the parent pipeline
    sub_id = proc.stack.pop()
    sub = step.state(sub_id)
    offset = step.core.settings.rerun_index_offset
    if sub is not None:
        outputs["_loop"] = sub.loop + offset
        outputs["_inner_loop"] = sub.inner_loop + offset
        tx.put_node_data(sub_id, outputs=dumps(outputs))
        new = sub.copy()
        new.name = states.FINISHED
        new.archived = step.now
        step.write_state(new, sub)
    sub_info = step.core.plans.plan(proc.root_id).info(sub_id)
    write_outputs(step, sub_info, outputs)
    proc.current = sub_info.next_id()
    return proc


def write_outputs(step: Step, info: NodeInfo, outputs: dict[str, Any]) -> None:
    """Copy mapped outputs into the node's pipeline context as PLAIN values."""
    if not info.output_map:
        return
    rows = [
        ContextRow(info.pipeline_id, ctx_key, ContextValueType.PLAIN, outputs[out_key])
        for out_key, ctx_key in info.output_map.items()
        if out_key in outputs
    ]
    if rows:
        step.tx.put_context(rows)


def _escape(value: Any) -> Any:
    if isinstance(value, str) and "\\n" not in value and "\\r" not in value and "\\t" not in value:
        return value.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return value


def evaluate_gateway(step: Step, proc: TokenRecord, info: NodeInfo, entered: StateRecord) -> list[str]:
    """Return the flow ids whose condition holds; raise HydrateError with the node's ex_data text."""
    node = info.node
    assert isinstance(node, GatewayNode)
    refs: set[str] = set()
    for cond in node.conditions:
        refs |= references(cond.evaluate)
    r = _renderer(step, proc, entered)
    if refs:
        ctx = step.tx.context(info.pipeline_id)
        try:
            r.load(ctx, refs)
        except Exception as exc:
            raise HydrateError(
                f"evaluation context hydrate failed({exc}), check node log for details."
            ) from exc
    r.names = {k: _escape(v) for k, v in r.names.items()}
    fn = step.core.settings.pipeline_exclusive_gateway_expr_func or evaluate_condition
    exclusive = info.kind == NodeType.ExclusiveGateway
    strategy = _strategy(step, node) if exclusive else 1
    hits: list[str] = []
    for cond in node.conditions:
        rendered = r.render(cond.evaluate)
        try:
            ok = fn(rendered, r.names, extra_info=dict(node.extra_info))
        except BoolRuleParseError:
            raise HydrateError(f"evaluate[{cond.evaluate}] fail with data[{_data_text(r.names)}]") from None
        except Exception as exc:
            shown = rendered if exclusive else cond.evaluate
            msg = exc.reason if isinstance(exc, ExpressionError) else str(exc)
            raise HydrateError(
                f"evaluate[{shown}] fail with data[{_data_text(r.names)}] message: {msg}"
            ) from None
        if ok:
            hits.append(cond.flow_id)
            if strategy == 2:
                break
    if not hits and node.default_flow_id:
        return [node.default_flow_id]
    if not hits:
        raise HydrateError("all conditions of branches are not meet")
    if exclusive and len(hits) > 1:
        raise HydrateError(f"multiple conditions meet: {hits!r}")
    return hits


def _data_text(names: dict[str, Any]) -> str:
    """The context a failing condition saw, for its ex_data (built only when one fails)."""
    return json.dumps(names, default=str, ensure_ascii=False)


def _strategy(step: Step, node: GatewayNode) -> int:
    value: Any = node.extra_info.get("strategy", step.core.settings.pipeline_exclusive_gateway_strategy)
    if isinstance(value, str):
        return {"ONLY": 1, "FIRST": 2}.get(value.upper(), 1)
    return 2 if value == 2 else 1


def _exclusive(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord | None:
    try:
        flow_id = evaluate_gateway(step, proc, info, entered)[0]
    except HydrateError as exc:
        step.fail_node(proc, entered, old, str(exc), inputs={})
        return None
    step.finish_simple(old, entered)
    return _move_on(step, proc, info, info.pipeline.flow_target(flow_id))


def fork(step: Step, proc: TokenRecord, info: NodeInfo, flow_ids: list[str]) -> TokenRecord:
    """Fork one child token per flow toward the gateway's converge; continue with the first."""
    node = info.node
    assert isinstance(node, GatewayNode)
    converge = node.converge_gateway_id
    children = [
        step.new_token(proc.root_id, proc.id, info.pipeline.flow_target(f), converge, list(proc.stack))
        for f in flow_ids
    ]
    proc.status = TokenStatus.WAITING
    proc.pending = len(children)
    proc.current = node.id
    step.save_process(proc)
    step.fx.sends.extend(Advance(child.id) for child in children[1:])
    return children[0]


def _parallel(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord | None:
    if info.kind == NodeType.ConditionalParallelGateway:
        try:
            flows = evaluate_gateway(step, proc, info, entered)
        except HydrateError as exc:
            step.fail_node(proc, entered, old, str(exc), inputs={})
            return None
    else:
        flows = list(info.node.outgoing)
    step.finish_simple(old, entered)
    # no node_finish here: the parent token sleeps while its children run
    return fork(step, proc, info, flows)


def _reset_inner_loops(step: Step, sub: SubProcessNode) -> None:
    """Entering a subprocess again starts its nodes' inner loops afresh: the next
    entry of each counts 1. Only the subprocess's own nodes are read (by key: a store that knows
    them answers without a statement, and a first entry finds none), not the whole run."""
    for st in step.tx.states(list(sub.pipeline.nodes)):
        if st.parent_id == sub.id and st.inner_loop != 0:
            new = st.copy()
            new.inner_loop = 0
            step.tx.put_state(new, st)


def _subprocess(
    step: Step, proc: TokenRecord, info: NodeInfo, old: StateRecord | None, entered: StateRecord
) -> TokenRecord | None:
    node = info.node
    assert isinstance(node, SubProcessNode)
    tx = step.tx
    store_loop_counters(step.core, tx, info.pipeline_id, info.output_map, entered.loop, entered.inner_loop)
    try:
        params = resolve_inputs(
            step.core, tx, info.pipeline_id, node.id, info.inputs, info.output_map,
            entered.loop, entered.inner_loop, step.core.plans.root_data(tx, proc.root_id),
            static_references(info),
        )  # fmt: skip
    except HydrateError as exc:
        step.fail_node(proc, entered, old, f"context hydrate failed({exc}), check node log for details.")
        return None
    params.pop("_loop", None)
    params.pop("_inner_loop", None)
    step.write_state(entered, old)
    tx.put_node_data(node.id, inputs=dumps(params), outputs=dumps({}))
    step.put_context(node.id, params, ContextValueType.PLAIN)
    _reset_inner_loops(step, node)
    proc.stack.append(node.id)
    step.node_event("node_finish", proc.root_id, node.id)
    proc.current = node.pipeline.start_event_id
    return proc

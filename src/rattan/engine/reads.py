"""Read operations in the shapes the API returns (committed data only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rattan.context import ContextValue, ContextValueType
from rattan.engine.checks import root_refused
from rattan.engine.runs import add_detail
from rattan.errors import NotFoundError
from rattan.model.records import StateRecord, to_datetime
from rattan.spec.model import NodeType, ServiceActivityNode, SubProcessNode

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.model.records import HistoryRecord
    from rattan.runtime.interface import Reads


def state_of(tx: Reads, node_id: str) -> StateRecord | None:
    found = tx.states([node_id])
    return found[0] if found else None


def state_dict(s: StateRecord, flags_from: StateRecord | None = None) -> dict[str, Any]:
    f = flags_from or s
    return {
        "id": s.node_id,
        "state": s.name,
        "root_id:": s.root_id,
        "root_id": s.root_id,
        "parent_id": s.parent_id,
        "version": s.version,
        "loop": s.loop,
        "inner_loop": s.inner_loop,
        "retry": s.retry,
        "skip": s.skip,
        "error_ignorable": f.error_ignored,
        "error_ignored": f.error_ignored,
        "created_time": s.created_time,
        "started_time": s.started_time,
        "archived_time": s.archived_time,
        "children": {},
    }


def pipeline_states(
    core: EngineCore, root_id: str, flat_children: bool = True, detail: bool = False
) -> dict[str, Any]:
    def read(tx: Reads) -> dict[str, Any]:
        root = state_of(tx, root_id)
        if root is None:
            return {}
        top = state_dict(root)
        top["parent_id"] = root.root_id
        children = [s for s in tx.states(root_id=root_id) if s.node_id != root_id]
        entries = {s.node_id: state_dict(s) for s in children}
        if flat_children:
            top["children"] = entries
        else:
            for s in children:
                holder = top if s.parent_id == root_id else entries.get(s.parent_id, top)
                holder["children"][s.node_id] = entries[s.node_id]
        if detail:
            add_detail(core, tx, root.root_id or root_id, {root_id: top, **entries}, [root, *children])
        return {root_id: top}

    return core.store.read(read)


def children_states(core: EngineCore, node_id: str, detail: bool = False) -> dict[str, Any]:
    def read(tx: Reads) -> dict[str, Any]:
        st = state_of(tx, node_id)
        if st is None:
            return {}
        # a pause appointed before the token arrives stores the state without its root (as
        # bamboo does): the node index knows it
        root = st.root_id or tx.roots_of([node_id]).get(node_id) or node_id
        top = state_dict(st)
        top["parent_id"] = st.root_id
        children = [s for s in tx.states(root_id=root) if s.parent_id == node_id]
        top["children"] = {s.node_id: state_dict(s) for s in children}
        if detail:
            add_detail(core, tx, root, {node_id: top, **top["children"]}, [st, *children])
        return {node_id: top}

    return core.store.read(read)


def node_debug_info(core: EngineCore, node_id: str) -> dict[str, Any]:
    root = core.store.read(lambda tx: tx.roots_of([node_id])).get(node_id)
    if root is None:
        raise NotFoundError(f"node({node_id}) does not exist in any pipeline")
    if root == node_id:  # a root pipeline is no node of its plan: say so, not KeyError
        raise root_refused(node_id, "get_node_debug_info")
    info = core.plans.plan(root).info(node_id)
    state, data = core.store.read(lambda tx: (state_of(tx, node_id), tx.node_data(node_id).outputs))
    err: list[str] = []
    if data is not None and "ex_data" in data:
        err.append(str(data["ex_data"]))
    try:
        static = static_data(core, node_id)
    except NotFoundError:
        static = None
    return {"node": info.node, "data": static, "state": state, "err": err}


def _find_node(core: EngineCore, node_id: str) -> tuple[str, Any] | None:
    """(root id, NodeInfo) of a node of a stored run, via its state record."""
    st = core.store.read(lambda tx: state_of(tx, node_id))
    if st is None or not st.root_id:
        return None
    plan = core.plans.plan(st.root_id)
    info = plan.nodes.get(node_id)
    return (st.root_id, info) if info is not None else None


def static_data(core: EngineCore, node_id: str) -> dict[str, Any]:
    run = core.store.read(lambda tx: tx.run(node_id))
    if run is not None:
        root_data = run.root_data or {}
        return {
            "inputs": {k: {"need_render": False, "value": v} for k, v in root_data.items()},
            "outputs": {},
        }
    found = _find_node(core, node_id)
    if found is None:
        raise NotFoundError(f"node {node_id} has no data (unknown id, or not reached yet)")
    _, info = found
    node = info.node
    if isinstance(node, ServiceActivityNode | SubProcessNode):
        override = core.store.read(lambda tx: tx.node_data(node_id).override)
        if override is not None:
            inputs = override
        else:
            inputs = {k: {"need_render": need, "value": v} for k, (need, v) in info.inputs.items()}
        return {"inputs": inputs, "outputs": dict(info.output_map)}
    if node.kind == NodeType.EmptyStartEvent and info.pipeline.data.pre_render_keys:
        keys = list(info.pipeline.data.pre_render_keys)
        return {"inputs": {"pre_render_keys": {"need_render": False, "value": keys}}, "outputs": {}}
    raise NotFoundError(f"node {node_id} ({node.type}) has no static data")


def history_dict(h: HistoryRecord, full: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": h.id,
        "node_id": h.node_id,
        "started_time": to_datetime(h.started),
        "archived_time": to_datetime(h.archived),
        "loop": h.loop,
        "skip": h.skip,
        "version": h.version,
    }
    if full:
        d["retry"] = h.retry
        d["inputs"] = h.inputs
        d["outputs"] = h.outputs
    return d


def context_values(core: EngineCore, pipeline_id: str) -> list[ContextValue]:
    rows = core.store.read(lambda tx: tx.context(pipeline_id))
    return [ContextValue(k, ContextValueType(t), v, c) for k, (t, v, c) in rows.items()]


def execution_time(core: EngineCore, node_id: str) -> dict[str, Any]:
    st = core.store.read(lambda tx: state_of(tx, node_id))
    if st is None:
        raise NotFoundError(f"node {node_id} has no state")
    if st.started is None:
        seconds = None
    else:
        seconds = (st.archived if st.archived is not None else core.clock.now()) - st.started
    return {
        "state": st.name,
        "start_time": st.started_time,
        "archived_time": st.archived_time,
        "execution_time": seconds,
    }


@dataclass
class ProcessInfo:
    process_id: int
    destination_id: str | None
    root_pipeline_id: str
    pipeline_stack: list[str]
    parent_id: int | None
    current_node: str
    status: str

    @property
    def top_pipeline_id(self) -> str:
        return self.pipeline_stack[-1]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_pipeline_id"] = self.top_pipeline_id
        return d


def debug_info(core: EngineCore, pipeline_id: str) -> dict[str, Any]:
    procs = core.store.read(lambda tx: tx.tokens(root_id=pipeline_id))
    return {
        "context_values": context_values(core, pipeline_id),
        "processes": [
            ProcessInfo(p.id, p.destination, p.root_id, p.stack, p.parent_id, p.current, p.status)
            for p in procs
        ],
    }

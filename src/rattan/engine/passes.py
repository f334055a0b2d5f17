"""The end of a service activity's pass, shared by ``execute`` results (activity.py) and
schedule steps (schedule.py): both stamp the outputs the same way and close the pass through
``close_pass``, which decides between finishing the node (the token moves on) and failing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rattan.engine import policies
from rattan.engine.loops import loop_config, next_after_pass, record_pass
from rattan.engine.nodes import write_outputs
from rattan.errors import UnstorableValueError
from rattan.model import states
from rattan.model.codec import dumps
from rattan.model.states import TokenStatus

if TYPE_CHECKING:
    from rattan.engine.jobs import Prepared
    from rattan.engine.plan import NodeInfo
    from rattan.engine.step import Step
    from rattan.model.records import StateRecord, TokenRecord


def seal(
    step: Step, prep: Prepared, inputs: dict[str, Any], outputs: dict[str, Any], value: Any, ok: bool
) -> tuple[dict[str, Any], bytes, bytes, bool]:
    """Stamp the system keys every pass leaves in its outputs (``_result``, ``_loop``,
    ``_inner_loop``) and encode inputs and outputs: (outputs, inputs JSON, outputs JSON, ok).
    Outputs the store cannot keep exactly (docs/components.md) or an output value above
    ``max_output_bytes`` fail the pass with an ex_data naming the key, instead of being stored as
    something else."""
    settings = step.core.settings
    offset = settings.rerun_index_offset
    outputs["_result"] = value if ok else False
    outputs["_loop"] = prep.loop + offset
    outputs["_inner_loop"] = prep.inner_loop + offset
    try:
        out_blob = dumps(outputs)
        limit = settings.max_output_bytes
        # the common case costs one comparison; _too_big looks at the values one by one
        refused = None if len(out_blob) <= limit else _too_big(outputs, limit)
    except UnstorableValueError as exc:
        refused = str(exc.of("outputs"))
    if refused is None:
        try:
            return outputs, dumps(inputs), out_blob, ok
        except UnstorableValueError:
            return outputs, dumps(_storable(inputs)), out_blob, ok
    outputs = {"ex_data": refused, "_result": False,
               "_loop": outputs["_loop"], "_inner_loop": outputs["_inner_loop"]}  # fmt: skip
    return outputs, dumps(_storable(inputs)), dumps(outputs), False


def close_pass(
    step: Step, proc: TokenRecord, info: NodeInfo, state: StateRecord, outputs: dict[str, Any], ok: bool,
    fail_event: str, error_types: list[str], callback_id: int | None = None,
) -> bool:  # fmt: skip
    """The pass is over: write its outputs into the context (or the loop's list), then finish the
    node and move the token on (returns True), or fail it and park the token there."""
    node: Any = info.node
    new = state.copy()
    new.archived = step.now
    cfg = loop_config(info)
    if cfg is not None:
        record_pass(step, info, cfg, outputs, state.inner_loop)
    else:
        write_outputs(step, info, outputs)
    if ok or node.error_ignorable or (cfg is not None and cfg.get("fail_skip")):
        new.name = states.FINISHED
        new.error_ignored = not ok
        step.write_state(new, state)
        proc.current = next_after_pass(info, cfg, state.inner_loop) if cfg is not None else info.next_id()
        proc.status = TokenStatus.READY
        step.save_process(proc)
        if proc.current != node.id:  # no node_finish between the passes of a loop
            step.node_event("node_finish", proc.root_id, node.id)
            step.hook(node, "node_finish", callback_id=callback_id)
        return True
    new.name = states.FAILED
    step.write_state(new, state)
    proc.status = TokenStatus.FAILED
    step.save_process(proc)
    step.event(fail_event, root_pipeline_id=proc.root_id, node_id=node.id)
    step.hook(node, fail_event, callback_id=callback_id)
    policies.on_failure(step, info, new, error_types or ["ReturnedFalse"])
    return False


def _too_big(outputs: dict[str, Any], limit: int) -> str | None:
    """The refusal of an output value above ``limit`` bytes, or None. Called only when the whole
    encoding is above it (seal compares that first): then the values are sized one by one."""
    for key, value in outputs.items():
        size = len(dumps(value))
        if size > limit:
            return (
                f"output {key!r} is {size} bytes, above max_output_bytes ({limit}): store large "
                "data elsewhere (a file, an object store) and output its address"
            )
    return None


def _storable(value: dict[str, Any]) -> dict[str, Any]:
    """Inputs as far as they can be stored: a value that cannot be is kept as its repr."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        try:
            dumps(item)
            out[key] = item
        except UnstorableValueError:
            out[key] = repr(item)
    return out

"""``preview_node_inputs``: render a node's inputs from a tree alone, with no stored run."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from rattan.context import TYPE_OF_ITEM, ContextValueType
from rattan.engine.inputs import Renderer
from rattan.errors import InvalidOperationError, NotFoundError
from rattan.expr import references
from rattan.spec.model import InputItem, PipelineSpec, ServiceActivityNode, SubProcessNode
from rattan.validator import load_pipeline

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rattan.engine.core import EngineCore


def _render_items(
    core: EngineCore,
    spec: PipelineSpec,
    items: Mapping[str, InputItem],
    params: dict[str, Any],
    root_data: Any,
) -> dict[str, Any]:
    ctx: dict[str, tuple[int, Any, str | None]] = {
        key: (TYPE_OF_ITEM.get(item.type, ContextValueType.PLAIN), item.value, item.custom_type)
        for key, item in spec.data.inputs.items()
    }
    for key, value in params.items():
        ctx[key] = (ContextValueType.PLAIN, value, None)
    renderer = Renderer(core, root_data, -1, spec.id)
    refs: set[str] = set()
    for item in items.values():
        if item.type != "plain" and item.need_render is not False:
            refs |= references(item.value)
    if refs:
        renderer.load(ctx, refs)
    out: dict[str, Any] = {}
    for key, item in items.items():
        # lazy node inputs are rendered as plain templates here, not computed (a kept quirk)
        needs = item.type != "plain" and item.need_render is not False
        out[key] = renderer.render(item.value) if needs else item.value
    return out


def preview_node_inputs(
    core: EngineCore,
    pipeline: dict[str, Any],
    node_id: str,
    subprocess_stack: list[str],
    root_pipeline_data: dict[str, Any],
    parent_params: dict[str, Any],
) -> dict[str, Any]:
    spec = load_pipeline(copy.deepcopy(pipeline), cycle_tolerate=True, sink_types=core.services.sink_types())
    params = dict(parent_params)
    for sub_id in subprocess_stack:
        sub = spec.nodes.get(sub_id)
        if not isinstance(sub, SubProcessNode):
            raise NotFoundError(f"subprocess {sub_id} of subprocess_stack is not in the pipeline")
        params = _render_items(core, spec, sub.params, params, root_pipeline_data)
        spec = sub.pipeline
    node = spec.nodes.get(node_id)
    if node is None:
        raise NotFoundError(f"node {node_id} is not in the pipeline (check subprocess_stack)")
    if isinstance(node, ServiceActivityNode):
        return _render_items(core, spec, node.inputs, params, root_pipeline_data)
    if isinstance(node, SubProcessNode):
        return _render_items(core, spec, node.params, params, root_pipeline_data)
    raise InvalidOperationError(f"can not preview inputs for node type: {node.type}")

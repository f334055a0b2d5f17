"""Rendering node inputs and conditions against a pipeline context (SPEC 4.3-4.6)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rattan.components.lazy import OriginalValue, compute_lazy_value
from rattan.context import ContextValueType
from rattan.errors import ExpressionError, NotFoundError, RattanError
from rattan.expr import ContextEntry, hydrate, references, render_value

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import NodeInfo, StaticInputs
    from rattan.runtime.queries import Tx

log = logging.getLogger("rattan.engine")

# stored type number -> enum member (a dict lookup; calling the enum per row costs far more)
_TYPES = {int(t): t for t in ContextValueType}


class HydrateError(RattanError):
    """Rendering a node's inputs failed; the node fails with this message in ``ex_data``."""


def input_references(inputs: StaticInputs) -> set[str]:
    refs: set[str] = set()
    for need, value in inputs.values():
        if need:
            refs |= references(value)
    return refs


def static_references(info: NodeInfo) -> frozenset[str]:
    """The context keys a node's static inputs read: parsed once per plan, not once per pass."""
    if info.refs is None:
        info.refs = frozenset(input_references(info.inputs))
    return info.refs


class Renderer:
    """Hydrates the context values a node needs and renders values with them."""

    def __init__(self, core: EngineCore, root_data: Any, inner_loop: int, node_id: str) -> None:
        self.core = core
        self.root_data = root_data
        self.inner_loop = inner_loop
        self.node_id = node_id
        self.names: dict[str, Any] = {}

    def _on_failure(self, text: str, error: ExpressionError) -> None:
        log.warning("node %s: template %r left unrendered: %s", self.node_id, text, error.reason)

    def render(self, value: Any) -> Any:
        settings = self.core.settings
        return render_value(
            value,
            self.names,
            strict=settings.template_strict,
            render_obj=settings.enable_render_obj_by_mako_string,
            extra_functions=settings.expression_names or None,
            on_failure=self._on_failure,
        )

    def _compute_lazy(self, code: str, rendered: Any, raw: Any) -> Any:
        try:
            cls = self.core.lazy_variable(code)
        except NotFoundError:
            raise HydrateError(f"unknown lazy variable code '{code}'") from None
        return compute_lazy_value(
            cls,
            value=rendered,
            # the raw value was just rendered against this very context: get() returns that result
            original_value=OriginalValue(raw, lambda _raw: rendered),
            pipeline_data=self.root_data,
            inner_loop=self.inner_loop,
        )

    def load(self, ctx: dict[str, tuple[int, Any, str | None]], keys: Iterable[str]) -> None:
        entries = {k: ContextEntry(_TYPES[t], v, c) for k, (t, v, c) in ctx.items()}
        settings = self.core.settings
        self.names.update(
            hydrate(
                entries,
                keys,
                self._compute_lazy,
                strict=settings.template_strict,
                render_obj=settings.enable_render_obj_by_mako_string,
                extra_functions=settings.expression_names or None,
                on_failure=self._on_failure,
            )
        )


def resolve_inputs(
    core: EngineCore,
    tx: Tx,
    pipeline_id: str,
    node_id: str,
    inputs: StaticInputs,
    output_map: dict[str, str],
    loop: int,
    inner_loop: int,
    root_data: Any,
    refs: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Return the node's execution inputs, or raise HydrateError (SPEC 4.6). ``refs``: the context
    keys ``inputs`` read, when the caller knows them (static_references)."""
    offset = core.settings.rerun_index_offset
    system = {"_loop": loop + offset, "_inner_loop": inner_loop + offset}
    # a node that exports its own loop counter sees the current value through the context
    loop_rows = [
        (pipeline_id, output_map[k], ContextValueType.PLAIN, v, None)
        for k, v in system.items()
        if k in output_map
    ]
    if loop_rows:
        tx.upsert_context(loop_rows)
    if refs is None:
        refs = input_references(inputs)
    renderer = Renderer(core, root_data, inner_loop, node_id)
    if refs:
        try:
            renderer.load(tx.load_context(pipeline_id), refs)
        except HydrateError:
            raise
        except Exception as exc:
            raise HydrateError(str(exc)) from exc
    out: dict[str, Any] = {}
    try:
        for key, (need, value) in inputs.items():
            out[key] = renderer.render(value) if need else value
    except Exception as exc:
        raise HydrateError(str(exc)) from exc
    out.update(system)
    return out

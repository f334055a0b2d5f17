"""Rendering node inputs and conditions against a pipeline context."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rattan.components.lazy import OriginalValue, compute_lazy_value
from rattan.context import ContextValueType
from rattan.errors import ExpressionError, NotFoundError, RattanError
from rattan.expr import ContextEntry, hydrate, references, render_value
from rattan.model.records import ContextRow

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.plan import NodeInfo, StaticInputs
    from rattan.runtime.interface import Reads, UnitOfWork

log = logging.getLogger("rattan.engine")

# stored type number -> enum member (a dict lookup; calling the enum per row costs far more)
_TYPES = {int(t): t for t in ContextValueType}


class HydrateError(RattanError):
    """Rendering a node's inputs failed; the node fails with this message in ``ex_data``."""


class TemplateError(HydrateError, ExpressionError):
    """A segment failed with ``template_strict`` on. A HydrateError so that every node kind that
    renders (activities, subprocess params, gateway conditions) fails the node with the message
    instead of stopping the engine step; an ExpressionError for callers outside a run (previews)."""


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
        # every key of the context last loaded: an undefined name's "did you mean" is looked up
        # there, since ``names`` holds only the keys the node references
        self.known: Iterable[str] = ()
        self.where = ""  # "input 'k': " while an input is rendered, for the warning

    def _on_failure(self, text: str, error: ExpressionError) -> None:
        log.warning(
            "node %s: %stemplate %r left unrendered: %s", self.node_id, self.where, text, error.reason,
            extra={"node_id": self.node_id},
        )  # fmt: skip

    def render(self, value: Any, key: str | None = None) -> Any:
        """Render ``value``; ``key`` names the input being rendered in the warning of a failing
        segment. Raises TemplateError for a failing segment when ``template_strict`` is on."""
        settings = self.core.settings
        self.where = "" if key is None else f"input {key!r}: "
        try:
            return render_value(
                value,
                self.names,
                strict=settings.template_strict,
                render_obj=settings.enable_render_obj_by_mako_string,
                extra_functions=settings.expression_names or None,
                on_failure=self._on_failure,
                suggest_from=self.known,
            )
        except ExpressionError as exc:
            raise TemplateError(exc.expression, exc.reason) from exc

    def _compute_lazy(self, code: str, rendered: Any, raw: Any) -> Any:
        try:
            cls = self.core.services.lazy_variable(code)
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
        self.known = entries
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


def loop_counters(core: EngineCore, loop: int, inner_loop: int) -> dict[str, int]:
    offset = core.settings.rerun_index_offset
    return {"_loop": loop + offset, "_inner_loop": inner_loop + offset}


def loop_counter_rows(
    pipeline_id: str, output_map: dict[str, str], system: dict[str, int]
) -> list[ContextRow]:
    return [
        ContextRow(pipeline_id, output_map[k], ContextValueType.PLAIN, v)
        for k, v in system.items()
        if k in output_map
    ]


def store_loop_counters(
    core: EngineCore, tx: UnitOfWork, pipeline_id: str, output_map: dict[str, str], loop: int, inner_loop: int
) -> None:
    """Write the loop counters a node exports into its pipeline's context (when it is entered)."""
    if "_loop" in output_map or "_inner_loop" in output_map:
        rows = loop_counter_rows(pipeline_id, output_map, loop_counters(core, loop, inner_loop))
        tx.put_context(rows)


def resolve_inputs(
    core: EngineCore,
    tx: Reads,
    pipeline_id: str,
    node_id: str,
    inputs: StaticInputs,
    output_map: dict[str, str],
    loop: int,
    inner_loop: int,
    root_data: Any,
    refs: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Return the node's execution inputs, or raise HydrateError. ``refs``: the context
    keys ``inputs`` read, when the caller knows them (static_references)."""
    system = loop_counters(core, loop, inner_loop)
    if refs is None:
        refs = input_references(inputs)
    renderer = Renderer(core, root_data, inner_loop, node_id)
    if refs:
        # read outside the try below: a store error is the store's, not a failure of the node
        ctx = tx.context(pipeline_id)
        # a node that exports its own loop counter sees the current value through the context
        # (a unit of work also stores it: store_loop_counters)
        for row in loop_counter_rows(pipeline_id, output_map, system):
            ctx[row.key] = (row.type, row.value, row.code)
        try:
            renderer.load(ctx, refs)
        except HydrateError:
            raise
        except Exception as exc:
            raise HydrateError(str(exc)) from exc
    out: dict[str, Any] = {}
    try:
        for key, (need, value) in inputs.items():
            out[key] = renderer.render(value, key) if need else value
    except Exception as exc:
        raise HydrateError(str(exc)) from exc
    out.update(system)
    return out

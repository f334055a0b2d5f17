"""Resolving SPLICE and COMPUTE (lazy) context values for one node."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rattan.context import ContextValueType
from rattan.errors import ExpressionError
from rattan.expr.template import OnFailure, references, render_value

ComputeLazy = Callable[[str, Any, Any], Any]


@dataclass(frozen=True)
class ContextEntry:
    """One context value as stored: its type, its raw (unrendered) value and, for COMPUTE, its code."""

    type: ContextValueType
    value: Any
    code: str | None = None


class ReferenceCycleError(ExpressionError):
    """Context values reference each other in a cycle; ``cycle`` is the path, first key repeated last."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        text = "reference cycle: " + " -> ".join(self.cycle)
        super().__init__(self.cycle[0], text)
        # the engine embeds str(exc) in ex_data: "inputs hydrate failed(reference cycle: ...)"
        self.args = (text,)

    def __str__(self) -> str:
        return self.reason


def plain_name(key: str) -> str:
    """Return ``name`` for a context key ``${name}``; other keys are returned unchanged."""
    return key[2:-1] if key.startswith("${") and key.endswith("}") else key


def _dependencies(entries: Mapping[str, ContextEntry], key: str) -> list[str]:
    entry = entries[key]
    if entry.type == ContextValueType.PLAIN:
        return []
    # sorted: the cycle reported and the order lazies are computed in do not depend on set order
    return sorted(ref for ref in references(entry.value) if ref in entries)


def closure(entries: Mapping[str, ContextEntry], keys: Iterable[str]) -> set[str]:
    """Return ``keys`` plus every key their SPLICE and COMPUTE values reference, transitively.

    Args:
        entries: the pipeline context, keyed by ``${name}``.
        keys: the keys a node needs (e.g. the references of its inputs).

    Returns:
        The keys given (present or not) and the referenced keys present in ``entries``.
    """
    found = set(keys)
    todo = [k for k in found if k in entries]
    while todo:
        for ref in _dependencies(entries, todo.pop()):
            if ref not in found:
                found.add(ref)
                todo.append(ref)
    return found


def hydrate(
    entries: Mapping[str, ContextEntry],
    keys: Iterable[str],
    compute_lazy: ComputeLazy,
    *,
    strict: bool = False,
    render_obj: bool = False,
    extra_functions: Mapping[str, Any] | None = None,
    on_failure: OnFailure | None = None,
) -> dict[str, Any]:
    """Resolve the closure of ``keys`` into plain values.

    PLAIN values are returned as is; SPLICE values are rendered against the values they reference;
    COMPUTE values are rendered the same way and then passed to
    ``compute_lazy(code, rendered_value, raw_value)``, at most once per call. Values are resolved in
    dependency order with an explicit stack, so chains of any length work.

    Args:
        entries: the pipeline context, keyed by ``${name}``.
        keys: the keys needed; keys absent from ``entries`` are ignored.
        compute_lazy: computes a lazy variable; its exceptions propagate unchanged.
        strict: ``TEMPLATE_STRICT``: a failing segment raises instead of staying as text.
        render_obj: ``ENABLE_RENDER_OBJ_BY_MAKO_STRING``.
        extra_functions: host names (``Settings.expression_names``).
        on_failure: called for each failing segment in non-strict mode; an undefined name gets a
            "did you mean" hint from every key of ``entries``, not only the resolved ones.

    Returns:
        Plain names (``name`` for ``${name}``) to resolved values, for every key of the closure
        present in ``entries``.

    Raises:
        ReferenceCycleError: values reference each other in a cycle.
        ExpressionError: strict mode, a segment failed.
    """
    resolved: dict[str, Any] = {}
    done: set[str] = set()
    # a key is "open" while its dependencies are being resolved; meeting an open key is a cycle
    open_keys: dict[str, None] = {}

    def resolve(key: str) -> None:
        entry = entries[key]
        if entry.type == ContextValueType.PLAIN:
            resolved[plain_name(key)] = entry.value
            return
        rendered = render_value(
            entry.value,
            resolved,
            strict=strict,
            render_obj=render_obj,
            extra_functions=extra_functions,
            on_failure=on_failure,
            suggest_from=entries,
        )
        if entry.type == ContextValueType.COMPUTE:
            rendered = compute_lazy(entry.code or "", rendered, entry.value)
        resolved[plain_name(key)] = rendered

    for root in keys:
        if root not in entries or root in done:
            continue
        stack = [(root, iter(_dependencies(entries, root)))]
        open_keys[root] = None
        while stack:
            key, deps = stack[-1]
            for dep in deps:
                if dep in done:
                    continue
                if dep in open_keys:
                    path = list(open_keys)
                    raise ReferenceCycleError([*path[path.index(dep) :], dep])
                open_keys[dep] = None
                stack.append((dep, iter(_dependencies(entries, dep))))
                break
            else:
                stack.pop()
                del open_keys[key]
                resolve(key)
                done.add(key)
    return resolved

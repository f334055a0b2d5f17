"""The ``${...}`` template language (SPEC 4.1): finding segments, their references, and rendering."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rattan.errors import ExpressionError
from rattan.expr.limits import DEFAULT_LIMITS
from rattan.expr.sandbox import evaluate

SEGMENT = re.compile(r"\$\{[^\$\{\}#]+\}")

OnFailure = Callable[[str, ExpressionError], None]

# Values nested deeper than this are returned unrendered (strict: refused) instead of recursing.
_MAX_VALUE_DEPTH = 100
_COMPREHENSIONS = (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)


def _target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _free_names(node: ast.AST, bound: frozenset[str]) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) and node.id not in bound else set()
    if isinstance(node, _COMPREHENSIONS):
        found: set[str] = set()
        inner = set(bound)
        for gen in node.generators:
            # each iterable is read before its own target is bound
            found |= _free_names(gen.iter, frozenset(inner))
            inner |= _target_names(gen.target)
            for cond in gen.ifs:
                found |= _free_names(cond, frozenset(inner))
        parts = (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,)
        for part in parts:
            found |= _free_names(part, frozenset(inner))
        return found
    if isinstance(node, ast.Lambda):
        params = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        return _free_names(node.body, bound | params)
    found = set()
    for child in ast.iter_child_nodes(node):
        found |= _free_names(child, bound)
    return found


@functools.lru_cache(maxsize=4096)
def segment_names(body: str) -> frozenset[str]:
    """Return the free names an expression reads; empty when it does not parse.

    Args:
        body: the inside of one ``${...}`` segment.

    Returns:
        Plain names (without ``${}``); names bound inside comprehensions are not included.
    """
    if len(body) > DEFAULT_LIMITS.max_source:
        return frozenset()
    try:
        tree = ast.parse(body.strip(), mode="eval")
        return frozenset(_free_names(tree, frozenset()))
    except (SyntaxError, ValueError, RecursionError, MemoryError, Warning):
        return frozenset()


@functools.lru_cache(maxsize=4096)
def _string_references(text: str) -> frozenset[str]:
    # the same input strings come back with every run of a template pipeline
    found: set[str] = set()
    for segment in set(SEGMENT.findall(text)):
        found.update("${" + name + "}" for name in segment_names(segment[2:-1]))
    return frozenset(found)


def references(value: Any) -> set[str]:
    """Return the context keys read by every segment in ``value``.

    Args:
        value: a string, or a list / tuple / dict (values only) nesting them; other values have none.

    Returns:
        Context keys in ``${name}`` form.
    """
    found: set[str] = set()
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                found |= _string_references(item)
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return found


def _is_literal_index(body: str) -> bool:
    # ${name[0]}, ${name["k"]}, ${name['k'][1]}: a name followed only by literal int/str subscripts
    try:
        node: ast.AST = ast.parse(body.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError, Warning):
        return False
    if not isinstance(node, ast.Subscript):
        return False
    while isinstance(node, ast.Subscript):
        index = node.slice
        if not (isinstance(index, ast.Constant) and type(index.value) in (int, str)):
            return False
        node = node.value
    return isinstance(node, ast.Name)


class _Renderer:
    def __init__(
        self,
        names: Mapping[str, Any],
        strict: bool,
        render_obj: bool,
        extra_functions: Mapping[str, Any] | None,
        on_failure: OnFailure | None,
        suggest_from: Iterable[str],
    ) -> None:
        self.names = names
        self.strict = strict
        self.render_obj = render_obj
        self.extra = extra_functions
        self.on_failure = on_failure
        self.suggest_from = suggest_from

    def fail(self, segment: str, error: ExpressionError) -> None:
        if self.strict:
            raise ExpressionError(segment, error.reason) from error
        if self.on_failure is not None:
            self.on_failure(segment, error)

    def value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.string(value)
        if not isinstance(value, list | tuple | dict):
            return value
        if depth > _MAX_VALUE_DEPTH:
            # no repr(): it would recurse through the same depth
            label = f"<{type(value).__name__} nested deeper than {_MAX_VALUE_DEPTH}>"
            self.fail(label, ExpressionError(label, f"value nested deeper than {_MAX_VALUE_DEPTH}"))
            return value
        if isinstance(value, dict):
            return {k: self.value(v, depth + 1) for k, v in value.items()}
        items = [self.value(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items

    def string(self, text: str) -> Any:
        segments = SEGMENT.findall(text)
        if not segments:
            return text
        if len(segments) == 1 and segments[0] == text:
            body = text[2:-1]
            # whole-value rule: the variable itself, type preserved, no evaluation at all
            if body in self.names:
                return self.names[body]
            if self.render_obj and _is_literal_index(body):
                try:
                    return evaluate(body, self.names, extra_functions=self.extra)
                except ExpressionError:
                    pass  # fall through: the normal path reports the failure
        done: dict[str, str] = {}

        def replace(match: re.Match[str]) -> str:
            segment = match.group(0)
            if segment not in done:
                done[segment] = self.segment(segment)
            return done[segment]

        return SEGMENT.sub(replace, text)

    def segment(self, segment: str) -> str:
        try:
            result = evaluate(
                segment[2:-1], self.names, extra_functions=self.extra, suggest_from=self.suggest_from
            )
            try:
                return str(result)
            except Exception as exc:
                raise ExpressionError(segment[2:-1], f"str() of the result failed: {exc}") from exc
        except ExpressionError as error:
            self.fail(segment, error)
            return segment


def render_value(
    value: Any,
    names: Mapping[str, Any],
    *,
    strict: bool = False,
    render_obj: bool = False,
    extra_functions: Mapping[str, Any] | None = None,
    on_failure: OnFailure | None = None,
    suggest_from: Iterable[str] = (),
) -> Any:
    """Render every ``${...}`` segment in ``value`` (SPEC 4.1).

    Strings are rendered; lists and tuples element by element (tuples stay tuples); dicts value by
    value (keys untouched); anything else is returned unchanged. A string that is exactly ``${name}``
    with ``name`` in ``names`` returns that value as is.

    Args:
        value: what to render.
        names: plain names to resolved values.
        strict: raise on the first failing segment instead of leaving its text.
        render_obj: ``ENABLE_RENDER_OBJ_BY_MAKO_STRING``: a whole-value ``${name[0]}`` /
            ``${name["k"]}`` returns the indexed object itself.
        extra_functions: host names (``Settings.expression_names``).
        on_failure: non-strict only; called with the segment text and the error for each failing
            segment (once per distinct segment per string), e.g. to log it.
        suggest_from: more names for the "did you mean" hint of an undefined name (plain names or
            ``${name}`` context keys), e.g. the whole pipeline context when ``names`` holds only
            the values a node references.

    Returns:
        The rendered value.

    Raises:
        ExpressionError: strict mode only; ``expression`` is the failing segment (``${...}``).
    """
    return _Renderer(names, strict, render_obj, extra_functions, on_failure, suggest_from).value(value, 0)

"""The ``${...}`` template language: finding segments, their references, and rendering."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rattan.errors import ExpressionError
from rattan.expr.limits import DEFAULT_LIMITS
from rattan.expr.sandbox import evaluate

# The simple segment: ``${`` + characters other than ``$ { } #`` + ``}`` (bamboo's pattern). Still
# a segment; find_segments also finds segments holding braces and string literals.
SEGMENT = re.compile(r"\$\{[^\$\{\}#]+\}")
# A simple segment without quotes: exactly what the full scan finds at that position (fast path).
_PLAIN_SEGMENT = re.compile(r"\$\{[^\$\{\}#'\"]+\}")
# What the scan of a segment's inside stops on; everything else is skipped at C speed.
_TOKEN = re.compile(r"[{}()\[\]'\"$#]")
# The end of a string literal (or a backslash escaping the next character); a newline ends a
# single-quoted literal unterminated, as in Python.
_STRING_END = {
    "'": re.compile(r"[\\'\n]"),
    '"': re.compile(r'[\\"\n]'),
    "'''": re.compile(r"\\|'''"),
    '"""': re.compile(r'\\|"""'),
}
_CLOSER = {"{": "}", "[": "]", "(": ")"}
# A longer inside is refused by the sandbox anyway (max_source is in UTF-8 bytes, >= characters):
# bounding each scan keeps finding segments linear in the text.
_MAX_BODY = DEFAULT_LIMITS.max_source

OnFailure = Callable[[str, ExpressionError], None]

# Values nested deeper than this are returned unrendered (strict: refused) instead of recursing.
_MAX_VALUE_DEPTH = 100
_COMPREHENSIONS = (ast.ListComp, ast.GeneratorExp, ast.SetComp, ast.DictComp)


def _string_end(text: str, quote_at: int, limit: int) -> int:
    delim = text[quote_at] * 3 if text.startswith(text[quote_at] * 3, quote_at) else text[quote_at]
    pattern = _STRING_END[delim]
    pos = quote_at + len(delim)
    while True:
        found = pattern.search(text, pos, limit)
        if found is None or found.group() == "\n":
            return -1
        if found.group() == "\\":
            pos = found.end() + 1  # the escaped character, whatever it is
            continue
        return found.end()


def _segment_end(text: str, start: int) -> int:
    # text[start:start + 2] == "${": the end of the segment whose ``}`` closes that brace, or -1
    limit = min(len(text), start + 3 + _MAX_BODY)
    closers: list[str] = []
    pos = start + 2
    while True:
        found = _TOKEN.search(text, pos, limit)
        if found is None:
            return -1  # unterminated (or longer than any accepted expression)
        char = found.group()
        pos = found.end()
        if char == "'" or char == '"':
            pos = _string_end(text, found.start(), limit)
            if pos < 0:
                return -1
        elif char in _CLOSER:
            closers.append(_CLOSER[char])
        elif char == "$" or char == "#":
            return -1  # outside a string literal: as in the simple pattern
        elif closers:
            if closers.pop() != char:
                return -1  # mismatched brackets
        elif char == "}":
            return pos if pos - start > 3 else -1  # ``${}`` is no segment
        else:
            return -1  # an unopened ``)`` or ``]``


def segment_spans(text: str) -> list[tuple[int, int]]:
    """Return the ``(start, end)`` of every ``${...}`` segment in ``text``, left to right.

    A segment is ``${`` + an expression + the ``}`` matching the opening brace: braces, brackets
    and parentheses nest, and string literals (single, double or triple quotes; a backslash
    escapes the next character; a newline ends a one-line literal unterminated) are skipped, so
    ``${ {'k': a}['k'] }`` and ``${"}"}`` are one segment each. Outside string literals the
    inside holds no ``$`` and no ``#``, and ``${}`` is no segment. Where that finds no segment
    (unterminated brace or string, mismatched brackets) the simple pattern :data:`SEGMENT` is
    tried at the same place; else the ``${`` is text. A scan stops after the longest accepted
    expression, so the work is linear in ``len(text)``.

    Args:
        text: the string to scan.

    Returns:
        Non-overlapping spans; empty when ``text`` holds no segment.
    """
    spans: list[tuple[int, int]] = []
    start = text.find("${")
    while start >= 0:
        plain = _PLAIN_SEGMENT.match(text, start)
        if plain is not None:
            end = plain.end()
        else:
            end = _segment_end(text, start)
            if end < 0:
                simple = SEGMENT.match(text, start)
                end = -1 if simple is None else simple.end()
        if end < 0:
            start = text.find("${", start + 2)
        else:
            spans.append((start, end))
            start = text.find("${", end)
    return spans


def find_segments(text: str) -> list[str]:
    """Return every ``${...}`` segment of ``text`` (see :func:`segment_spans`), left to right.

    Args:
        text: the string to scan.

    Returns:
        The segments' text, ``${`` and ``}`` included.
    """
    return [text[start:end] for start, end in segment_spans(text)]


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
    for segment in set(find_segments(text)):
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
        if "${" not in text:
            return text
        spans = segment_spans(text)
        if not spans:
            return text
        if len(spans) == 1 and spans[0] == (0, len(text)):
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
        parts: list[str] = []
        last = 0
        for start, end in spans:
            segment = text[start:end]
            if segment not in done:
                done[segment] = self.segment(segment)
            parts.append(text[last:start])
            parts.append(done[segment])
            last = end
        parts.append(text[last:])
        return "".join(parts)

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
    """Render every ``${...}`` segment in ``value``.

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

"""The default gateway condition language, "boolrule", parsed by hand: no ``eval``.

Grammar (keywords case-insensitive)::

    expression := condition (("and" | "or") condition)*     evaluated right-nested, no precedence
    condition  := operand OP operand | "(" expression ")" | true | false
    operand    := value | "(" value ("," value)* ")"
    value      := number | 'string' | "string" | true | false | identifier
    OP         := == != < > <= >= in notin issuperset notissuperset

An identifier (``abc``, ``a.b``, ``${x}``) stands for its own text: conditions are evaluated after
rendering, so an identifier left in the text is an unrendered or undefined variable.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rattan.errors import ExpressionError


class BoolRuleParseError(ExpressionError):
    """The condition text does not follow the boolrule grammar."""


class BoolRuleEvalError(ExpressionError):
    """The condition parsed but comparing its operands failed (e.g. ``"a" > 1``)."""


_IDENT = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_WORD = rf"\$\{{{_IDENT}\}}|{_IDENT}"
_TOKEN = re.compile(
    rf"""\s*(?:
    (?P<float>[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+)
    |(?P<int>[+-]?\d+)
    |"(?P<dq>[^"\r\n]*)"
    |'(?P<sq>[^'\r\n]*)'
    |(?P<word>{_WORD})
    |(?P<op>==|!=|<=|>=|<|>)
    |(?P<punct>[(),])
    )""",
    re.VERBOSE,
)
# pyparsing's QuotedString (used by bamboo) turns these two-character escapes into the characters;
# the gateway escapes raw newlines in values to "\\n" before rendering for that reason
_WS_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\f": "\f", "\\r": "\r"}
_WORD_OPS = frozenset({"in", "notin", "issuperset", "notissuperset"})
_MAX_NESTING = 100


@dataclass(frozen=True)
class _Tok:
    kind: str  # value | word | op | punct
    text: str
    value: Any = None


def _unescape(text: str) -> str:
    for escape, char in _WS_ESCAPES.items():
        text = text.replace(escape, char)
    return text


def _tokenize(expr: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    end = len(expr.rstrip())
    while pos < end:
        match = _TOKEN.match(expr, pos)
        if match is None or match.end() == pos:
            raise BoolRuleParseError(expr, f"unexpected text at position {pos}: {expr[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        text = match.group(kind)
        if kind == "float":
            tokens.append(_Tok("value", text, float(text)))
        elif kind == "int":
            try:
                tokens.append(_Tok("value", text, int(text)))
            except ValueError:  # more digits than Python converts: a clear refusal, not a crash
                raise BoolRuleParseError(
                    expr, f"number at position {match.start()} has too many digits"
                ) from None
        elif kind in ("dq", "sq"):
            tokens.append(_Tok("value", text, _unescape(text)))
        else:
            tokens.append(_Tok(kind, text))
    return tokens


class _Parser:
    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.pos = 0

    def error(self, message: str) -> BoolRuleParseError:
        return BoolRuleParseError(self.expr, message)

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error("unexpected end of condition")
        self.pos += 1
        return tok

    def parse(self) -> list[Any]:
        seq = self.expression(0)
        if self.peek() is not None:
            raise self.error(f"unexpected {self.take().text!r}")
        return seq

    def expression(self, depth: int) -> list[Any]:
        # flat [cond, "and"|"or", cond, ...]: a loop, so long chains need no recursion
        seq: list[Any] = [self.condition(depth)]
        while (tok := self.peek()) is not None and tok.kind == "word" and tok.text.lower() in ("and", "or"):
            self.pos += 1
            seq += [tok.text.lower(), self.condition(depth)]
        return seq

    def condition(self, depth: int) -> Any:
        if depth > _MAX_NESTING:
            raise self.error(f"parentheses nested deeper than {_MAX_NESTING}")
        start = self.pos
        try:
            left = self.operand()
            op = self.operator()
            return ("cmp", left, op, self.operand())
        except BoolRuleParseError:
            self.pos = start
        tok = self.take()
        if tok.kind == "punct" and tok.text == "(":
            inner = self.expression(depth + 1)
            if self.take().text != ")":
                raise self.error("expected ')'")
            return inner
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return ("bool", tok.text.lower() == "true")
        raise self.error(f"expected a comparison at {tok.text!r}")

    def operator(self) -> str:
        tok = self.take()
        if tok.kind == "op" or (tok.kind == "word" and tok.text.lower() in _WORD_OPS):
            return tok.text.lower()
        raise self.error(f"expected an operator, got {tok.text!r}")

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "value":
            return tok.value
        if tok.kind == "word":
            lowered = tok.text.lower()
            return lowered == "true" if lowered in ("true", "false") else tok.text
        raise self.error(f"expected a value, got {tok.text!r}")

    def operand(self) -> Any:
        tok = self.peek()
        if tok is None or tok.text != "(" or tok.kind != "punct":
            return self.value()
        self.pos += 1
        items = [self.value()]
        while (tok := self.take()).text == ",":
            items.append(self.value())
        if tok.text != ")":
            raise self.error("expected ')' after a list")
        return items


def _coerce(left: Any, right: Any, op: str) -> tuple[Any, Any]:
    # bamboo's double_equals_trans, rule for rule (including its single try block).
    if op in ("in", "notin"):
        if isinstance(right, list) and right:
            if isinstance(left, int):
                right = right + [int(i) for i in right if _converts(int, i)]
            elif isinstance(left, str):
                right = right + [str(i) for i in right]
    elif op in ("issuperset", "notissuperset"):
        left = [left] if isinstance(left, str) else left
        right = [right] if isinstance(right, str) else right
    else:
        try:
            if isinstance(left, int):
                right = int(right)
            elif isinstance(right, int):
                left = int(left)
            if isinstance(left, str):
                right = str(right)
            elif isinstance(right, str):
                left = str(left)
        except (ValueError, TypeError, OverflowError):  # inf/nan do not convert to int
            pass
    return left, right


def _converts(fn: Callable[[Any], Any], value: Any) -> bool:
    try:
        fn(value)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    ">": lambda a, b: bool(a > b),
    "<=": lambda a, b: bool(a <= b),
    ">=": lambda a, b: bool(a >= b),
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
    "issuperset": lambda a, b: set(a).issuperset(set(b)),
    "notissuperset": lambda a, b: not set(a).issuperset(set(b)),
}


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> list[Any]:
    # gateways evaluate the same few condition texts over and over; the parsed form is never mutated
    return _Parser(text).parse()


def _evaluate(seq: list[Any], expr: str) -> bool:
    passed = False
    for item in seq:
        # bamboo's loop: "or" after a true condition and "and" after a false one end it, which
        # makes "A and B or C" mean "A and (B or C)"
        if item == "or":
            if passed:
                return True
            continue
        if item == "and":
            if not passed:
                return False
            continue
        if isinstance(item, list):
            passed = _evaluate(item, expr)
        elif item[0] == "bool":
            passed = item[1]
        else:
            _, left, op, right = item
            left, right = _coerce(left, right, op)
            try:
                passed = _OPS[op](left, right)
            except Exception as exc:
                raise BoolRuleEvalError(expr, f"{left!r} {op} {right!r}: {type(exc).__name__}: {exc}")
    return passed


def evaluate_condition(
    expr: str,
    context: Mapping[str, Any] | None = None,
    extra_info: Mapping[str, Any] | None = None,
) -> bool:
    """Evaluate a rendered gateway condition (the default ``PIPELINE_EXCLUSIVE_GATEWAY_EXPR_FUNC``).

    Args:
        expr: the condition text after template rendering. A bool (what a whole-value ``${flag}``
            renders to) is returned as is; other non-strings are converted with ``str()``.
        context: the hydrated context; unused, as in bamboo (values are already substituted).
        extra_info: the gateway's ``extra_info``; unused.

    Returns:
        Whether the condition holds. ``*`` always holds.

    Raises:
        BoolRuleParseError: the text does not parse.
        BoolRuleEvalError: two operands could not be compared.
    """
    if isinstance(expr, bool):
        return expr
    text = expr if isinstance(expr, str) else str(expr)
    if text.strip() == "*":
        return True
    return _evaluate(_parse(text), text)

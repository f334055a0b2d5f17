"""Bounds for the two string formatting mini-languages an expression can reach.

``str.format`` is a classic sandbox escape: ``"{0.__class__.__mro__}".format(x)`` walks attributes from
inside the format string, which no AST check can see because the format string may come from a context
value. ``%`` formatting cannot walk attributes, but ``"%*d" % (10**9, 1)`` or a width read from a value
builds a gigabyte string. Both are checked here before the real formatting runs.
"""

from __future__ import annotations

import re
import string
from typing import Any

from rattan.expr.limits import Limits, Refusal, check_size

_PERCENT_FLAGS = frozenset("#0- +")
_DIGITS = re.compile(r"\d+")
# digit runs longer than this are refused before int() so that int() never sees a huge literal
_MAX_DIGITS = 7


def _read_number(fmt: str, pos: int) -> tuple[int, int]:
    start = pos
    while pos < len(fmt) and fmt[pos].isdigit():
        pos += 1
    digits = fmt[start:pos]
    if len(digits) > _MAX_DIGITS:
        raise Refusal("format width or precision too large")
    return (int(digits) if digits else 0), pos


def _skip_mapping_key(fmt: str, pos: int) -> int:
    # CPython balances nested parentheses inside %(key)s; mirror it so that a width hidden behind
    # "%(a(b))999s" is still seen.
    depth = 1
    pos += 1
    while pos < len(fmt) and depth:
        if fmt[pos] == "(":
            depth += 1
        elif fmt[pos] == ")":
            depth -= 1
        pos += 1
    return pos


def check_percent_format(fmt: str, args: Any, limits: Limits) -> None:
    """Refuse a ``fmt % args`` whose widths, precisions or arguments are too big.

    Args:
        fmt: the format string (left operand of ``%``).
        args: the right operand.
        limits: bounds to apply.

    Raises:
        Refusal: a ``*`` width, or widths/precisions or arguments over the size bound.
    """
    total = 0
    pos = fmt.find("%")
    while pos != -1:
        pos += 1
        if pos < len(fmt) and fmt[pos] == "(":
            pos = _skip_mapping_key(fmt, pos)
        while pos < len(fmt) and fmt[pos] in _PERCENT_FLAGS:
            pos += 1
        if pos < len(fmt) and fmt[pos] == "*":
            raise Refusal("'*' width in % formatting is not allowed")
        width, pos = _read_number(fmt, pos)
        precision = 0
        if pos < len(fmt) and fmt[pos] == ".":
            if pos + 1 < len(fmt) and fmt[pos + 1] == "*":
                raise Refusal("'*' precision in % formatting is not allowed")
            precision, pos = _read_number(fmt, pos + 1)
        total += width + precision
        # the conversion character (possibly '%') is consumed here
        pos = fmt.find("%", pos + 1)
    if total > limits.max_format_width:
        raise Refusal("format widths too large")
    check_size(args, limits, "format arguments")


def check_brace_format(fmt: str, args: Any, limits: Limits) -> None:
    """Refuse a ``fmt.format(...)`` that walks attributes or indexes, nests fields, or is too wide.

    Only plain fields are allowed: ``{}``, ``{0}``, ``{name}``, with a conversion and a format spec
    that has no nested field.

    Args:
        fmt: the format string.
        args: all positional and keyword argument values, for the size check.
        limits: bounds to apply.

    Raises:
        Refusal: on an attribute/index walk, a nested field, a malformed format or oversized output.
    """
    total = 0
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise Refusal(f"bad format string: {exc}")
    for _literal, field_name, spec, _conversion in fields:
        if field_name is None:
            continue
        if "." in field_name or "[" in field_name:
            raise Refusal("attribute or index access inside a format field is not allowed")
        if spec and ("{" in spec or "}" in spec):
            raise Refusal("nested format fields are not allowed")
        for digits in _DIGITS.findall(spec or ""):
            if len(digits) > _MAX_DIGITS:
                raise Refusal("format width or precision too large")
            total += int(digits)
    if total > limits.max_format_width:
        raise Refusal("format widths too large")
    check_size(args, limits, "format arguments")

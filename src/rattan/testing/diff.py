"""Readable differences between an expected and an actual value, for the test kits' failures.

A failing test should say *what* differs without the reader diffing two long reprs by eye: for
dicts the message lists the missing keys, the unexpected keys and each key whose value differs;
for other values it shows both, and a line diff when they are long.
"""

from __future__ import annotations

import difflib
import pprint
from collections.abc import Mapping
from typing import Any

__all__ = ["describe_difference"]

_SHORT = 80  # values whose repr fits on a line are shown side by side, longer ones as a line diff


def describe_difference(expected: Any, actual: Any, indent: str = "  ") -> str:
    """Return the lines (joined, each starting with ``indent``) that say how ``actual`` differs
    from ``expected``; ``""`` when they are equal."""
    if expected == actual:
        return ""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return "\n".join(indent + line for line in _dict_lines(expected, actual))
    return "\n".join(indent + line for line in _value_lines(expected, actual))


def _dict_lines(expected: Mapping[Any, Any], actual: Mapping[Any, Any]) -> list[str]:
    lines: list[str] = []
    missing = [key for key in expected if key not in actual]
    extra = [key for key in actual if key not in expected]
    if missing:
        lines.append("missing keys: " + ", ".join(repr(key) for key in missing))
    if extra:
        lines.append("unexpected keys: " + ", ".join(f"{key!r} (= {_short(actual[key])})" for key in extra))
    for key in expected:
        if key in actual and expected[key] != actual[key]:
            lines.append(f"key {key!r}:")
            lines.extend("  " + line for line in _value_lines(expected[key], actual[key]))
    return lines


def _value_lines(expected: Any, actual: Any) -> list[str]:
    left, right = pprint.pformat(expected, width=_SHORT), pprint.pformat(actual, width=_SHORT)
    if "\n" not in left and "\n" not in right:
        lines = [f"expected {left}", f"actual   {right}"]
        if left == right:  # equal text, different values: the types differ (1 vs 1.0, a tuple)
            lines.append(f"(types: expected {type(expected).__name__}, actual {type(actual).__name__})")
        return lines
    diff = difflib.ndiff(left.splitlines(), right.splitlines())
    return ["- expected  + actual", *(line for line in diff if not line.startswith("? "))]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."

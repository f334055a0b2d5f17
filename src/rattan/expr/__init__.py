"""Expressions: the ``${...}`` template language, its sandboxed evaluator, context resolution, and
the default gateway condition language.

Entry points:

- ``render(text, context)``: strict rendering for users and tests;
- ``render_value`` / ``references``: the engine's per-node rendering (non-strict by default);
- ``closure`` / ``hydrate``: SPLICE and COMPUTE resolution over a pipeline context;
- ``evaluate``: one sandboxed expression;
- ``evaluate_condition``: the default ``PIPELINE_EXCLUSIVE_GATEWAY_EXPR_FUNC`` (boolrule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rattan.errors import ExpressionError
from rattan.expr.boolrule import BoolRuleEvalError, BoolRuleParseError, evaluate_condition
from rattan.expr.limits import Limits
from rattan.expr.resolve import ContextEntry, ReferenceCycleError, closure, hydrate, plain_name
from rattan.expr.sandbox import evaluate
from rattan.expr.template import SEGMENT, find_segments, references, render_value

__all__ = [
    "BoolRuleEvalError",
    "BoolRuleParseError",
    "ContextEntry",
    "ExpressionError",
    "Limits",
    "ReferenceCycleError",
    "SEGMENT",
    "closure",
    "evaluate",
    "evaluate_condition",
    "find_segments",
    "hydrate",
    "plain_name",
    "references",
    "render",
    "render_value",
]


def render(text: Any, context: Mapping[str, Any]) -> Any:
    """Render ``text`` against ``context``, strictly.

    ``render("${a + 1}", {"a": 1}) == "2"``; ``render("${a}", {"a": 1}) == 1`` (whole-value rule);
    values without templates are returned as is; lists, tuples and dicts are rendered recursively.

    Args:
        text: a string or a value nesting strings.
        context: plain names (no ``${}``) to resolved values.

    Returns:
        The rendered value.

    Raises:
        ExpressionError: a segment was refused or failed; ``expression`` is the segment, ``reason`` why.
    """
    return render_value(text, context, strict=True)

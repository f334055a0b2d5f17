"""Static checks of a parsed expression: the allow-list of syntax, names and method names.

Everything is checked before anything is evaluated, so a refused expression runs no code at all.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from rattan.expr.calls import METHOD_NAMES
from rattan.expr.limits import Limits, Refusal

BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_UNARYOPS = (ast.Not, ast.UAdd, ast.USub)
# Node types checked by _validate; everything else (Lambda, NamedExpr, JoinedStr, Starred, dict
# unpacking, Await, Yield, comprehensions other than list/generator, ...) is refused. Dict and set
# displays are allowed (bamboo's Mako templates evaluate them: ``${ {'k': v}[key] }``).
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.UnaryOp,
    ast.BinOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.Call,
    ast.keyword,
    ast.ListComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.Load,
    ast.Store,
    ast.And,
    ast.Or,
    *_UNARYOPS,
    *BINOPS,
    *CMPOPS,
)
# bytes and complex literals are left out; bool is an int
_CONSTANT_TYPES = (str, int, float, type(None))


def _check_name(name: str) -> None:
    if name.startswith("_"):
        raise Refusal(f"name {name!r} starts with '_'")


def _check_call(node: ast.Call, push: Callable[[ast.AST], None]) -> None:
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr.startswith("_"):
            raise Refusal(f"attribute {func.attr!r} starts with '_'")
        if func.attr not in METHOD_NAMES:
            raise Refusal(f"method {func.attr!r} is not allowed")
        push(func.value)
    elif isinstance(func, ast.Name):
        _check_name(func.id)
    else:
        raise Refusal("only named functions and allow-listed methods can be called")
    for kw in node.keywords:
        if kw.arg is None:
            raise Refusal("'**' arguments are not allowed")
    for child in (*node.args, *node.keywords):
        push(child)


def _check_target(target: ast.expr) -> None:
    if isinstance(target, ast.Name):
        _check_name(target.id)
    elif isinstance(target, ast.Tuple | ast.List):
        for elt in target.elts:
            _check_target(elt)
    else:
        raise Refusal("comprehension targets must be names")


def _check_node(node: ast.AST, push: Callable[[ast.AST], None]) -> None:
    if isinstance(node, ast.Call):
        _check_call(node, push)
        return
    if isinstance(node, ast.Attribute):
        raise Refusal("attribute access is only allowed as an allow-listed method call")
    if not isinstance(node, _ALLOWED_NODES):
        raise Refusal(f"{type(node).__name__} is not allowed")
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONSTANT_TYPES):
        raise Refusal(f"{type(node.value).__name__} literals are not allowed")
    if isinstance(node, ast.Name):
        _check_name(node.id)
    if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
        raise Refusal("dict unpacking (**) is not allowed")
    if isinstance(node, ast.comprehension):
        if node.is_async:
            raise Refusal("async comprehensions are not allowed")
        _check_target(node.target)
        for cond in (node.iter, *node.ifs):
            push(cond)
        return
    for child in ast.iter_child_nodes(node):
        push(child)


def validate(tree: ast.Expression, limits: Limits) -> None:
    """Refuse ``tree`` unless every node is allowed and it is at most ``limits.max_depth`` deep.

    Raises:
        Refusal: naming the first disallowed construct found.
    """
    # Iterative walk: a deep tree must produce a refusal, not a RecursionError.
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_depth:
            raise Refusal(f"expression nested deeper than {limits.max_depth}")

        def push(child: ast.AST, below: int = depth + 1) -> None:
            stack.append((child, below))

        _check_node(node, push)

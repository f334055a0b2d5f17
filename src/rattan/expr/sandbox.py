"""An allow-list evaluator for Python expressions, over ``ast``.

The expression is parsed, checked statically (node types, names, attributes, depth) and then walked
by a small interpreter. Nothing from the expression ever reaches ``eval``, ``exec`` or a code object:
the interpreter only performs the operations it knows, on the values it was given, and calls only
the builtins and methods of ``rattan.expr.calls`` plus the host's ``extra_functions``.
"""

from __future__ import annotations

import ast
import functools
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rattan.errors import ExpressionError
from rattan.expr.calls import BUILTINS, bounded, data, find_method
from rattan.expr.costs import check_builtin, check_method, check_search
from rattan.expr.formats import check_percent_format
from rattan.expr.limits import DEFAULT_LIMITS, Limits, Refusal, approx_size, check_size
from rattan.expr.suggest import did_you_mean
from rattan.expr.validate import BINOPS, CMPOPS, validate


@functools.lru_cache(maxsize=2048)
def _compile(expr: str, limits: Limits) -> ast.Expression:
    # Parsing is the costly part and the same segments are rendered for every node: cache the
    # checked tree. Trees are never mutated after this point.
    if len(expr.encode("utf-8", "surrogatepass")) > limits.max_source:
        raise Refusal(f"expression longer than {limits.max_source} bytes")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise Refusal(f"syntax error: {exc.msg}")
    except (RecursionError, MemoryError):
        raise Refusal("expression too deeply nested")
    except (ValueError, Warning) as exc:
        raise Refusal(f"cannot parse: {exc}")
    validate(tree, limits)
    return tree


_Comprehension = ast.ListComp | ast.GeneratorExp
_CONTAINS = (ast.In, ast.NotIn)


class _Evaluator:
    def __init__(
        self,
        names: Mapping[str, Any],
        extra: Mapping[str, Any],
        limits: Limits,
        suggest_from: Iterable[str] = (),
    ) -> None:
        self.names = names
        self.extra = extra
        self.limits = limits
        self.suggest_from = suggest_from
        self.scopes: list[dict[str, Any]] = []
        self.steps = 0
        self.deadline = time.monotonic() + limits.max_seconds
        self.dispatch: dict[type[ast.AST], Callable[[Any], Any]] = {
            ast.Constant: lambda n: n.value,
            ast.Name: self._name,
            ast.List: lambda n: [self.eval(e) for e in n.elts],
            ast.Tuple: lambda n: tuple(self.eval(e) for e in n.elts),
            ast.Dict: self._dict,
            ast.Set: self._set,
            ast.UnaryOp: self._unary,
            ast.BinOp: self._binop,
            ast.BoolOp: self._boolop,
            ast.Compare: self._compare,
            ast.IfExp: lambda n: self.eval(n.body) if self._truth(n.test) else self.eval(n.orelse),
            ast.Subscript: self._subscript,
            ast.Slice: self._slice,
            ast.Call: self._call,
            ast.ListComp: self._comprehension,
            ast.GeneratorExp: self._comprehension,
        }

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise Refusal(f"more than {self.limits.max_steps} evaluation steps")
        if not self.steps & 63 and time.monotonic() > self.deadline:
            raise Refusal(f"evaluation took longer than {self.limits.max_seconds} s")

    def eval(self, node: ast.AST) -> Any:
        self.tick()
        return self.dispatch[type(node)](node)

    def _dict(self, node: ast.Dict) -> dict[Any, Any]:
        # keys are never None here: validate refuses ** unpacking
        items = [
            (self.eval(k), self.eval(v)) for k, v in zip(node.keys, node.values, strict=True) if k is not None
        ]
        try:
            return dict(items)
        except TypeError as exc:  # an unhashable key, e.g. a list
            raise Refusal(f"dict key: {exc}") from None

    def _set(self, node: ast.Set) -> set[Any]:
        elements = [self.eval(e) for e in node.elts]
        try:
            return set(elements)
        except TypeError as exc:
            raise Refusal(f"set element: {exc}") from None

    def _name(self, node: ast.Name) -> Any:
        for scope in reversed(self.scopes):
            if node.id in scope:
                return scope[node.id]
        if node.id in self.names:
            return self.names[node.id]
        if node.id in self.extra:
            return self.extra[node.id]
        raise Refusal(f"name {node.id!r} is not defined{self._suggest(node.id)}")

    def _suggest(self, name: str) -> str:
        # a hint for typos, from every name the expression could have read: the engine loads only
        # the context keys a node references, so it passes the whole context as ``suggest_from``
        others = (
            key[2:-1] if isinstance(key, str) and key.startswith("${") and key.endswith("}") else key
            for key in self.suggest_from
        )
        scoped = (n for scope in self.scopes for n in scope)
        return did_you_mean(name, itertools.chain(scoped, self.names, self.extra, others))

    def _truth(self, node: ast.expr) -> bool:
        return bool(data(self.eval(node), "a truth test"))

    def _unary(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        if isinstance(node.op, ast.Not):
            return not data(value, "a truth test")
        return -value if isinstance(node.op, ast.USub) else +value

    def _binop(self, node: ast.BinOp) -> Any:
        left = self.eval(node.left)
        right = self.eval(node.right)
        op = type(node.op)
        if op is ast.Pow:
            self._check_pow(left, right)
        elif op is ast.Mult:
            self._check_mult(left, right)
        elif op is ast.Mod and isinstance(left, str):
            check_percent_format(left, right, self.limits)
        elif op is ast.Add:
            self._check_add(left, right)
        result = BINOPS[op](left, right)
        self._check_result(result)
        return result

    def _check_pow(self, base: Any, exp: Any) -> None:
        # refuse before computing: 10**10**10 would otherwise run for hours
        big = isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1
        if big and base.bit_length() * exp > self.limits.max_int_bits:
            raise Refusal(f"power result over {self.limits.max_int_bits} bits")

    def _check_mult(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > self.limits.max_int_bits:
                raise Refusal(f"product over {self.limits.max_int_bits} bits")
            return
        seq, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(count, int) and count > 0 and isinstance(seq, str | list | tuple | bytes):
            limit = self.limits.max_size
            if approx_size(seq, limit) * count > limit:
                raise Refusal(f"repeated sequence larger than {limit} bytes")

    def _check_add(self, left: Any, right: Any) -> None:
        # len() is O(1): refuse before copying two huge host values into a third
        sized = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
        if sized and len(left) + len(right) > self.limits.max_size:
            raise Refusal(f"concatenation larger than {self.limits.max_size} bytes")

    def _check_result(self, result: Any) -> None:
        if isinstance(result, int) and result.bit_length() > self.limits.max_int_bits:
            raise Refusal(f"integer result over {self.limits.max_int_bits} bits")
        check_size(result, self.limits)

    def _boolop(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = None
        for operand in node.values:
            value = self.eval(operand)
            if bool(data(value, "a truth test")) != is_and:
                return value
        return value

    def _compare(self, node: ast.Compare) -> Any:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator)
            # a substring test is one C call that can be quadratic: price it before running it
            if type(op) in _CONTAINS and isinstance(left, str) and isinstance(right, str):
                check_search("'not in'" if type(op) is ast.NotIn else "'in'", right, left)
            if not CMPOPS[type(op)](left, right):
                return False
            left = right
        return True

    def _subscript(self, node: ast.Subscript) -> Any:
        value = data(self.eval(node.value), "a subscript")
        return value[self.eval(node.slice)]

    def _slice(self, node: ast.Slice) -> Any:
        parts = (node.lower, node.upper, node.step)
        return slice(*(None if p is None else self.eval(p) for p in parts))

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        receiver = self.eval(func.value) if isinstance(func, ast.Attribute) else None
        args = [self.eval(a) for a in node.args]
        kwargs = {str(k.arg): self.eval(k.value) for k in node.keywords}
        if isinstance(func, ast.Attribute):
            method = find_method(receiver, func.attr)
            if method is None:
                raise Refusal(f"method {func.attr!r} is not allowed on {type(receiver).__name__}")
            check_method(self.limits, receiver, func.attr, args, kwargs)
            result = method(self.limits, receiver, args, kwargs)
        else:
            name = func.id if isinstance(func, ast.Name) else ""
            # Only host functions and the allow-list are callable; a callable found in the context
            # (names) or bound by a comprehension is never called.
            if name in self.extra:
                result = self.extra[name](*args, **kwargs)
            elif name in BUILTINS:
                check_builtin(self.limits, name, args, kwargs)
                result = BUILTINS[name](self.limits, args, kwargs)
            else:
                raise Refusal(f"call of {name!r} is not allowed")
        self._check_result(result)
        return result

    def _comprehension(self, node: _Comprehension) -> list[Any]:
        # Generator expressions are evaluated eagerly into a list: no generator (gi_frame, send,
        # throw) ever exists, and every element is counted against the size bound as it is made.
        out: list[Any] = []
        self._generate(node, 0, out, [0])
        return out

    def _generate(self, node: _Comprehension, index: int, out: list[Any], size: list[int]) -> None:
        gen = node.generators[index]
        items = bounded(self.eval(gen.iter), "comprehension")
        scope: dict[str, Any] = {}
        self.scopes.append(scope)
        try:
            for item in items:
                self.tick()
                self._bind(gen.target, item, scope)
                if not all(self._truth(cond) for cond in gen.ifs):
                    continue
                if index + 1 < len(node.generators):
                    self._generate(node, index + 1, out, size)
                    continue
                value = self.eval(node.elt)
                size[0] += approx_size(value, self.limits.max_size) + 1
                if size[0] > self.limits.max_size:
                    raise Refusal(f"comprehension result larger than {self.limits.max_size} bytes")
                out.append(value)
        finally:
            self.scopes.pop()

    def _bind(self, target: ast.expr, value: Any, scope: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            scope[target.id] = value
            return
        assert isinstance(target, ast.Tuple | ast.List)  # guaranteed by _check_target
        items = list(bounded(value, "unpacking"))
        if len(items) != len(target.elts):
            raise Refusal(f"cannot unpack {len(items)} values into {len(target.elts)} names")
        for sub, item in zip(target.elts, items, strict=True):
            self._bind(sub, item, scope)


def evaluate(
    expr: str,
    names: Mapping[str, Any],
    *,
    extra_functions: Mapping[str, Any] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    suggest_from: Iterable[str] = (),
) -> Any:
    """Evaluate one expression in the sandbox.

    Args:
        expr: the expression text (the inside of a ``${...}`` segment).
        names: values readable by name (plain context names to resolved values). Callables among
            them are never called.
        extra_functions: host-provided names (``Settings.expression_names``): readable like ``names``
            and, when callable, callable by name.
        limits: size, step and time bounds.
        suggest_from: more names (plain, or context keys in ``${name}`` form) for the "did you
            mean" hint of an undefined name; read only when a name is undefined.

    Returns:
        The value of the expression.

    Raises:
        ExpressionError: the expression was refused, or failed while evaluating. ``reason`` says why.
    """
    if not isinstance(expr, str):
        raise ExpressionError(repr(expr), "expression is not a string")
    # an over-long expression is named by its start only, so the error stays readable
    shown = expr if len(expr) <= limits.max_source else expr[:80] + "..."
    try:
        tree = _compile(expr, limits)
        evaluator = _Evaluator(names, extra_functions or {}, limits, suggest_from)
        result = evaluator.eval(tree.body)
        check_size(result, limits)
        return result
    except Refusal as exc:
        raise ExpressionError(shown, exc.reason) from None
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError(shown, "expression too deeply nested") from None
    except Exception as exc:
        raise ExpressionError(shown, _describe(exc)) from exc


def _describe(exc: Exception) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # a host exception whose __str__ fails must not hide the first error
        text = type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."

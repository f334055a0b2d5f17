"""Known sandbox escapes and resource bombs: each is refused quickly and executes nothing."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rattan.errors import ExpressionError
from rattan.expr import evaluate, render_value


class Spy:
    """A context value that records every call: if an escape runs code, it shows here."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append((args, kwargs))
        return "called"


FORMAT_WALK = "{0.__class__.__mro__[1].__subclasses__}"

ESCAPES = [
    # attribute walks to object and its subclasses
    "().__class__.__bases__[0].__subclasses__()",
    "[].__class__.__mro__",
    "''.__class__.__mro__[1].__subclasses__()",
    "(1).__class__",
    "s.__class__.__base__",
    "l.__class__.mro()",
    "s.mro()",
    "object.__subclasses__()",
    "object()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "[x.__class__ for x in [1]]",
    "spy.__globals__",
    "spy.__call__()",
    "spy.func_globals",
    "spy.__code__.co_consts",
    "'-'.join.__self__",
    "s.upper.__self__",
    "d.get.__call__('k')",
    "l.__getitem__(0)",
    "x.__len__()",
    "(1).real",
    # generators and frames
    "(x for x in [1]).gi_frame",
    "(x for x in [1]).gi_frame.f_globals",
    "[x for x in [1]].gi_code",
    # builtins that must not exist
    "getattr(1, 'real')",
    "getattr",
    "__import__('os')",
    "__import__('os').system('id')",
    "__import__",
    "__builtins__",
    "__builtins__['eval']('1')",
    "type(1)",
    "type('X', (), d)",
    "eval('1')",
    "exec('x = 1')",
    "compile('1', 'f', 'eval')",
    "open('/etc/passwd')",
    "open(PWN, 'w').write('x')",
    "breakpoint()",
    "vars()",
    "globals()",
    "locals()",
    "dir()",
    "help()",
    "setattr(spy, 'x', 1)",
    "delattr(spy, 'calls')",
    "input()",
    "print(1)",
    "iter(l)",
    "next(iter(l))",
    "memoryview(s)",
    "bytearray(10**9)",
    # calling context values, directly or through builtins
    "spy()",
    "[spy][0]()",
    "(spy if 1 else 0)()",
    "max([1, 2], key=spy)",
    "sorted(l, key=spy)",
    "min(l, key=spy)",
    "enumerate(spy)",
    "list(spy)",
    # syntax that is refused outright
    "lambda: 1",
    "(lambda: 1)()",
    "(lambda f: f(f))(lambda f: f(f))",
    "(x := 1)",
    "[y := 1 for z in l]",
    "f'{s}'",
    "f'{s.__class__}'",
    "b'abc'",
    "1j",
    "...",
    "[*l]",
    "spy(*l)",
    "dict(**d)",
    "import os",
    "x = 1",
    "yield 1",
    "await x",
    "1 << 10**9",
    "~1",
    "1 | 2",
    "a @ b",
    "_",
    "_private",
    "[_ for _ in l]",
    # format-string walks
    '"{0.__class__}".format(1)',
    '"{0.__class__.__mro__}".format(s)',
    '"{0[0]}".format(l)',
    '"{x.__class__}".format(x=1)',
    "fmt.format(s)",
    "'{0:{1}}'.format(1, 2)",
    "'{:999999999}'.format(1)",
    "s.format_map(d)",
    "'%*d' % (10**9, 1)",
    "'%.*f' % (10**9, 1.0)",
    "'%999999999d' % 1",
    "pct % d",
    "'%s' % [s] * 1000",
    # mutating or unsafe methods
    "l.append(1)",
    "d.update(x=1)",
    "d.pop('k')",
    "s.encode()",
    "s.expandtabs(10**9)",
    "s.translate(d)",
    # resource bombs
    "range(10**12)",
    "'a' * 10**12",
    "10**10**10",
    "2**(2**64)",
    "[1] * 10**9",
    "(1,) * 10**9",
    "sum(range(10**9))",
    "str(10**100000)",
    "(10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000) * (10**4000)",
    "[[i for i in range(10**5)] for j in range(10**5)]",
    "[i * j for i in range(100000) for j in range(100000)]",
    "[s for i in range(100000)]",
    "[l * 100000 for i in range(10)]",
    "'x'.center(10**9)",
    "'x'.zfill(10**10)",
    "'ab'.replace('', 'x' * 1000000)",
    "'-'.join(['a' * 100000] * 100)",
    "str([s] * 100000)",
    "s + s",
    "sum([[1]] * 1000, [])",
    "round(1, -10**9)",
    "list(range(10**6))",
    "(" * 10000 + "1" + ")" * 10000,
    "[" * 150 + "]" * 150,
    "-" * 3000 + "1",
    "not " * 1000 + "1",
    "a" + "[0]" * 1000,
    "1" + "+1" * 2600,
    "x" * 5000,
]

NAMES_FACTORY_KEYS = ("s", "l", "d", "x", "spy", "fmt", "pct", "PWN", "a", "b")


def _names(spy: Spy, tmp_path: Path) -> dict[str, Any]:
    return {
        "s": "a" * (600 * 1024),
        "l": [3, 1, 2],
        "d": {"k": "v", "x": 1, "a(b)": 1},
        "x": "text",
        "spy": spy,
        "fmt": FORMAT_WALK,
        "pct": "%(a(b))999999999s",
        "PWN": str(tmp_path / "PWNED"),
        "a": 1,
        "b": 2,
    }


def test_the_escape_corpus_is_large_and_distinct() -> None:
    assert len(ESCAPES) >= 40
    assert len(set(ESCAPES)) == len(ESCAPES)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("payload", ESCAPES, ids=[p[:40] for p in ESCAPES])
def test_escape_payload_is_refused_quickly_and_executes_nothing(payload: str, tmp_path: Path) -> None:
    spy = Spy()
    names = _names(spy, tmp_path)
    started = time.monotonic()
    with pytest.raises(ExpressionError) as info:
        evaluate(payload, names)
    assert time.monotonic() - started < 5
    assert info.value.reason
    assert spy.calls == []
    assert not (tmp_path / "PWNED").exists()
    assert names["l"] == [3, 1, 2]
    assert names["d"] == {"k": "v", "x": 1, "a(b)": 1}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("payload", ESCAPES, ids=[p[:40] for p in ESCAPES])
def test_non_strict_rendering_leaves_escape_payload_text_unchanged(payload: str, tmp_path: Path) -> None:
    spy = Spy()
    text = "pre ${" + payload + "} post"
    failures: list[str] = []
    rendered = render_value(text, _names(spy, tmp_path), on_failure=lambda seg, err: failures.append(seg))
    assert rendered == text
    assert spy.calls == []
    assert not (tmp_path / "PWNED").exists()


# --- random inputs ----------------------------------------------------------------------------------

_HYPO_NAMES: dict[str, Any] = {"a": 3, "s": "abc", "l": [1, 2, 3], "d": {"k": 1}, "f": 1.5, "n": None}
_NAME_POOL = ["a", "s", "l", "d", "f", "n", "spy", "missing", "_x", "__class__", "int", "str", "range"]
_FUNC_POOL = [
    *("int", "str", "len", "range", "sorted", "sum", "min", "max", "list", "zip", "round"),
    *("spy", "eval", "getattr", "type", "open", "__import__", "vars"),
]
_METHOD_POOL = [
    "upper",
    "split",
    "join",
    "format",
    "get",
    "items",
    "count",
    "zfill",
    "__class__",
    "mro",
    "append",
]
_OPS = [
    ast.Add(),
    ast.Sub(),
    ast.Mult(),
    ast.Div(),
    ast.FloorDiv(),
    ast.Mod(),
    ast.Pow(),
    ast.LShift(),
    ast.BitOr(),
]
_CMPS = [ast.Eq(), ast.NotEq(), ast.Lt(), ast.GtE(), ast.In(), ast.NotIn(), ast.Is(), ast.IsNot()]

_leaves = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(lambda v: ast.Constant(v)),
    st.sampled_from([10**9, 2**64, 0, -1]).map(lambda v: ast.Constant(v)),
    st.text(alphabet="ab{}%.0[]_s*", max_size=8).map(lambda v: ast.Constant(v)),
    st.sampled_from([None, True, 1.5, b"b"]).map(lambda v: ast.Constant(v)),
    st.sampled_from(_NAME_POOL).map(lambda v: ast.Name(v, ast.Load())),
)


def _extend(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    pair = st.tuples(children, children)
    return st.one_of(
        st.tuples(children, st.sampled_from(_OPS), children).map(lambda t: ast.BinOp(t[0], t[1], t[2])),
        st.tuples(st.sampled_from([ast.USub(), ast.Not(), ast.Invert()]), children).map(
            lambda t: ast.UnaryOp(t[0], t[1])
        ),
        st.tuples(children, st.sampled_from(_CMPS), children).map(
            lambda t: ast.Compare(t[0], [t[1]], [t[2]])
        ),
        pair.map(lambda t: ast.BoolOp(ast.And(), [t[0], t[1]])),
        st.tuples(children, children, children).map(lambda t: ast.IfExp(t[0], t[1], t[2])),
        pair.map(lambda t: ast.Subscript(t[0], t[1], ast.Load())),
        st.lists(children, max_size=3).map(lambda v: ast.List(v, ast.Load())),
        st.lists(children, max_size=3).map(lambda v: ast.Tuple(v, ast.Load())),
        st.tuples(st.sampled_from(_FUNC_POOL), st.lists(children, max_size=2)).map(
            lambda t: ast.Call(ast.Name(t[0], ast.Load()), t[1], [])
        ),
        st.tuples(children, st.sampled_from(_METHOD_POOL), st.lists(children, max_size=2)).map(
            lambda t: ast.Call(ast.Attribute(t[0], t[1], ast.Load()), t[2], [])
        ),
        st.tuples(children, st.sampled_from(_METHOD_POOL)).map(
            lambda t: ast.Attribute(t[0], t[1], ast.Load())
        ),
        pair.map(
            lambda t: ast.ListComp(
                t[0], [ast.comprehension(ast.Name("a", ast.Store()), t[1], [], is_async=0)]
            )
        ),
        children.map(lambda c: ast.Lambda(ast.arguments([], [], None, [], [], None, []), c)),
        children.map(lambda c: ast.NamedExpr(ast.Name("z", ast.Store()), c)),
    )


_trees = st.recursive(_leaves, _extend, max_leaves=12)


def _check_outcome(expr: str, spy: Spy) -> None:
    try:
        evaluate(expr, {**_HYPO_NAMES, "spy": spy})
    except ExpressionError:
        pass
    assert spy.calls == []


@pytest.mark.timeout(120)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_random_expression_trees_either_evaluate_or_raise_expression_error(tree: ast.expr) -> None:
    expr = ast.unparse(ast.fix_missing_locations(ast.Expression(tree)))
    started = time.monotonic()
    _check_outcome(expr, Spy())
    assert time.monotonic() - started < 5


@pytest.mark.timeout(120)
@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
def test_random_ascii_text_either_evaluates_or_raises_expression_error(text: str) -> None:
    started = time.monotonic()
    _check_outcome(text, Spy())
    assert time.monotonic() - started < 5

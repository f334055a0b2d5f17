"""The sandboxed evaluator: what it computes, and how it fails."""

from __future__ import annotations

from typing import Any

import pytest

from rattan.errors import ExpressionError
from rattan.expr import Limits, evaluate

KEY_NAMES: dict[str, Any] = {
    "KEY": " Ab\ncd ",
    "K1": "x",
    "K2": 2,
    "NUM": "41",
    "l": "a,b,c",
    "a_i": 1,
    "a": "yes",
    "b": False,
    "c": "no",
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"prefix" + KEY', "prefix Ab\ncd "),
        ('"prefix%s" % KEY', "prefix Ab\ncd "),
        ('"%s%s" % (K1, K2)', "x2"),
        ("KEY.upper()", " AB\nCD "),
        ('KEY.replace("\\n", ",")', " Ab,cd "),
        ("KEY[0:2]", " A"),
        ("KEY.strip()", "Ab\ncd"),
        ("int(NUM) + 1", 42),
        ("int(NUM)/10", 4.1),
        ('KEY.split("\\n")', [" Ab", "cd "]),
        ("list(K1 + 'y')", ["x", "y"]),
        ('[item.strip() for item in KEY.split("\\n")]', ["Ab", "cd"]),
        ('l.split(",")[a_i]', "b"),
        ("a if b else c", "no"),
        ("a if not b else c", "yes"),
    ],
)
def test_documented_user_idioms_evaluate_like_python(expr: str, expected: Any) -> None:
    assert evaluate(expr, KEY_NAMES) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 + 2 * 3 - 4 // 3 % 5", 6),
        ("2 ** 10", 1024),
        ("-3 ** 2", -9),
        ("7 / 2", 3.5),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("(1, 2) * 2", (1, 2, 1, 2)),
        ("'ab' * 3", "ababab"),
        ("1 < 2 <= 2 != 3", True),
        ("1 < 2 > 3", False),
        ("'a' in 'abc' and 'z' not in 'abc'", True),
        ("None is None and 1 is not None", True),
        ("0 or '' or 'x'", "x"),
        ("1 and 0", 0),
        ("not ''", True),
        ("[1, 2, 3][::-1]", [3, 2, 1]),
        ("'abcdef'[1:5:2]", "bd"),
        ("d['k']", "v"),
        ("d.get('missing', 3)", 3),
        ("sorted(d.keys())", ["k"]),
        ("d.items()", [("k", "v")]),
        ("[x * 2 for x in range(5) if x % 2]", [2, 6]),
        ("[(i, j) for i in range(2) for j in range(i)]", [(1, 0)]),
        ("[a + b for a, b in [(1, 2), (3, 4)]]", [3, 7]),
        ("sum(x for x in range(10))", 45),
        ("any(x > 3 for x in [1, 5])", True),
        ("all([])", True),
        ("min(3, 1, 2)", 1),
        ("max([3, 1, 2])", 3),
        ("abs(-2)", 2),
        ("round(2.567, 2)", 2.57),
        ("len('abc')", 3),
        ("str(1) + str(None)", "1None"),
        ("float('1.5')", 1.5),
        ("bool(0)", False),
        ("tuple([1])", (1,)),
        ("sorted(set([2, 1, 2]))", [1, 2]),
        ("dict([('a', 1)], b=2)", {"a": 1, "b": 2}),
        ("sorted([3, 1], reverse=True)", [3, 1]),
        ("list(enumerate('ab', start=1))", [(1, "a"), (2, "b")]),
        ("list(zip('ab', [1, 2]))", [("a", 1), ("b", 2)]),
        ("list(reversed([1, 2]))", [2, 1]),
        ("int('ff', 16)", 255),
        ("'7'.zfill(3)", "007"),
        ("'a b'.title()", "A B"),
        ("','.join(['a', 'b'])", "a,b"),
        ("'{} {x}'.format(1, x=2)", "1 2"),
        ("'{0:>4}|{1!r}'.format(1, 'a')", "   1|'a'"),
        ("'%(k)s!' % d", "v!"),
        ("'x'.startswith('x') and 'x'.endswith('x')", True),
        ("'a\\nb'.splitlines()", ["a", "b"]),
        ("'12'.isdigit()", True),
        ("'aXa'.count('a') + 'aXa'.find('X') + 'aXa'.index('X')", 4),
        ("[1, 2, 1].count(1)", 2),
        ("(5).bit_length()", 3),
        ("(2.0).is_integer()", True),
        ("x", "shadowed"),
        ("[x for x in [1]] + [x]", [1, "shadowed"]),
    ],
)
def test_allowed_python_subset_evaluates_like_python(expr: str, expected: Any) -> None:
    assert evaluate(expr, {"d": {"k": "v"}, "x": "shadowed"}) == expected


def test_comprehension_variables_do_not_leak_into_names() -> None:
    names: dict[str, Any] = {"items": [1, 2]}
    assert evaluate("[item for item in items]", names) == [1, 2]
    assert names == {"items": [1, 2]}
    with pytest.raises(ExpressionError, match="'item' is not defined"):
        evaluate("[[item for item in items], item]", names)


def test_extra_functions_are_called_and_readable() -> None:
    calls: list[tuple[Any, ...]] = []

    def host(*args: Any) -> str:
        calls.append(args)
        return "done"

    extra = {"host": host, "VERSION": 3}
    assert evaluate("host(1, 'a') + str(VERSION)", {}, extra_functions=extra) == "done3"
    assert calls == [(1, "a")]


def test_context_values_shadow_extra_names_but_only_extra_functions_are_called() -> None:
    calls: list[int] = []
    extra = {"f": lambda: calls.append(1) or 1}
    assert evaluate("f", {"f": 5}, extra_functions=extra) == 5
    assert evaluate("f()", {"f": 5}, extra_functions=extra) == 1
    assert calls == [1]


def test_methods_do_not_mutate_context_values() -> None:
    data = {"l": [3, 1], "d": {"k": 1}}
    for expr in ("l.sort()", "l.append(1)", "l.pop()", "d.update(x=1)", "d.pop('k')", "d.clear()"):
        with pytest.raises(ExpressionError, match="not allowed"):
            evaluate(expr, data)
    assert data == {"l": [3, 1], "d": {"k": 1}}


def test_subclass_of_allowed_type_gets_the_base_method() -> None:
    class Tricky(str):
        def upper(self) -> str:
            raise AssertionError("subclass method must not run")

    assert evaluate("s.upper()", {"s": Tricky("a")}) == "A"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("1/0", "ZeroDivisionError"),
        ("d['nope']", "KeyError"),
        ("[][1]", "IndexError"),
        ("1 + 'a'", "TypeError"),
        ("int('x')", "ValueError"),
        ("missing", "name 'missing' is not defined"),
        ("1 +", "syntax error"),
        ("", "syntax error"),
        ("'a'.nosuch()", "method 'nosuch' is not allowed"),
        ("(1).upper()", "method 'upper' is not allowed on int"),
        ("min([])", "ValueError"),
        ("[a for a, b in [(1, 2, 3)]]", "cannot unpack"),
        ("[a for a in 5]", "cannot iterate over int"),
        ("'{'.format(1)", "bad format string"),
    ],
)
def test_failures_are_expression_errors_naming_expression_and_reason(expr: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, {"d": {}})
    assert info.value.expression == expr
    assert reason in info.value.reason


def test_undefined_name_suggests_a_close_context_name() -> None:
    with pytest.raises(
        ExpressionError, match=r"name 'constant_l' is not defined \(did you mean 'constant_1'\?\)"
    ):
        evaluate("constant_l + 1", {"constant_1": 1, "other": 2})


def test_host_function_exceptions_are_wrapped() -> None:
    def boom() -> None:
        raise RuntimeError("host failed")

    with pytest.raises(ExpressionError, match="RuntimeError: host failed"):
        evaluate("boom()", {}, extra_functions={"boom": boom})


def test_leading_and_trailing_whitespace_is_ignored() -> None:
    assert evaluate("  a + 1 ", {"a": 1}) == 2


def test_non_string_expression_is_refused() -> None:
    with pytest.raises(ExpressionError):
        evaluate(123, {})  # type: ignore[arg-type]


def test_results_over_the_size_bound_are_refused() -> None:
    big = "x" * (1024 * 1024 + 1)
    with pytest.raises(ExpressionError, match="larger than"):
        evaluate("s", {"s": big})
    assert evaluate("len(s)", {"s": big}) == len(big)


def test_step_budget_stops_long_loops() -> None:
    with pytest.raises(ExpressionError, match="evaluation steps"):
        evaluate("[i for i in range(100) for j in range(100)]", {}, limits=Limits(max_steps=1000))


@pytest.mark.timeout(30)
def test_wall_clock_budget_stops_slow_evaluations() -> None:
    s = "ab" * 200_000
    with pytest.raises(ExpressionError, match=r"longer than 0\.05 s"):
        evaluate("[len(s.upper()) for i in range(50000)]", {"s": s}, limits=Limits(max_seconds=0.05))


def test_compiled_trees_are_cached_and_reused() -> None:
    assert evaluate("a * 2", {"a": 2}) == 4
    assert evaluate("a * 2", {"a": "x"}) == "xx"

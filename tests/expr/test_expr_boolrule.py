"""The default gateway condition language (boolrule)."""

from __future__ import annotations

import pytest

from rattan.errors import ExpressionError
from rattan.expr import BoolRuleEvalError, BoolRuleParseError, evaluate_condition, render_value


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('"1" == "1"', True),
        ('1 == "1"', True),
        ('"1" == 1', True),
        ('${d} == "1"', False),
        ('${d} == "${d}"', True),
        ("1 in (1, 2)", True),
        ('"2" in (1, 2)', True),
        ('2 in ("1", "2")', True),
        ("3 notin (1, 2)", True),
        ("2 >= 0 and 1 < 3", True),
        ('abc == "abc"', True),
        ('a.b_c == "a.b_c"', True),
        ("True == False", False),
        ("true == TRUE", True),
        ('"value_1" == "value_1"', True),
        ("True", True),
        ("False", False),
        ("(True)", True),
        ("1 == 1", True),
        ("*", True),
        (" * ", True),
        # peer quirk (kept): an int on one side truncates the other with int()
        ("1.5 > 1", False),
        ("1.5 > 1.0", True),
        ("1e3 == 1000.0", True),
        ("-2 < -1", True),
        ("'single' == \"single\"", True),
        ("1 != 2", True),
        ("1 <= 1 AND 2 >= 2", True),
        ('("a", "b") issuperset ("a")', True),
        ('("a", "b") notissuperset ("c")', True),
        ('"ab" issuperset "ab"', True),
        ("(1 == 2) or (2 == 2)", True),
        ("((1 == 1))", True),
        ('"a\\nb" == "a\\nb"', True),
        ('"x" in "xyz"', True),
        # no precedence, right-nested: A and B or C == A and (B or C)
        ("1 == 2 and 1 == 1 or 1 == 1", False),
        ("1 == 1 or 1 == 2 and 1 == 2", True),
        ("1 == 1 and 1 == 2 or 1 == 1", True),
        ("1 == 2 or 1 == 2 or 1 == 1", True),
    ],
)
def test_conditions_evaluate_like_the_peer(expr: str, expected: bool) -> None:
    assert evaluate_condition(expr) is expected


def test_rendered_conditions_from_templates() -> None:
    assert evaluate_condition(render_value('${a} == "1"', {"a": 1})) is True
    assert evaluate_condition(render_value('${d} == "1"', {})) is False
    assert evaluate_condition(render_value("${x} >= 0 and ${y} < 3", {"x": 1, "y": 2})) is True


def test_context_and_extra_info_are_ignored() -> None:
    assert evaluate_condition('abc == "abc"', {"abc": 1}, extra_info={"strategy": "FIRST"}) is True


def test_non_string_conditions() -> None:
    assert evaluate_condition(True) is True  # type: ignore[arg-type]
    assert evaluate_condition(False) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "1",
        "abc",
        "1 = 1",
        "(1 == 1",
        "1 == 1 and",
        "1 == 1 1",
        '"a\nb" == "a"',
        "${a + 1} == 2",
        "(1, 2,) == 1",
        "1 == 1 xor 1 == 1",
        "(" * 200 + "1 == 1" + ")" * 200,
        "import os",
    ],
)
def test_unparsable_conditions_raise_parse_errors(expr: str) -> None:
    with pytest.raises(BoolRuleParseError) as info:
        evaluate_condition(expr)
    assert isinstance(info.value, ExpressionError)
    assert info.value.expression == expr


@pytest.mark.parametrize("expr", ['"a" > 1', "1 issuperset (1)", "1 in 2"])
def test_failed_comparisons_raise_eval_errors(expr: str) -> None:
    with pytest.raises(BoolRuleEvalError):
        evaluate_condition(expr)


@pytest.mark.timeout(30)
def test_long_chains_need_no_recursion() -> None:
    assert evaluate_condition(" and ".join(["1 == 1"] * 20000)) is True
    assert evaluate_condition(" or ".join(["1 == 2"] * 20000)) is False

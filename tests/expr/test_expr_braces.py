"""Braces, brackets and string literals inside ``${...}``: one segment up to the matching ``}``."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from rattan.errors import ExpressionError
from rattan.expr import find_segments, references, render, render_value
from waits import wait_finished

pytestmark = pytest.mark.timeout(60)

NAMES = {"a": 5, "x": 7, "b": "B"}


EXAMPLES: list[tuple[str, Any]] = [
    ("${ {'k': a}['k'] }", 5),
    ("${'{}'.format(a)}", "5"),
    ("${ {1, 2} }", "{1, 2}"),
    ('${"}"}', "}"),
    ("${ {'a': {'b': x}}['a']['b'] }", 7),
]


@pytest.mark.parametrize(("text", "expected"), EXAMPLES)
def test_each_example_is_one_segment_with_its_exact_result(text: str, expected: Any) -> None:
    assert find_segments(text) == [text]
    assert render(text, NAMES) == str(expected)
    assert render_value("<" + text + ">", NAMES) == f"<{expected}>"


def test_dict_and_set_displays_evaluate_and_refuse_what_python_would_not_allow() -> None:
    assert render("${ {'k': a, 'j': x}['j'] }", NAMES) == "7"
    assert render("${ sorted({b, b, 'A'}) }", NAMES) == "['A', 'B']"
    with pytest.raises(ExpressionError, match="dict unpacking"):
        render("${ {**d}['k'] }", {"d": {"k": 1}})
    with pytest.raises(ExpressionError, match="dict key"):
        render("${ {[1]: 2} }", NAMES)  # an unhashable key: a clear refusal, not a TypeError
    with pytest.raises(ExpressionError, match="set element"):
        render("${ {[1]} }", NAMES)


def test_string_literals_holding_braces_and_specials() -> None:
    assert render('${"{" + b + "}"}', NAMES) == "{B}"
    assert render("${'}' * 3}", NAMES) == "}}}"
    assert render("${'{' + '}'}", NAMES) == "{}"
    assert render('${"a\\"}" + b}', NAMES) == 'a"}B'  # escaped quote inside the literal
    assert render("${'''}'''}", NAMES) == "}"  # triple quotes
    assert render("${'#' + '$' + b}", NAMES) == "#$B"  # # and $ are fine inside a literal
    assert render("${'{}-{}'.format(a, b)}", NAMES) == "5-B"
    with pytest.raises(ExpressionError, match="index access inside a format field is not allowed"):
        render("${'{0[k]}'.format(d)}", {"d": {"k": "v"}})  # the sandbox's decision, not text
    assert render("${d['}']}", {"d": {"}": 1}}) == "1"


def test_nesting_of_brackets_and_multiple_segments() -> None:
    text = "x=${[i for i in (1, 2)][0]} y=${'{}'.format(b)} z=${a} w=${ ('}', a)[1] }"
    assert find_segments(text) == [
        "${[i for i in (1, 2)][0]}",
        "${'{}'.format(b)}",
        "${a}",
        "${ ('}', a)[1] }",
    ]
    assert render(text, NAMES) == "x=1 y=B z=5 w=5"
    assert render_value(["${'{}'.format(a)}", {"k": ("${'}'}",)}], NAMES) == ["5", {"k": ("}",)}]


def test_references_see_inside_braces() -> None:
    assert references("${ {'k': a}['k'] } ${'{}'.format(b)} ${ {1, x} }") == {"${a}", "${b}", "${x}"}
    assert references('${"}" + c}') == {"${c}"}
    assert references("${ {k: v for k, v in items} }") == {"${items}"}


def test_whole_value_keeps_type_and_unchanged_simple_rules() -> None:
    assert render("${a}", NAMES) == 5
    assert render("${'{}'.format(a)}", NAMES) == "5"
    assert find_segments("$${a}") == ["${a}"]  # no $$ escape: the segment after the $ renders
    assert render("$${a}", NAMES) == "$5"
    assert find_segments("${a${b}}") == ["${b}"]  # a $ outside a literal: only the inner one
    assert find_segments("${}") == []
    assert find_segments("${a#b}") == []  # a # outside a literal ends nothing
    assert find_segments("no template here") == []


def test_unterminated_is_left_as_text() -> None:
    for text in ("${ {'k': a}['k'] ", '${"abc', "${ (1, ", "${ {1: 2}", "${'{}'.format(a}"):
        assert find_segments(text) == []
        assert render(text, NAMES) == text
    assert render("v=${a} then ${ {'k': a}", NAMES) == "v=5 then ${ {'k': a}"
    # an unterminated literal without braces: the simple pattern (bamboo's) still finds a segment
    assert find_segments("${'unclosed} and ${a}") == ["${'unclosed}", "${a}"]
    assert render_value("${'unclosed} and ${a}", NAMES) == "${'unclosed} and 5"


def test_strict_render_raises_a_clear_error_for_a_bad_one() -> None:
    with pytest.raises(ExpressionError) as info:
        render("v=${ {'k': a}['k'] + missing_name_q }", NAMES)
    assert info.value.expression == "${ {'k': a}['k'] + missing_name_q }"
    with pytest.raises(ExpressionError) as syntax:
        render("${ {'k': a}['k'] + } and ${a}", NAMES)
    assert syntax.value.expression == "${ {'k': a}['k'] + }"
    assert syntax.value.reason == "syntax error: invalid syntax"
    # non-strict: left as text, and the failure is reported, not silent
    failures: list[str] = []
    text = "${ {'k': a}['zz'] }"
    assert render_value(text, NAMES, on_failure=lambda seg, err: failures.append(seg)) == text
    assert failures == [text]


def test_scan_is_linear_on_long_and_adversarial_text() -> None:
    texts = ["prefix ${a} and ${b.upper()} " * 20_000, "${ {" * 50_000, "${'" * 50_000, '${"${' * 50_000]
    for text in texts:
        began = time.perf_counter()
        find_segments(text)
        assert time.perf_counter() - began < 5


def test_engine_renders_brace_expressions_in_activity_inputs(caplog: pytest.LogCaptureFixture) -> None:
    reg = rattan.Registry("braces-tests")
    engine = rattan.Engine(":memory:", components=reg)
    try:
        act = ServiceActivity(component_code="pipe_example_component")
        act.component.inputs["literal"] = Var(type=Var.SPLICE, value="${ {'k': a}['k'] }")
        act.component.inputs["fmt"] = Var(type=Var.SPLICE, value="<${'{}'.format(a)}|${\"}\"}>")
        act.component.inputs["index"] = Var(type=Var.SPLICE, value="${d['}']}")
        start, end = EmptyStartEvent(), EmptyEndEvent()
        start.extend(act).extend(end)
        data = Data(
            inputs={
                "${a}": Var(type=Var.PLAIN, value=5),
                "${d}": Var(type=Var.PLAIN, value={"}": [1, 2]}),
            }
        )
        tree = build_tree(start, data=data)
        with caplog.at_level(logging.WARNING, logger="rattan.engine"):
            res = api.run_pipeline(engine, tree)
            assert res.result, res.message
            wait_finished(engine, tree["id"])
        got = api.get_execution_data_inputs(engine, act.id)
        assert got.result, got.message
        assert got.data["literal"] == "5"  # str() of the result: not a bare name
        assert got.data["fmt"] == "<5|}>"
        assert got.data["index"] == "[1, 2]"
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # nothing left as text
    finally:
        engine.close(timeout=10)

"""The ${...} template language: references, rendering rules, strictness."""

from __future__ import annotations

from typing import Any

import pytest

from rattan.errors import ExpressionError
from rattan.expr import references, render, render_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('${l.split(",")[a_i]}', {"${l}", "${a_i}"}),
        ('${[item.strip() for item in KEY.split("\\n")]}', {"${KEY}"}),
        ("${[x for x in y if x > z]}", {"${y}", "${z}"}),
        ("${[x for x in x]}", {"${x}"}),
        ("${[a for a in b for c in a if c == d]}", {"${b}", "${d}"}),
        ("${a if b else c}", {"${a}", "${b}", "${c}"}),
        ("plain text", set()),
        ("${1 +}", set()),
        ("${a} and ${b + 1}", {"${a}", "${b}"}),
        (["${a}", ("${b}",), {"${k}": "${c}"}], {"${a}", "${b}", "${c}"}),
        ({"k": ["${deep}"]}, {"${deep}"}),
        (42, set()),
        (None, set()),
    ],
)
def test_references_are_the_free_names_as_context_keys(value: Any, expected: set[str]) -> None:
    assert references(value) == expected


def test_segment_pattern_excludes_braces_hash_and_dollar() -> None:
    assert references("${a#b} ${ {1: 2} } ${$x}") == set()
    assert render_value("${a#b}", {"a": 1}) == "${a#b}"


@pytest.mark.parametrize(
    ("value", "names", "expected"),
    [
        ("value_1__${constant_2}", {"constant_2": "value_2"}, "value_1__value_2"),
        ("${missing}", {}, "${missing}"),
        ("a-${1/0}", {}, "a-${1/0}"),
        ("${a_i}", {"a_i": 4}, 4),
        ("${l}", {"l": [1, 2]}, [1, 2]),
        ("${n}", {"n": None}, None),
        ("${a + 1}", {"a": 1}, "2"),
        ("x${a}", {"a": 1}, "x1"),
        ("${a}${a}", {"a": 1}, "11"),
        ("${a} ${missing} ${a}", {"a": 1}, "1 ${missing} 1"),
        ("${ a }", {"a": 1}, "1"),
        ("no template", {}, "no template"),
        (["${a}", "${b}"], {"a": 1, "b": "x"}, [1, "x"]),
        (("${a}", "-${a}"), {"a": 1}, (1, "-1")),
        ({"${a}": "${a}"}, {"a": 1}, {"${a}": 1}),
        ({"k": [{"j": ("${a}",)}]}, {"a": 1}, {"k": [{"j": (1,)}]}),
        (7, {}, 7),
        (None, {}, None),
        ('${"prefix" + KEY}', {"KEY": "k"}, "prefixk"),
        ('${"prefix%s" % KEY}', {"KEY": "k"}, "prefixk"),
        ('${"%s%s" % (K1, K2)}', {"K1": "a", "K2": "b"}, "ab"),
        ('${KEY.replace("\\n", ",")}', {"KEY": "a\nb"}, "a,b"),
        ('${KEY.split("\\n")}', {"KEY": "a\nb"}, "['a', 'b']"),
        ("${int(KEY)/10}", {"KEY": "5"}, "0.5"),
        ("${list(KEY)}", {"KEY": "ab"}, "['a', 'b']"),
        ('${[item.strip() for item in KEY.split("\\n")]}', {"KEY": " a\nb "}, "['a', 'b']"),
        ('${l.split(",")[a_i]}', {"l": "x,y,z", "a_i": 2}, "z"),
        ("${a if b else c}", {"a": 1, "b": True, "c": 2}, "1"),
        ('${"prefix{}".format(KEY)}', {"KEY": "k"}, "prefixk"),  # braces inside ${} (issue 13)
    ],
)
def test_render_value_follows_the_template_rules(value: Any, names: dict[str, Any], expected: Any) -> None:
    assert render_value(value, names) == expected


def test_whole_value_rule_looks_up_without_evaluating() -> None:
    marker = object()
    assert render_value("${_loop}", {"_loop": 1}) == 1
    assert render_value("${weird key}", {"weird key": marker}) is marker


def test_non_strict_failures_are_reported_once_per_segment() -> None:
    seen: list[tuple[str, str]] = []
    out = render_value(
        "${missing}-${missing}-${1/0}",
        {},
        on_failure=lambda seg, err: seen.append((seg, err.reason)),
    )
    assert out == "${missing}-${missing}-${1/0}"
    assert [s for s, _ in seen] == ["${missing}", "${1/0}"]
    assert "not defined" in seen[0][1]
    assert "ZeroDivisionError" in seen[1][1]


def test_strict_rendering_raises_naming_the_segment() -> None:
    with pytest.raises(ExpressionError) as info:
        render_value("ok ${a} bad ${nope + 1}", {"a": 1}, strict=True)
    assert info.value.expression == "${nope + 1}"
    assert "not defined" in info.value.reason
    assert "${nope + 1}" in str(info.value)


def test_render_is_the_strict_entry_point() -> None:
    assert render("${a + 1}", {"a": 1}) == "2"
    assert render("${a}", {"a": 1}) == 1
    assert render("plain", {}) == "plain"
    assert render(5, {}) == 5
    assert render(["${a}"], {"a": 1}) == [1]
    with pytest.raises(ExpressionError, match="__class__"):
        render("${a.__class__}", {"a": 1})
    with pytest.raises(ExpressionError):
        render("${missing}", {})


def test_render_obj_returns_the_indexed_object_for_literal_indexes() -> None:
    names = {"l": [[1, 2], "x"], "d": {"k": [3, {"j": 4}]}}
    assert render_value("${l[0]}", names, render_obj=True) == [1, 2]
    assert render_value('${d["k"]}', names, render_obj=True) == [3, {"j": 4}]
    assert render_value("${d['k'][1]}", names, render_obj=True) == {"j": 4}
    assert render_value("${l[0]}", names) == "[1, 2]"
    # only literal indexes, only whole values
    assert render_value("${l[a]}", {**names, "a": 0}, render_obj=True) == "[1, 2]"
    assert render_value("x${l[0]}", names, render_obj=True) == "x[1, 2]"
    assert render_value("${l[5]}", names, render_obj=True) == "${l[5]}"


def test_extra_functions_reach_segments() -> None:
    out = render_value("${shout(a)}", {"a": "hi"}, extra_functions={"shout": lambda s: s.upper() + "!"})
    assert out == "HI!"


def test_deeply_nested_values_do_not_crash() -> None:
    value: Any = "${a}"
    for _ in range(1000):
        value = [value]
    out = render_value(value, {"a": 1})
    assert isinstance(out, list)
    with pytest.raises(ExpressionError, match="nested deeper"):
        render_value(value, {"a": 1}, strict=True)

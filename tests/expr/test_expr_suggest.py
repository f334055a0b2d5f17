"""The shared "did you mean" helper, and the hints of undefined names in templates."""

from __future__ import annotations

from typing import Any

import pytest

from rattan.context import ContextValueType
from rattan.errors import ExpressionError
from rattan.expr import ContextEntry, evaluate, hydrate, render_value
from rattan.expr.suggest import MAX_CANDIDATES, close_match, did_you_mean

pytestmark = pytest.mark.timeout(30)


def test_close_match_and_did_you_mean() -> None:
    assert close_match("ecoh", ["echo", "shell_run"]) == "echo"
    assert close_match("zzz", ["echo", "shell_run"]) is None
    assert close_match("echo", ["echo"]) is None  # the word itself is no hint
    assert close_match("echo", []) is None
    assert did_you_mean("ecoh", iter(["shell_run", "echo", "echo"])) == " (did you mean 'echo'?)"
    assert did_you_mean("zzz", ["echo"]) == ""
    # equally close candidates: the first in sorted order, whatever order they come in
    assert close_match("abcd", ["abcf", "abce"]) == close_match("abcd", ["abce", "abcf"]) == "abce"


def test_too_many_candidates_give_no_hint() -> None:
    names = ["echo", *(f"{i:06d}" for i in range(MAX_CANDIDATES - 1))]
    assert close_match("ecoh", names) == "echo"
    assert close_match("ecoh", [*names, "one_more"]) is None
    assert close_match("ecoh", names, limit=10) is None


def test_evaluate_hints_from_suggest_from_and_host_names() -> None:
    with pytest.raises(ExpressionError) as info:
        evaluate("colour.upper()", {"x": 1}, suggest_from=["${color}", "${size}"])
    assert info.value.reason == "name 'colour' is not defined (did you mean 'color'?)"
    with pytest.raises(ExpressionError) as info:
        evaluate("lenght + 1", {"x": [1]}, extra_functions={"length": 3})
    assert info.value.reason == "name 'lenght' is not defined (did you mean 'length'?)"


def test_render_value_hints_in_strict_mode_and_to_on_failure() -> None:
    with pytest.raises(ExpressionError) as info:
        render_value("${colour}", {}, strict=True, suggest_from={"${color}": 1})
    assert str(info.value) == (
        "expression '${colour}' rejected: name 'colour' is not defined (did you mean 'color'?)"
    )
    seen: list[tuple[str, str]] = []
    out = render_value(
        "a ${colour}",
        {},
        on_failure=lambda text, error: seen.append((text, error.reason)),
        suggest_from=["${color}"],
    )
    assert out == "a ${colour}"
    assert seen == [("${colour}", "name 'colour' is not defined (did you mean 'color'?)")]


def test_hydrate_hints_from_every_context_key() -> None:
    # ${greeting} reads a misspelt name; ${name} exists in the context but is not referenced
    entries = {
        "${greeting}": ContextEntry(ContextValueType.SPLICE, "hi ${nmae}"),
        "${name}": ContextEntry(ContextValueType.PLAIN, "bob"),
    }
    seen: list[str] = []

    def lazy(code: str, value: Any, raw: Any) -> Any:
        raise AssertionError("no lazy values here")

    out = hydrate(entries, ["${greeting}"], lazy, on_failure=lambda text, error: seen.append(error.reason))
    assert out == {"greeting": "hi ${nmae}"}
    assert seen == ["name 'nmae' is not defined (did you mean 'name'?)"]

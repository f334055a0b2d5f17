"""``references`` memoises the scan of each input string; results must not leak between calls."""

from __future__ import annotations

import pytest

from rattan.expr.template import references

pytestmark = pytest.mark.timeout(30)


def test_references_of_strings_nested_values_and_repeats() -> None:
    assert references("${a} and ${b.upper()} and $${c}") == {"${a}", "${b}", "${c}"}
    first = references("${x + y}")
    first.add("${polluted}")  # the caller owns the returned set: the cached scan is unchanged
    assert references("${x + y}") == {"${x}", "${y}"}
    assert references(["${a}", {"k": ("${b}", 3, None)}, "plain"]) == {"${a}", "${b}"}
    assert references("no template here") == set()
    assert references("${[i for i in items]}") == {"${items}"}
    assert references(42) == set()

"""SPLICE and COMPUTE resolution over a pipeline context."""

from __future__ import annotations

from typing import Any

import pytest

from rattan.context import ContextValueType
from rattan.expr import ContextEntry, ExpressionError, ReferenceCycleError, closure, hydrate

PLAIN, SPLICE, COMPUTE = ContextValueType.PLAIN, ContextValueType.SPLICE, ContextValueType.COMPUTE


class Lazy:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []

    def __call__(self, code: str, rendered: Any, raw: Any) -> Any:
        self.calls.append((code, rendered, raw))
        return f"{code}({rendered})"


def test_closure_follows_splice_and_compute_references_only() -> None:
    entries = {
        "${a}": ContextEntry(SPLICE, "${b}-${c}"),
        "${b}": ContextEntry(COMPUTE, "${d}", "code"),
        "${c}": ContextEntry(PLAIN, "${e}"),
        "${d}": ContextEntry(PLAIN, 1),
        "${e}": ContextEntry(PLAIN, 2),
        "${unrelated}": ContextEntry(PLAIN, 3),
    }
    assert closure(entries, ["${a}"]) == {"${a}", "${b}", "${c}", "${d}"}
    assert closure(entries, ["${nope}"]) == {"${nope}"}


def test_chained_splices_resolve_transitively() -> None:
    entries = {
        "${a}": ContextEntry(SPLICE, "a(${b})"),
        "${b}": ContextEntry(SPLICE, "b(${c})"),
        "${c}": ContextEntry(PLAIN, 3),
    }
    assert hydrate(entries, ["${a}"], Lazy()) == {"a": "a(b(3))", "b": "b(3)", "c": 3}


def test_plain_values_are_never_rendered() -> None:
    entries = {"${p}": ContextEntry(PLAIN, "${q}"), "${q}": ContextEntry(PLAIN, 1)}
    assert hydrate(entries, ["${p}"], Lazy()) == {"p": "${q}"}


def test_whole_value_splice_keeps_the_type() -> None:
    entries = {"${a}": ContextEntry(SPLICE, "${b}"), "${b}": ContextEntry(PLAIN, [1, 2])}
    assert hydrate(entries, ["${a}"], Lazy())["a"] == [1, 2]


def test_splice_referencing_a_lazy_value_computes_it_with_its_rendered_value() -> None:
    lazy = Lazy()
    entries = {
        "${s}": ContextEntry(SPLICE, "got ${z}"),
        "${z}": ContextEntry(COMPUTE, "raw ${p}", "upper"),
        "${p}": ContextEntry(PLAIN, "x"),
    }
    assert hydrate(entries, ["${s}"], lazy) == {"s": "got upper(raw x)", "z": "upper(raw x)", "p": "x"}
    assert lazy.calls == [("upper", "raw x", "raw ${p}")]


def test_each_lazy_value_is_computed_once_per_hydrate() -> None:
    lazy = Lazy()
    entries = {
        "${a}": ContextEntry(SPLICE, "${z}${z}"),
        "${b}": ContextEntry(SPLICE, "${z}"),
        "${z}": ContextEntry(COMPUTE, "v", "c"),
    }
    out = hydrate(entries, ["${a}", "${b}", "${z}"], lazy)
    assert out["a"] == "c(v)c(v)"
    assert len(lazy.calls) == 1
    hydrate(entries, ["${a}"], lazy)
    assert len(lazy.calls) == 2


def test_missing_reference_is_left_as_text_and_reported() -> None:
    failures: list[str] = []
    entries = {"${a}": ContextEntry(SPLICE, "x-${missing}")}
    out = hydrate(entries, ["${a}", "${absent}"], Lazy(), on_failure=lambda seg, err: failures.append(seg))
    assert out == {"a": "x-${missing}"}
    assert failures == ["${missing}"]


def test_strict_hydrate_raises_on_a_failing_segment() -> None:
    entries = {"${a}": ContextEntry(SPLICE, "x-${missing}")}
    with pytest.raises(ExpressionError):
        hydrate(entries, ["${a}"], Lazy(), strict=True)


def test_reference_cycle_is_reported_with_its_path() -> None:
    entries = {"${a}": ContextEntry(SPLICE, "${b}"), "${b}": ContextEntry(SPLICE, "x${a}")}
    with pytest.raises(ReferenceCycleError) as info:
        hydrate(entries, ["${a}"], Lazy())
    assert str(info.value) == "reference cycle: ${a} -> ${b} -> ${a}"
    assert (
        f"inputs hydrate failed({info.value})"
        == "inputs hydrate failed(reference cycle: ${a} -> ${b} -> ${a})"
    )
    assert isinstance(info.value, ExpressionError)


def test_self_reference_and_cycles_behind_a_chain_are_detected() -> None:
    entries = {"${a}": ContextEntry(SPLICE, "${a}!")}
    with pytest.raises(ReferenceCycleError, match=r"reference cycle: \$\{a\} -> \$\{a\}$"):
        hydrate(entries, ["${a}"], Lazy())
    entries = {
        "${s}": ContextEntry(SPLICE, "${a}"),
        "${a}": ContextEntry(COMPUTE, "${b}", "c"),
        "${b}": ContextEntry(SPLICE, "${a}"),
    }
    lazy = Lazy()
    with pytest.raises(ReferenceCycleError, match=r"reference cycle: \$\{a\} -> \$\{b\} -> \$\{a\}$"):
        hydrate(entries, ["${s}"], lazy)
    assert lazy.calls == []


def test_compute_lazy_exceptions_propagate_unchanged() -> None:
    class Boom(Exception):
        pass

    def fail(code: str, rendered: Any, raw: Any) -> Any:
        raise Boom(code)

    with pytest.raises(Boom):
        hydrate({"${z}": ContextEntry(COMPUTE, "v", "c")}, ["${z}"], fail)


@pytest.mark.timeout(30)
def test_a_chain_of_5000_splices_resolves_without_recursion() -> None:
    n = 5000
    entries = {f"${{k{i}}}": ContextEntry(SPLICE, f"${{k{i + 1}}}") for i in range(n)}
    entries[f"${{k{n}}}"] = ContextEntry(PLAIN, "end")
    assert len(closure(entries, ["${k0}"])) == n + 1
    out = hydrate(entries, ["${k0}"], Lazy())
    assert out["k0"] == "end"
    assert len(out) == n + 1


@pytest.mark.timeout(30)
def test_a_5000_long_cycle_is_detected_without_recursion() -> None:
    n = 5000
    entries = {f"${{k{i}}}": ContextEntry(SPLICE, f"x${{k{(i + 1) % n}}}") for i in range(n)}
    with pytest.raises(ReferenceCycleError) as info:
        hydrate(entries, ["${k0}"], Lazy())
    assert str(info.value).startswith("reference cycle: ${k0} -> ${k1} -> ")
    assert str(info.value).endswith("${k4999} -> ${k0}")

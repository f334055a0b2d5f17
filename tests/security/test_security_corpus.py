"""The security corpus, evaluated in each of the four places ``${}`` is evaluated, outside the engine.

Each case asserts the payload is refused (or, when marked harmless, computed) quickly, with a small
allocation, and that nothing ran: no sentinel hook was called, no host function was reached, no file
was written and the context values are unchanged. See ``security_corpus.py`` to add payloads.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from security_corpus import (
    CASES,
    FIGURES,
    FORMAT_WALK,
    KNOWN_FINDINGS,
    PLACES,
    TRIPPED,
    Case,
    Sentinel,
    pwn,
)

from rattan.context import ContextValueType
from rattan.errors import ExpressionError
from rattan.expr import ContextEntry, evaluate_condition, hydrate, render_value

pytestmark = pytest.mark.timeout(120)

MAX_WALL = 1.5
MAX_PEAK = 100 * 1024 * 1024
BIG = "a" * 600_000  # built once: only what the evaluation allocates counts
EXTRA: dict[str, Any] = {"pwn": pwn}


def _names(spy: Sentinel, pwn_path: Path) -> dict[str, Any]:
    return {
        "x": "text",
        "l": [3, 1, 2],
        "d": {"k": "v", "x": 1},
        "big": BIG,
        "spy": spy,
        "fmt": FORMAT_WALK,
        "pct": "%(a(b))999999999s",
        "PWN": str(pwn_path),
        "a": 1,
        "b": 2,
    }


def _no_compute(_code: str, _rendered: Any, _raw: Any) -> Any:
    raise AssertionError("no lazy variable in the corpus")


def _splice(expr: str, names: dict[str, Any]) -> tuple[bool, Any]:
    """A SPLICE context value ``${v}`` = ``${payload}``, hydrated strictly (``template_strict``)."""
    entries = {f"${{{k}}}": ContextEntry(ContextValueType.PLAIN, v) for k, v in names.items()}
    template = "${" + expr + "}"
    entries["${v}"] = ContextEntry(ContextValueType.SPLICE, template)
    try:
        value = hydrate(entries, ["${v}"], _no_compute, strict=True, extra_functions=EXTRA)["v"]
    except ExpressionError:
        return True, None
    return value == template, value  # an unclosed ${ stays text: not evaluated


def _activity(expr: str, names: dict[str, Any]) -> tuple[bool, Any]:
    """Activity inputs, rendered non-strictly (the default): a refused segment stays as its text."""
    inputs = {"text": "pre ${" + expr + "} post"}
    failures: list[str] = []
    rendered = render_value(
        inputs, names, extra_functions=EXTRA, on_failure=lambda seg, err: failures.append(seg)
    )
    return rendered == inputs, rendered


def _gateway(expr: str, names: dict[str, Any]) -> tuple[bool, Any]:
    """A gateway condition as the engine evaluates it: render non-strictly, then boolrule."""
    cond = "${" + expr + "} == 'x'"
    rendered = render_value(cond, names, extra_functions=EXTRA, on_failure=lambda seg, err: None)
    try:
        held = evaluate_condition(rendered, names)
    except ExpressionError:  # the gateway fails
        held = None
    return rendered == cond, held


def _boolrule(expr: str, names: dict[str, Any]) -> tuple[bool, Any]:
    """The payload as a boolrule condition text: it parses to a comparison of literals, or is refused."""
    try:
        return False, evaluate_condition(expr, names)
    except ExpressionError:
        return True, None


RUNNERS = {"splice": _splice, "activity": _activity, "gateway": _gateway, "boolrule": _boolrule}


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = []
        finding = case.payload.expr in KNOWN_FINDINGS
        if finding and (case.place != "boolrule" or case.payload.family == "boolrule"):
            marks.append(
                pytest.mark.xfail(strict=True, reason="finding: " + KNOWN_FINDINGS[case.payload.expr])
            )
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


def test_the_corpus_is_large_distinct_and_covers_every_place() -> None:
    assert len(CASES) >= 200
    assert len({(c.payload.expr, c.place) for c in CASES}) == len(CASES)
    per_place = Counter(c.place for c in CASES)
    assert set(per_place) == set(PLACES)
    assert min(per_place.values()) >= 50
    per_family = Counter(c.payload.family for c in CASES)
    assert set(per_family) == {"escape", "cpu", "memory", "unicode", "syntax", "boolrule"}


def _measure(case: Case, names: dict[str, Any], traced: bool) -> tuple[bool, float, int]:
    """Run the case once; return (refused, wall seconds, peak bytes allocated, or 0 when not traced)."""
    if traced:
        tracemalloc.start()
    try:
        started, cpu = time.monotonic(), time.thread_time()
        refused, _ = RUNNERS[case.place](case.payload.expr, names)
        elapsed = time.monotonic() - started
        if not traced:
            FIGURES.append(("cpu", time.thread_time() - cpu, case.id))
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
    finally:
        if traced:
            tracemalloc.stop()
    return refused, elapsed, peak


@pytest.mark.parametrize("case", _params())
def test_payload_is_refused_within_bounds_and_runs_nothing(case: Case, tmp_path: Path) -> None:
    TRIPPED.clear()
    spy = Sentinel()
    pwn_path = tmp_path / "PWNED"
    names = _names(spy, pwn_path)
    refused, elapsed, peak = _measure(case, names, traced=True)
    FIGURES.append(("peak", peak, case.id))
    assert peak < MAX_PEAK, f"{peak / 2**20:.1f} MiB"
    # tracemalloc slows allocation-heavy evaluations several times over: timed again untraced
    refused, elapsed, _ = _measure(case, names, traced=False)
    FIGURES.append(("wall", elapsed, case.id))
    assert elapsed < MAX_WALL, f"{elapsed:.3f} s"
    assert TRIPPED == [], TRIPPED
    assert spy.calls == []
    assert not pwn_path.exists()
    assert names["l"] == [3, 1, 2]
    assert names["d"] == {"k": "v", "x": 1}
    template_payload = case.payload.family != "boolrule" and case.place == "boolrule"
    if not case.payload.harmless and not template_payload:
        assert refused, "payload was evaluated instead of refused"

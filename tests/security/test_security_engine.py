"""The worst payloads of the corpus in a running engine, next to a canary pipeline that must finish.

Documented outcomes (docs/expressions.md): a refused segment in an activity input or a SPLICE value is
left as its text (non-strict rendering, with a WARNING on ``rattan.engine``) and the node finishes; a
gateway condition whose segment is left as text does not parse as boolrule and fails the gateway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_corpus import CPU, ESCAPE, MEMORY, SYNTAX, TRIPPED, UNICODE, Payload, pwn

import rattan
from rattan import api
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ServiceActivity,
    Var,
    build_tree,
)
from waits import wait_finished, wait_state

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0


def _pick(family: list[Payload], *exprs: str) -> list[str]:
    known = {p.expr for p in family}
    missing = [e for e in exprs if e not in known]
    assert not missing, missing  # the sample is taken from the corpus
    return list(exprs)


WORST = [
    *_pick(
        ESCAPE,
        "().__class__.__bases__[0].__subclasses__()",
        "__import__('os').system('touch ' + PWN)",
        "open(PWN, 'w').write('x')",
        "'{.__globals__}'.format(pwn)",
        "[pwn][0]()",
        "(lambda f: f(f))(lambda f: f(f))",
        "f'{pwn()}'",
        "getattr(pwn, '__globals__')",
    ),
    *_pick(
        CPU,
        "('a'*524287).rfind('ab'+'a'*262000)",
        "[i * j for i in range(100000) for j in range(100000)]",
        "10**10**10",
        "int('9'*100000)",
        "sorted([str(i) for i in range(100000)])",
    ),
    *_pick(
        MEMORY,
        "'a'*10**9",
        "[0]*10**9",
        "list(range(10**9))",
        "zip(big, big, big, big)",
        "[l * 100000 for i in range(10)]",
    ),
    *_pick(
        UNICODE, "\uff45\uff56\uff41\uff4c('1')", "\ufe4d\ufe4dimport\ufe4d\ufe4d('os')", "ev\u200dal('1')"
    ),
    *_pick(SYNTAX, "(" * 10000 + "1" + ")" * 10000, "a" * 5000, "'a\x00b'"),
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[rattan.Engine]:
    eng = rattan.Engine(":memory:", expression_names={"pwn": pwn})
    yield eng
    eng.close(timeout=10)


def _data(tmp_path: Path, extra: dict[str, Var] | None = None) -> Data:
    plain = {"x": "text", "l": [3, 1, 2], "a": 1, "big": "a" * 600_000, "PWN": str(tmp_path / "PWNED")}
    return Data(inputs={f"${{{k}}}": Var(type=Var.PLAIN, value=v) for k, v in plain.items()} | (extra or {}))


def _chain(pid: str, acts: list[Any], data: Data) -> dict[str, Any]:
    start: Any = EmptyStartEvent(id=f"{pid}_s")
    node = start
    for act in acts:
        node = node.extend(act)
    node.extend(EmptyEndEvent(id=f"{pid}_e"))
    return build_tree(start, id=pid, data=data)


def _run(engine: rattan.Engine, tree: dict[str, Any]) -> str:
    res = api.run_pipeline(engine, tree)
    assert res.result, res.message
    return str(tree["id"])


def _start_canary(engine: rattan.Engine, tmp_path: Path) -> str:
    acts = []
    for i in range(5):
        act = ServiceActivity(id=f"canary_a{i}", component_code="pipe_example_component")
        act.component.inputs.v = Var(type=Var.SPLICE, value=f"step ${{a}} {i}")
        acts.append(act)
    return _run(engine, _chain("canary", acts, _data(tmp_path)))


def _inputs(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_inputs(engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def _outputs(engine: rattan.Engine, node_id: str) -> dict[str, Any]:
    res = api.get_execution_data_outputs(engine, node_id)
    assert res.result, res.message
    return dict(res.data)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "rattan.engine" and r.levelno == logging.WARNING
    ]


def _check_nothing_ran(tmp_path: Path, started: float) -> None:
    assert TRIPPED == [], TRIPPED
    assert not (tmp_path / "PWNED").exists()
    assert time.monotonic() - started < WAIT


def test_the_engine_sample_is_large_enough() -> None:
    assert len(WORST) >= 20
    assert len(set(WORST)) == len(WORST)


def test_activity_inputs_keep_refused_payloads_as_text_while_the_canary_runs(
    engine: rattan.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rattan.engine")
    TRIPPED.clear()
    started = time.monotonic()
    canary = _start_canary(engine, tmp_path)
    roots = []
    for i, payload in enumerate(WORST):
        act = ServiceActivity(id=f"act{i}", component_code="pipe_example_component")
        act.component.inputs.v = Var(type=Var.SPLICE, value="pre ${" + payload + "} post")
        roots.append(_run(engine, _chain(f"p_act{i}", [act], _data(tmp_path))))
    wait_finished(engine, canary, WAIT)
    for i, (root, payload) in enumerate(zip(roots, WORST, strict=True)):
        wait_finished(engine, root, WAIT)
        assert _inputs(engine, f"act{i}")["v"] == "pre ${" + payload + "} post"
        assert any(w.startswith(f"node act{i}: input 'v': template ") for w in _warnings(caplog)), payload
    _check_nothing_ran(tmp_path, started)


def test_splice_variables_keep_refused_payloads_as_text_while_the_canary_runs(
    engine: rattan.Engine, tmp_path: Path
) -> None:
    TRIPPED.clear()
    started = time.monotonic()
    canary = _start_canary(engine, tmp_path)
    roots = []
    for i, payload in enumerate(WORST):
        act = ServiceActivity(id=f"sp{i}", component_code="pipe_example_component")
        act.component.inputs.w = Var(type=Var.SPLICE, value="${v}")
        data = _data(tmp_path, {"${v}": Var(type=Var.SPLICE, value="${" + payload + "}")})
        roots.append(_run(engine, _chain(f"p_sp{i}", [act], data)))
    wait_finished(engine, canary, WAIT)
    for i, (root, payload) in enumerate(zip(roots, WORST, strict=True)):
        wait_finished(engine, root, WAIT)
        assert _inputs(engine, f"sp{i}")["w"] == "${" + payload + "}"
    _check_nothing_ran(tmp_path, started)


def _gateway_tree(i: int, payload: str, tmp_path: Path) -> dict[str, Any]:
    conditions = {0: "${" + payload + "} == 1", 1: "${a} == 2"}
    gw: Any = (
        ExclusiveGateway(id=f"gw{i}", conditions=conditions)
        if i % 2 == 0
        else ConditionalParallelGateway(id=f"gw{i}", conditions=conditions)
    )
    start, end = EmptyStartEvent(id=f"gs{i}"), EmptyEndEvent(id=f"ge{i}")
    b1 = ServiceActivity(id=f"gb{i}_1", component_code="pipe_example_component")
    b2 = ServiceActivity(id=f"gb{i}_2", component_code="pipe_example_component")
    start.extend(gw).connect(b1, b2).to(gw).converge(ConvergeGateway(id=f"gc{i}")).extend(end)
    return build_tree(start, id=f"p_gw{i}", data=_data(tmp_path))


def test_gateway_conditions_with_refused_payloads_fail_the_gateway_while_the_canary_runs(
    engine: rattan.Engine, tmp_path: Path
) -> None:
    TRIPPED.clear()
    started = time.monotonic()
    canary = _start_canary(engine, tmp_path)
    roots = [_run(engine, _gateway_tree(i, payload, tmp_path)) for i, payload in enumerate(WORST)]
    wait_finished(engine, canary, WAIT)
    for i, payload in enumerate(WORST):
        wait_state(engine, f"gw{i}", "FAILED", WAIT)
        ex_data = _outputs(engine, f"gw{i}")["ex_data"]
        # the text left is not boolrule, or (an over-long identifier) stands for itself and is not 1
        assert ex_data.startswith("evaluate[") or ex_data == "all conditions of branches are not meet", (
            payload[:80],
            ex_data[:200],
        )
        assert engine.get_state_or_none(f"gb{i}_1") is None, payload  # no branch ran
    assert len(roots) == len(WORST)
    _check_nothing_ran(tmp_path, started)

"""Every precondition of SPEC 11.4 (with Appendix D.10/D.11): the exact error, and nothing changed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from rollback_helpers import (
    Recorder,
    act,
    define_components,
    run,
    sequence,
    snapshot,
    wait_for,
    wait_idle,
    wait_state,
)

import rattan
from rattan import api
from rattan.builder import ConvergeGateway, EmptyEndEvent, EmptyStartEvent, ParallelGateway, build_tree
from rattan.errors import NotFoundError, RollBackException
from rattan.rollback import (
    cancel_reserved_rollback,
    get_allowed_rollback_node_id_list,
    reserve_rollback,
    retry_rollback_failed_node,
    rollback,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def rec(reg: rattan.Registry) -> Recorder:
    recorder = Recorder()
    define_components(reg, recorder)
    return recorder


@pytest.fixture
def failed(engine: rattan.Engine, rec: Recorder) -> tuple[str, dict[str, str]]:
    """S -> A -> B -> C -> E with C FAILED (the token parked on it)."""
    tree, ids = sequence("A", "B", "C")
    rec.fail_execute["C"] = 1
    root = run(engine, tree)
    wait_state(engine, ids["C"], "FAILED")
    wait_idle(engine)
    return root, ids


def refused(
    engine: rattan.Engine, root: str, call: Callable[[], Any], exc: type[Exception], *words: str
) -> str:
    before = snapshot(engine, root)
    res = call()
    assert isinstance(res, rattan.EngineAPIResult)
    assert res.result is False
    assert type(res.exc) is exc, (res.exc, res.message)
    assert res.message == str(res.exc)
    for word in words:
        assert word in res.message, res.message
    wait_idle(engine)
    assert snapshot(engine, root) == before
    return res.message


def test_an_unknown_mode_is_refused_before_any_check(engine: rattan.Engine) -> None:
    for call in (
        lambda: rollback(engine, "nope", "a", "b", mode="FOO"),
        lambda: reserve_rollback(engine, "nope", "a", "b", mode="FOO"),
        lambda: cancel_reserved_rollback(engine, "nope", "a", "b", mode="FOO"),
        lambda: retry_rollback_failed_node(engine, "nope", "a", mode="FOO"),
        lambda: get_allowed_rollback_node_id_list(engine, "nope", "a", mode="FOO"),
    ):
        res = call()
        assert type(res.exc) is RollBackException and "'FOO'" in res.message


def test_rollback_must_be_enabled(make_engine: Any, rec: Recorder) -> None:
    engine = make_engine(pipeline_enable_rollback=False)
    tree, ids = sequence("A")
    root = run(engine, tree)
    wait_state(engine, root, "FINISHED")
    res = rollback(engine, root, ids["A"], ids["start"])
    assert type(res.exc) is RollBackException and "pipeline_enable_rollback" in res.message


def test_unknown_ids_are_not_found(engine: rattan.Engine, failed: Any) -> None:
    root, ids = failed
    refused(engine, root, lambda: rollback(engine, "missing", ids["C"], ids["A"]), NotFoundError, "missing")
    refused(engine, root, lambda: rollback(engine, root, "ghost", ids["A"]), NotFoundError, "ghost")
    refused(engine, root, lambda: rollback(engine, root, ids["C"], "ghost"), NotFoundError, "ghost")
    refused(engine, root, lambda: get_allowed_rollback_node_id_list(engine, root, "ghost"), NotFoundError)


def test_start_and_target_rules(engine: rattan.Engine, failed: Any) -> None:
    root, ids = failed
    # the target must be FINISHED: C failed, and the end event was never reached
    refused(engine, root, lambda: rollback(engine, root, ids["C"], ids["C"]), RollBackException, "FINISHED")
    refused(
        engine, root, lambda: rollback(engine, root, ids["C"], ids["end"]), RollBackException, "EmptyEndEvent"
    )
    # the start must be the current node of a token (B finished and the token moved on), in both modes
    for mode in ("TOKEN", "ANY"):
        refused(
            engine, root, lambda m=mode: rollback(engine, root, ids["B"], ids["A"], mode=m),  # type: ignore[misc]
            RollBackException, "current node",
        )  # fmt: skip
    # unknown options are refused
    refused(
        engine,
        root,
        lambda: rollback(engine, root, ids["C"], ids["A"], force=True),
        RollBackException,
        "force",
    )


def test_the_pipeline_state_rule_applies_to_every_function(engine: rattan.Engine, failed: Any) -> None:
    root, ids = failed
    assert api.pause_pipeline(engine, root).result
    for call in (
        lambda: rollback(engine, root, ids["C"], ids["A"]),
        lambda: rollback(engine, root, ids["C"], ids["A"], mode="ANY"),
        lambda: reserve_rollback(engine, root, ids["C"], ids["A"]),
        lambda: cancel_reserved_rollback(engine, root, ids["C"], ids["A"]),
        lambda: get_allowed_rollback_node_id_list(engine, root, ids["C"]),
    ):
        refused(engine, root, call, RollBackException, "SUSPENDED")
    assert api.resume_pipeline(engine, root).result
    assert api.skip_node(engine, ids["C"]).result
    wait_state(engine, root, "FINISHED")
    refused(engine, root, lambda: rollback(engine, root, ids["C"], ids["A"]), RollBackException, "FINISHED")
    refused(
        engine, root, lambda: get_allowed_rollback_node_id_list(engine, root, ids["C"]), RollBackException
    )
    # a subprocess or node id is not a root pipeline
    refused(engine, root, lambda: rollback(engine, ids["A"], ids["C"], ids["A"]), RollBackException, "root")


def test_retry_rules(engine: rattan.Engine, failed: Any) -> None:
    root, ids = failed
    refused(
        engine,
        root,
        lambda: retry_rollback_failed_node(engine, root, ids["B"], mode="ANY"),
        RollBackException,
        "ANY",
    )
    refused(
        engine, root, lambda: retry_rollback_failed_node(engine, root, ids["B"]), RollBackException, "RUNNING"
    )


def _parallel(engine: rattan.Engine, rec: Recorder) -> tuple[str, dict[str, Any]]:
    """S -> A -> PG -> (P1 -> P2(fails) | W(waits)) -> CG -> Z -> E, with P2 FAILED and W RUNNING."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, p1, p2, w, z = act("A"), act("P1"), act("P2"), act("W", code="wait"), act("Z")
    pg, cg = ParallelGateway(), ConvergeGateway()
    start.extend(a).extend(pg).connect(p1, w)
    p1.extend(p2).extend(cg)
    w.extend(cg)
    cg.extend(z).extend(end)
    rec.fail_execute["P2"] = 1
    gate = rec.rollback_gates["wait:W"] = threading.Event()
    root = run(engine, build_tree(start))
    wait_state(engine, p2.id, "FAILED")
    wait_state(engine, w.id, "RUNNING")
    return root, {"A": a.id, "P1": p1.id, "P2": p2.id, "W": w.id, "Z": z.id, "gate": gate, "PG": pg.id}


def test_token_and_running_rules_in_a_parallel_tree(engine: rattan.Engine, rec: Recorder) -> None:
    root, ids = _parallel(engine, rec)
    try:
        # TOKEN: A is outside the branch of P2
        refused(engine, root, lambda: rollback(engine, root, ids["P2"], ids["A"]), RollBackException, "token")
        refused(
            engine, root, lambda: rollback(engine, root, ids["P2"], ids["PG"]), RollBackException, "Gateway"
        )
        # ANY needs no RUNNING node at all (W runs), even without the token check
        refused(
            engine, root,
            lambda: rollback(engine, root, ids["P2"], ids["A"], mode="ANY", skip_check_token=True),
            RollBackException, ids["W"], "RUNNING",
        )  # fmt: skip
        refused(
            engine, root, lambda: rollback(engine, root, ids["P2"], ids["P1"], mode="ANY"),
            RollBackException, "RUNNING",
        )  # fmt: skip
        # TOKEN inside the branch is fine: W runs with another token
        assert rollback(engine, root, ids["P2"], ids["P1"]).result
        wait_state(engine, ids["P2"], "FINISHED")
    finally:
        ids["gate"].set()
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert [c[0] for c in rec.of("rollback")] == ["P1"]


def test_reservation_rules(engine: rattan.Engine, rec: Recorder) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    a, w, b = act("A"), act("W", code="wait"), act("B")
    start.extend(a).extend(w).extend(b).extend(end)
    gate = rec.rollback_gates["wait:W"] = threading.Event()
    root = run(engine, build_tree(start))
    wait_state(engine, w.id, "RUNNING")
    # W's execute result is recorded (its token sleeps between polls) before anything is compared
    wait_for(lambda: [p.status for p in engine.get_pipeline_debug_info(root)["processes"]] == ["sleep"])
    try:
        # the start must be RUNNING (A finished), the target FINISHED (B never ran)
        refused(
            engine, root, lambda: reserve_rollback(engine, root, a.id, start.id), RollBackException, "RUNNING"
        )
        refused(
            engine, root, lambda: reserve_rollback(engine, root, w.id, b.id), RollBackException, "FINISHED"
        )
        refused(
            engine, root, lambda: cancel_reserved_rollback(engine, root, a.id, start.id), RollBackException
        )
        # an immediate rollback from a RUNNING node is refused
        refused(engine, root, lambda: rollback(engine, root, w.id, a.id), RollBackException, "RUNNING")
        assert reserve_rollback(engine, root, w.id, a.id).result
        # one reservation per pipeline
        refused(
            engine, root, lambda: reserve_rollback(engine, root, w.id, start.id), RollBackException, "already"
        )
        assert cancel_reserved_rollback(engine, root, w.id, a.id).result
        assert reserve_rollback(engine, root, w.id, start.id).result
        assert cancel_reserved_rollback(engine, root, w.id, a.id).result  # cancels whatever the target
    finally:
        gate.set()
    wait_state(engine, root, "FINISHED")
    wait_idle(engine)
    assert rec.of("rollback") == []

"""Deeply nested subprocesses (issue 13): every stage answers with a tree or a typed error, never a
``RecursionError``. The builder builds any depth; validation refuses trees nested deeper than
``Settings.max_subprocess_depth``; a tree at the limit runs to FINISHED."""

from __future__ import annotations

from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import (
    EmptyEndEvent,
    EmptyStartEvent,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
    generate_pipeline_token,
)
from rattan.engine.plan import build_plan
from rattan.errors import TreeInvalidException
from rattan.settings import Settings
from rattan.spec.parse import parse_pipeline
from rattan.validator import DEFAULT_MAX_DEPTH, validate_and_process_pipeline
from waits import wait_finished

pytestmark = pytest.mark.timeout(120)

LIMIT = Settings().max_subprocess_depth


def nested_chain(depth: int) -> EmptyStartEvent:
    """Start of a chain ``depth`` subprocesses deep; the innermost level runs one example activity."""
    start = EmptyStartEvent()
    start.extend(ServiceActivity(component_code="example_component")).extend(EmptyEndEvent())
    for _ in range(depth):
        outer = EmptyStartEvent()
        outer.extend(SubProcess(start=start)).extend(EmptyEndEvent())
        start = outer
    return start


def depth_of(tree: dict[str, Any]) -> int:
    """Walk down the single subprocess of each level (iteratively) and count the levels."""
    depth = 0
    level = tree
    while level["activities"]:
        (node,) = level["activities"].values()
        if node["type"] != "SubProcess":
            break
        level = node["pipeline"]
        depth += 1
    return depth


def test_default_limit_is_documented_value_and_matches_the_validator() -> None:
    assert LIMIT == 50
    assert DEFAULT_MAX_DEPTH == LIMIT


def test_build_tree_1000_levels_returns_a_tree() -> None:
    tree = build_tree(nested_chain(1000))
    assert depth_of(tree) == 1000
    innermost = tree
    for _ in range(1000):
        (node,) = innermost["activities"].values()
        assert node["pipeline"]["id"] == node["id"]
        innermost = node["pipeline"]
    (activity,) = innermost["activities"].values()
    assert activity["type"] == "ServiceActivity"


def test_generate_pipeline_token_1000_levels() -> None:
    tree = build_tree(nested_chain(1000))
    tokens = generate_pipeline_token(tree)
    # every level has a start event, one node and an end event
    assert len(tokens) == 3 * 1001


def test_spec_and_plan_1000_levels_do_not_recurse() -> None:
    tree = build_tree(nested_chain(1000))
    plan = build_plan(parse_pipeline(tree))
    assert len(plan.pipelines) == 1001


def test_validation_refuses_too_deep_naming_depth_and_limit() -> None:
    tree = build_tree(nested_chain(1000))
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(tree)
    message = str(info.value)
    assert "1000" in message
    assert str(LIMIT) in message
    assert [p.rule for p in info.value.problems] == ["structure.too_deep"]


def test_validation_accepts_the_limit_and_refuses_one_more() -> None:
    validate_and_process_pipeline(build_tree(nested_chain(LIMIT)))
    with pytest.raises(TreeInvalidException) as info:
        validate_and_process_pipeline(build_tree(nested_chain(LIMIT + 1)))
    assert f"nested {LIMIT + 1} levels deep" in str(info.value)
    assert f"limit of {LIMIT}" in str(info.value)


@pytest.mark.parametrize("bad", [-1, "3", 1.5, True])
def test_validation_rejects_a_bad_max_depth(bad: Any) -> None:
    with pytest.raises(TreeInvalidException, match="max_depth"):
        validate_and_process_pipeline(build_tree(nested_chain(1)), max_depth=bad)


def test_engine_refuses_a_too_deep_tree_with_a_typed_error() -> None:
    with rattan.Engine(":memory:") as engine:
        tree = build_tree(nested_chain(1000))
        with pytest.raises(TreeInvalidException) as info:
            engine.run_pipeline(tree)
        assert "1000" in str(info.value) and str(LIMIT) in str(info.value)
        res = api.run_pipeline(engine, build_tree(nested_chain(LIMIT + 1)))
        assert not res.result
        assert f"limit of {LIMIT}" in res.message


def test_engine_setting_lowers_the_limit() -> None:
    with rattan.Engine(":memory:", settings=Settings(max_subprocess_depth=3)) as engine:
        with pytest.raises(TreeInvalidException, match="nested 4 levels deep, more than the limit of 3"):
            engine.run_pipeline(build_tree(nested_chain(4)))
        tree = build_tree(nested_chain(3))
        engine.run_pipeline(tree)
        wait_finished(engine, tree["id"], timeout=30)


def test_tree_at_the_limit_runs_to_finished() -> None:
    tree = build_tree(nested_chain(LIMIT))
    with rattan.Engine(":memory:") as engine:
        engine.run_pipeline(tree)
        wait_finished(engine, tree["id"], timeout=30)
        innermost = tree
        while innermost["activities"]:
            (node,) = innermost["activities"].values()
            if node["type"] != "SubProcess":
                wait_finished(engine, node["id"], timeout=30)
                break
            innermost = node["pipeline"]


def test_a_tree_too_deep_for_the_store_encoder_is_refused_with_a_typed_error() -> None:
    # an input value nested deeper than the JSON encoder goes: refused, not a bare TypeError
    value: Any = "leaf"
    for _ in range(300):
        value = [value]
    start, act, end = EmptyStartEvent(), ServiceActivity(component_code="example_component"), EmptyEndEvent()
    act.component.inputs.deep = Var(type=Var.PLAIN, value=value)
    start.extend(act).extend(end)
    tree = build_tree(start)
    with rattan.Engine(":memory:") as engine:
        res = api.run_pipeline(engine, tree)
        assert res.result is False and isinstance(res.exc, rattan.BadInputError)
        assert res.message.startswith("the pipeline tree cannot be stored as JSON:")
        assert engine.list_pipelines() == []

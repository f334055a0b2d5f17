"""Start positions (SPEC 3.6) and skipped nodes (rattan: deviate, Appendix D.8)."""

from __future__ import annotations

import copy

import pytest
from vtrees import chain, make_tree, simple_tree, with_subprocess

from rattan.errors import StartPositionInvalidException, TreeInvalidException
from rattan.validator import (
    get_allowed_start_node_ids,
    get_skipped_execute_node_ids,
    validate_pipeline_start_node,
)


def parallel_tree() -> dict[str, object]:
    # S -> A -> PG -> {B, EG -> {C, D} -> CG2} -> CG -> F -> E
    return make_tree(
        {
            "S": "S",
            "A": "A",
            "PG": "PG",
            "B": "A",
            "EG": "EG",
            "C": "A",
            "D": "A",
            "CG2": "CG",
            "CG": "CG",
            "F": "A",
            "E": "E",
        },
        [
            ("S", "A"),
            ("A", "PG"),
            ("PG", "B"),
            ("PG", "EG"),
            ("EG", "C"),
            ("EG", "D"),
            ("C", "CG2"),
            ("D", "CG2"),
            ("CG2", "CG"),
            ("B", "CG"),
            ("CG", "F"),
            ("F", "E"),
        ],
    )


def exclusive_tree() -> dict[str, object]:
    # S -> EG -> {A -> A2, B} -> CG -> C -> E
    return make_tree(
        {"S": "S", "EG": "EG", "A": "A", "A2": "A", "B": "A", "CG": "CG", "C": "A", "E": "E"},
        [
            ("S", "EG"),
            ("EG", "A"),
            ("A", "A2"),
            ("EG", "B"),
            ("A2", "CG"),
            ("B", "CG"),
            ("CG", "C"),
            ("C", "E"),
        ],
    )


def test_allowed_nodes_skip_parallel_blocks() -> None:
    assert get_allowed_start_node_ids(parallel_tree()) == ["S", "A", "PG", "F"]


def test_allowed_nodes_include_exclusive_branches() -> None:
    # depth-first like the peer (which also lists C twice)
    assert get_allowed_start_node_ids(exclusive_tree()) == ["S", "EG", "A", "A2", "C", "B"]


def test_allowed_does_not_modify_tree() -> None:
    tree = parallel_tree()
    before = copy.deepcopy(tree)
    get_allowed_start_node_ids(tree)
    assert tree == before


@pytest.mark.parametrize("node_id", ["B", "C", "EG", "CG", "CG2", "E", "nope"])
def test_disallowed_start_positions(node_id: str) -> None:
    with pytest.raises(StartPositionInvalidException) as info:
        validate_pipeline_start_node(parallel_tree(), node_id)
    assert node_id in str(info.value)


@pytest.mark.parametrize("node_id", ["S", "A", "PG", "F"])
def test_allowed_start_positions(node_id: str) -> None:
    validate_pipeline_start_node(parallel_tree(), node_id)


def test_subprocess_is_not_a_start_position() -> None:
    sub = make_tree({"S2": "S", "A2": "A", "E2": "E"}, chain("S2", "A2", "E2"), pid="SP")
    tree = with_subprocess("p_root", "SP", sub)
    assert get_allowed_start_node_ids(tree) == ["S"]
    with pytest.raises(StartPositionInvalidException):
        validate_pipeline_start_node(tree, "SP")
    with pytest.raises(StartPositionInvalidException):
        validate_pipeline_start_node(tree, "A2")  # nodes of nested trees are never start positions


def test_start_position_exception_is_not_tree_invalid() -> None:
    with pytest.raises(StartPositionInvalidException) as info:
        validate_pipeline_start_node(simple_tree(), "E")
    assert not isinstance(info.value, TreeInvalidException)


def test_skipped_from_start_is_empty() -> None:
    assert get_skipped_execute_node_ids(exclusive_tree(), "S") == []


def test_skipped_inside_exclusive_branch_is_everything_that_cannot_run() -> None:
    # peer: {S, EG}; rattan (D.8): every node that cannot execute when starting at A2
    assert set(get_skipped_execute_node_ids(exclusive_tree(), "A2")) == {"S", "EG", "A", "B"}


def test_skipped_after_exclusive_block() -> None:
    # peer: {S, EG}; rattan: the whole block before C
    assert set(get_skipped_execute_node_ids(exclusive_tree(), "C")) == {"S", "EG", "A", "A2", "B", "CG"}


def test_skipped_order_is_breadth_first_from_start() -> None:
    assert get_skipped_execute_node_ids(exclusive_tree(), "C") == ["S", "EG", "A", "B", "A2", "CG"]


def test_skipped_after_parallel_block() -> None:
    skipped = get_skipped_execute_node_ids(parallel_tree(), "F")
    assert set(skipped) == {"S", "A", "PG", "B", "EG", "C", "D", "CG2", "CG"}


def test_skipped_validates_start_node() -> None:
    with pytest.raises(StartPositionInvalidException):
        get_skipped_execute_node_ids(parallel_tree(), "B")
    assert set(get_skipped_execute_node_ids(parallel_tree(), "B", validate=False)) == {
        "S",
        "A",
        "PG",
        "EG",
        "C",
        "D",
        "CG2",
    }
    with pytest.raises(StartPositionInvalidException):
        get_skipped_execute_node_ids(parallel_tree(), "ghost", validate=False)


def test_loop_tree_start_positions_terminate() -> None:
    tree = make_tree(
        {"S": "S", "A": "A", "EG": "EG", "B": "A", "E": "E"},
        [("S", "A"), ("A", "EG"), ("EG", "A"), ("EG", "B"), ("B", "E")],
    )
    assert get_allowed_start_node_ids(tree) == ["S", "A", "EG", "B"]
    assert get_skipped_execute_node_ids(tree, "EG") == ["S"]


def test_invalid_tree_raises_tree_invalid() -> None:
    with pytest.raises(TreeInvalidException):
        get_allowed_start_node_ids({"id": "x"})


def test_start_helpers_accept_custom_end_event_without_registry() -> None:
    tree = simple_tree()
    tree["end_event"]["type"] = "SomeExecutableEnd"
    validate_pipeline_start_node(tree, "A")
    assert get_skipped_execute_node_ids(tree, "A") == ["S"]

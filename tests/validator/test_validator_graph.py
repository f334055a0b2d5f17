"""Connection rules (SPEC 3.2), cycles (3.5), gateway matching (3.3) and streams (3.4)."""

from __future__ import annotations

from typing import Any

import pytest
from vtrees import chain, make_tree, problem_ids, problem_rules, raises, simple_tree, with_subprocess

from rattan.errors import (
    ConnectionValidateError,
    ConvergeMatchError,
    CycleError,
    StreamValidateError,
    TreeInvalidException,
)
from rattan.validator import (
    add_sink_type,
    validate_and_process_pipeline,
    validate_gateways,
    validate_graph_connection,
    validate_graph_without_circle,
    validate_stream,
)

validate = validate_and_process_pipeline

# ---- shapes --------------------------------------------------------------------------------------

PARALLEL = (
    {"S": "S", "PG": "PG", "A": "A", "B": "A", "CG": "CG", "E": "E"},
    [("S", "PG"), ("PG", "A"), ("PG", "B"), ("A", "CG"), ("B", "CG"), ("CG", "E")],
)
DANGLING = (
    {"S": "S", "A": "A", "EG": "EG", "B": "A", "C": "A", "E": "E"},
    [*chain("S", "A", "EG"), ("EG", "B"), ("EG", "C"), ("B", "E"), ("C", "E")],
)
SHARED = (
    {"S": "S", "PG": "PG", "A": "A", "EG": "EG", "B": "A", "C": "A", "CG": "CG", "E": "E"},
    [
        ("S", "PG"),
        ("PG", "A"),
        ("PG", "EG"),
        ("EG", "B"),
        ("EG", "C"),
        ("A", "CG"),
        ("B", "CG"),
        ("C", "CG"),
        ("CG", "E"),
    ],
)
NESTED = (
    {"S": "S", "PG1": "PG", "PG2": "PG", "A": "A", "B": "A", "C": "A", "CG2": "CG", "CG1": "CG", "E": "E"},
    [
        ("S", "PG1"),
        ("PG1", "PG2"),
        ("PG1", "C"),
        ("PG2", "A"),
        ("PG2", "B"),
        ("A", "CG2"),
        ("B", "CG2"),
        ("CG2", "CG1"),
        ("C", "CG1"),
        ("CG1", "E"),
    ],
)
EXCLUSIVE_BLOCK = (
    {"S": "S", "EG": "EG", "A": "A", "B": "A", "CG": "CG", "E": "E"},
    [("S", "EG"), ("EG", "A"), ("EG", "B"), ("A", "CG"), ("B", "CG"), ("CG", "E")],
)
LOOP = (
    {"S": "S", "A": "A", "EG": "EG", "B": "A", "E": "E"},
    [("S", "A"), ("A", "EG"), ("EG", "A"), ("EG", "B"), ("B", "E")],
)


def tree_of(shape: tuple[dict[str, str], list[tuple[str, str]]]) -> dict[str, Any]:
    return make_tree(*shape)


# ---- connection ----------------------------------------------------------------------------------


def test_start_may_not_connect_to_end() -> None:
    tree = make_tree({"S": "S", "E": "E"}, [("S", "E")])
    exc = raises(ConnectionValidateError, validate, tree)
    assert "S" in problem_ids(exc)
    assert "connection.target" in problem_rules(exc)
    assert exc.failed_nodes == ["S"] and "S" in exc.detail


def test_activity_out_degree_is_checked_even_with_no_outgoing() -> None:
    tree = make_tree({"S": "S", "A": "A", "B": "A", "E": "E"}, [("S", "A"), ("A", "E"), ("S", "B")])
    tree["start_event"]["outgoing"] = "f_S_A"  # keep start valid; B gets no outgoing at all
    tree["start_event"]["outgoing"] = ["f_S_A", "f_S_B"]
    exc = raises(ConnectionValidateError, validate, tree)
    assert {"S", "B"} <= problem_ids(exc)
    assert "connection.out_degree" in problem_rules(exc)


def test_activity_with_two_outgoing_flows() -> None:
    tree = make_tree(
        {"S": "S", "A": "A", "B": "A", "E": "E"}, [("S", "A"), ("A", "B"), ("A", "E"), ("B", "E")]
    )
    exc = raises(ConnectionValidateError, validate, tree)
    assert problem_ids(exc) == {"A"}


def test_node_with_no_incoming_flow() -> None:
    tree = make_tree({"S": "S", "A": "A", "B": "A", "E": "E"}, [("S", "A"), ("A", "E"), ("B", "E")])
    exc = raises(ConnectionValidateError, validate, tree)
    assert "B" in problem_ids(exc)
    assert "connection.in_degree" in problem_rules(exc)


def test_converge_with_two_outgoing_flows() -> None:
    nodes, edges = PARALLEL
    tree = make_tree({**nodes, "X": "A"}, [*edges, ("CG", "X"), ("X", "E")])
    exc = raises(ConnectionValidateError, validate, tree)
    assert "CG" in problem_ids(exc)


def test_end_event_with_outgoing_flow() -> None:
    tree = make_tree({"S": "S", "A": "A", "E": "E"}, [("S", "A"), ("A", "E"), ("E", "A")])
    exc = raises(ConnectionValidateError, validate, tree)
    assert "E" in problem_ids(exc)


def test_nothing_connects_to_start() -> None:
    tree = make_tree(
        {"S": "S", "A": "A", "EG": "EG", "E": "E"}, [("S", "A"), ("A", "EG"), ("EG", "S"), ("EG", "E")]
    )
    exc = raises(ConnectionValidateError, validate, tree, cycle_tolerate=True)
    assert "EG" in problem_ids(exc)
    assert "S" in problem_ids(exc)  # the start event gets an incoming flow


def test_max_degree_1000() -> None:
    n = 1001
    nodes = {"S": "S", "PG": "PG", "CG": "CG", "E": "E", **{f"a{i}": "A" for i in range(n)}}
    edges = [("S", "PG"), ("CG", "E")]
    for i in range(n):
        edges += [("PG", f"a{i}"), (f"a{i}", "CG")]
    exc = raises(ConnectionValidateError, validate, make_tree(nodes, edges))
    assert {"PG", "CG"} <= problem_ids(exc)


def test_connection_problems_in_subprocess_are_reported() -> None:
    sub = make_tree({"S2": "S", "E2": "E"}, [("S2", "E2")], pid="SP")
    tree = with_subprocess("p_root", "SP", sub)
    exc = raises(ConnectionValidateError, validate, tree)
    assert "S2" in problem_ids(exc)


def test_validate_graph_connection_public() -> None:
    validate_graph_connection(simple_tree())
    with pytest.raises(ConnectionValidateError):
        validate_graph_connection(make_tree({"S": "S", "E": "E"}, [("S", "E")]))


# ---- sink types ----------------------------------------------------------------------------------


def test_custom_end_event_type_needs_registration() -> None:
    tree = simple_tree()
    tree["end_event"]["type"] = "MyEndEvent"
    exc = raises(TreeInvalidException, validate, tree)
    assert "structure.node_type" in problem_rules(exc)
    validate(tree, sink_types=["MyEndEvent"])


def test_add_sink_type_global() -> None:
    tree = simple_tree()
    tree["end_event"]["type"] = "GlobalEndEvent_for_test"
    add_sink_type("GlobalEndEvent_for_test")
    validate(tree)
    with pytest.raises(ValueError):
        add_sink_type("ServiceActivity")


# ---- cycles --------------------------------------------------------------------------------------


def test_cycle_rejected_without_tolerance() -> None:
    exc = raises(CycleError, validate, tree_of(LOOP))
    assert str(exc).startswith("pipeline graph has circle")
    assert "A" in problem_ids(exc)


def test_cycle_allowed_with_tolerance() -> None:
    tree = tree_of(LOOP)
    validate(tree, cycle_tolerate=True)
    assert "converge_gateway_id" not in tree["gateways"]["EG"]


def test_back_edge_to_exclusive_gateway_itself_with_tolerance() -> None:
    tree = make_tree(
        {"S": "S", "EG": "EG", "A": "A", "B": "A", "CG": "CG", "E": "E"},
        [("S", "EG"), ("EG", "A"), ("EG", "B"), ("A", "CG"), ("B", "EG"), ("CG", "E")],
    )
    validate(tree, cycle_tolerate=True)
    assert tree["gateways"]["EG"]["converge_gateway_id"] == "CG"


def test_validate_graph_without_circle_returns_peer_dict() -> None:
    assert validate_graph_without_circle(simple_tree()) == {"result": True, "data": []}
    res = validate_graph_without_circle(tree_of(LOOP))
    assert res["result"] is False and res["message"] == "pipeline graph has circle"
    assert res["error_data"][0] == res["error_data"][-1]


def test_connection_and_cycle_problems_reported_together() -> None:
    tree = make_tree(
        {"S": "S", "A": "A", "EG": "EG", "B": "A", "Z": "A", "E": "E"},
        [("S", "A"), ("A", "EG"), ("EG", "A"), ("EG", "B"), ("B", "E"), ("Z", "E")],
    )
    exc = raises(ConnectionValidateError, validate, tree)
    assert "connection.in_degree" in problem_rules(exc) and "graph.cycle" in problem_rules(exc)


# ---- gateways ------------------------------------------------------------------------------------


def test_parallel_gets_converge_id_in_place() -> None:
    tree = tree_of(PARALLEL)
    validate(tree)
    assert tree["gateways"]["PG"]["converge_gateway_id"] == "CG"
    assert "converge_gateway_id" not in tree["gateways"]["CG"]


def test_conditional_parallel_gets_converge_id() -> None:
    nodes, edges = PARALLEL
    tree = make_tree({**nodes, "PG": "CPG"}, edges)
    validate(tree)
    assert tree["gateways"]["PG"]["converge_gateway_id"] == "CG"


def test_exclusive_with_converge_gets_converge_id() -> None:
    tree = tree_of(EXCLUSIVE_BLOCK)
    validate(tree)
    assert tree["gateways"]["EG"]["converge_gateway_id"] == "CG"


def test_dangling_exclusive_is_valid_and_gets_no_converge_id() -> None:
    tree = tree_of(DANGLING)
    validate(tree)
    assert "converge_gateway_id" not in tree["gateways"]["EG"]


def test_shared_converge() -> None:
    tree = tree_of(SHARED)
    validate(tree)
    assert tree["gateways"]["PG"]["converge_gateway_id"] == "CG"
    assert tree["gateways"]["EG"]["converge_gateway_id"] == "CG"


def test_nested_parallel_in_parallel() -> None:
    tree = tree_of(NESTED)
    validate(tree)
    assert tree["gateways"]["PG1"]["converge_gateway_id"] == "CG1"
    assert tree["gateways"]["PG2"]["converge_gateway_id"] == "CG2"


def test_exclusive_inside_parallel_running_to_end_is_rejected() -> None:
    nodes, edges = SHARED
    edges = [e for e in edges if e != ("C", "CG")] + [("C", "E")]
    exc = raises(ConvergeMatchError, validate, make_tree(nodes, edges))
    assert problem_ids(exc) == {"EG"}
    assert problem_rules(exc) == {"gateway.exclusive_in_parallel"}
    assert exc.gateway_id == "EG"


def test_converge_joining_two_parallel_gateways_nested() -> None:
    nodes = {"S": "S", "PG1": "PG", "PG2": "PG", "A": "A", "B": "A", "C": "A", "CG": "CG", "E": "E"}
    edges = [
        ("S", "PG1"),
        ("PG1", "PG2"),
        ("PG1", "C"),
        ("PG2", "A"),
        ("PG2", "B"),
        ("A", "CG"),
        ("B", "CG"),
        ("C", "CG"),
        ("CG", "E"),
    ]
    exc = raises(ConvergeMatchError, validate, make_tree(nodes, edges))
    assert "CG" in problem_ids(exc)
    assert "gateway.converge_shared_parallel" in problem_rules(exc)


def test_converge_joining_two_sibling_parallel_gateways() -> None:
    nodes = {
        "S": "S",
        "PG0": "PG",
        "PG1": "PG",
        "PG2": "PG",
        "A": "A",
        "B": "A",
        "C": "A",
        "D": "A",
        "CG": "CG",
        "E": "E",
    }
    edges = [
        ("S", "PG0"),
        ("PG0", "PG1"),
        ("PG0", "PG2"),
        ("PG1", "A"),
        ("PG1", "B"),
        ("PG2", "C"),
        ("PG2", "D"),
        ("A", "CG"),
        ("B", "CG"),
        ("C", "CG"),
        ("D", "CG"),
        ("CG", "E"),
    ]
    exc = raises(ConvergeMatchError, validate, make_tree(nodes, edges))
    assert "CG" in problem_ids(exc)


def test_parallel_branch_to_end_is_rejected() -> None:
    tree = make_tree(
        {"S": "S", "PG": "PG", "A": "A", "B": "A", "CG": "CG", "E": "E"},
        [("S", "PG"), ("PG", "A"), ("PG", "B"), ("A", "CG"), ("B", "E"), ("CG", "E")],
    )
    exc = raises(ConvergeMatchError, validate, tree)
    assert "PG" in problem_ids(exc)


def test_parallel_without_converge_is_rejected() -> None:
    tree = make_tree(
        {"S": "S", "PG": "PG", "A": "A", "B": "A", "E": "E"},
        [("S", "PG"), ("PG", "A"), ("PG", "B"), ("A", "E"), ("B", "E")],
    )
    exc = raises(ConvergeMatchError, validate, tree)
    assert "PG" in problem_ids(exc)


def test_exclusive_branches_reaching_different_converges() -> None:
    tree = make_tree(
        {"S": "S", "EG": "EG", "A": "A", "B": "A", "CG1": "CG", "C": "A", "CG2": "CG", "E": "E"},
        [
            ("S", "EG"),
            ("EG", "A"),
            ("EG", "B"),
            ("A", "CG1"),
            ("CG1", "C"),
            ("C", "CG2"),
            ("B", "CG2"),
            ("CG2", "E"),
        ],
    )
    exc = raises(ConvergeMatchError, validate, tree)
    assert problem_ids(exc) == {"EG"}
    assert problem_rules(exc) == {"gateway.exclusive_converge"}


def test_converge_reached_only_by_backward_flow_is_not_matched() -> None:
    # S -> CG -> A -> EG -> {B -> E, back to CG}: EG must not match CG (backward flow)
    tree = make_tree(
        {"S": "S", "CG": "CG", "A": "A", "EG": "EG", "B": "A", "E": "E"},
        [("S", "CG"), ("CG", "A"), ("A", "EG"), ("EG", "B"), ("EG", "CG"), ("B", "E")],
    )
    validate(tree, cycle_tolerate=True)
    assert "converge_gateway_id" not in tree["gateways"]["EG"]


def test_exclusive_in_parallel_looping_past_parallel_is_rejected() -> None:
    # S -> A -> PG -> {EG -> {back to A, CG}, B -> CG} -> E
    tree = make_tree(
        {"S": "S", "A": "A", "PG": "PG", "EG": "EG", "B": "A", "CG": "CG", "E": "E"},
        [
            ("S", "A"),
            ("A", "PG"),
            ("PG", "EG"),
            ("PG", "B"),
            ("EG", "A"),
            ("EG", "CG"),
            ("B", "CG"),
            ("CG", "E"),
        ],
    )
    exc = raises(ConvergeMatchError, validate, tree, cycle_tolerate=True)
    assert problem_ids(exc) & {"EG", "PG", "CG"}


def test_unreachable_gateway_cannot_compute_distance() -> None:
    nodes, edges = PARALLEL
    tree = make_tree({**nodes, "G": "EG", "X": "A"}, [*edges, ("G", "X"), ("X", "G")])
    exc = raises(ConvergeMatchError, validate, tree, cycle_tolerate=True)
    assert "G" in problem_ids(exc)
    assert "gateway.unreachable" in problem_rules(exc)


def test_activity_loop_under_tolerance_is_rejected() -> None:
    tree = make_tree(
        {"S": "S", "EG": "EG", "A": "A", "B": "A", "C": "A", "E": "E"},
        [("S", "EG"), ("EG", "A"), ("EG", "E"), ("A", "B"), ("B", "C"), ("C", "B")],
    )
    tree["activities"]["A"]["outgoing"] = "f_A_B"
    with pytest.raises(TreeInvalidException):
        validate(tree, cycle_tolerate=True)


def test_gateway_problems_in_two_pipelines_all_reported() -> None:
    sub = make_tree(
        {"S2": "S", "PG2": "PG", "A2": "A", "B2": "A", "CG2": "CG", "E2": "E"},
        [("S2", "PG2"), ("PG2", "A2"), ("PG2", "B2"), ("A2", "CG2"), ("B2", "E2"), ("CG2", "E2")],
        pid="SP",
    )
    tree = make_tree(
        {"S": "S", "PG": "PG", "A": "A", "B": "A", "CG": "CG", "SP": "SubProcess", "E": "E"},
        [("S", "PG"), ("PG", "A"), ("PG", "B"), ("A", "CG"), ("B", "E"), ("CG", "SP"), ("SP", "E")],
    )
    tree["activities"]["SP"]["pipeline"] = sub
    exc = raises(ConvergeMatchError, validate, tree)
    assert {"PG", "PG2"} <= problem_ids(exc)


def test_validate_gateways_public_returns_converged_map() -> None:
    tree = tree_of(SHARED)
    converged = validate_gateways(tree)
    assert set(converged["CG"]) == {"PG", "EG"}
    assert tree["gateways"]["PG"]["converge_gateway_id"] == "CG"


# ---- streams -------------------------------------------------------------------------------------


def test_flow_jumping_between_parallel_branches() -> None:
    tree = make_tree(
        {"S": "S", "PG": "PG", "A": "A", "EG": "EG", "B": "A", "X": "A", "CG": "CG", "E": "E"},
        [
            ("S", "PG"),
            ("PG", "EG"),
            ("PG", "B"),
            ("EG", "A"),
            ("EG", "X"),
            ("X", "B"),
            ("A", "CG"),
            ("B", "CG"),
            ("CG", "E"),
        ],
    )
    exc = raises(StreamValidateError, validate, tree)
    assert problem_ids(exc) == {"B"}
    assert exc.node_id == "B"


def test_stream_labels() -> None:
    labels = validate_stream(tree_of(NESTED))
    assert labels["S"] == labels["E"] == labels["PG1"] == labels["CG1"] == "main"
    assert labels["PG2"] == labels["CG2"] == "PG1_0"
    assert labels["C"] == "PG1_1"
    assert {labels["A"], labels["B"]} == {"PG2_0", "PG2_1"}


def test_unreachable_activity_is_a_stream_error() -> None:
    tree = make_tree(
        {"S": "S", "A": "A", "X": "A", "Y": "A", "E": "E"},
        [("S", "A"), ("A", "E"), ("X", "Y"), ("Y", "X")],
    )
    exc = raises(StreamValidateError, validate, tree, cycle_tolerate=True)
    assert problem_ids(exc) == {"X", "Y"}
    assert problem_rules(exc) == {"stream.unreachable"}


def test_validate_stream_public_raises() -> None:
    tree = make_tree(
        {"S": "S", "A": "A", "X": "A", "Y": "A", "E": "E"},
        [("S", "A"), ("A", "E"), ("X", "Y"), ("Y", "X")],
    )
    with pytest.raises(StreamValidateError):
        validate_stream(tree)


def test_exclusive_loop_inside_parallel_branch_is_fine() -> None:
    tree = make_tree(
        {"S": "S", "PG": "PG", "A": "A", "EG": "EG", "B": "A", "CG": "CG", "CG2": "CG", "E": "E"},
        [
            ("S", "PG"),
            ("PG", "A"),
            ("PG", "B"),
            ("A", "EG"),
            ("EG", "A"),
            ("EG", "CG2"),
            ("CG2", "CG"),
            ("B", "CG"),
            ("CG", "E"),
        ],
    )
    validate(tree, cycle_tolerate=True)
    assert tree["gateways"]["PG"]["converge_gateway_id"] == "CG"

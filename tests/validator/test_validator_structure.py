"""Structural pre-check (SPEC 3.1, rattan: extend): one test per rule, plus a malformed-input corpus."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vtrees import chain, make_tree, problem_ids, problem_rules, raises, simple_tree, with_subprocess

from rattan.errors import BadInputError, TreeInvalidException
from rattan.spec import TREE_SCHEMA_VERSION
from rattan.validator import validate_and_process_pipeline as validate


def test_valid_simple_tree_passes_and_normalises_in_place() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["incoming"] = "f_S_A"
    tree["end_event"]["incoming"] = "f_A_E"
    validate(tree)
    assert tree["activities"]["A"]["incoming"] == ["f_S_A"]
    assert tree["end_event"]["incoming"] == ["f_A_E"]
    assert tree["start_event"]["incoming"] == ""  # start event is not normalised (peer)
    assert tree["activities"]["A"]["outgoing"] == "f_A_E"  # outgoing is kept as written


def test_tree_invalid_is_bad_input() -> None:
    exc = raises(TreeInvalidException, validate, [])
    assert isinstance(exc, BadInputError)
    assert isinstance(exc, ValueError)


@pytest.mark.parametrize("key", ["id", "start_event", "end_event", "activities", "gateways", "flows"])
def test_required_top_level_key(key: str) -> None:
    tree = simple_tree()
    del tree[key]
    exc = raises(TreeInvalidException, validate, tree)
    assert "structure.required_key" in problem_rules(exc)


def test_container_wrong_type() -> None:
    tree = simple_tree()
    tree["gateways"] = []
    exc = raises(TreeInvalidException, validate, tree)
    assert problem_rules(exc) == {"structure.field_type"}


def test_flow_source_must_exist_in_same_tree() -> None:
    tree = simple_tree()
    tree["flows"]["f_S_A"]["source"] = "nowhere"
    exc = raises(TreeInvalidException, validate, tree)
    assert "f_S_A" in problem_ids(exc)
    assert "flow.endpoint" in problem_rules(exc)


def test_flow_target_in_nested_tree_is_rejected() -> None:
    sub = make_tree({"S2": "S", "A2": "A", "E2": "E"}, chain("S2", "A2", "E2"), pid="SP")
    tree = with_subprocess("p_root", "SP", sub)
    tree["flows"]["f_S_SP"]["target"] = "A2"  # a node of the nested tree
    exc = raises(TreeInvalidException, validate, tree)
    assert "f_S_SP" in problem_ids(exc)


def test_incoming_flow_must_exist() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["incoming"].append("f_ghost")
    exc = raises(TreeInvalidException, validate, tree)
    assert "A" in problem_ids(exc)
    assert "node.flow_missing" in problem_rules(exc)


def test_outgoing_flow_must_point_back_to_node() -> None:
    tree = simple_tree()
    tree["start_event"]["outgoing"] = "f_A_E"  # exists, but its source is A
    exc = raises(TreeInvalidException, validate, tree)
    assert "S" in problem_ids(exc)
    assert "node.flow_mismatch" in problem_rules(exc)


def test_flow_not_listed_by_its_nodes() -> None:
    tree = simple_tree()
    tree["flows"]["f_extra"] = {"id": "f_extra", "source": "A", "target": "E"}
    exc = raises(TreeInvalidException, validate, tree)
    assert "flow.unlisted" in problem_rules(exc)
    assert {"A", "E"} <= problem_ids(exc)


def test_flow_listed_twice() -> None:
    tree = simple_tree()
    tree["end_event"]["incoming"] = ["f_A_E", "f_A_E"]
    exc = raises(TreeInvalidException, validate, tree)
    assert "node.flow_duplicate" in problem_rules(exc)


def test_duplicate_node_id_across_subprocess() -> None:
    sub = make_tree({"S2": "S", "A": "A", "E2": "E"}, chain("S2", "A", "E2"), pid="SP")
    tree = make_tree({"S": "S", "A": "A", "SP": "SubProcess", "E": "E"}, chain("S", "A", "SP", "E"))
    tree["activities"]["SP"]["pipeline"] = sub
    exc = raises(TreeInvalidException, validate, tree)
    assert "A" in problem_ids(exc)
    assert "structure.duplicate_id" in problem_rules(exc)


def test_root_id_may_not_be_a_node_id() -> None:
    tree = simple_tree(pid="A")
    exc = raises(TreeInvalidException, validate, tree)
    assert "structure.duplicate_id" in problem_rules(exc)


def test_key_and_node_id_must_agree() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["id"] = "B"
    exc = raises(TreeInvalidException, validate, tree)
    assert "structure.id_mismatch" in problem_rules(exc)


@pytest.mark.parametrize("bad_id", ["", "x" * 34, 5, None])
def test_ids_must_be_non_empty_strings_of_at_most_33_chars(bad_id: Any) -> None:
    tree = simple_tree()
    tree["start_event"]["id"] = bad_id
    exc = raises(TreeInvalidException, validate, tree)
    assert "structure.id" in problem_rules(exc)


def test_id_of_33_chars_is_fine() -> None:
    tree = simple_tree(pid="p" + "0" * 32)
    validate(tree)


def test_long_pipeline_id_rejected() -> None:
    exc = raises(TreeInvalidException, validate, simple_tree(pid="p" * 40))
    assert "p" * 40 in problem_ids(exc)
    assert "33" in str(exc)


def test_subprocess_pipeline_id_must_equal_node_id() -> None:
    sub = make_tree({"S2": "S", "A2": "A", "E2": "E"}, chain("S2", "A2", "E2"), pid="other")
    tree = with_subprocess("p_root", "SP", sub)
    exc = raises(TreeInvalidException, validate, tree)
    assert "SP" in problem_ids(exc)
    assert "subprocess.pipeline_id" in problem_rules(exc)


def test_subprocess_needs_pipeline() -> None:
    sub = make_tree({"S2": "S", "A2": "A", "E2": "E"}, chain("S2", "A2", "E2"), pid="SP")
    tree = with_subprocess("p_root", "SP", sub)
    del tree["activities"]["SP"]["pipeline"]
    exc = raises(TreeInvalidException, validate, tree)
    assert "SP" in problem_ids(exc)


def _exclusive_tree() -> dict[str, Any]:
    return make_tree(
        {"S": "S", "EG": "EG", "A": "A", "B": "A", "CG": "CG", "E": "E"},
        [("S", "EG"), ("EG", "A"), ("EG", "B"), ("A", "CG"), ("B", "CG"), ("CG", "E")],
    )


def test_condition_keys_must_be_outgoing_flows() -> None:
    tree = _exclusive_tree()
    tree["gateways"]["EG"]["conditions"]["f_S_EG"] = {"evaluate": "True"}
    exc = raises(TreeInvalidException, validate, tree)
    assert "EG" in problem_ids(exc)
    assert "gateway.condition_flow" in problem_rules(exc)


def test_condition_needs_evaluate_string() -> None:
    tree = _exclusive_tree()
    tree["gateways"]["EG"]["conditions"]["f_EG_A"] = {"evaluate": 3}
    exc = raises(TreeInvalidException, validate, tree)
    assert "gateway.conditions" in problem_rules(exc)


def test_default_condition_must_be_outgoing_flow() -> None:
    tree = _exclusive_tree()
    tree["gateways"]["EG"]["default_condition"] = {"flow_id": "f_CG_E"}
    exc = raises(TreeInvalidException, validate, tree)
    assert "EG" in problem_ids(exc)
    assert "gateway.default_condition" in problem_rules(exc)


def test_default_condition_on_outgoing_flow_is_fine() -> None:
    tree = _exclusive_tree()
    tree["gateways"]["EG"]["default_condition"] = {"flow_id": "f_EG_B", "name": "ignored"}
    validate(tree)


@pytest.mark.parametrize(
    ("where", "bad_type"),
    [
        ("start_event", "StartEvent"),
        ("end_event", "EndEvent"),
        ("activity", "Task"),
        ("gateway", "XorGateway"),
    ],
)
def test_unknown_node_type(where: str, bad_type: str) -> None:
    tree = _exclusive_tree()
    node = {
        "start_event": tree["start_event"],
        "end_event": tree["end_event"],
        "activity": tree["activities"]["A"],
        "gateway": tree["gateways"]["EG"],
    }[where]
    node["type"] = bad_type
    exc = raises(TreeInvalidException, validate, tree)
    assert node["id"] in problem_ids(exc)
    assert "structure.node_type" in problem_rules(exc)


def test_start_event_type_in_activities_rejected() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["type"] = "EmptyStartEvent"
    exc = raises(TreeInvalidException, validate, tree)
    assert "A" in problem_ids(exc)


def test_activity_needs_component_code() -> None:
    tree = simple_tree()
    del tree["activities"]["A"]["component"]["code"]
    exc = raises(TreeInvalidException, validate, tree)
    assert "A" in problem_ids(exc)
    assert "activity.component" in problem_rules(exc)


def test_unknown_input_item_type_rejected() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["component"]["inputs"] = {"k": {"type": "magic", "value": 1}}
    exc = raises(TreeInvalidException, validate, tree)
    assert "A" in problem_ids(exc)
    assert "input.item" in problem_rules(exc)


def test_lazy_input_needs_custom_type() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["component"]["inputs"] = {"k": {"type": "lazy", "value": 1}}
    exc = raises(TreeInvalidException, validate, tree)
    assert "input.item" in problem_rules(exc)


def test_data_input_errors_name_the_pipeline() -> None:
    tree = simple_tree()
    tree["data"]["inputs"]["${x}"] = {"type": "splice", "value": None, "source_act": "A"}  # no source_key
    exc = raises(TreeInvalidException, validate, tree)
    assert "p_root" in problem_ids(exc)
    assert "data.input" in problem_rules(exc)


def test_schema_version_newer_is_rejected() -> None:
    tree = simple_tree()
    tree["schema_version"] = TREE_SCHEMA_VERSION + 1
    exc = raises(TreeInvalidException, validate, tree)
    assert "structure.schema_version" in problem_rules(exc)
    assert "upgrade" in str(exc)


def test_schema_version_current_is_fine() -> None:
    tree = simple_tree()
    tree["schema_version"] = TREE_SCHEMA_VERSION
    validate(tree)


def test_host_extension_keys_are_kept_and_ignored() -> None:
    tree = simple_tree()
    tree.update({"line": [], "location": [{"id": "A", "x": 1}], "constants": {}, "outputs": []})
    tree["activities"]["A"].update({"labels": [], "stage_name": "s", "auto_retry": {"enable": False}})
    tree["flows"]["f_S_A"]["anything"] = 1
    before = copy.deepcopy(tree)
    validate(tree)
    assert tree["location"] == before["location"]
    assert tree["activities"]["A"]["labels"] == [] and tree["activities"]["A"]["stage_name"] == "s"


def test_several_independent_problems_are_all_reported() -> None:
    tree = _exclusive_tree()
    tree["activities"]["A"]["component"]["code"] = ""
    tree["gateways"]["EG"]["default_condition"] = {"flow_id": "nope"}
    tree["flows"]["f_CG_E"]["target"] = "ghost"
    tree["activities"]["B"]["skippable"] = "yes"
    exc = raises(TreeInvalidException, validate, tree)
    assert {"A", "EG", "f_CG_E", "B"} <= problem_ids(exc)
    for p in exc.problems:
        assert p.rule and p.message
    assert exc.problems[0].node_name is not None or exc.problems[0].node_id
    assert str(exc).count("\n  - ") == len(exc.problems)


def test_problem_carries_node_name() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["component"]["code"] = None
    exc = raises(TreeInvalidException, validate, tree)
    (problem,) = exc.problems
    assert (problem.node_id, problem.node_name) == ("A", "name_A")


def test_structure_problems_do_not_mutate_the_tree() -> None:
    tree = simple_tree()
    tree["activities"]["A"]["incoming"] = "f_S_A"
    tree["activities"]["A"]["component"] = {}
    raises(TreeInvalidException, validate, tree)
    assert tree["activities"]["A"]["incoming"] == "f_S_A"


# ---- malformed-input corpus: every case must raise a TreeInvalidException subclass, nothing else ----


def _corpus() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = [
        ("none", None),
        ("list", []),
        ("string", "tree"),
        ("int", 3),
        ("empty dict", {}),
    ]

    def mutate(label: str, fn: Any) -> None:
        tree = simple_tree()
        fn(tree)
        cases.append((label, tree))

    mutate("missing start_event", lambda t: t.pop("start_event"))
    mutate("start_event None", lambda t: t.__setitem__("start_event", None))
    mutate("start_event list", lambda t: t.__setitem__("start_event", [t["start_event"]]))
    mutate("end_event None", lambda t: t.__setitem__("end_event", None))
    mutate("activities None", lambda t: t.__setitem__("activities", None))
    mutate("flows list", lambda t: t.__setitem__("flows", list(t["flows"].values())))
    mutate("flow None", lambda t: t["flows"].__setitem__("f_S_A", None))
    mutate("flow target nowhere", lambda t: t["flows"]["f_A_E"].__setitem__("target", "zzz"))
    mutate("flow target unhashable", lambda t: t["flows"]["f_A_E"].__setitem__("target", ["E"]))
    mutate("node None", lambda t: t["activities"].__setitem__("A", None))
    mutate("node int key", lambda t: t["activities"].__setitem__(7, {"id": 7}))
    mutate("id too long", lambda t: t["activities"]["A"].__setitem__("id", "a" * 40))
    mutate("type None", lambda t: t["activities"]["A"].__setitem__("type", None))
    mutate("type list", lambda t: t["activities"]["A"].__setitem__("type", ["ServiceActivity"]))
    mutate("incoming int", lambda t: t["activities"]["A"].__setitem__("incoming", 5))
    mutate("incoming list of dicts", lambda t: t["activities"]["A"].__setitem__("incoming", [{}]))
    mutate("outgoing None on start", lambda t: t["start_event"].__setitem__("outgoing", None))
    mutate("missing incoming", lambda t: t["activities"]["A"].pop("incoming"))
    mutate("name int", lambda t: t["activities"]["A"].__setitem__("name", 5))
    mutate("component list", lambda t: t["activities"]["A"].__setitem__("component", []))
    mutate("inputs list", lambda t: t["activities"]["A"]["component"].__setitem__("inputs", []))
    mutate("input item str", lambda t: t["activities"]["A"]["component"].__setitem__("inputs", {"k": "v"}))
    mutate(
        "input type unhashable",
        lambda t: t["activities"]["A"]["component"].__setitem__(
            "inputs", {"k": {"type": ["plain"], "value": 1}}
        ),
    )
    mutate("error_ignorable None", lambda t: t["activities"]["A"].__setitem__("error_ignorable", None))
    mutate("data list", lambda t: t.__setitem__("data", []))
    mutate("data inputs None item", lambda t: t["data"].__setitem__("inputs", {"${a}": None}))
    mutate("data outputs str", lambda t: t["data"].__setitem__("outputs", "${a}"))
    mutate(
        "source_act int",
        lambda t: t["data"].__setitem__(
            "inputs", {"${a}": {"type": "plain", "value": 1, "source_act": 3, "source_key": "k"}}
        ),
    )
    mutate("schema_version str", lambda t: t.__setitem__("schema_version", "1"))
    mutate("self loop", lambda t: _self_loop(t))
    mutate("start to end", lambda t: _start_to_end(t))
    mutate(
        "default_condition list", lambda t: _with_gateway_field(t, "default_condition", {"flow_id": ["x"]})
    )
    mutate("conditions list", lambda t: _with_gateway_field(t, "conditions", []))
    mutate("subprocess pipeline None", lambda t: _sub(t, None))
    mutate("subprocess pipeline list", lambda t: _sub(t, []))
    cyclic = simple_tree()
    _sub(cyclic, cyclic)  # a Python-level cycle: the subprocess contains the root dict itself
    cases.append(("cyclic python structure", cyclic))
    return cases


def _self_loop(t: dict[str, Any]) -> None:
    t["flows"]["f_A_A"] = {"id": "f_A_A", "source": "A", "target": "A"}
    t["activities"]["A"]["incoming"].append("f_A_A")
    t["activities"]["A"]["outgoing"] = ["f_A_E", "f_A_A"]


def _start_to_end(t: dict[str, Any]) -> None:
    t["activities"].clear()
    t["flows"] = {"f1": {"id": "f1", "source": "S", "target": "E"}}
    t["start_event"]["outgoing"] = "f1"
    t["end_event"]["incoming"] = ["f1"]


def _with_gateway_field(t: dict[str, Any], key: str, value: Any) -> None:
    t["gateways"]["G"] = {
        "id": "G",
        "type": "ExclusiveGateway",
        "incoming": [],
        "outgoing": [],
        key: value,
    }


def _sub(t: dict[str, Any], pipeline: Any) -> None:
    node = t["activities"]["A"]
    node["type"] = "SubProcess"
    node["pipeline"] = pipeline


CORPUS = _corpus()


@pytest.mark.parametrize(("label", "tree"), CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_input_raises_tree_invalid(label: str, tree: Any) -> None:
    with pytest.raises(TreeInvalidException) as info:
        validate(tree)
    assert info.value.problems, label


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 25

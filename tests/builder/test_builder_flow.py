"""Flow elements: chaining helpers, identity, constructors (SPEC 2.1)."""

from __future__ import annotations

import copy

import pytest

from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ExecutableEndEvent,
    ParallelGateway,
    ServiceActivity,
    SubProcess,
    Var,
)
from rattan.builder.data import Data, Params
from rattan.builder.flow import Element
from rattan.builder.utils import FancyDict


def test_default_id_prefix_and_length() -> None:
    for cls in (EmptyStartEvent, EmptyEndEvent, ServiceActivity, ParallelGateway, ConvergeGateway):
        elem = cls()
        assert elem.id.startswith("e")
        assert len(elem.id) == 33
        assert elem.name is None
        assert elem.outgoing == []
    assert EmptyStartEvent().id != EmptyStartEvent().id


def test_explicit_id_name_outgoing() -> None:
    end = EmptyEndEvent(id="e_end")
    act = ServiceActivity(id="e_act", name="act", outgoing=[end])
    assert (act.id, act.name, act.outgoing) == ("e_act", "act", [end])


def test_extend_returns_argument() -> None:
    start, act = EmptyStartEvent(), ServiceActivity()
    assert start.extend(act) is act
    assert start.outgoing == [act]


def test_connect_returns_self_and_keeps_order() -> None:
    gw, a, b, c = ParallelGateway(), ServiceActivity(), ServiceActivity(), ServiceActivity()
    assert gw.connect(a, b, c) is gw
    assert [e.id for e in gw.outgoing] == [a.id, b.id, c.id]


def test_to_returns_argument_unchanged() -> None:
    a, b = ServiceActivity(), ServiceActivity()
    assert a.to(b) is b
    assert a.outgoing == [] and b.outgoing == []


def test_tail_follows_first_successors() -> None:
    a, b, c, d = ServiceActivity(), ServiceActivity(), ServiceActivity(), ServiceActivity()
    assert a.tail() is a
    a.connect(b, d)
    b.extend(c)
    assert a.tail() is c


def test_converge_connects_every_branch_tail() -> None:
    gw, a1, a2, b, cg = (
        ParallelGateway(),
        ServiceActivity(),
        ServiceActivity(),
        ServiceActivity(),
        ConvergeGateway(),
    )
    gw.connect(a1, a2)
    a1.extend(b)
    assert gw.converge(cg) is cg
    assert b.outgoing == [cg]
    assert a2.outgoing == [cg]
    assert a1.outgoing == [b]


def test_eq_and_hash_by_id() -> None:
    a = ServiceActivity(id="e_same")
    b = ServiceActivity(id="e_same", name="other")
    c = ServiceActivity(id="e_other")
    assert a == b
    assert a != c
    assert hash(a) == hash(b)
    assert len({a, b, c}) == 2
    assert a != "e_same"


def test_repr() -> None:
    act = ServiceActivity(id="e_x", name="act_1")
    assert repr(act) == "<ServiceActivity act_1:e_x>"
    assert repr(ParallelGateway(id="e_p")) == "<ParallelGateway None:e_p>"


def test_types() -> None:
    assert EmptyStartEvent().type() == "EmptyStartEvent"
    assert EmptyEndEvent().type() == "EmptyEndEvent"
    assert ExecutableEndEvent(type="MyEndEvent").type() == "MyEndEvent"
    assert ServiceActivity().type() == "ServiceActivity"
    assert SubProcess().type() == "SubProcess"
    assert ParallelGateway().type() == "ParallelGateway"
    assert ExclusiveGateway().type() == "ExclusiveGateway"
    assert ConditionalParallelGateway().type() == "ConditionalParallelGateway"
    assert ConvergeGateway().type() == "ConvergeGateway"
    with pytest.raises(TypeError):
        Element().type()


def test_executable_end_event_kwargs() -> None:
    end = ExecutableEndEvent(type="MyEnd", id="e_end", name="finish")
    assert (end.id, end.name, end.type()) == ("e_end", "finish", "MyEnd")


def test_service_activity_defaults_and_positional_element_args() -> None:
    act = ServiceActivity("code")
    assert act.component == {"code": "code", "inputs": {}}
    assert (act.error_ignorable, act.timeout, act.skippable, act.retryable) == (False, None, True, True)
    act2 = ServiceActivity("c", True, 5, False, False, "e_pos", "name_pos")
    assert (act2.error_ignorable, act2.timeout, act2.skippable, act2.retryable) == (True, 5, False, False)
    assert (act2.id, act2.name) == ("e_pos", "name_pos")


def test_component_inputs_attribute_and_item_access() -> None:
    act = ServiceActivity(component_code="example_component")
    act.component.inputs.p1 = Var(type=Var.PLAIN, value=1)
    act.component.inputs["p2"] = Var(type=Var.LAZY, value="abc", custom_type="upper_case")
    act.component.inputs.p3 = {"type": "splice", "value": "${x}"}
    assert act.component.code == "example_component"
    assert act.component_dict() == {
        "code": "example_component",
        "inputs": {
            "p1": {"type": "plain", "value": 1},
            "p2": {"type": "lazy", "value": "abc", "custom_type": "upper_case"},
            "p3": {"type": "splice", "value": "${x}"},
        },
    }
    assert "version" not in act.component_dict()


def test_fancy_dict() -> None:
    d = FancyDict({"a": 1})
    assert d.a == 1
    d.b = 2
    assert d == {"a": 1, "b": 2}
    del d.a
    assert d == {"b": 2}
    with pytest.raises(AttributeError):
        _ = d.missing
    with pytest.raises(AttributeError):
        del d.missing
    assert copy.deepcopy(d) == d


def test_subprocess_fields() -> None:
    start = EmptyStartEvent()
    data = Data()
    params = Params({"${a}": Var(type=Var.PLAIN, value=1)})
    sub = SubProcess(start=start, data=data, params=params, global_outputs={"k": "v"}, name="sub")
    assert sub.start is start and sub.data is data and sub.params is params
    assert sub.global_outputs == {"k": "v"}
    assert sub.name == "sub"
    assert SubProcess().params == {}


def test_condition_gateway_fields() -> None:
    eg = ExclusiveGateway(conditions={0: "True"}, default_condition_outgoing=1, name="eg")
    eg.add_condition(1, "False")
    assert eg.conditions == {0: "True", 1: "False"}
    assert eg.default_condition_outgoing == 1
    assert eg.name == "eg"
    cpg = ConditionalParallelGateway()
    assert cpg.conditions == {} and cpg.default_condition_outgoing is None


def test_the_default_branch_of_a_condition_gateway_needs_no_condition() -> None:
    from rattan.builder import ConditionalParallelGateway, ConvergeGateway, ExclusiveGateway, build_tree

    for gateway_type in (ExclusiveGateway, ConditionalParallelGateway):
        a, b, c = (ServiceActivity(component_code="x") for _ in range(3))
        gw = gateway_type(conditions={0: "${x} > 5", 1: "${x} > 10"}, default_condition_outgoing=2)
        start, converge, end = EmptyStartEvent(), ConvergeGateway(), EmptyEndEvent()
        start.extend(gw).connect(a, b, c).to(gw).converge(converge).extend(end)
        tree = build_tree(start)
        node = tree["gateways"][gw.id]
        flows = node["outgoing"]
        assert node["conditions"] == {
            flows[0]: {"evaluate": "${x} > 5"},
            flows[1]: {"evaluate": "${x} > 10"},
        }
        assert node["default_condition"] == {"flow_id": flows[2]}

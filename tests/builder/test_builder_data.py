"""Data and variable classes: exact ``to_dict()`` shapes (SPEC 2.4)."""

from __future__ import annotations

from rattan.builder import (
    Data,
    DataInput,
    InitializedRewritableNodeOutput,
    NodeOutput,
    Params,
    RewritableNodeOutput,
    Var,
)


def test_var_constants() -> None:
    assert (Var.PLAIN, Var.SPLICE, Var.LAZY) == ("plain", "splice", "lazy")


def test_var_to_dict() -> None:
    assert Var(type=Var.PLAIN, value="v").to_dict() == {"type": "plain", "value": "v"}
    assert Var(type=Var.SPLICE, value="${a}").to_dict() == {"type": "splice", "value": "${a}"}
    assert Var(Var.PLAIN, [1, 2], custom_type="ignored").to_dict() == {"type": "plain", "value": [1, 2]}
    assert Var(type=Var.LAZY, value="abc", custom_type="upper_case").to_dict() == {
        "type": "lazy",
        "value": "abc",
        "custom_type": "upper_case",
    }
    assert Var(type=Var.LAZY, value="abc").to_dict() == {"type": "lazy", "value": "abc", "custom_type": None}


def test_data_input_to_dict() -> None:
    assert DataInput(type=Var.PLAIN, value="default_value").to_dict() == {
        "type": "plain",
        "value": "default_value",
        "is_param": True,
    }
    assert DataInput(Var.LAZY, "x", "upper_case").to_dict() == {
        "type": "lazy",
        "value": "x",
        "custom_type": "upper_case",
        "is_param": True,
    }


def test_node_output_to_dict() -> None:
    out = NodeOutput(type=Var.SPLICE, source_act="e_a1", source_key="input_a")
    assert out.to_dict() == {"type": "splice", "value": None, "source_act": "e_a1", "source_key": "input_a"}
    # the value is forced to None; the type defaults to plain
    out2 = NodeOutput(source_act="e_a1", source_key="param_1", value="ignored")
    assert out2.to_dict() == {"type": "plain", "value": None, "source_act": "e_a1", "source_key": "param_1"}


def test_rewritable_node_output_to_dict() -> None:
    sources = [{"source_act": "e_a1", "source_key": "k"}, {"source_act": "e_a2", "source_key": "k"}]
    out = RewritableNodeOutput(source_act=sources, type=Var.SPLICE, value="")
    assert out.to_dict() == {"type": "splice", "value": None, "source_act": sources}


def test_initialized_rewritable_node_output_to_dict() -> None:
    sources = [{"source_act": "e_a1", "source_key": "k"}]
    out = InitializedRewritableNodeOutput(source_act=sources, type=Var.PLAIN, value=7)
    assert out.to_dict() == {"type": "plain", "value": 7, "source_act": sources, "need_initialization": True}


def test_data_to_dict() -> None:
    data = Data()
    assert data.to_dict() == {"inputs": {}, "outputs": [], "pre_render_keys": []}
    data.inputs["${a}"] = Var(type=Var.PLAIN, value=0)
    data.inputs["${raw}"] = {"type": "splice", "value": "${a}", "whatever": 1}
    data.outputs.append("${a}")
    assert data.to_dict() == {
        "inputs": {
            "${a}": {"type": "plain", "value": 0},
            "${raw}": {"type": "splice", "value": "${a}", "whatever": 1},
        },
        "outputs": ["${a}"],
        "pre_render_keys": [],
    }
    data2 = Data(
        inputs={"${now}": Var(type=Var.LAZY, value="", custom_type="current_time")},
        outputs=["${now}"],
        pre_render_keys=["${now}"],
    )
    assert data2.to_dict() == {
        "inputs": {"${now}": {"type": "lazy", "value": "", "custom_type": "current_time"}},
        "outputs": ["${now}"],
        "pre_render_keys": ["${now}"],
    }


def test_data_inputs_is_attribute_dict() -> None:
    data = Data()
    data.inputs.plain_key = Var(type=Var.PLAIN, value=1)
    assert data.to_dict()["inputs"] == {"plain_key": {"type": "plain", "value": 1}}


def test_params_to_dict() -> None:
    assert Params().to_dict() == {}
    params = Params(
        {
            "${sub_constant_1}": Var(type=Var.SPLICE, value="${constant_1}"),
            "${raw}": {"type": "plain", "value": 3},
        }
    )
    assert params.to_dict() == {
        "${sub_constant_1}": {"type": "splice", "value": "${constant_1}"},
        "${raw}": {"type": "plain", "value": 3},
    }

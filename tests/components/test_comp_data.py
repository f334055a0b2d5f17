"""DataObject (SPEC 8.2)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from rattan.components import DataObject, FancyDict
from rattan.errors import BadInputError


def test_attribute_and_item_access() -> None:
    d = DataObject({"x": 1}, {"y": 2})
    assert d.inputs.x == 1 and d.inputs["x"] == 1
    assert d.outputs.y == 2
    d.outputs.z = 3
    assert d.outputs["z"] == 3
    del d.outputs.z
    assert "z" not in d.outputs
    with pytest.raises(AttributeError):
        _ = d.inputs.missing
    with pytest.raises(AttributeError):
        del d.inputs.missing


def test_getters_and_setters() -> None:
    d = DataObject({"a": 1})
    assert d.get_inputs() is d.inputs and d.get_outputs() is d.outputs
    assert d.get_one_of_inputs("a") == 1
    assert d.get_one_of_inputs("b", "dflt") == "dflt"
    assert d.get_one_of_outputs("b") is None
    assert d.set_outputs("k", [1]) is True
    assert d.update_outputs({"m": 2}) is True
    assert d.outputs == {"k": [1], "m": 2}
    d.reset_outputs({"only": 1})
    assert d.outputs == {"only": 1} and isinstance(d.outputs, FancyDict)
    d.override_inputs({"new": 1})
    d.override_outputs({"o": 1})
    assert d.inputs.new == 1 and d.outputs.o == 1


def test_copies_are_deep() -> None:
    d = DataObject({"a": {"b": [1]}}, {"c": {"d": 1}})
    ic, oc = d.inputs_copy(), d.outputs_copy()
    ic.a["b"].append(2)
    oc.c["d"] = 2
    assert d.inputs.a == {"b": [1]} and d.outputs.c == {"d": 1}
    assert isinstance(ic, FancyDict) and ic.a == {"b": [1, 2]}


def test_constructor_is_shallow() -> None:
    nested = {"n": 1}
    raw = {"a": nested}
    d = DataObject(raw)
    assert d.inputs is not raw and d.inputs["a"] is nested
    fancy = FancyDict(raw)
    assert DataObject(fancy).inputs is fancy
    assert DataObject({}).outputs == {}


def test_rejects_non_dict() -> None:
    with pytest.raises(BadInputError):
        DataObject([1, 2])  # type: ignore[arg-type]


def test_serializer_and_pickle() -> None:
    d = DataObject({"a": 1}, {"b": [True]})
    assert json.loads(d.serializer()) == {"inputs": {"a": 1}, "outputs": {"b": [True]}}
    again = pickle.loads(pickle.dumps(d))
    assert again == d and isinstance(again.inputs, FancyDict)
    assert copy.deepcopy(d) == d
    fd = pickle.loads(pickle.dumps(FancyDict(x=1)))
    assert fd.x == 1 and isinstance(fd, FancyDict)
    assert "DataObject" in repr(d)

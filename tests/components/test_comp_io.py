"""IO item schemas (SPEC 8.4)."""

from __future__ import annotations

from rattan.io import (
    ArrayItemSchema,
    BooleanItemSchema,
    FloatItemSchema,
    InputItem,
    IntItemSchema,
    ObjectItemSchema,
    OutputItem,
    StringItemSchema,
)


def test_simple_schema_shapes() -> None:
    assert IntItemSchema(description="i").as_dict() == {"type": "int", "description": "i", "enum": []}
    assert StringItemSchema("s", enum=["a"]).as_dict() == {
        "type": "string",
        "description": "s",
        "enum": ["a"],
    }
    assert FloatItemSchema("f").as_dict()["type"] == "float"
    assert BooleanItemSchema("b").as_dict()["type"] == "boolean"


def test_nested_schema_shapes() -> None:
    arr = ArrayItemSchema(item_schema=IntItemSchema("i"), description="arr")
    obj = ObjectItemSchema(property_schemas={"a": arr, "s": StringItemSchema("s")}, description="obj")
    assert obj.as_dict() == {
        "type": "object",
        "description": "obj",
        "enum": [],
        "properties": {
            "a": {
                "type": "array",
                "description": "arr",
                "enum": [],
                "items": {"type": "int", "description": "i", "enum": []},
            },
            "s": {"type": "string", "description": "s", "enum": []},
        },
    }


def test_items_peer_keyword_form() -> None:
    item = InputItem(
        name="A", key="a", type="string", schema=StringItemSchema(description="d"), required=False
    )
    assert item.as_dict() == {
        "name": "A",
        "key": "a",
        "type": "string",
        "schema": {"type": "string", "description": "d", "enum": []},
        "required": False,
    }
    assert InputItem(name="B", key="b", type="int").as_dict()["required"] is True
    assert OutputItem(name="O", key="o", type="int").as_dict() == {
        "name": "O",
        "key": "o",
        "type": "int",
        "schema": {},
    }


def test_validate() -> None:
    assert IntItemSchema("i").validate(1) == []
    assert IntItemSchema("i").validate(True) != []
    assert IntItemSchema("i").validate("1") == ["$: expected int, got str"]
    assert FloatItemSchema("f").validate(1) == []
    assert BooleanItemSchema("b").validate(True) == []
    assert StringItemSchema("s", enum=["a"]).validate("b") == ["$: 'b' is not one of ['a']"]
    arr = ArrayItemSchema(IntItemSchema("i"), "a")
    assert arr.validate([1, "x"]) == ["$[1]: expected int, got str"]
    assert arr.validate({}) == ["$: expected array, got dict"]
    obj = ObjectItemSchema({"n": IntItemSchema("n")}, "o")
    assert obj.validate({"n": "x", "extra": 1}) == ["$.n: expected int, got str"]
    assert obj.validate({}) == []
    assert obj.validate(3) == ["$: expected object, got int"]
    assert OutputItem(name="o", key="o", type="int").validate("x") == ["o: expected int, got str"]
    assert OutputItem(name="o", key="o", type="object").validate("x") == []
    assert InputItem(name="o", key="o", type="x", schema=IntItemSchema("i")).validate(1) == []

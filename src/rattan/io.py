"""IO item schemas: the descriptive input / output formats of a service.

The shapes and ``as_dict()`` output are bamboo's (``pipeline.core.flow.io``). bamboo only
describes data; rattan adds ``validate(value)``, which the engine applies to a step's outputs when
``Settings.validate_io_schemas`` is on.

Signature detail: bamboo's ``InputItem`` takes ``required`` as its *first* positional
parameter, so portable code passes everything by keyword - which this signature accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ArrayItemSchema",
    "BooleanItemSchema",
    "DataItem",
    "FloatItemSchema",
    "InputItem",
    "IntItemSchema",
    "ItemSchema",
    "ObjectItemSchema",
    "OutputItem",
    "SimpleItemSchema",
    "StringItemSchema",
]


class ItemSchema:
    """Base of all schemas.

    Args:
        description: free text shown to users.
        enum: allowed values; ``[]`` (the default) allows any value.
    """

    type: str = ""

    def __init__(self, description: str, enum: Sequence[Any] | None = None) -> None:
        self.description = description
        self.enum: list[Any] = list(enum) if enum else []

    def as_dict(self) -> dict[str, Any]:
        """Return ``{"type", "description", "enum"}``."""
        return {"type": self.type, "description": self.description, "enum": self.enum}

    def validate(self, value: Any, path: str = "$") -> list[str]:
        """Check ``value`` against the schema.

        Args:
            value: the runtime value.
            path: the location used in messages (``$`` is the value itself).

        Returns:
            One message per problem; empty when the value conforms.
        """
        problems = self._check_type(value, path)
        if not problems and self.enum and value not in self.enum:
            problems.append(f"{path}: {value!r} is not one of {self.enum!r}")
        return problems

    def _check_type(self, value: Any, path: str) -> list[str]:
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"


class SimpleItemSchema(ItemSchema):
    """A schema for a scalar value."""

    _python_types: tuple[type, ...] = ()

    def _check_type(self, value: Any, path: str) -> list[str]:
        if isinstance(value, bool) and bool not in self._python_types:
            return [f"{path}: expected {self.type}, got boolean"]
        if not isinstance(value, self._python_types):
            return [f"{path}: expected {self.type}, got {type(value).__name__}"]
        return []


class IntItemSchema(SimpleItemSchema):
    """An integer (``"int"``)."""

    type = "int"
    _python_types = (int,)


class StringItemSchema(SimpleItemSchema):
    """A string (``"string"``)."""

    type = "string"
    _python_types = (str,)


class FloatItemSchema(SimpleItemSchema):
    """A number (``"float"``); integers are accepted."""

    type = "float"
    _python_types = (int, float)


class BooleanItemSchema(SimpleItemSchema):
    """A boolean (``"boolean"``)."""

    type = "boolean"
    _python_types = (bool,)


class ArrayItemSchema(ItemSchema):
    """A list whose items all follow ``item_schema`` (``"array"``).

    Args:
        item_schema: the schema of every item.
        description: free text.
        enum: allowed values.
    """

    type = "array"

    def __init__(self, item_schema: ItemSchema, description: str, enum: Sequence[Any] | None = None) -> None:
        super().__init__(description, enum)
        self.item_schema = item_schema

    def as_dict(self) -> dict[str, Any]:
        """Return the base shape plus ``items``."""
        result = super().as_dict()
        result["items"] = self.item_schema.as_dict()
        return result

    def _check_type(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, list | tuple):
            return [f"{path}: expected array, got {type(value).__name__}"]
        problems: list[str] = []
        for index, item in enumerate(value):
            problems.extend(self.item_schema.validate(item, f"{path}[{index}]"))
        return problems


class ObjectItemSchema(ItemSchema):
    """A dict whose listed properties follow their schemas (``"object"``).

    Properties not listed are allowed; listed properties may be absent.

    Args:
        property_schemas: property name → schema.
        description: free text.
        enum: allowed values.
    """

    type = "object"

    def __init__(
        self,
        property_schemas: Mapping[str, ItemSchema],
        description: str,
        enum: Sequence[Any] | None = None,
    ) -> None:
        super().__init__(description, enum)
        self.property_schemas: dict[str, ItemSchema] = dict(property_schemas)

    def as_dict(self) -> dict[str, Any]:
        """Return the base shape plus ``properties``."""
        result = super().as_dict()
        result["properties"] = {key: schema.as_dict() for key, schema in self.property_schemas.items()}
        return result

    def _check_type(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, Mapping):
            return [f"{path}: expected object, got {type(value).__name__}"]
        problems: list[str] = []
        for key, schema in self.property_schemas.items():
            if key in value:
                problems.extend(schema.validate(value[key], f"{path}.{key}"))
        return problems


_TYPE_SCHEMAS: dict[str, type[SimpleItemSchema]] = {
    "int": IntItemSchema,
    "string": StringItemSchema,
    "float": FloatItemSchema,
    "boolean": BooleanItemSchema,
}


class DataItem:
    """One described input or output of a service.

    Args:
        name: display name.
        key: the key in ``data.inputs`` / ``data.outputs``.
        type: a type string (``"string"``, ``"int"``, ``"object"``, ...).
        schema: an optional ``ItemSchema``.
    """

    def __init__(self, name: str, key: str, type: str, schema: ItemSchema | None = None) -> None:
        self.name = name
        self.key = key
        self.type = type
        self.schema = schema

    def as_dict(self) -> dict[str, Any]:
        """Return ``{"name", "key", "type", "schema"}`` (``schema`` is ``{}`` when absent)."""
        return {
            "name": self.name,
            "key": self.key,
            "type": self.type,
            "schema": self.schema.as_dict() if self.schema is not None else {},
        }

    def validate(self, value: Any) -> list[str]:
        """Check ``value`` against the schema, or against ``type`` when it is a scalar type string.

        Returns:
            One message per problem, prefixed by the item key; empty when the value conforms.
        """
        if self.schema is not None:
            return self.schema.validate(value, self.key)
        schema_cls = _TYPE_SCHEMAS.get(self.type)
        if schema_cls is None:
            return []
        return schema_cls("").validate(value, self.key)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, type={self.type!r})"


class InputItem(DataItem):
    """A described input. ``as_dict()`` adds ``required``.

    Args:
        name: display name.
        key: the key in ``data.inputs``.
        type: a type string.
        schema: an optional ``ItemSchema``.
        required: whether the input must be given.
    """

    def __init__(
        self,
        name: str,
        key: str,
        type: str,
        schema: ItemSchema | None = None,
        required: bool = True,
    ) -> None:
        super().__init__(name=name, key=key, type=type, schema=schema)
        self.required = required

    def as_dict(self) -> dict[str, Any]:
        """Return the base shape plus ``required``."""
        result = super().as_dict()
        result["required"] = self.required
        return result


class OutputItem(DataItem):
    """A described output."""

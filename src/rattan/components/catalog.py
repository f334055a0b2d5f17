"""What a registry holds, described for people and tools: one entry per component ``(code,
version)`` with its metadata, its ``inputs_format()`` / ``outputs_format()`` and their JSON Schema.

``Engine.list_components()``, ``rattan.api.list_components`` and the ``rattan components`` command
print these entries. The JSON Schema (draft 2020-12) of a component's inputs or outputs is an
object with one property per item key, built from the item's schema (``rattan.io``) or, when it
has none, from its type string:

============================  ===========
item type (or schema type)    JSON Schema
============================  ===========
``int``, ``integer``          ``integer``
``float``, ``number``         ``number``
``string``, ``str``           ``string``
``boolean``, ``bool``         ``boolean``
``array``, ``list``           ``array`` (``items`` from an ``ArrayItemSchema``)
``object``, ``dict``          ``object`` (``properties`` from an ``ObjectItemSchema``)
anything else                 no ``type``: any value (the type string is kept as ``x-rattan-type``)
============================  ===========

The item's name becomes ``title``, the schema's description ``description``, a non-empty ``enum``
``enum``; inputs with ``required=True`` are listed in ``required``. Object schemas allow other
properties, as ``ObjectItemSchema`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rattan.components.builtin import BUILTIN_REGISTRY
from rattan.errors import BadInputError, ComponentNotExistException

if TYPE_CHECKING:
    from rattan.components.component import Component
    from rattan.components.registry import Registry

__all__ = ["JSON_SCHEMA_DIALECT", "JSON_TYPES", "component_info", "items_json_schema", "list_components"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: rattan / bamboo type names -> JSON Schema types (names in no row describe any value).
JSON_TYPES: dict[str, str] = {
    "int": "integer",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "string": "string",
    "str": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
}

_SCHEDULE = {1: "callback", 2: "multiple_callback", 3: "poll"}  # ScheduleType values


def _type_schema(type_name: str) -> dict[str, Any]:
    json_type = JSON_TYPES.get(type_name)
    return {"type": json_type} if json_type is not None else {"x-rattan-type": type_name}


def _schema(item_schema: Mapping[str, Any]) -> dict[str, Any]:
    """One ``ItemSchema.as_dict()`` as JSON Schema."""
    out = _type_schema(str(item_schema.get("type", "")))
    if item_schema.get("description"):
        out["description"] = item_schema["description"]
    if item_schema.get("enum"):
        out["enum"] = list(item_schema["enum"])
    if isinstance(item_schema.get("items"), Mapping):
        out["items"] = _schema(item_schema["items"])
    if isinstance(item_schema.get("properties"), Mapping):
        out["properties"] = {key: _schema(value) for key, value in item_schema["properties"].items()}
    return out


def items_json_schema(items: list[dict[str, Any]], title: str = "") -> dict[str, Any]:
    """The JSON Schema of an ``inputs_format()`` or ``outputs_format()`` list (see the module doc)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for item in items:
        schema = item.get("schema") or {}
        prop = _schema(schema) if schema else _type_schema(str(item.get("type", "")))
        if item.get("name"):
            prop = {"title": item["name"], **prop}
        properties[item["key"]] = prop
        if item.get("required"):
            required.append(item["key"])
    out: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "type": "object"}
    if title:
        out["title"] = title
    out["properties"] = properties
    if required:
        out["required"] = required
    return out


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def component_info(cls: type[Component], versions: list[str], builtin: bool = False) -> dict[str, Any]:
    """One listing entry for the component class ``cls`` (``versions``: all of its code's).

    Raises:
        BadInputError: the service's ``inputs_format()`` / ``outputs_format()`` raised (named).
    """
    what = f"component {cls.code!r} version {cls.version!r} ({_path(cls)})"
    try:
        inputs, outputs = cls.inputs_format(), cls.outputs_format()
        schedule = cls.bound_service().schedule_type()
    except Exception as exc:
        raise BadInputError(f"{what}: describing its service failed: {exc!r}") from exc
    return {
        "code": cls.code,
        "version": cls.version,
        "versions": versions,
        "name": cls.name,
        "group_name": cls.group_name,
        "group_icon": cls.group_icon,
        "desc": cls.desc,
        "is_default_version": bool(cls.is_default_version),
        "class": _path(cls),
        "service": _path(cls.bound_service),
        "schedule": _SCHEDULE.get(int(schedule)) if schedule is not None else None,
        "builtin": builtin,
        "inputs": inputs,
        "outputs": outputs,
        "inputs_schema": items_json_schema(inputs, f"{cls.code} {cls.version} inputs"),
        "outputs_schema": items_json_schema(outputs, f"{cls.code} {cls.version} outputs"),
    }


def list_components(
    registry: Registry, *, include_builtin: bool = True, code: str | None = None, version: str | None = None
) -> list[dict[str, Any]]:
    """Describe every component of ``registry`` (and, with ``include_builtin``, the built-in
    examples it does not shadow), sorted by code and version; only ``code`` (and ``version``)
    when given.

    Raises:
        ComponentNotExistException: ``code`` (or ``code`` at ``version``) is not registered.
        BadInputError: ``code`` or ``version`` is not a non-empty string.
    """
    wrong = [
        f"{name} must be a non-empty str or None, got {value!r}"
        for name, value in (("code", code), ("version", version))
        if value is not None and (not isinstance(value, str) or not value)
    ]
    if wrong:
        raise BadInputError("list_components: " + "; ".join(wrong))
    own = {(cls.code, cls.version): cls for cls in registry.components()}
    builtins = BUILTIN_REGISTRY.components() if include_builtin else []
    extra = {(c.code, c.version): c for c in builtins if (c.code, c.version) not in own}
    found = sorted(
        (key, cls, key in extra)
        for key, cls in {**own, **extra}.items()
        if (code is None or key[0] == code) and (version is None or key[1] == version)
    )
    all_keys = [*own, *extra]
    if code is not None and not found:
        versions = sorted(v for c, v in all_keys if c == code)
        if versions:
            raise ComponentNotExistException(
                f"component {code!r} has no version {version!r} (its versions: {', '.join(versions)})"
            )
        known = sorted({c for c, _ in all_keys})
        raise ComponentNotExistException(
            f"component {code!r} is not registered (registered codes: {', '.join(known) or 'none'});"
            " import the module that defines it"
        )
    return [
        component_info(cls, sorted(v for c, v in all_keys if c == key[0]), builtin)
        for key, cls, builtin in found
    ]

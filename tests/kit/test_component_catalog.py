"""Component management: several versions of one code side by side, duplicate registration, the
listing (``Engine.list_components``, ``api.list_components``), the JSON Schema of a component's
inputs and outputs, and the ``rattan components`` command with modules and entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree
from rattan.components.catalog import items_json_schema
from rattan.errors import ComponentConflictError, ComponentNotExistException
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

pytestmark = pytest.mark.timeout(60)

registry = rattan.Registry("catalog-tests")


class DoubleV1(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("result", data.inputs.n * 2)
        return True

    def inputs_format(self) -> list[Any]:
        return [InputItem(name="number", key="n", type="int")]

    def outputs_format(self) -> list[Any]:
        return [OutputItem(name="doubled", key="result", type="int")]


class DoubleV2(DoubleV1):
    """2.0 also says how it got there."""

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("result", data.inputs.n * 2)
        data.set_outputs("how", f"{data.inputs.n} + {data.inputs.n}")
        return True

    def outputs_format(self) -> list[Any]:
        return [*super().outputs_format(), OutputItem(name="how", key="how", type="string")]


class Double1(rattan.Component, registry=registry):
    name, code, version, bound_service = "double", "double", "1.0", DoubleV1


class Double2(rattan.Component, registry=registry):
    name, code, version, bound_service = "double", "double", "2.0", DoubleV2
    desc = "doubles, and explains"


def test_two_versions_of_one_code_run_side_by_side(tmp_path: Path) -> None:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    one = ServiceActivity(component_code="double", version="1.0")
    two = ServiceActivity(component_code="double", version="2.0")
    for act in (one, two):
        act.component.inputs.n = Var(type=Var.PLAIN, value=21)
    start.extend(one).extend(two).extend(end)
    tree = build_tree(start)
    with rattan.Engine(str(tmp_path / "v.db"), components=registry) as engine:
        engine.run_pipeline(tree)
        assert engine.wait_pipeline(tree["id"], 10)["state"] == "FINISHED"
        assert engine.get_execution_data_outputs(one.id) == {
            "result": 42,
            "_result": True,
            "_loop": 1,
            "_inner_loop": 1,
        }
        assert engine.get_execution_data_outputs(two.id)["how"] == "21 + 21"


def test_a_second_class_under_the_same_code_and_version_is_refused_by_name() -> None:
    with pytest.raises(ComponentConflictError) as refused:

        class Impostor(rattan.Component, registry=registry):
            name, code, version, bound_service = "double", "double", "1.0", DoubleV2

    assert str(refused.value) == (
        f"component 'double' '1.0' is already registered by {__name__}.Double1; "
        f"{__name__}.test_a_second_class_under_the_same_code_and_version_is_refused_by_name.<locals>.Impostor"
        " claims it too (set __replace__ = True or register(cls, replace=True) to replace it)"
    )
    assert registry.get_component_class("double", "1.0") is Double1
    assert registry.codes() == ["double"] and registry.component_list() == [Double1, Double2]


def test_the_listing_describes_every_version() -> None:
    with rattan.Engine(":memory:", components=registry, start=False) as engine:
        entries = engine.list_components()
        assert [(e["code"], e["version"], e["builtin"]) for e in entries] == [
            ("double", "1.0", False),
            ("double", "2.0", False),
            ("example_component", "legacy", True),
            ("pipe_example_component", "legacy", True),
        ]
        two = entries[1]
        assert {
            k: v for k, v in two.items() if k not in ("inputs", "outputs", "inputs_schema", "outputs_schema")
        } == {
            "code": "double",
            "version": "2.0",
            "versions": ["1.0", "2.0"],
            "name": "double",
            "group_name": "Test_Component_Catalog",
            "group_icon": "",
            "desc": "doubles, and explains",
            "is_default_version": False,
            "class": f"{__name__}.Double2",
            "service": f"{__name__}.DoubleV2",
            "schedule": None,
            "builtin": False,
        }
        assert two["inputs"] == [
            {"name": "number", "key": "n", "type": "int", "schema": {}, "required": True}
        ]
        assert [item["key"] for item in two["outputs"]] == [
            "result",
            "how",
            "_result",
            "_loop",
            "_inner_loop",
        ]
        assert two["inputs_schema"] == {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "title": "double 2.0 inputs",
            "properties": {"n": {"title": "number", "type": "integer"}},
            "required": ["n"],
        }
        only = api.list_components(engine, "double", "1.0")
        assert only.result and [e["version"] for e in only.data] == ["1.0"]
        missing = api.list_components(engine, "double", "3.0")
        assert not missing.result
        assert missing.message == "component 'double' has no version '3.0' (its versions: 1.0, 2.0)"
        with pytest.raises(ComponentNotExistException, match="'triple' is not registered"):
            engine.list_components("triple")
        wrong = api.list_components(engine, 7)
        assert (
            not wrong.result
            and wrong.message == "list_components: code must be a non-empty str or None, got 7"
        )
    with rattan.Engine(
        ":memory:", components=registry, start=False, enable_example_components=False
    ) as engine:
        assert [e["code"] for e in engine.list_components()] == ["double", "double"]


def test_json_schema_maps_each_type_name() -> None:
    address = ObjectItemSchema(
        description="where",
        property_schemas={"city": StringItemSchema(description="city"), "zip": IntItemSchema(description="")},
    )
    items = [
        InputItem(name="count", key="count", type="int"),
        InputItem(name="ratio", key="ratio", type="float", required=False),
        InputItem(name="mode", key="mode", type="string", schema=StringItemSchema("how", enum=["a", "b"])),
        InputItem(name="flag", key="flag", type="bool", schema=BooleanItemSchema("on?")),
        InputItem(
            name="tags", key="tags", type="array", schema=ArrayItemSchema(FloatItemSchema("w"), "weights")
        ),
        InputItem(name="to", key="to", type="object", schema=address),
        InputItem(name="raw", key="raw", type="dict"),
        InputItem(name="anything", key="blob", type="file"),
    ]
    assert items_json_schema([item.as_dict() for item in items]) == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "count": {"title": "count", "type": "integer"},
            "ratio": {"title": "ratio", "type": "number"},
            "mode": {"title": "mode", "type": "string", "description": "how", "enum": ["a", "b"]},
            "flag": {"title": "flag", "type": "boolean", "description": "on?"},
            "tags": {
                "title": "tags",
                "type": "array",
                "description": "weights",
                "items": {"type": "number", "description": "w"},
            },
            "to": {
                "title": "to",
                "type": "object",
                "description": "where",
                "properties": {"city": {"type": "string", "description": "city"}, "zip": {"type": "integer"}},
            },
            "raw": {"title": "raw", "type": "object"},
            "blob": {"title": "anything", "x-rattan-type": "file"},
        },
        "required": ["count", "mode", "flag", "tags", "to", "raw", "blob"],
    }


# -- the command, with a package and an entry point --------------------------------------------------

PACKAGE = {
    "shop/__init__.py": "",
    "shop/billing.py": """
        import rattan
        from rattan.io import InputItem, OutputItem

        __group_name__ = "Billing"

        class Charge(rattan.Service):
            def execute(self, data, parent_data):
                return True

            def inputs_format(self):
                return [InputItem(name="amount", key="amount", type="float"),
                        InputItem(name="note", key="note", type="string", required=False)]

            def outputs_format(self):
                return [OutputItem(name="receipt", key="receipt", type="string")]

        class ChargeV1(rattan.Component):
            name, code, version, bound_service = "charge", "charge", "1.0", Charge

        class ChargeV2(rattan.Component):
            name, code, version, bound_service = "charge", "charge", "2.0", Charge
    """,
    "shop/sub/__init__.py": "",
    "shop/sub/waiting.py": """
        import rattan

        class Wait(rattan.Service):
            __need_schedule__ = True
            interval = rattan.StaticIntervalGenerator(5)

            def execute(self, data, parent_data):
                return True

        class WaitComponent(rattan.Component):
            name, code, bound_service = "wait a while", "wait", Wait
    """,
    "giftwrap.py": """
        import rattan

        class Wrap(rattan.Service):
            __need_schedule__ = True

            def execute(self, data, parent_data):
                return True

        class WrapComponent(rattan.Component):
            name, code, bound_service = "gift wrap", "gift_wrap", Wrap
    """,
    # a module that registers nothing by itself: its entry point names the class
    "ribbon.py": """
        import rattan

        __register_ignore__ = True

        class Tie(rattan.Service):
            def execute(self, data, parent_data):
                return True

        class RibbonComponent(rattan.Component):
            name, code, version, bound_service = "ribbon", "ribbon", "2.1", Tie
    """,
    "giftwrap_dist-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: giftwrap-dist\nVersion: 1.0\n",
    "giftwrap_dist-1.0.dist-info/entry_points.txt": (
        "[rattan.components]\ngiftwrap = giftwrap\nribbon = ribbon:RibbonComponent\n"
    ),
    "broken.py": "raise RuntimeError('boom at import')\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    for name, text in PACKAGE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def rattan_components(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run(
        [sys.executable, "-m", "rattan", "components", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=50,
    )  # fmt: skip


def test_the_command_lists_modules_packages_entry_points_and_examples(shop: Path) -> None:
    done = rattan_components(shop, "--components", "shop")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "CODE                    VERSION  NAME                    GROUP     WAITS     INPUTS         OUTPUTS",
        "charge                  1.0      charge                  Billing   -         amount*, note  receipt",
        "charge                  2.0      charge                  Billing   -         amount*, note  receipt",
        "example_component       legacy   example component       Builtin   -         -              -",
        "gift_wrap               legacy   gift wrap               Giftwrap  callback  -              -",
        "pipe_example_component  legacy   pipe example component  Builtin   -         -              -",
        "ribbon                  2.1      ribbon                  Ribbon    -         -              -",
        "wait                    legacy   wait a while            Waiting   poll      -              -",
        "7 components (* marks a required input); "
        "rattan components --schema CODE[@VERSION] prints one's JSON Schema",
    ]
    only_mine = rattan_components(
        shop, "--components", "shop.billing", "--no-entry-points", "--no-examples", "--json"
    )
    assert only_mine.returncode == 0, only_mine.stderr
    entries = json.loads(only_mine.stdout)
    assert [(e["code"], e["version"], e["versions"]) for e in entries] == [
        ("charge", "1.0", ["1.0", "2.0"]),
        ("charge", "2.0", ["1.0", "2.0"]),
    ]


def test_the_command_prints_one_components_json_schema(shop: Path) -> None:
    done = rattan_components(shop, "--components", "shop", "--schema", "charge@2.0")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["code"], document["version"], document["name"]) == ("charge", "2.0", "charge")
    assert document["inputs"]["properties"] == {
        "amount": {"title": "amount", "type": "number"},
        "note": {"title": "note", "type": "string"},
    }
    assert document["inputs"]["required"] == ["amount"]
    assert document["outputs"]["properties"]["receipt"] == {"title": "receipt", "type": "string"}
    wait = json.loads(rattan_components(shop, "--components", "shop", "--schema", "wait").stdout)
    assert wait["version"] == "legacy"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--components", "shop", "--schema", "charge"],
            4,
            "rattan components: component 'charge' has several versions (1.0, 2.0) and no 'legacy' one: say"
            " which, e.g. --schema charge@2.0",
        ),
        (
            ["--schema", "nope", "--no-entry-points"],
            4,
            "rattan components: component 'nope' is not registered (registered codes: example_component,"
            " pipe_example_component); import the module that defines it",
        ),
        (
            ["--components", "broken"],
            3,
            "rattan components: component module 'broken' failed to import: RuntimeError('boom at import')",
        ),
    ],
    ids=["ambiguous-version", "unknown-code", "broken-module"],
)
def test_the_command_says_what_went_wrong(shop: Path, args: list[str], code: int, message: str) -> None:
    done = rattan_components(shop, *args)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (code, message, "")

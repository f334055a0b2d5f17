"""Settings.validate_io_schemas: outputs are checked against outputs_format after a successful step."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import wait_state

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.io import IntItemSchema, OutputItem

pytestmark = pytest.mark.timeout(30)


def make(reg: rattan.Registry, value: Any) -> str:
    class Typed(rattan.Service):
        def execute(self, data: Any, parent_data: Any) -> bool:
            data.set_outputs("count", value)
            return True

        def outputs_format(self) -> list[OutputItem]:
            return [OutputItem(name="count", key="count", type="int", schema=IntItemSchema(description="n"))]

    code = f"typed_{type(value).__name__}"

    class TypedComponent(rattan.Component, registry=reg):
        name = "typed"
        bound_service = Typed

    TypedComponent.code = code
    reg.register(TypedComponent, replace=True)
    return code


@pytest.mark.parametrize("check", [True, False])
def test_outputs_breaking_their_schema_fail_the_node_only_when_validation_is_on(
    reg: rattan.Registry, check: bool
) -> None:
    code = make(reg, "not an int")
    start = EmptyStartEvent()
    act = ServiceActivity(component_code=code)
    start.extend(act).extend(EmptyEndEvent())
    tree = build_tree(start)
    with rattan.Engine(":memory:", components=reg, validate_io_schemas=check) as engine:
        assert api.run_pipeline(engine, tree).result
        if check:
            wait_state(engine, act.id, "FAILED")
            outputs = engine.get_execution_data_outputs(act.id)
            assert outputs["ex_data"].startswith("outputs do not match outputs_format: count")
            assert outputs["_result"] is False
        else:
            wait_state(engine, tree["id"], "FINISHED")
            assert engine.get_execution_data_outputs(act.id)["count"] == "not an int"


def test_conforming_outputs_pass_validation(reg: rattan.Registry) -> None:
    code = make(reg, 3)
    start = EmptyStartEvent()
    act = ServiceActivity(component_code=code)
    start.extend(act).extend(EmptyEndEvent())
    tree = build_tree(start)
    with rattan.Engine(":memory:", components=reg, validate_io_schemas=True) as engine:
        assert api.run_pipeline(engine, tree).result
        wait_state(engine, tree["id"], "FINISHED")
        assert engine.get_execution_data_outputs(act.id)["count"] == 3

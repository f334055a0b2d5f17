"""Quickstart: bamboo-engine's quickstart with rattan imports.

Builds start -> activity -> end, runs it on an engine stored in a SQLite file, waits for the run
and prints each node's state. The activity runs a component registered in this script's own
registry, which doubles its input.

Run it: python examples/01_quickstart.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree

registry = rattan.Registry("example-quickstart")


class DoubleService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        n = data.get_one_of_inputs("n")
        data.set_outputs("result", n * 2)
        self.logger.info("doubled %s", n)
        return True

    def inputs_format(self) -> list[Any]:
        return [self.InputItem(name="number", key="n", type="int", required=True)]

    def outputs_format(self) -> list[Any]:
        return [self.OutputItem(name="doubled", key="result", type="int")]


class DoubleComponent(rattan.Component, registry=registry):
    name = "double"
    code = "double"
    bound_service = DoubleService


def main() -> int:
    # build the pipeline tree, as with bamboo's builder
    start = EmptyStartEvent()
    act = ServiceActivity(component_code="double", name="double it")
    act.component.inputs.n = Var(type=Var.PLAIN, value=21)
    end = EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)

    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "quickstart.db")
        with rattan.Engine(store, components=registry) as engine:
            result = api.run_pipeline(engine, tree)
            assert result.result, result.message
            print(f"started pipeline {tree['id']}")

            waited = api.wait_pipeline(engine, tree["id"], timeout=30).data
            print(f"pipeline state: {waited['state']}")

            children = api.get_pipeline_states(engine, tree["id"]).data[tree["id"]]["children"]
            names = {start.id: "start", act.id: "double it", end.id: "end"}
            for node_id, name in names.items():
                print(f"  {name}: {children[node_id]['state']}")
            outputs = api.get_execution_data_outputs(engine, act.id).data
            print(f"double it -> result = {outputs['result']}")
            print(f"log: {engine.get_plain_log_for_node(act.id)}")

            ok = (
                waited["state"] == "FINISHED"
                and {node["state"] for node in children.values()} == {"FINISHED"}
                and outputs["result"] == 42
            )
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

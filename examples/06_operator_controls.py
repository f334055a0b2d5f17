"""Operator controls: pause and resume a pipeline, retry a failed node with new inputs, skip one.

    start -> prepare (slow) -> charge (needs a valid card) -> notify (always fails) -> end

1. While "prepare" runs the operator pauses the pipeline: the running step completes, then the
   token parks before "charge". Resume lets it continue.
2. "charge" fails with the wrong card; wait_pipeline returns, naming it. The operator retries it
   with new inputs (retry_node with data=...); the failed pass goes to the node's histories.
3. "notify" fails; the operator skips it, and the pipeline finishes.

Run it: python examples/06_operator_controls.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree

registry = rattan.Registry("example-operator")


class PrepareService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        time.sleep(0.3)
        return True


class ChargeService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        if data.get_one_of_inputs("card") != "4242":
            data.outputs.ex_data = f"card {data.get_one_of_inputs('card')} declined"
            return False
        data.set_outputs("receipt", "R-4242")
        return True


class NotifyService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        raise ConnectionError("smtp server unreachable")


class PrepareComponent(rattan.Component, registry=registry):
    name = code = "prepare"
    bound_service = PrepareService


class ChargeComponent(rattan.Component, registry=registry):
    name = code = "charge"
    bound_service = ChargeService


class NotifyComponent(rattan.Component, registry=registry):
    name = code = "notify"
    bound_service = NotifyService


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def main() -> int:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    prepare = ServiceActivity(component_code="prepare", name="prepare")
    charge = ServiceActivity(component_code="charge", name="charge")
    charge.component.inputs.card = Var(type=Var.PLAIN, value="1111")
    notify = ServiceActivity(component_code="notify", name="notify")
    start.extend(prepare).extend(charge).extend(notify).extend(end)
    tree = build_tree(start)
    root = tree["id"]

    with (
        tempfile.TemporaryDirectory() as folder,
        rattan.Engine(os.path.join(folder, "operator.db"), components=registry) as engine,
    ):
        assert api.run_pipeline(engine, tree).result
        wait_until(lambda: engine.has_state(prepare.id))
        assert api.pause_pipeline(engine, root).result
        wait_until(lambda: engine.get_state(prepare.id).name == "FINISHED")
        engine.wait_idle()
        print(
            f"paused: pipeline {engine.get_state(root).name}, charge reached: {engine.has_state(charge.id)}"
        )
        assert api.resume_pipeline(engine, root).result

        waited = engine.wait_pipeline(root, timeout=30)
        (failed,) = waited["failed_nodes"]
        print(f"failed: {failed['name']}: {failed['error']}")
        assert api.retry_node(engine, charge.id, data={"card": "4242"}).result

        waited = engine.wait_pipeline(root, timeout=30)
        (failed,) = waited["failed_nodes"]
        # an exception's ex_data is its traceback: "error" holds its first line, show the last
        last_line = engine.get_execution_data_outputs(notify.id)["ex_data"].strip().splitlines()[-1]
        print(f"failed: {failed['name']}: {last_line}")
        assert api.skip_node(engine, notify.id).result

        waited = engine.wait_pipeline(root, timeout=30)
        print(f"pipeline {waited['state']}")
        children = api.get_pipeline_states(engine, root).data[root]["children"]
        for act in (prepare, charge, notify):
            entry = children[act.id]
            print(f"  {act.name}: {entry['state']} retry={entry['retry']} skip={entry['skip']}")
        (history,) = api.get_node_histories(engine, charge.id).data
        print(f"charge history: inputs {history['inputs']} -> {history['outputs']['ex_data']}")
        receipt = engine.get_execution_data_outputs(charge.id)["receipt"]
        controls = {"post_pause_pipeline", "post_resume_pipeline", "post_retry_node", "post_skip_node"}
        events = [e["event_type"] for e in engine.events(root) if e["event_type"] in controls]
        print(f"operator events: {', '.join(events)}")

    ok = waited["state"] == "FINISHED" and receipt == "R-4242"
    ok = ok and (children[charge.id]["retry"], children[notify.id]["skip"]) == (1, True)
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

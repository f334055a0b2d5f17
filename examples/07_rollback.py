"""Rollback: take a running pipeline back to an earlier node, undoing each step on the way.

    start -> reserve stock -> charge card -> ship -> end

"ship" fails the first time. The operator lists the allowed rollback targets and rolls back
from "ship" to "reserve stock" in TOKEN mode: each finished node on the way back is undone by its
service's rollback() (newest first: refund the charge, then release the stock), then the pipeline
runs again from "reserve stock", and this time "ship" succeeds.

Rollback must be enabled on the engine: rattan.Engine(..., pipeline_enable_rollback=True).

Run it: python examples/07_rollback.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import rattan
import rattan.rollback
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree

registry = rattan.Registry("example-rollback")
journal: list[str] = []  # what the services did, in order (services are new objects every step)


class ReserveService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        journal.append("reserve stock")
        data.set_outputs("reservation", f"RES-{len(journal)}")
        return True

    def rollback(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, rollback_data: Any = None
    ) -> bool:
        journal.append(f"release {data.get_one_of_outputs('reservation')}")
        return True


class ChargeService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        journal.append("charge card")
        data.set_outputs("payment", f"PAY-{len(journal)}")
        return True

    def rollback(
        self, data: rattan.DataObject, parent_data: rattan.DataObject, rollback_data: Any = None
    ) -> bool:
        journal.append(f"refund {data.get_one_of_outputs('payment')}")
        return True


class ShipService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        journal.append("ship")
        if journal.count("ship") == 1:
            data.outputs.ex_data = "carrier rejected the parcel"
            return False
        return True


class ReserveComponent(rattan.Component, registry=registry):
    name = code = "reserve"
    bound_service = ReserveService


class ChargeComponent(rattan.Component, registry=registry):
    name = code = "charge"
    bound_service = ChargeService


class ShipComponent(rattan.Component, registry=registry):
    name = code = "ship"
    bound_service = ShipService


def main() -> int:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    reserve = ServiceActivity(component_code="reserve", name="reserve stock")
    charge = ServiceActivity(component_code="charge", name="charge card")
    ship = ServiceActivity(component_code="ship", name="ship")
    start.extend(reserve).extend(charge).extend(ship).extend(end)
    tree = build_tree(start)
    root = tree["id"]
    names = {act.id: act.name for act in (reserve, charge, ship)}

    with tempfile.TemporaryDirectory() as folder:
        store = os.path.join(folder, "rollback.db")
        with rattan.Engine(store, components=registry, pipeline_enable_rollback=True) as engine:
            assert api.run_pipeline(engine, tree).result
            waited = engine.wait_pipeline(root, timeout=30)
            print(f"failed: {[(f['name'], f['error']) for f in waited['failed_nodes']]}")

            allowed = rattan.rollback.get_allowed_rollback_node_id_list(engine, root, ship.id)
            print(f"allowed targets: {[names[node_id] for node_id in allowed.data]}")
            result = rattan.rollback.rollback(engine, root, ship.id, reserve.id, mode=rattan.rollback.TOKEN)
            assert result.result, result.message

            # wait_pipeline waits through the rollback and the run that goes on from the target
            waited = engine.wait_pipeline(root, timeout=30)
            print(f"pipeline {waited['state']}")
            kinds = {"rollback_start", "rollback_finish"}
            events = [e["event_type"] for e in engine.events(root) if e["event_type"] in kinds]

    print("journal:")
    for line in journal:
        print(f"  {line}")
    print(f"rollback events: {', '.join(events)}")
    expected = ["reserve stock", "charge card", "ship", "refund PAY-2", "release RES-1"]
    expected += ["reserve stock", "charge card", "ship"]
    ok = waited["state"] == "FINISHED" and journal == expected and allowed.data == [reserve.id, charge.id]
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Gateways: exclusive (with conditions), parallel, conditional parallel, and converge.

One pipeline shape, run twice with the variable ${amount} = 250 and then 50:

    start -> exclusive: small (${amount} < 100) | large (${amount} >= 100)
          -> converge -> parallel: email | sms | audit -> converge
          -> conditional parallel: manager (${amount} > 200) | finance (${amount} > 1000)
                                   | archive (default branch) -> converge -> end

Prints which activities ran in each run and which were never reached. The default branch runs
only when no other condition holds (amount = 50); it needs no condition of its own.

Run it: python examples/02_gateways.py
"""

from __future__ import annotations

import os
import sys
import tempfile

import rattan
from rattan import api
from rattan.builder import (
    ConditionalParallelGateway,
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ParallelGateway,
    ServiceActivity,
    Var,
    build_tree,
)

registry = rattan.Registry("example-gateways")


class StepService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("done", True)
        return True


class StepComponent(rattan.Component, registry=registry):
    name = code = "step"
    bound_service = StepService


def step(name: str) -> ServiceActivity:
    return ServiceActivity(component_code="step", name=name)


def run(amount: int, folder: str) -> tuple[str, list[str], list[str]]:
    """Run the pipeline with ${amount}; return the run's state, the activities run and not reached."""
    acts = {name: step(name) for name in ("small", "large", "email", "sms", "audit")}
    acts.update({name: step(name) for name in ("manager", "finance", "archive")})

    start, end = EmptyStartEvent(), EmptyEndEvent()
    exclusive = ExclusiveGateway(conditions={0: "${amount} < 100", 1: "${amount} >= 100"})
    parallel = ParallelGateway()
    conditional = ConditionalParallelGateway(
        conditions={0: "${amount} > 200", 1: "${amount} > 1000"}, default_condition_outgoing=2
    )
    join_1, join_2, join_3 = ConvergeGateway(), ConvergeGateway(), ConvergeGateway()

    start.extend(exclusive).connect(acts["small"], acts["large"]).to(exclusive).converge(join_1)
    join_1.extend(parallel).connect(acts["email"], acts["sms"], acts["audit"]).to(parallel).converge(join_2)
    join_2.extend(conditional).connect(acts["manager"], acts["finance"], acts["archive"])
    conditional.converge(join_3).extend(end)
    tree = build_tree(start, data=Data(inputs={"${amount}": Var(type=Var.PLAIN, value=amount)}))

    with rattan.Engine(os.path.join(folder, f"gateways-{amount}.db"), components=registry) as engine:
        assert api.run_pipeline(engine, tree).result
        state = engine.wait_pipeline(tree["id"], timeout=30)["state"]
        children = engine.get_pipeline_states(tree["id"])[tree["id"]]["children"]
    ran = [name for name, act in acts.items() if children.get(act.id, {}).get("state") == "FINISHED"]
    not_reached = [name for name, act in acts.items() if act.id not in children]
    print(f"amount = {amount}: pipeline {state}")
    print(f"  ran: {', '.join(ran)}")
    print(f"  not reached: {', '.join(not_reached)}")
    return state, ran, not_reached


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        big = run(250, folder)
        small = run(50, folder)
    ok = big == (
        "FINISHED",
        ["large", "email", "sms", "audit", "manager"],
        ["small", "finance", "archive"],
    ) and small == (
        "FINISHED",
        ["small", "email", "sms", "audit", "archive"],
        ["large", "manager", "finance"],
    )
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

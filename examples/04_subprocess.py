"""Subprocess with params: a parent passes values in, and reads the subprocess's outputs back.

The child pipeline "make badge" declares ${who} as a parameter (DataInput, default "guest") and
exports ${badge}, filled from its inner activity's output. The parent runs the child twice, in
parallel: once passing ${who} through Params (a SPLICE of the parent's ${team} variable), once
without params (the child's default is used). A parent activity then joins both exported badges.

Run it: python examples/04_subprocess.py
"""

from __future__ import annotations

import os
import sys
import tempfile

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    NodeOutput,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

registry = rattan.Registry("example-subprocess")


class BadgeService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("badge", f"<{data.get_one_of_inputs('who')}>")
        return True


class JoinService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("line", " ".join(data.get_one_of_inputs("badges")))
        return True


class BadgeComponent(rattan.Component, registry=registry):
    name = code = "badge"
    bound_service = BadgeService


class JoinComponent(rattan.Component, registry=registry):
    name = code = "join"
    bound_service = JoinService


def make_badge(name: str, params: Params | None) -> SubProcess:
    """A fresh child pipeline (every node of a tree needs its own id)."""
    start, end = EmptyStartEvent(), EmptyEndEvent()
    badge = ServiceActivity(component_code="badge", name="badge")
    badge.component.inputs.who = Var(type=Var.SPLICE, value="${who}")
    start.extend(badge).extend(end)
    data = Data(
        inputs={
            "${who}": DataInput(type=Var.PLAIN, value="guest"),
            "${badge}": NodeOutput(source_act=badge.id, source_key="badge"),
        },
        outputs=["${badge}"],
    )
    return SubProcess(start=start, data=data, params=params, name=name)


def main() -> int:
    with_params = make_badge("for the team", Params({"${who}": Var(type=Var.SPLICE, value="${team}-lead")}))
    defaults = make_badge("with defaults", None)

    start, end, fork, join = EmptyStartEvent(), EmptyEndEvent(), ParallelGateway(), ConvergeGateway()
    summary = ServiceActivity(component_code="join", name="summary")
    summary.component.inputs.badges = Var(type=Var.SPLICE, value=["${team_badge}", "${guest_badge}"])
    start.extend(fork).connect(with_params, defaults).to(fork).converge(join).extend(summary).extend(end)

    data = Data(
        inputs={
            "${team}": Var(type=Var.PLAIN, value="ops"),
            # a subprocess's exported keys are read like the outputs of an activity
            "${team_badge}": NodeOutput(source_act=with_params.id, source_key="${badge}"),
            "${guest_badge}": NodeOutput(source_act=defaults.id, source_key="${badge}"),
        },
        outputs=["${team_badge}", "${guest_badge}"],
    )
    tree = build_tree(start, data=data)

    with (
        tempfile.TemporaryDirectory() as folder,
        rattan.Engine(os.path.join(folder, "subprocess.db"), components=registry) as engine,
    ):
        assert api.run_pipeline(engine, tree).result
        state = engine.wait_pipeline(tree["id"], timeout=30)["state"]
        for sub in (with_params, defaults):
            badge = engine.get_execution_data_outputs(sub.id)["${badge}"]
            print(f"subprocess {sub.name!r} exported ${{badge}} = {badge!r}")
        line = engine.get_execution_data_outputs(summary.id)["line"]
        exported = engine.get_execution_data_outputs(tree["id"])
        nested = engine.get_pipeline_states(tree["id"], flat_children=False)[tree["id"]]["children"]

    print(f"pipeline {state}")
    print(f"summary: {line}")
    print(f"pipeline outputs: {dict(sorted(exported.items()))}")
    print(f"nodes inside 'for the team': {len(nested[with_params.id]['children'])}")

    ok = state == "FINISHED" and line == "<ops-lead> <guest>"
    ok = ok and exported == {"${team_badge}": "<ops-lead>", "${guest_badge}": "<guest>"}
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

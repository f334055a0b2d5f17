"""The pipeline behind ``rattan demo``: every node kind the engine runs today, in one small tree.

Shape::

    start -> prepare -> choose (exclusive) -+-> big_batch ---+-> choice_done -> fan_out (parallel) -+
                                            +-> small_batch -+                                      |
        +--------------------------------------------------------------------------------------------+
        +-> wait_for_job (polls; done on its 2nd poll, 0.2 s later) -+
        +-> notify                                                    +-> joined -> report (subprocess) -> end
        +-> audit                                                     -+

The components register into ``DEMO_REGISTRY``, a private ``rattan.Registry`` handed to the engine
with ``Engine(components=DEMO_REGISTRY)``, so importing this module touches no global state.
"""

from __future__ import annotations

from typing import Any

import rattan
from rattan.builder import (
    ConvergeGateway,
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    NodeOutput,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)

__all__ = ["DEMO_REGISTRY", "POLL_INTERVAL", "build_demo_tree", "node_names"]

DEMO_REGISTRY = rattan.Registry("demo")

#: Seconds between the two polls of ``wait_for_job``.
POLL_INTERVAL = 0.2


class PrepareService(rattan.Service):
    """Multiply ``count`` by 10 into ``total``."""

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        count = int(data.get_one_of_inputs("count", 0))
        data.set_outputs("total", count * 10)
        data.set_outputs("label", f"batch of {count}")
        return True


class EchoService(rattan.Service):
    """Copy every input to the outputs."""

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        for key, value in data.get_inputs().items():
            data.set_outputs(key, value)
        return True


class PollJobService(rattan.Service):
    """Start an (imaginary) external job, then poll it; it is done on the second poll."""

    __need_schedule__ = True
    interval = rattan.StaticIntervalGenerator(POLL_INTERVAL)

    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("polls", 0)
        return True

    def schedule(
        self,
        data: rattan.DataObject,
        parent_data: rattan.DataObject,
        callback_data: dict[str, Any] | None = None,
    ) -> bool:
        # outputs saved by the previous step come back in data.outputs: the poll count survives
        polls = int(data.get_one_of_outputs("polls", 0)) + 1
        data.set_outputs("polls", polls)
        if polls >= 2:
            data.set_outputs("job_result", "ok")
            self.finish_schedule()
        return True


class PrepareComponent(rattan.Component, registry=DEMO_REGISTRY):
    name = "demo prepare"
    code = "demo_prepare"
    bound_service = PrepareService


class EchoComponent(rattan.Component, registry=DEMO_REGISTRY):
    name = "demo echo"
    code = "demo_echo"
    bound_service = EchoService


class PollJobComponent(rattan.Component, registry=DEMO_REGISTRY):
    name = "demo poll job"
    code = "demo_poll_job"
    bound_service = PollJobService


def _report_subprocess() -> SubProcess:
    """A subprocess with one activity; its ``${report_total}`` is a parameter set by the parent."""
    start = EmptyStartEvent(name="report start")
    write = ServiceActivity(component_code="demo_echo", name="write_report")
    end = EmptyEndEvent(name="report end")
    start.extend(write).extend(end)
    write.component.inputs.line = Var(type=Var.SPLICE, value="report: total=${report_total}")
    data = Data(inputs={"${report_total}": DataInput(type=Var.PLAIN, value=0)})
    params = Params({"${report_total}": Var(type=Var.SPLICE, value="${total}")})
    return SubProcess(start=start, data=data, params=params, name="report")


def build_demo_tree(count: int = 3) -> dict[str, Any]:
    """Build the demo pipeline tree (fresh ids on every call)."""
    start = EmptyStartEvent(name="start")
    prepare = ServiceActivity(component_code="demo_prepare", name="prepare")
    choose = ExclusiveGateway(
        conditions={0: "${total} >= 20", 1: "${total} < 20"},
        name="choose",
    )
    big = ServiceActivity(component_code="demo_echo", name="big_batch")
    small = ServiceActivity(component_code="demo_echo", name="small_batch")
    choice_done = ConvergeGateway(name="choice_done")
    fan_out = ParallelGateway(name="fan_out")
    wait_job = ServiceActivity(component_code="demo_poll_job", name="wait_for_job")
    notify = ServiceActivity(component_code="demo_echo", name="notify")
    audit = ServiceActivity(component_code="demo_echo", name="audit")
    joined = ConvergeGateway(name="joined")
    report = _report_subprocess()
    end = EmptyEndEvent(name="end")

    start.extend(prepare).extend(choose).connect(big, small).to(choose).converge(choice_done)
    choice_done.extend(fan_out).connect(wait_job, notify, audit).to(fan_out).converge(joined)
    joined.extend(report).extend(end)

    prepare.component.inputs.count = Var(type=Var.SPLICE, value="${count}")
    big.component.inputs.message = Var(type=Var.SPLICE, value="big: ${label}")
    small.component.inputs.message = Var(type=Var.SPLICE, value="small: ${label}")
    notify.component.inputs.message = Var(type=Var.SPLICE, value="${label.upper()} is being processed")
    audit.component.inputs.message = Var(type=Var.SPLICE, value="total x 2 = ${total * 2}")

    data = Data(outputs=["${total}", "${label}"])
    data.inputs["${count}"] = Var(type=Var.PLAIN, value=count)
    data.inputs["${total}"] = NodeOutput(type=Var.PLAIN, source_act=prepare.id, source_key="total")
    data.inputs["${label}"] = NodeOutput(type=Var.PLAIN, source_act=prepare.id, source_key="label")
    return build_tree(start, data=data)


def node_names(tree: dict[str, Any]) -> dict[str, str]:
    """Map every node id of ``tree`` (subprocesses included, the pipeline itself too) to a name."""
    names: dict[str, str] = {tree["id"]: "pipeline"}
    nodes: list[dict[str, Any]] = [
        tree["start_event"], tree["end_event"], *tree["activities"].values(), *tree["gateways"].values(),
    ]  # fmt: skip
    for node in nodes:
        names[node["id"]] = node.get("name") or node["type"]
        if node.get("type") == "SubProcess":
            for nid, name in node_names(node["pipeline"]).items():
                if nid != node["pipeline"]["id"]:
                    names[nid] = f"{names[node['id']]}/{name}"
    return names

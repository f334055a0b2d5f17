"""The pipeline behind ``rattan demo``: every node kind the engine runs today, in one small tree.

Shape::

    start -> prepare -> choose (exclusive) -+-> big_batch ---+-> choice_done -> fan_out (parallel) -+
                                            +-> small_batch -+                                      |
        +--------------------------------------------------------------------------------------------+
        +-> wait_for_job (polls twice, --wait s apart)              -+
        +-> notify                                                    +-> joined -> report (subprocess) -> end
        +-> audit                                                     -+

The components register into ``DEMO_REGISTRY``, a private ``rattan.Registry`` handed to the engine
with ``Engine(components=DEMO_REGISTRY)``, so importing this module touches no global state.
``run_demo`` runs the tree and prints node states as they change (``rattan demo``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

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

__all__ = [
    "DEMO_REGISTRY", "FINISHED", "INTERRUPTED", "POLL_INTERVAL", "REFUSED", "TIMED_OUT",
    "build_demo_tree", "node_names", "run_demo",
]  # fmt: skip

DEMO_REGISTRY = rattan.Registry("demo")

#: Seconds between the two polls of ``wait_for_job`` (its ``wait_seconds`` input by default).
POLL_INTERVAL = 0.2

#: What ``run_demo`` returns: the pipeline's end, or why it stopped watching before one.
FINISHED = "FINISHED"
TIMED_OUT = "TIMED_OUT"
REFUSED = "REFUSED"
INTERRUPTED = "INTERRUPTED"

POLL_SECONDS = 0.1  # how often run_demo reads the states
SHOWN_STATES = ("RUNNING", "FINISHED", "FAILED", "SUSPENDED", "REVOKED")


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
        # the engine reads self.interval after each poll: the node's input sets the next wait
        self.interval = rattan.StaticIntervalGenerator(
            float(data.get_one_of_inputs("wait_seconds", POLL_INTERVAL))
        )
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


def build_demo_tree(count: int = 3, wait: float = POLL_INTERVAL) -> dict[str, Any]:
    """Build the demo pipeline tree (fresh ids on every call); ``wait_for_job`` finishes ``wait``
    seconds after it starts."""
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
    wait_job.component.inputs.wait_seconds = Var(type=Var.PLAIN, value=wait)
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


def run_demo(
    engine: rattan.Engine,
    db: str,
    *,
    count: int = 3,
    timeout: float = 60.0,
    wait: float = POLL_INTERVAL,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> str:
    """Run the demo pipeline on ``engine`` (its store is ``db``), print node states as they change,
    then close the engine.

    Returns FINISHED, TIMED_OUT, REFUSED (run_pipeline said no), the pipeline's state when a node
    failed or it ended otherwise, or INTERRUPTED: on Ctrl-C the engine closes (the work in hand
    drains, the rest stays in the store) and one line on ``err`` says what the store keeps.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    tree = build_demo_tree(count, wait)
    path = os.path.abspath(db) if db != ":memory:" else ":memory:"
    try:
        with engine:
            return _run(engine, tree, path, timeout, out)
    except KeyboardInterrupt:
        print(_left_behind(db, path, tree["id"]), file=err, flush=True)
        return INTERRUPTED


def _run(engine: rattan.Engine, tree: dict[str, Any], path: str, timeout: float, out: TextIO) -> str:
    root_id: str = tree["id"]
    names = node_names(tree)
    began = time.monotonic()
    # flushed as they come: a pipe (``rattan demo | tee``) shows progress, not a block at the end
    print(
        f"rattan {rattan.__version__}: running demo pipeline {root_id} (store: {path})", file=out, flush=True
    )
    result = rattan.api.run_pipeline(engine, tree)
    if not result.result:
        print(f"run_pipeline refused the tree: {result.message}", file=out)
        return REFUSED
    seen: dict[str, str] = {}
    final = "RUNNING"
    deadline = began + timeout
    while True:
        current = _flat_states(engine.get_pipeline_states(root_id), root_id)
        elapsed = time.monotonic() - began
        for nid, state in current.items():
            if seen.get(nid) != state and nid != root_id and state in SHOWN_STATES:
                print(f"[{elapsed:6.2f}s] {names.get(nid, nid)} {state}", file=out, flush=True)
            seen[nid] = state
        final = current.get(root_id, "RUNNING")
        if final in ("FINISHED", "REVOKED") or "FAILED" in current.values() or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    elapsed = time.monotonic() - began
    _report(engine, root_id, names, seen, out)
    outputs = engine.get_execution_data_outputs(root_id)
    print(f"pipeline outputs: {json.dumps(outputs, ensure_ascii=False, sort_keys=True)}", file=out)
    print(f"database: {path}", file=out)
    if final == "FINISHED":
        print(f"pipeline FINISHED in {elapsed:.2f}s", file=out)
        return FINISHED
    if final == "RUNNING" and "FAILED" not in seen.values():
        print(f"pipeline did not finish within {timeout:g}s (state {final})", file=out)
        return TIMED_OUT
    print(f"pipeline did not finish: state {final}", file=out)
    return "FAILED" if "FAILED" in seen.values() else final


def _left_behind(db: str, path: str, root_id: str) -> str:
    """The line printed on Ctrl-C: where the pipeline is and what happens to it next."""
    if path == ":memory:":
        return f"interrupted: pipeline {root_id} ran in memory only (--db :memory:) and is gone"
    try:
        # the interrupted engine is closed: read what it left with a fresh one that runs nothing
        with rattan.Engine(store=db, start=False) as reader:
            state = reader.get_state_or_none(root_id)
    except rattan.RattanError as exc:
        return f"interrupted: pipeline {root_id} may be in {path}, which could not be read: {exc}"
    if state is None:
        return f"interrupted before pipeline {root_id} was stored: nothing was left in {path}"
    if state.name == "RUNNING":
        return (
            f"interrupted: pipeline {root_id} is still RUNNING; it is saved in {path} "
            "and resumes the next time rattan demo runs on that file"
        )
    return f"interrupted: pipeline {root_id} is {state.name}; it is saved in {path}"


def _flat_states(states: dict[str, Any], root_id: str) -> dict[str, str]:
    """{node id: state name} for the root and every child, from ``get_pipeline_states``."""
    root = states.get(root_id)
    if not root:
        return {}
    flat = {root_id: str(root["state"])}
    for nid, child in root.get("children", {}).items():
        flat[nid] = str(child["state"])
    return flat


def _report(
    engine: rattan.Engine, root_id: str, names: dict[str, str], seen: dict[str, str], out: TextIO
) -> None:
    print("final states:", file=out)
    for nid, state in seen.items():
        if nid == root_id:
            continue
        line = f"  {names.get(nid, nid):<28} {state}"
        if state == "FAILED":
            ex_data = engine.get_execution_data_outputs(nid).get("ex_data")
            if ex_data:
                line += f"  ex_data: {str(ex_data).strip().splitlines()[-1]}"
        print(line, file=out)
    print(f"  {'(pipeline)':<28} {seen.get(root_id, '?')}", file=out)

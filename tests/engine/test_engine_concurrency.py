"""Concurrency sanity: many pipelines at once all finish with the right states and data."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from engine_helpers import all_ids, inputs, node_states, run, wait_finished

import rattan
from rattan import api
from rattan.builder import (
    ConvergeGateway,
    Data,
    EmptyEndEvent,
    EmptyStartEvent,
    NodeOutput,
    ParallelGateway,
    ServiceActivity,
    Var,
    build_tree,
)

pytestmark = pytest.mark.timeout(60)
N = 50


def _tree(i: int) -> tuple[dict[str, Any], ServiceActivity]:
    start, pg, cg, end = EmptyStartEvent(), ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    left = ServiceActivity(component_code="pipe_example_component")
    left.component.inputs.v = Var(type=Var.PLAIN, value=i)
    right = ServiceActivity(component_code="pipe_example_component")
    right.component.inputs.w = Var(type=Var.SPLICE, value="${base}-r")
    last = ServiceActivity(component_code="pipe_example_component")
    last.component.inputs.both = Var(type=Var.SPLICE, value="${left_v}/${right_w}")
    start.extend(pg).connect(left, right).to(pg).converge(cg).extend(last).extend(end)
    data = Data(
        inputs={
            "${base}": Var(type=Var.PLAIN, value=f"b{i}"),
            "${left_v}": NodeOutput(source_act=left.id, source_key="v"),
            "${right_w}": NodeOutput(source_act=right.id, source_key="w"),
        },
        outputs=["${left_v}", "${right_w}"],
    )
    return build_tree(start, data=data), last


def test_fifty_pipelines_at_once(engine: rattan.Engine) -> None:
    built = [_tree(i) for i in range(N)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        roots = list(pool.map(lambda t: run(engine, t[0]), built))
    assert len(set(roots)) == N
    for root in roots:
        wait_finished(engine, root, timeout=40)
    for i, ((tree, last), root) in enumerate(zip(built, roots, strict=True)):
        assert node_states(engine, root) == {nid: "FINISHED" for nid in all_ids(tree)}
        assert engine.get_state(root).name == "FINISHED"
        assert inputs(engine, last.id) == {"both": f"{i}/b{i}-r", "_loop": 1, "_inner_loop": 1}
        assert api.get_execution_data(engine, root).data == {
            "inputs": {},
            "outputs": {"${left_v}": i, "${right_w}": f"b{i}-r"},
        }

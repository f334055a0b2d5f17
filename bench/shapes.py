"""Benchmark shapes shared by rattan's own bench/ and by outside comparisons.

Copied from the project's benchmark definitions (its ``shapes.py``, kept outside this
repository) so that the repository is self-contained; only the style was adapted to this
repository's ruff rules. The shapes and bamboo-pipeline's reference figures below are unchanged.

The same four shapes were run on bamboo-pipeline (PostgreSQL + Redis + Celery) on the project's
standard 2-core machine; its figures are the reference for rattan's benchmark:

| shape | bamboo-pipeline, Celery prefork c=2 |
|---|---|
| S1: 100 x s1_pipeline() submitted at once, `debug_node`-like component | 50 nodes/s (34 s) |
| S2: 1 x chain_pipeline(1000), no-op component | 79 nodes/s (12.7 s) |
| S3: 1 x parallel_pipeline(100, 10) | 31 nodes/s (32 s) |
| S4: 100 x one_act_pipeline(), a component polling 3 times at 1 s | 6.5 s wall (*) |

(*) S4's ideal is about 2 s: the first poll runs right after execute.

PostgreSQL 15, Redis, Celery prefork with 2 processes (the fastest layout on 2 cores); 18-40 SQL statements
per node. Raw ceilings on the same machine: SQLite WAL insert+update commits about 6,800/s (FULL) and
19,000/s (NORMAL); PostgreSQL pgbench simple-update 1,282 tx/s with 1 client, 3,742 with 8.

The components are in components.py beside this file: `debug_node` copies its inputs to its outputs,
then one schedule() call at interval 0 finishes it (bamboo-pipeline's own benchmark component); `bench_noop`
returns True; `bench_poll` polls every second and finishes on its 3rd schedule() call.
Node counts: "nodes" counts every node that gets a state (events, gateways, activities, subprocess).
"""

from rattan.builder import (
    ConvergeGateway,
    Data,
    DataInput,
    EmptyEndEvent,
    EmptyStartEvent,
    ExclusiveGateway,
    ParallelGateway,
    Params,
    ServiceActivity,
    SubProcess,
    Var,
    build_tree,
)


def _act(code, splice=True):
    a = ServiceActivity(component_code=code)
    if splice and code == "debug_node":
        a.component.inputs.param_1 = Var(type=Var.SPLICE, value="${constant_1}")
        a.component.inputs.param_2 = Var(type=Var.SPLICE, value="${constant_2}")
    return a


def s1_pipeline(code="debug_node"):
    """S1 shape: 18 nodes (subprocess, parallel and exclusive gateways); 17 are executed."""
    start = EmptyStartEvent()
    act_1 = _act(code)
    act_2 = _act(code)
    sub_start = EmptyStartEvent()
    sub_act_1 = _act(code)
    sub_act_2 = _act(code)
    sub_end = EmptyEndEvent()
    sub_pipeline_data = Data()
    sub_pipeline_data.inputs["${constant_1}"] = DataInput(type=Var.PLAIN, value="default_value")
    sub_pipeline_data.inputs["${constant_2}"] = DataInput(type=Var.PLAIN, value="default_value")
    params = Params(
        {
            "${constant_1}": Var(type=Var.SPLICE, value="${constant_1}"),
            "${constant_2}": Var(type=Var.SPLICE, value="${constant_2}"),
        }
    )
    sub_start.extend(sub_act_1).extend(sub_act_2).extend(sub_end)
    subprocess = SubProcess(start=sub_start, data=sub_pipeline_data, params=params)
    pg = ParallelGateway()
    act_3, act_4, act_5 = _act(code), _act(code), _act(code)
    cg_1 = ConvergeGateway()
    eg = ExclusiveGateway(conditions={0: '"${constant_1}" == "value_1"', 1: "True == False"})
    act_6, act_7 = _act(code), _act(code)
    cg_2 = ConvergeGateway()
    end = EmptyEndEvent()
    pipeline_data = Data()
    pipeline_data.inputs["${constant_1}"] = Var(type=Var.PLAIN, value="value_1")
    pipeline_data.inputs["${constant_2}"] = Var(type=Var.PLAIN, value="value_2")
    start.extend(act_1).extend(act_2).extend(subprocess).extend(pg).connect(act_3, act_4, act_5).converge(
        cg_1
    ).extend(eg).connect(act_6, act_7).converge(cg_2).extend(end)
    return build_tree(start, data=pipeline_data)


def parallel_pipeline(branch_nums=100, node_count=10, code="debug_node"):
    """S3 shape: a parallel gateway with `branch_nums` branches of `node_count` activities."""
    start = EmptyStartEvent()
    first_acts = []
    for _ in range(branch_nums):
        acts = [ServiceActivity(component_code=code) for _ in range(node_count)]
        for i in range(node_count - 1):
            acts[i].connect(acts[i + 1])
        first_acts.append(acts[0])
    pg, cg, end = ParallelGateway(), ConvergeGateway(), EmptyEndEvent()
    start.extend(pg).connect(*first_acts).converge(cg).extend(end)
    return build_tree(start)


def chain_pipeline(n=1000, code="bench_noop"):
    start = EmptyStartEvent()
    cur = start
    for _ in range(n):
        cur = cur.extend(ServiceActivity(component_code=code))
    cur.extend(EmptyEndEvent())
    return build_tree(start)


def one_act_pipeline(code="bench_poll"):
    start = EmptyStartEvent()
    start.extend(ServiceActivity(component_code=code)).extend(EmptyEndEvent())
    return build_tree(start)


# expected executed nodes (state records besides the root pipeline) and activities
SCENARIOS = {
    "S0": dict(
        desc="1 x (start -> 1 noop activity -> end): latency probe",
        count=1,
        build=lambda c: one_act_pipeline(c),
        nodes=3,
        acts=1,
    ),
    "S1": dict(
        desc="100 x s1_pipeline (18 nodes, 17 executed)",
        count=100,
        build=lambda c: s1_pipeline(c),
        nodes=17,
        acts=8,
    ),
    "S2": dict(
        desc="1 x chain of 1000 activities",
        count=1,
        build=lambda c: chain_pipeline(1000, c),
        nodes=1002,
        acts=1000,
    ),
    "S3": dict(
        desc="1 x parallel_pipeline(100, 10): 100 branches x 10 activities",
        count=1,
        build=lambda c: parallel_pipeline(100, 10, c),
        nodes=1004,
        acts=1000,
    ),
    "S4": dict(
        desc="100 x (start -> polling activity, 3 polls at 1 s -> end)",
        count=100,
        build=lambda c: one_act_pipeline(c),
        nodes=3,
        acts=1,
    ),
}

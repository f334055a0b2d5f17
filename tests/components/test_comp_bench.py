"""The benchmark's real user components import, register and run unchanged (in a subprocess, so the
process-global default registry of the test session stays empty)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from shared_bench import bench_dir

BENCH = bench_dir() / "components.py"

SCRIPT = textwrap.dedent(
    """
    import importlib.util, sys
    import rattan
    import rattan.components as rc

    # Until rattan/__init__.py re-exports the component API, provide the names the bench uses.
    for name in ("Service", "Component", "StaticIntervalGenerator", "DataObject"):
        if not hasattr(rattan, name):
            setattr(rattan, name, getattr(rc, name))

    spec = importlib.util.spec_from_file_location("bench_components", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_components"] = module
    spec.loader.exec_module(module)

    codes = sorted(c.code for c in rc.registry.components())
    assert codes == ["bench_noop", "bench_poll", "debug_node"], codes
    assert rc.registry.get_service_class("bench_noop").__name__ == "NoopService"
    assert rc.registry.get_service_class("debug_node")().schedule_type() is rc.ScheduleType.POLL
    assert rc.registry.get_service_class("bench_noop")().schedule_type() is None

    from rattan.testing import ComponentTestCase, ExecuteAssertion, ScheduleAssertion, run_component_case

    run_component_case(module.DebugComponent, ComponentTestCase(
        inputs={"a": 1}, parent_data={"p": 2},
        execute_assertion=ExecuteAssertion(success=True, outputs={"a": 1}),
        schedule_assertion=ScheduleAssertion(success=True, schedule_finished=True, outputs={"a": 1}),
    ))
    run_component_case(module.PollComponent, ComponentTestCase(
        inputs={}, parent_data={},
        execute_assertion=ExecuteAssertion(success=True, outputs={"count": 0}),
        schedule_assertion=[
            ScheduleAssertion(success=True, outputs={"count": 1}),
            ScheduleAssertion(success=True, outputs={"count": 2}),
            ScheduleAssertion(success=True, schedule_finished=True, outputs={"count": 3}),
        ],
    ))
    run_component_case(module.NoopComponent, ComponentTestCase(
        inputs={}, parent_data={}, execute_assertion=ExecuteAssertion(True, {}), schedule_assertion=None,
    ))

    # Importing the module a second time (a reload) replaces silently.
    spec.loader.exec_module(module)
    assert len(rc.registry.components()) == 3
    print("ok")
    """
)


def test_bench_components_register_and_run() -> None:
    # bench/ is part of the repository: a missing file is a broken checkout
    assert BENCH.exists(), f"{BENCH} not found: the repository's bench/ folder is incomplete"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(BENCH)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"

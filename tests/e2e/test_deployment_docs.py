"""docs/deployment.md's client block, run as written against a real deployment: a PostgreSQL
store, a Redis broker and a ``rattan worker`` subprocess (the URLs of the page swapped for the
session's servers, ``myapp.components`` for this suite's components)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from runtimes import _pg_schema, _worker

import rattan
from rattan import api
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, Var, build_tree

pytestmark = pytest.mark.timeout(120)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_the_client_block_runs_a_pipeline_on_rattan_workers(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    (block,) = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    store, broker = _pg_schema(postgres_url), f"celery://{redis_url}"
    assert "postgresql://rattan@db/rattan" in block and "celery://redis://broker:6379/0" in block
    source = block.replace("postgresql://rattan@db/rattan", store).replace(
        "celery://redis://broker:6379/0", broker
    )
    act = ServiceActivity(component_code="e2e_add")
    act.component.inputs.a = Var(type=Var.PLAIN, value=2)
    act.component.inputs.b = Var(type=Var.PLAIN, value=3)
    start, end = EmptyStartEvent(), EmptyEndEvent()
    start.extend(act).extend(end)
    tree = build_tree(start)
    with _worker(store, broker, tmp_path / "worker.log"):
        namespace: dict[str, Any] = {"rattan": rattan, "api": api, "tree": tree}
        exec(compile(source, str(PAGE), "exec"), namespace)
        engine: rattan.Engine = namespace["engine"]
        try:
            assert engine.wait_pipeline(tree["id"], timeout=60)["state"] == "FINISHED"
            assert engine.get_execution_data_outputs(act.id)["sum"] == 5
        finally:
            engine.close(timeout=10)

"""``rattan.metrics``: counters from the durable event log (correct with several engines on one
store), due-work gauges from the store, lease take-overs seen through the owners, and ``GET
/metrics`` on the HTTP API. Real engines on a real SQLite file; exposition parsed back."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import rattan
from rattan.builder import EmptyEndEvent, EmptyStartEvent, ServiceActivity, build_tree
from rattan.metrics import MetricsCollector
from rattan.model.records import OwnerRecord
from rattan.server import Token, create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.timeout(60)

WAIT = 15.0


class Ok(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        return True


class Fail(rattan.Service):
    def execute(self, data: Any, parent_data: Any) -> bool:
        data.outputs.ex_data = "no"
        return False


def registry() -> rattan.Registry:
    reg = rattan.Registry("metrics-tests")
    for code, service in (("m_ok", Ok), ("m_fail", Fail)):
        type(
            f"{code}_c",
            (rattan.Component,),
            {"name": code, "code": code, "bound_service": service},
            registry=reg,
        )
    return reg


def tree(*codes: str) -> dict[str, Any]:
    node: Any = EmptyStartEvent()
    start = node
    for code in codes:
        node = node.extend(ServiceActivity(component_code=code))
    node.extend(EmptyEndEvent())
    return build_tree(start)


def samples(collector: MetricsCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sample (name, sorted labels) -> value, from the text exposition."""
    body, _ = collector.exposition()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metrics.db'}"


@pytest.fixture
def reader(url: str) -> Iterator[rattan.Engine]:
    engine = rattan.Engine(store=url, start=False)  # a collector needs no workers of its own
    yield engine
    engine.close()


def test_counts_come_from_the_log_of_every_engine_on_the_store(url: str, reader: rattan.Engine) -> None:
    one = rattan.Engine(store=url, components=registry(), sweep_seconds=0.1)
    two = rattan.Engine(store=url, components=registry(), sweep_seconds=0.1)
    try:
        runs = [(one, tree("m_ok", "m_ok")), (two, tree("m_ok")), (two, tree("m_ok", "m_fail"))]
        for engine, t in runs:
            engine.run_pipeline(t)
        for engine, t in runs:
            engine.wait_pipeline(t["id"], WAIT)
        one.wait_idle(5)
        two.wait_idle(5)
        collector = MetricsCollector(reader)
        found = samples(collector)
    finally:
        one.close(10)
        two.close(10)
    assert value(found, "rattan_pipelines_started_total") == 3
    assert value(found, "rattan_pipelines_finished_total") == 2
    assert value(found, "rattan_pipelines_revoked_total") == 0
    assert value(found, "rattan_pipelines_stopped_on_failure") == 1
    assert value(found, "rattan_nodes_started_total", component="m_ok") == 4
    assert value(found, "rattan_nodes_finished_total", component="m_ok") == 4
    assert value(found, "rattan_nodes_started_total", component="m_fail") == 1
    assert value(found, "rattan_nodes_failed_total", component="m_fail") == 1
    assert ("rattan_nodes_finished_total", (("component", "m_fail"),)) not in found
    assert value(found, "rattan_node_duration_seconds_count", component="m_ok") == 4
    assert value(found, "rattan_node_duration_seconds_bucket", component="m_ok", le="+Inf") == 4
    assert value(found, "rattan_engines", status="live") == 2

    # the next scrape counts only what happened since
    with rattan.Engine(store=url, components=registry()) as engine:
        t = tree("m_ok")
        engine.run_pipeline(t)
        engine.wait_pipeline(t["id"], WAIT)
        failing = tree("m_fail")
        engine.run_pipeline(failing)
        engine.wait_pipeline(failing["id"], WAIT)
        engine.revoke_pipeline(failing["id"])
        engine.wait_idle(5)
    found = samples(collector)
    assert value(found, "rattan_pipelines_started_total") == 5
    assert value(found, "rattan_pipelines_revoked_total") == 1
    assert value(found, "rattan_nodes_failed_total", component="m_fail") == 2
    # the first two engines closed (gave their leases up) and the third one's sweep claimed them
    assert value(found, "rattan_lease_takeovers_total", reason="unknown") == 2
    assert value(found, "rattan_nodes_finished_total", component="m_ok") == 5


def test_due_work_and_lease_takeovers(url: str, reader: rattan.Engine) -> None:
    t = tree("m_ok")
    with rattan.Engine(store=url, components=registry(), start=False) as client:
        client.run_pipeline(t)  # its first token has no owner: ready, for any engine
    collector = MetricsCollector(reader, depth_seconds=0)
    found = samples(collector)
    assert value(found, "rattan_tokens_ready") == 1
    assert value(found, "rattan_executes_running") == 0
    assert (value(found, "rattan_polls_due"), value(found, "rattan_timers_due")) == (0, 0)
    assert value(found, "rattan_callbacks_pending") == 0

    # an engine on another machine takes the token and its lease runs out
    now = time.time()
    reader.core.store.unit(
        lambda tx: tx.lease(OwnerRecord("o-far", "far", 1, None, now - 50), now - 60, lambda o: False)
    )
    found = samples(collector)
    assert value(found, "rattan_engines", status="gone") == 1
    assert value(found, "rattan_lease_takeovers_total", reason="expired") == 0
    with rattan.Engine(store=url, components=registry(), sweep_seconds=0.1) as engine:
        assert engine.wait_pipeline(t["id"], WAIT)["finished"]
    found = samples(collector)
    assert value(found, "rattan_lease_takeovers_total", reason="expired") == 1
    assert value(found, "rattan_tokens_ready") == 0
    assert value(found, "rattan_engines", status="gone") == 1  # the closed engine gave its lease up


def test_metrics_endpoint_needs_a_read_token(url: str) -> None:
    with rattan.Engine(store=url, components=registry()) as engine:
        t = tree("m_ok")
        engine.run_pipeline(t)
        engine.wait_pipeline(t["id"], WAIT)
        app = create_app(
            engine, [Token("reader", frozenset({"read"})), Token("cb", frozenset({"callback:x"}))]
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/metrics").status_code == 401
            assert client.get("/metrics", headers={"Authorization": "Bearer cb"}).status_code == 403
            answer = client.get("/metrics", headers={"Authorization": "Bearer reader"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert "rattan_pipelines_started_total 1.0" in answer.text.splitlines()
    assert 'rattan_nodes_finished_total{component="m_ok"} 1.0' in answer.text.splitlines()

"""Prometheus metrics of a store: what its engines did (from the durable event log) and the work
that is due now (from the store), correct whatever the number of engine processes on the store.

    collector = rattan.metrics.MetricsCollector(engine)   # any Engine on the store, start=False too
    body, content_type = collector.exposition()           # the text format; or:
    prometheus_client.REGISTRY.register(collector)

Each scrape (each ``collect()``) first reads the events committed since the last one
(``Engine.events(after=cursor)``: every engine process writes there, so the counts are the
store's, not one process's), then reads the due work and the engines' leases from the store.
Counters start at the beginning of the log the collector finds (runs archived before it started
are not counted) and restart with the process, as Prometheus counters may. Scrape one collector
per store, or aggregate with ``max`` across instances: every collector on a store counts the same
events. Needs ``prometheus-client`` (the ``server`` extra).

Lease take-overs have no event: the collector counts an owner whose row disappears from the
store between two scrapes (only a claim by another engine deletes it), by how it was last seen:
``expired`` (lease ran out), ``released`` (it gave its lease up when it closed), ``crashed`` (its
process was gone) or ``unknown`` (it was live at the last scrape). An owner that registers and is
taken over between two scrapes is not seen.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from rattan.engine import diagnose
from rattan.model import states
from rattan.runtime.interface import RunQuery

if TYPE_CHECKING:
    from rattan.facade import Engine

# node durations, enter to finish (seconds)
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)
PAGE = 1000
RUN_CACHE = 4096  # runs whose node -> component code map is kept
OPEN_NODES = 100_000  # node passes entered and not finished that are remembered for their duration
UNKNOWN = "unknown"
FAILED_EVENTS = ("node_execute_fail", "node_schedule_fail", "post_forced_fail_activity")
NODE_EVENTS = frozenset(("node_enter", "node_finish", *FAILED_EVENTS))
TAKEOVER = {"lease ran out": "expired", "gave its lease up": "released", "process gone": "crashed"}


class MetricsCollector(Collector):
    """A ``prometheus_client`` collector over ``engine``'s store (see the module's docstring)."""

    def __init__(self, engine: Engine, *, depth_seconds: float = 5.0) -> None:
        self.engine = engine
        # counting the due work takes the store's writer for a moment: at most once this often
        self.depth_seconds = depth_seconds
        self._lock = threading.Lock()
        self.cursor = 0
        self.pipelines = {"started": 0, "finished": 0, "revoked": 0}
        self.nodes: dict[str, dict[str, int]] = {"started": {}, "finished": {}, "failed": {}}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        self.takeovers: dict[str, int] = {"expired": 0, "released": 0, "crashed": 0, "unknown": 0}
        self._codes: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._entered: OrderedDict[str, float] = OrderedDict()
        self._owners: dict[str, diagnose.Owner] = {}
        self._depth: dict[str, int] = {}
        self._depth_at = 0.0
        self._stuck_on_failure = 0
        self._registry: CollectorRegistry | None = None

    # -- the event log -----------------------------------------------------------------------------

    def update(self) -> None:
        """Read the events committed since the last update, and the store's owners."""
        with self._lock:
            while page := self.engine.events(None, self.cursor, PAGE):
                for event in page:
                    self._count(event)
                self.cursor = page[-1]["id"]
                if len(page) < PAGE:
                    break
            self._watch_owners()

    def _count(self, event: dict[str, Any]) -> None:
        kind, node, root = event["event_type"], event["node_id"], event["root_id"]
        data = event["data"] or {}
        if kind == "post_prepare_run_pipeline":
            self.pipelines["started"] += 1
        elif kind == "pipeline_finish" and data.get("pipeline_id", root) == root:
            self.pipelines["finished"] += 1
        elif kind == "post_revoke_pipeline" and data.get("pipeline_id", root) == root:
            self.pipelines["revoked"] += 1
        elif node is None or kind not in NODE_EVENTS:
            return
        elif not (code := self._code(root, node)):
            return  # an event, a gateway or a subprocess: not an activity pass
        elif kind == "node_enter":
            self._add("started", code)
            self._entered[node] = event["created_time"].timestamp()
            if len(self._entered) > OPEN_NODES:
                self._entered.popitem(last=False)
        elif kind == "node_finish":
            self._add("finished", code)
            entered = self._entered.pop(node, None)
            if entered is not None:
                self._observe(code, max(0.0, event["created_time"].timestamp() - entered))
        elif kind in FAILED_EVENTS:
            self._add("failed", code)
            self._entered.pop(node, None)

    def _add(self, what: str, code: str) -> None:
        table = self.nodes[what]
        table[code] = table.get(code, 0) + 1

    def _observe(self, code: str, seconds: float) -> None:
        counts = self.buckets.setdefault(code, [0] * (len(BUCKETS) + 1))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        counts[-1] += 1
        self.sums[code] = self.sums.get(code, 0.0) + seconds

    def _code(self, root_id: str, node_id: str) -> str:
        """The component code of a node (the run's stored tree, read once per run)."""
        codes = self._codes.get(root_id)
        if codes is None:
            run = self.engine.core.store.read(lambda tx: tx.run(root_id))
            codes = {}
            if run is not None:
                _walk(run.tree, codes)
            self._codes[root_id] = codes
            if len(self._codes) > RUN_CACHE:
                self._codes.popitem(last=False)
        else:
            self._codes.move_to_end(root_id)
        return codes.get(node_id, UNKNOWN)

    def _watch_owners(self) -> None:
        owners = diagnose.read_owners(self.engine.core)
        for owner_id, seen in self._owners.items():
            if owner_id not in owners:  # only a claim deletes an owner's row
                reason = "unknown" if seen.live else TAKEOVER.get(seen.why, "unknown")
                self.takeovers[reason] += 1
        self._owners = owners

    # -- the store's due work ----------------------------------------------------------------------

    def depth(self) -> dict[str, int]:
        """Work due now: ready tokens, running executes, due polls and timers, pending callbacks
        (the store's ``Reads.due_work``: counts, read without a lock)."""
        now = self.engine.clock.now()
        if self._depth and now - self._depth_at < self.depth_seconds:
            return self._depth
        due = self.engine.core.store.read(lambda r: r.due_work(now))
        counted = {
            "tokens_ready": due.tokens_ready,
            "executes_running": due.executes_running,
            "polls_due": due.polls_due,
            "timers_due": due.timers_due,
            "callbacks_pending": due.callbacks_pending,
        }
        stuck = 0
        offset = 0
        while True:
            query = RunQuery(state=states.RUNNING, has_failed_nodes=True, limit=PAGE, offset=offset)
            page = self.engine.core.store.read(functools.partial(diagnose.runs_page, query=query))
            stuck += sum(1 for run in page if not run.busy)
            offset += len(page)
            if len(page) < PAGE:
                break
        self._stuck_on_failure = stuck
        self._depth, self._depth_at = counted, now
        return counted

    # -- prometheus --------------------------------------------------------------------------------

    def describe(self) -> list[Any]:
        """The metric families, without values: registering reads nothing from the store."""
        return list(self._families({}))

    def collect(self) -> Iterator[Any]:
        self.update()
        with self._lock:
            depth = self.depth()
            yield from self._families(depth)

    def _families(self, depth: dict[str, int]) -> Iterator[Any]:
        for what, help_text in (
            ("started", "Runs started (root pipelines)"),
            ("finished", "Runs whose root pipeline FINISHED"),
            ("revoked", "Runs revoked"),
        ):
            yield CounterMetricFamily(f"rattan_pipelines_{what}", help_text, value=self.pipelines[what])
        gauge = GaugeMetricFamily(
            "rattan_pipelines_stopped_on_failure",
            "RUNNING runs with FAILED nodes and nothing else the engine can do by itself",
            value=self._stuck_on_failure,
        )
        yield gauge
        for what, help_text in (
            ("started", "Service activity passes started (node_enter)"),
            ("finished", "Service activity passes finished (node_finish)"),
            ("failed", "Service activity passes failed (execute or schedule failed, or forced to fail)"),
        ):
            family = CounterMetricFamily(f"rattan_nodes_{what}", help_text, labels=["component"])
            for code, n in sorted(self.nodes[what].items()):
                family.add_metric([code], n)
            yield family
        hist = HistogramMetricFamily(
            "rattan_node_duration_seconds", "Service activity passes, node_enter to node_finish",
            labels=["component"],
        )  # fmt: skip
        for code, counts in sorted(self.buckets.items()):
            cumulative = [(str(b), counts[i]) for i, b in enumerate(BUCKETS)] + [("+Inf", counts[-1])]
            hist.add_metric([code], cumulative, self.sums.get(code, 0.0))
        yield hist
        for key, help_text in (
            ("tokens_ready", "Tokens ready to be advanced"),
            ("executes_running", "Activities whose execute() is running (or was, in an engine that is gone)"),
            ("polls_due", "Polls whose due time has come"),
            ("timers_due", "Timers (timeouts, timer events, automatic retries) whose due time has come"),
            ("callbacks_pending", "Callbacks stored for a waiting node and not applied yet"),
        ):
            yield GaugeMetricFamily(f"rattan_{key}", help_text, value=depth.get(key, 0))
        takeovers = CounterMetricFamily(
            "rattan_lease_takeovers", "Engines whose work another engine took over", labels=["reason"]
        )
        for reason, n in sorted(self.takeovers.items()):
            takeovers.add_metric([reason], n)
        yield takeovers
        engines = GaugeMetricFamily("rattan_engines", "Engines registered on the store", labels=["status"])
        for status in (diagnose.LIVE, diagnose.GONE):
            engines.add_metric([status], sum(1 for o in self._owners.values() if o.status == status))
        yield engines
        yield GaugeMetricFamily("rattan_event_cursor", "Id of the last event counted", value=self.cursor)

    @property
    def registry(self) -> CollectorRegistry:
        """A registry holding only this collector."""
        if self._registry is None:
            self._registry = CollectorRegistry()
            self._registry.register(self)
        return self._registry

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _walk(pipeline: dict[str, Any], codes: dict[str, str]) -> None:
    """Node id -> component code for activities, "" for the other nodes (counted by no metric)."""
    for key in ("start_event", "end_event"):
        codes[pipeline[key]["id"]] = ""
    codes.update(dict.fromkeys(pipeline.get("gateways", {}), ""))
    for node_id, node in pipeline.get("activities", {}).items():
        if node.get("type") == "SubProcess":
            codes[node_id] = ""
            _walk(node["pipeline"], codes)
        else:
            codes[node_id] = str((node.get("component") or {}).get("code") or UNKNOWN)


__all__ = ["BUCKETS", "MetricsCollector"]

"""The run plans and run data an engine keeps in memory: both are immutable once a run is
stored, so each is read and parsed once per run (and again only after it was trimmed out)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rattan.engine.plan import RunPlan, build_plan
from rattan.errors import NotFoundError
from rattan.runtime.interface import Reads, Store
from rattan.validator import load_pipeline

PLAN_CACHE = 4096  # runs whose plan stays parsed in memory


class Plans:
    def __init__(self, store: Store, sink_types: Callable[[], frozenset[str]]) -> None:
        self._store = store
        self._sink_types = sink_types
        self._plans: dict[str, RunPlan] = {}
        self._root_data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def plan(self, root_id: str) -> RunPlan:
        plan = self._plans.get(root_id)
        if plan is None:
            run = self._store.read(lambda tx: tx.run(root_id))
            if run is None:
                raise NotFoundError(f"pipeline {root_id} does not exist")
            spec = load_pipeline(
                run.tree,
                cycle_tolerate=bool(run.options.get("cycle_tolerate")),
                sink_types=self._sink_types(),
            )
            plan = build_plan(spec)
            with self._lock:
                self._plans[root_id] = plan
                self._root_data.setdefault(root_id, run.root_data)
                self._trim()
        return plan

    def root_data(self, tx: Reads, root_id: str) -> Any:
        data = self._root_data.get(root_id)
        if data is None:
            run = tx.run(root_id)
            data = (run.root_data if run is not None else None) or {}
            with self._lock:
                self._root_data[root_id] = data
        return data

    def remember(self, root_id: str, plan: RunPlan, root_data: Any) -> None:
        with self._lock:
            self._plans[root_id] = plan
            self._root_data[root_id] = root_data
            self._trim()

    def forget(self, root_id: str) -> None:
        """Drop the cached plan and data of a run that was deleted."""
        with self._lock:
            self._plans.pop(root_id, None)
            self._root_data.pop(root_id, None)

    def release(self) -> None:
        """Drop every cached plan and run data (the engine has closed). Freed at once by reference
        counting, instead of waiting, as part of the closed engine's object graph, for a full
        garbage collection that would then fall inside whatever the process does next (measured:
        20-30 ms pauses in the next engine's work)."""
        with self._lock:
            self._plans.clear()
            self._root_data.clear()

    def _trim(self) -> None:
        """Keep at most PLAN_CACHE runs in memory (oldest first out): a plan is rebuilt from the
        stored tree when needed again, so a long-lived engine's memory does not grow per run."""
        while len(self._plans) > PLAN_CACHE:
            oldest = next(iter(self._plans))
            self._plans.pop(oldest, None)
            self._root_data.pop(oldest, None)

"""``rattan.Engine``: the facade. Methods raise typed errors; ``rattan.api`` wraps them into
``EngineAPIResult`` values with bamboo-engine's function names.

It builds the runtime it is given (a store and a dispatcher, as instances or URLs, and a clock)
and the engine on top: ``EngineCore`` (units of work), the ``Worker`` the dispatcher hands
messages to, and the ``Sweeper`` that keeps this process's lease and takes over orphaned work.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rattan import signals
from rattan.components import Registry
from rattan.components import registry as default_registry
from rattan.components.catalog import list_components
from rattan.context import ContextValue
from rattan.engine import controls, retention
from rattan.engine.checks import check_str_list, checked_ids, json_input
from rattan.engine.core import EngineCore
from rattan.engine.prepare import run_pipeline
from rattan.engine.schedule import expire_schedule
from rattan.engine.sweep import Sweeper
from rattan.engine.worker import Worker
from rattan.errors import BadInputError
from rattan.queries import Queries
from rattan.rollback.extension import Rollback, install_rollback
from rattan.runtime import open_dispatcher, open_store
from rattan.runtime.clock import SystemClock
from rattan.settings import Settings, check_fields

if TYPE_CHECKING:
    from rattan.runtime.interface import Clock, Dispatcher, Store

log = logging.getLogger("rattan.engine")


@checked_ids
class Engine(Queries):
    """A durable pipeline engine.

    ``Engine()`` stores everything in ``rattan.db`` in the working directory and runs pipelines on
    worker threads of this process. ``Engine(store="sqlite:///path/to.db")`` picks the file;
    ``Engine(store=":memory:")`` uses a throw-away database (tests). Any number of processes may
    open one store (docs/engine.md, "Several processes on one store").

    Args:
        store: where runs are stored: a URL or path, or a ``rattan.runtime.interface.Store``.
        dispatcher: how work reaches workers: ``"threads"`` (the default) or a ``Dispatcher``.
        settings: a ``rattan.Settings``; keyword ``overrides`` replace single fields.
        components: an isolated ``rattan.Registry`` (default: the process's ``rattan.registry``).
        component_modules: modules to import (packages recursively) so their components register.
        load_entry_points: also load the ``rattan.components`` entry-point group.
        start: start the workers now (and take over unfinished work found in the store). An engine
            that is not started submits, controls and reads; running engines do its work.
        clock: the engine's time (``rattan.testing.FakeClock`` in tests); the wall clock by default.
    """

    def __init__(
        self,
        store: str | Store | None = None,
        dispatcher: str | Dispatcher | None = None,
        settings: Settings | None = None,
        *,
        components: Registry | None = None,
        component_modules: Iterable[str] = (),
        load_entry_points: bool = False,
        start: bool = True,
        clock: Clock | None = None,
        **overrides: Any,
    ) -> None:
        check_fields(overrides)
        base = settings or Settings()
        self.settings = base.replace(**overrides) if overrides else base
        registry = components if components is not None else default_registry
        modules = list(component_modules)
        if modules:
            registry.import_modules(modules)
        if load_entry_points:
            registry.load_entry_points()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._dispatcher = open_dispatcher(dispatcher, self.settings, self.clock)
        self._store = open_store(store, self.settings)
        self.store_url = self._store.url
        self._core = EngineCore(self._store, self._dispatcher, self.settings, registry, self.clock)
        self._core.sender = self
        self._worker = Worker(self._core)
        self._sweeper = Sweeper(self._core)
        if self.settings.enable_pipeline_event_signals:
            self._core.listeners.append(self._signal)
        self._closed = False
        self._started = False
        self.rollback_extension: Rollback | None = None
        self._stop = threading.Event()
        if self.settings.pipeline_enable_rollback:  # the rollback extension
            install_rollback(self)
        if start:
            self.start()

    def _signal(self, event_type: str, data: dict[str, Any]) -> None:
        signals.pipeline_event.send(sender=self, event=signals.Event(event_type, data))

    def events(
        self, pipeline_id: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Events of the durable log with ``id > after``, oldest first (every pipeline when
        ``pipeline_id`` is None). Keep the last ``id`` you processed as the cursor of the next call:
        a consumer that was down catches up without losing events. See docs/hooks-and-events.md."""
        return [e.as_dict() for e in self._store.read(lambda tx: tx.events(after, pipeline_id, limit))]

    def list_components(self, code: str | None = None, version: str | None = None) -> list[dict[str, Any]]:
        """The components this engine runs (its registry, plus the built-in examples while
        ``enable_example_components`` is on), one dict per ``(code, version)`` with metadata,
        ``inputs`` / ``outputs`` formats and their JSON Schema; only ``code`` (at ``version``)
        when given, else ``ComponentNotExistException``. See docs/components.md."""
        return list_components(
            self._core.services.registry, code=code, version=version,
            include_builtin=self.settings.enable_example_components,
        )  # fmt: skip

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def core(self) -> EngineCore:
        return self._core

    @property
    def dispatcher(self) -> Dispatcher:
        return self._dispatcher

    @property
    def owner_id(self) -> str | None:
        """This engine's id as an owner of work (None until it starts)."""
        return self._core.owner_id

    def start(self) -> None:
        """Start the workers: take an owner id, take over the work no live engine owns (what a
        crash left, what engines that run no workers wrote), then keep the lease."""
        if self._started or self._closed:
            return
        self._started = True
        self._dispatcher.start(self._worker.handle)
        self._sweeper.start()
        if self.settings.retention_seconds is not None:
            threading.Thread(target=self._retention_loop, name="rattan-retention", daemon=True).start()

    def recover(self) -> None:
        """Claim and resume orphaned work now (the sweep does this every ``sweep_seconds``)."""
        if self._started:
            self._sweeper.sweep()

    def archive(
        self, older_than: float, path: str | None = None, batch: int = 100, delete: bool = True
    ) -> list[str]:
        """Archive runs FINISHED or REVOKED more than ``older_than`` seconds ago to the JSON-lines
        file ``path`` (appended; None: no export), then delete them from the store (unless
        ``delete`` is False). Works in batches of short transactions. Returns the root ids."""
        if path is None:
            return retention.archive(self._core, older_than, None, batch, delete)
        with open(path, "ab") as out:
            return retention.archive(self._core, older_than, out, batch, delete)

    def _retention_loop(self) -> None:
        seconds = self.settings.retention_seconds
        while seconds is not None and not self._stop.wait(self.settings.retention_interval):
            try:
                folder = self.settings.retention_archive_dir
                path = None
                if folder:
                    os.makedirs(folder, exist_ok=True)
                    path = os.path.join(folder, time.strftime("rattan-archive-%Y%m%d.jsonl", time.gmtime()))
                self.archive(seconds, path)
            except Exception:
                log.exception("retention pass failed")

    def close(self, timeout: float = 30.0) -> None:
        """Drain queued and running work (up to ``timeout`` seconds), give this process's lease up
        (other engines take over what is left at once), then close the store."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._started:
            self.wait_idle(timeout)
            self._worker.closing = True
            self._dispatcher.stop(timeout)
            self._sweeper.stop()
        self._store.close()
        self._core.plans.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no dispatched work is queued, running or waiting for its round (pending
        polls and timers may remain)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._dispatcher.wait_idle(max(0.0, deadline - time.monotonic())):
                return False
            if self._worker.idle() and self._dispatcher.wait_idle(0):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    # -- starting --------------------------------------------------------------------------------
    def run_pipeline(
        self,
        pipeline: dict[str, Any],
        root_pipeline_data: dict[str, Any] | None = None,
        root_pipeline_context: dict[str, Any] | None = None,
        subprocess_context: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Validate ``pipeline`` (normalising it in place), store it and start running it."""
        run_pipeline(
            self._core, pipeline, root_pipeline_data, root_pipeline_context, subprocess_context, **options
        )

    # -- controls --------------------------------------------------------------------------------
    def pause_pipeline(self, pipeline_id: str) -> None:
        self._core.unit(lambda step: controls.pause_pipeline(step, pipeline_id))

    def resume_pipeline(self, pipeline_id: str) -> None:
        self._core.unit(lambda step: controls.resume_pipeline(step, pipeline_id))

    def revoke_pipeline(self, pipeline_id: str) -> None:
        self._core.unit(lambda step: controls.revoke_pipeline(step, pipeline_id))

    def pause_node_appoint(self, node_id: str) -> None:
        self._core.unit(lambda step: controls.pause_node_appoint(step, node_id))

    def resume_node_appoint(self, node_id: str) -> None:
        self._core.unit(lambda step: controls.resume_node_appoint(step, node_id))

    def retry_node(self, node_id: str, data: dict[str, Any] | None = None, loop_retry: bool = False) -> None:
        if data is not None and not isinstance(data, dict):
            raise BadInputError(
                f"retry_node data must be a dict of input key -> value (or None), got {type(data).__name__}"
            )
        # as in bamboo, this entry is popped from the caller's dict before any check
        escaped = data.pop("_escape_render_keys", None) if data else None
        if escaped is not None:
            check_str_list(escaped, "retry_node data['_escape_render_keys']")
        json_input(data, "retry_node data")  # refused before the unit: nothing half written
        self._core.unit(lambda step: controls.retry_node(step, node_id, data, loop_retry, escaped=escaped))

    def retry_subprocess(self, node_id: str) -> None:
        self._core.unit(lambda step: controls.retry_node(step, node_id, None, False, subprocess=True))

    def skip_node(self, node_id: str, loop_skip: bool = False) -> None:
        self._core.unit(lambda step: controls.skip_node(step, node_id, loop_skip))

    def skip_exclusive_gateway(self, node_id: str, flow_id: str) -> None:
        self._core.unit(lambda step: controls.skip_exclusive_gateway(step, node_id, flow_id))

    def skip_conditional_parallel_gateway(
        self, node_id: str, flow_ids: list[str], converge_gateway_id: str
    ) -> None:
        self._core.unit(
            lambda step: controls.skip_conditional_parallel_gateway(
                step, node_id, flow_ids, converge_gateway_id
            )
        )

    def forced_fail_activity(
        self, node_id: str, ex_data: str = "", send_post_set_state_signal: bool = True
    ) -> None:
        self._core.unit(
            lambda step: controls.forced_fail_activity(
                step, node_id, ex_data, signal=send_post_set_state_signal
            )
        )

    def callback(
        self, node_id: str, version: str, data: Any = None, idempotency_key: str | None = None
    ) -> int:
        """Queue a callback for a waiting node; returns the stored callback id ("accepted")."""
        # refused before the unit: nothing half written
        json_input(data, "callback data", self._core.settings.max_callback_bytes)
        try:
            return self._core.unit(
                lambda step: controls.callback(step, node_id, version, data, idempotency_key)
            )
        except controls.StaleCallbackError as exc:
            stale = exc.schedule_id
            self._core.unit(lambda step: expire_schedule(step, stale))
            raise

    def update_context_values(self, pipeline_id: str, context_values: Iterable[ContextValue]) -> None:
        values = list(context_values)
        self._core.unit(lambda step: controls.update_context_values(step, pipeline_id, values))

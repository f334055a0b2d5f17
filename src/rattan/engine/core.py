"""EngineCore: the pieces every engine operation needs (store, settings, components, plans) and
the worker loop that turns dispatched work into units of work.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from rattan import signals
from rattan.components import BUILTIN_REGISTRY, DataObject, Registry, Service
from rattan.components.service import SERVICE_LOGGER_NAME, ServiceLoggerAdapter
from rattan.engine import policies
from rattan.engine.activity import ExecResult
from rattan.engine.advance import Outcome, advance, fail_engine_error
from rattan.engine.jobs import Prepared
from rattan.engine.plan import RunPlan, build_plan
from rattan.engine.schedule import ScheduleResult, expire_schedule, load_job, run_schedule
from rattan.engine.step import Effects, Step
from rattan.errors import BackendUnavailableError, ComponentNotExistException, NotFoundError
from rattan.runtime.queries import dumps
from rattan.runtime.threads import ThreadDispatcher
from rattan.spec import load_pipeline

if TYPE_CHECKING:
    from rattan.engine.records import StateRecord
    from rattan.runtime.queries import Tx
    from rattan.runtime.sqlite import SQLiteStore
    from rattan.settings import Settings

log = logging.getLogger("rattan.engine")
T = TypeVar("T")
Carry = ExecResult | ScheduleResult | None
Work = tuple[int, Carry]  # a token to advance, with the result of its last user step if any
PLAN_CACHE = 4096  # runs whose plan stays parsed in memory


_SERVICE_LOGGER = logging.getLogger(SERVICE_LOGGER_NAME)


class NodeLogger(ServiceLoggerAdapter):
    """``self.logger`` of a service: logs as usual and keeps the lines for ``get_plain_log_for_node``."""

    def __init__(self, node_id: str, version: str, loop: int) -> None:
        super().__init__(_SERVICE_LOGGER, {"node_id": node_id, "loop": loop, "version": version})
        self.lines: list[str] = []

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.INFO:
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = f"{msg} {args}"
            self.lines.append(f"[{logging.getLevelName(level)}] {text}")
        super().log(level, msg, *args, **kwargs)


class EngineCore:
    def __init__(self, store: SQLiteStore, settings: Settings, registry: Registry) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry
        self._plans: dict[str, RunPlan] = {}
        self._root_data: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        # called inside the transaction of every Step.event: (step, event_type, data)
        self.tx_listeners: list[Callable[[Step, str, dict[str, Any]], None]] = []
        self.owner: object = self  # the Engine facade, the sender of signals
        self.dispatcher = ThreadDispatcher(self, settings.workers)

    # -- plans and run data (cached: both are immutable once a run is stored) ------------------
    def plan(self, root_id: str) -> RunPlan:
        plan = self._plans.get(root_id)
        if plan is None:
            run = self.store.read(lambda tx: tx.get_run(root_id))
            if run is None:
                raise NotFoundError(f"pipeline {root_id} does not exist")
            tree, root_data, options = run
            spec = load_pipeline(
                tree, cycle_tolerate=bool(options.get("cycle_tolerate")), sink_types=self.sink_types()
            )
            plan = build_plan(spec)
            with self._lock:
                self._plans[root_id] = plan
                self._root_data.setdefault(root_id, root_data)
                self._trim()
        return plan

    def release(self) -> None:
        """Drop the cached plans and run data (the engine has closed). Freed at once by reference
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

    def root_data(self, tx: Tx, root_id: str) -> Any:
        data = self._root_data.get(root_id)
        if data is None:
            data = tx.get_root_data(root_id) or {}
            self._root_data[root_id] = data
        return data

    # -- components ----------------------------------------------------------------------------
    def sink_types(self) -> frozenset[str]:
        return self.registry.sink_types()

    def service_class(self, code: str, version: str) -> type[Service]:
        try:
            return self.registry.get_service_class(code, version)
        except ComponentNotExistException:
            if self.settings.enable_example_components:
                return BUILTIN_REGISTRY.get_service_class(code, version)
            raise

    def has_component(self, code: str, version: str) -> bool:
        try:
            self.service_class(code, version)
        except ComponentNotExistException:
            return False
        return True

    def wants_hooks(self, node: Any) -> bool:
        """True for a service activity whose service sets ``__need_run_hook__``."""
        code = getattr(node, "component_code", None)
        if code is None or not self.has_component(code, node.component_version):
            return False
        return bool(getattr(self.service_class(code, node.component_version), "__need_run_hook__", False))

    def make_service(self, prep: Prepared) -> Service:
        service = self.service_class(prep.code, prep.component_version)(name=prep.name)
        service.setup_runtime_attrs(
            id=prep.node_id,
            version=prep.version,
            top_pipeline_id=prep.top_pipeline_id,
            root_pipeline_id=prep.root_id,
            loop=prep.loop,
            inner_loop=prep.inner_loop,
            logger=NodeLogger(prep.node_id, prep.version, prep.loop),
        )
        return service

    def data_objects(
        self, inputs: dict[str, Any], outputs: dict[str, Any], root_data: Any
    ) -> tuple[DataObject, DataObject]:
        return DataObject(dict(inputs), outputs), DataObject(dict(root_data or {}), {})

    def hook(self, service: Service, name: str, data: DataObject, parent: DataObject, **kw: Any) -> None:
        if not service.need_run_hook():
            return
        saved = (dict(data.inputs), dict(data.outputs))
        try:
            if not service.call_hook(name, data, parent, kw.get("callback_data")):
                # a main-path hook's changes are kept only when it returns truthy (SPEC 9)
                data.reset_outputs(saved[1])
                data.override_inputs(saved[0])
        except Exception:
            log.error(
                "hook %s of node %s raised:\n%s", name, getattr(service, "id", "?"), traceback.format_exc()
            )

    def judge(self, service: Service, data: DataObject, value: Any) -> tuple[Any, bool]:
        """A user step's return value as (value, success): ``None`` means success, anything else
        by truthiness (SPEC 5.3); outputs that break ``outputs_format`` fail when validation is on."""
        if value is None:
            value = True
        if value and (problem := self.output_problems(service, data.outputs)) is not None:
            data.outputs["ex_data"] = problem
            return False, False
        return value, bool(value)

    def output_problems(self, service: Service, outputs: dict[str, Any]) -> str | None:
        """With ``validate_io_schemas`` on: the ex_data text when outputs break ``outputs_format``."""
        if not self.settings.validate_io_schemas:
            return None
        problems: list[str] = []
        for item in service.outputs_format():
            if item.key in outputs:
                problems += item.validate(outputs[item.key])
        return "outputs do not match outputs_format: " + "; ".join(problems) if problems else None

    def lazy_variable(self, code: str) -> Any:
        return self.registry.get_lazy_variable(code)

    def run_end_event(
        self, key: str, node_id: str, in_subprocess: bool, root_id: str, pipeline_id: str
    ) -> str | None:
        """Run an executable end event; return ex_data text on failure."""
        try:
            cls = self.registry.get_end_event(key)
        except NotFoundError:
            return f"executable end event type '{key}' is not registered"
        try:
            cls(id=node_id, name=None, data=None).execute(in_subprocess, root_id, pipeline_id)
        except Exception:
            return traceback.format_exc()
        return None

    # -- units of work ---------------------------------------------------------------------------
    def unit(self, fn: Callable[[Step], T]) -> T:
        """Run ``fn`` in a store transaction; apply its effects once committed."""

        def body(tx: Tx) -> tuple[T, Effects]:
            step = Step(self, tx)
            result = fn(step)
            step.flush()
            return result, step.fx

        result, fx = self.store.run(body)
        self.apply(fx)
        return result

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener(event_type, data)
            except Exception:
                log.exception("event listener failed on %s", event_type)

    def apply(self, fx: Effects) -> None:
        # notifications and hooks first: a "pre_" hook (pre_callback, pre_retry_node) must have
        # run before the work it precedes is handed to a worker
        for change in fx.state_changes:
            signals.post_set_state.send(sender=self.owner, **change)
        for node_id, hook, save, callback_id in fx.hooks:
            self.run_hook(node_id, hook, save, callback_id)
        for event_type, data in fx.events:
            self.emit(event_type, data)
        for node_id, version in fx.cancels:
            self.cancel_service(node_id, version)
        for pid in fx.dispatch:
            self.dispatcher.process(pid)
        for due, sid in fx.polls:
            self.dispatcher.poll(sid, due)
        for cid in fx.callbacks:
            self.dispatcher.callback(cid)
        for due, tid in fx.timers:
            self.dispatcher.timer(tid, due)
        for call in fx.calls:
            self.dispatcher.submit(call)

    def service_for(
        self, node_id: str, version: str | None = None
    ) -> tuple[Service, DataObject, DataObject, StateRecord | None] | None:
        """A fresh service of a stored service activity with DataObjects of its execution data,
        for calls made after a commit (hooks, ``cancel``). None for other nodes."""
        root = self.store.read(lambda tx: tx.root_of_node(node_id))
        if root is None:
            return None
        info = self.plan(root).info(node_id)
        node: Any = info.node
        if node.kind != "ServiceActivity" or not self.has_component(
            node.component_code, node.component_version
        ):
            return None
        st, data, root_data = self.store.read(
            lambda tx: (tx.get_state(node_id), tx.get_exec_data(node_id), self.root_data(tx, root))
        )
        prep = Prepared.of(
            0, node, version or (st.version if st else ""), st.loop if st else 1, st.inner_loop if st else 1,
            root, info.pipeline_id, data.inputs if data else {}, root_data,
        )  # fmt: skip
        d, parent = self.data_objects(prep.inputs, dict(data.outputs) if data else {}, root_data)
        return self.make_service(prep), d, parent, st

    def run_hook(self, node_id: str, hook: str, save: bool, callback_id: int | None) -> None:
        """Call a node hook after the change it reports is committed (SPEC 9). ``save``: keep the
        hook's changes to data when it returns truthy and the node's version has not moved on."""
        try:
            made = self.service_for(node_id)
            if made is None or not made[0].need_run_hook():
                return
            service, d, parent, st = made
            if st is None:
                return
            cb = self.store.read(lambda tx: tx.get_callback(callback_id)) if callback_id is not None else None
            try:
                keep = service.call_hook(hook, d, parent, cb)
            except Exception:
                log.error("hook %s of node %s raised:\n%s", hook, node_id, traceback.format_exc())
                return
            if save and keep:
                version = st.version
                self.unit(
                    lambda step: save_hook_data(step, node_id, version, dict(d.inputs), dict(d.outputs))
                )
        except Exception:
            log.exception("could not run hook %s of node %s", hook, node_id)

    def cancel_service(self, node_id: str, version: str) -> None:
        """Call the Service's optional ``cancel(data, parent_data)`` so it can stop its external job."""
        try:
            made = self.service_for(node_id, version)
            if made is not None:
                made[0].cancel(made[1], made[2])
        except Exception:
            log.exception("cancel() of node %s raised", node_id)

    # -- work ------------------------------------------------------------------------------------
    def advance_many(self, work: list[Work]) -> tuple[list[tuple[int, Outcome | None]], list[Work]]:
        """Advance several tokens in ONE store transaction (one commit for the whole batch).

        If any token raises, the batch is redone with a savepoint per token: an engine error in one
        is rolled back alone and recorded as that node's failure; the others commit. Effects apply
        after the commit. When another thread is queued for the store (an API call, a
        ``run_pipeline``), the batch stops early so that caller is not kept waiting for the whole
        batch: the tokens it did not reach are returned second, for the next round.
        """

        Result = list[tuple[int, Outcome | None, Effects | None, Exception | None]]

        def optimistic(tx: Tx) -> Result:
            # no savepoint per token: if any token raises, the whole batch is redone carefully
            out: Result = []
            sink: list[tuple[str, dict[str, Any]]] = []
            for index, (pid, carry) in enumerate(work):
                if index and self.store.has_waiters():
                    leftover.extend(work[index:])
                    break
                step = Step(self, tx, sink)
                out.append((pid, advance(step, pid, carry), step.fx, None))
            if sink:
                Step(self, tx)._write_log(sink)  # the whole batch's events: one row per pipeline
            return out

        def careful(tx: Tx) -> Result:
            out: Result = []
            sink: list[tuple[str, dict[str, Any]]] = []
            for pid, carry in work:
                tx.c.execute("SAVEPOINT item")
                mine: list[tuple[str, dict[str, Any]]] = []
                step = Step(self, tx, mine)
                try:
                    outcome = advance(step, pid, carry)
                except Exception as exc:
                    tx.c.execute("ROLLBACK TO item")
                    tx.forget()
                    mine = []
                    step = Step(self, tx, mine)  # the failed step's effects were rolled back with it
                    if carry is not None:
                        # keep the user step's result; the node after it is failed below
                        try:
                            advance(step, pid, carry, record_only=True)
                        except Exception:
                            tx.c.execute("ROLLBACK TO item")
                            tx.forget()
                            mine = []
                            step = Step(self, tx, mine)
                    tx.c.execute("RELEASE item")
                    sink.extend(mine)
                    out.append((pid, None, step.fx, exc))
                    continue
                tx.c.execute("RELEASE item")
                sink.extend(mine)
                out.append((pid, outcome, step.fx, None))
            if sink:
                Step(self, tx)._write_log(sink)
            return out

        leftover: list[Work] = []
        try:
            results = self.store.run(optimistic)
        except BackendUnavailableError:
            raise
        except Exception:
            leftover.clear()
            results = self.store.run(careful)
        done: list[tuple[int, Outcome | None]] = []
        for pid, outcome, fx, exc in results:
            if fx is not None:
                self.apply(fx)
            if exc is not None:
                self._engine_error(pid, exc)
            done.append((pid, outcome))
        return done, leftover

    def schedule_job(self, sid: int, callback_id: int | None = None) -> Work | None:
        """Run one poll or callback step's user code; return the work item that records it."""
        job = self.store.read(lambda tx: load_job(self, tx, sid, callback_id))
        if job is None:
            return None
        if isinstance(job, int):
            self.unit(lambda step: expire_schedule(step, sid))
            return None
        return (job.prepared.pid, run_schedule(self, job))

    def fire_timer(self, tid: int) -> None:
        try:
            self.unit(lambda step: policies.fire(step, tid))
        except Exception:
            log.exception("timer %s failed", tid)

    def schedule_of_callback(self, cid: int) -> int | None:
        def find(tx: Tx) -> int | None:
            cb = tx.get_callback(cid)
            if cb is None:
                return None
            sched = tx.get_schedule_by(cb.node_id, cb.version)
            return None if sched is None else sched.id

        return self.store.read(find)

    def _engine_error(self, pid: int, exc: Exception) -> None:
        log.error("engine error while advancing process %s:\n%s", pid, traceback.format_exc())
        message = f"engine error: {type(exc).__name__}: {exc}"
        try:
            self.unit(lambda step: fail_engine_error(step, pid, message))
        except Exception:
            log.exception("could not record the engine error of process %s", pid)


def save_hook_data(
    step: Step, node_id: str, version: str, inputs: dict[str, Any], outputs: dict[str, Any]
) -> None:
    """Keep a main-path hook's data changes, unless the node has moved on to another pass."""
    st = step.tx.get_state(node_id)
    if st is not None and st.version == version:
        step.tx.put_exec_data(node_id, dumps(inputs), dumps(outputs))

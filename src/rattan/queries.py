"""The read side of ``rattan.Engine``: runs, states, data, histories, schedules.

Every method reads committed data; none changes anything. ``Engine`` inherits them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rattan.context import ContextValue
from rattan.engine import preview, reads, runs
from rattan.engine.checks import checked_ids
from rattan.engine.reads import state_of
from rattan.errors import NotFoundError
from rattan.model import states
from rattan.model.records import ExecutionData, HistoryRecord, ScheduleRecord, StateRecord
from rattan.runtime.interface import ScheduleQuery

if TYPE_CHECKING:
    from rattan.engine.core import EngineCore
    from rattan.engine.worker import Worker
    from rattan.runtime.interface import Store


@checked_ids
class Queries:
    """Reads for ``rattan.Engine`` (which provides ``_core`` and ``_store``)."""

    _core: EngineCore
    _store: Store
    _worker: Worker

    def preview_node_inputs(
        self, pipeline: dict[str, Any], node_id: str, subprocess_stack: list[str] | None = None,
        root_pipeline_data: dict[str, Any] | None = None, parent_params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return preview.preview_node_inputs(
            self._core,
            pipeline,
            node_id,
            subprocess_stack or [],
            root_pipeline_data or {},
            parent_params or {},
        )

    # -- runs --------------------------------------------------------------------------------------
    def list_pipelines(
        self,
        state: str | None = None,
        has_failed_nodes: bool | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The stored runs, newest first: ``limit`` of them after skipping ``offset``. Each is a
        dict: ``id``, ``state`` (the root pipeline's), ``created_time``, ``started_time``,
        ``finished_time`` (None until FINISHED or REVOKED), ``node_counts`` (nodes by state,
        subprocesses' included), ``failed_nodes`` (ids of the nodes FAILED now) and
        ``has_failed_nodes``. ``state``, ``has_failed_nodes`` and the creation bounds (datetimes
        or seconds since the epoch) narrow the list."""
        query = runs.run_query(state, has_failed_nodes, limit, offset, created_after, created_before)
        return [runs.run_dict(r) for r in self._store.read(lambda tx: tx.runs(query))]

    def wait_pipeline(self, pipeline_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the pipeline is FINISHED or REVOKED, or has FAILED nodes while nothing else
        can move without an operator (or an outside callback), or ``timeout`` seconds pass.

        Returns ``{"id", "state", "finished", "timed_out", "failed_nodes", "waiting"}``:
        ``failed_nodes`` lists ``{"id", "name", "error"}`` (the error's first line), ``waiting``
        maps each running or paused node that waits to what it waits for. NotFoundError for an
        id that names no run."""
        return runs.wait_pipeline(self._core, pipeline_id, timeout)

    # -- reads ----------------------------------------------------------------------------------
    def get_pipeline_states(
        self, root_id: str, flat_children: bool = True, *, detail: bool = False
    ) -> dict[str, Any]:
        """The states of a run's nodes. ``detail`` adds each node's ``name`` and ``type`` (from
        the tree) and ``waiting``: what it waits for (see ``wait_pipeline``), or None."""
        return reads.pipeline_states(self._core, root_id, flat_children, detail)

    def get_children_states(self, node_id: str, *, detail: bool = False) -> dict[str, Any]:
        return reads.children_states(self._core, node_id, detail)

    def get_execution_data(self, node_id: str) -> ExecutionData:
        """The node's execution data object (``.inputs``, ``.outputs``); NotFoundError if none."""
        return self.get_exec_data(node_id)

    def get_node_debug_info(self, node_id: str) -> dict[str, Any]:
        """``{"node", "data", "state", "err"}`` for a node of a stored run."""
        return reads.node_debug_info(self._core, node_id)

    def get_execution_data_inputs(self, node_id: str) -> dict[str, Any]:
        return self._store.read(lambda tx: tx.node_data(node_id)).inputs or {}

    def get_execution_data_outputs(self, node_id: str) -> dict[str, Any]:
        return self._store.read(lambda tx: tx.node_data(node_id)).outputs or {}

    def get_data(self, node_id: str) -> dict[str, Any]:
        return reads.static_data(self._core, node_id)

    def get_node_histories(self, node_id: str, loop: int = -1) -> list[dict[str, Any]]:
        return [reads.history_dict(h) for h in self.get_histories(node_id, loop)]

    def get_node_short_histories(self, node_id: str, loop: int = -1) -> list[dict[str, Any]]:
        return [reads.history_dict(h, full=False) for h in self.get_histories(node_id, loop)]

    def get_histories(self, node_id: str, loop: int = -1) -> list[HistoryRecord]:
        return self._store.read(lambda tx: tx.histories(node_id, loop))

    def get_state(self, node_id: str) -> StateRecord:
        st = self.get_state_or_none(node_id)
        if st is None:
            raise NotFoundError(f"node({node_id}) does not exist")
        return st

    def get_state_or_none(self, node_id: str) -> StateRecord | None:
        return self._store.read(lambda tx: state_of(tx, node_id))

    def has_state(self, node_id: str) -> bool:
        return self.get_state_or_none(node_id) is not None

    def batch_get_state_name(self, node_ids: Iterable[str]) -> dict[str, str]:
        ids = list(node_ids)
        return {s.node_id: s.name for s in self._store.read(lambda tx: tx.states(ids))}

    def get_exec_data(self, node_id: str) -> ExecutionData:
        data = self._store.read(lambda tx: tx.node_data(node_id))
        if data.outputs is None:
            raise NotFoundError(f"node {node_id} has no execution data")
        return ExecutionData(data.inputs or {}, data.outputs)

    get_execution_data_object = get_exec_data

    def get_context(self, pipeline_id: str) -> list[ContextValue]:
        return reads.context_values(self._core, pipeline_id)

    def get_context_values(self, pipeline_id: str, keys: Iterable[str]) -> list[ContextValue]:
        wanted = set(keys)
        return [cv for cv in self.get_context(pipeline_id) if cv.key in wanted]

    def get_context_outputs(self, pipeline_id: str) -> set[str]:
        spec = self._core.plans.plan(self._root_of(pipeline_id)).pipelines.get(pipeline_id)
        return set(spec.data.outputs) if spec else set()

    def get_schedule_with_node_and_version(self, node_id: str, version: str | None = None) -> ScheduleRecord:
        """The schedule (poll or callback wait) of the node's pass ``version``; without a version,
        the node's latest one (after a forced fail or a retry the node has a new version, and its
        old schedule is the one to look at). ``scheduling`` is True while this process runs a step
        of it. NotFoundError when there is none."""
        query = ScheduleQuery(node_id=node_id, version=version)
        found = self._store.read(lambda tx: tx.waits(query))
        if not found:
            which = f"version {version}" if version is not None else "any version"
            raise NotFoundError(f"no schedule for node {node_id} ({which}): the node never waited")
        sched = found[-1]
        sched.scheduling = self._worker.scheduling(sched.id)
        return sched

    def get_plain_log_for_node(self, node_id: str, history_id: int = -1, version: str | None = None) -> str:
        if version is None and history_id != -1:
            hist = [h for h in self.get_histories(node_id) if h.id == history_id]
            version = hist[0].version if hist else None
        if version is None:
            st = self.get_state_or_none(node_id)
            version = st.version if st else None
        return "\n".join(self._store.read(lambda tx: tx.logs(node_id, version)))

    def get_pipeline_debug_info(self, pipeline_id: str) -> dict[str, Any]:
        return reads.debug_info(self._core, pipeline_id)

    def get_pipeline_execution_time(self, pipeline_id: str) -> dict[str, Any]:
        return reads.execution_time(self._core, pipeline_id)

    def get_node_execution_time(self, node_id: str) -> dict[str, Any]:
        return reads.execution_time(self._core, node_id)

    def _root_of(self, node_id: str) -> str:
        st = self.get_state_or_none(node_id)
        if st is None or not st.root_id:
            raise NotFoundError(f"node({node_id}) does not exist")
        return st.root_id

    def is_finished(self, root_id: str) -> bool:
        """True once the pipeline is FINISHED. A pipeline with a failed node stays RUNNING (and
        this False) until an operator acts: ``wait_pipeline`` tells the two apart. NotFoundError
        for an id that names nothing."""
        return self.get_state(root_id).name == states.FINISHED

"""Store tests of listing runs (``Reads.runs``) and of finding the callbacks that came before their
node waited (``CallbackQuery.unscheduled``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rattan.errors import BadInputError
from rattan.model.records import (
    KIND_RETRY,
    KIND_TIMEOUT,
    CallbackRecord,
    RunSummary,
    ScheduleRecord,
    ScheduleType,
    StateRecord,
    TimerRecord,
    TokenRecord,
)
from rattan.model.states import TokenStatus
from rattan.runtime.interface import RUNS_PER_QUERY, CallbackQuery, RunQuery, Store, UnitOfWork
from rattan.testing.contract._store_base import StoreBase
from rattan.testing.contract._support import NOW, _new_run, _state


def _run_at(tx: UnitOfWork, root_id: str, created: float, first: str = TokenStatus.SLEEP) -> int:
    """A run created at ``created`` (its root state too), its first token ``first``."""
    new = _new_run(root_id, first_status=first)
    new.created = created
    new.root_state = StateRecord(root_id, root_id, "", "RUNNING", "v0", created=created, started=created)
    return tx.create_run(new)


def _end(tx: UnitOfWork, root_id: str, name: str, at: float) -> None:
    old = tx.states([root_id])[0]
    new = old.copy()
    new.name, new.archived = name, at
    tx.put_state(new, old)


def _park(tx: UnitOfWork, token_id: int) -> None:
    """The run's token: no work (done), so only the waits written by a test make a run busy."""
    token: TokenRecord = tx.tokens([token_id])[0]
    token.status = TokenStatus.DONE
    tx.put_token(token)


def _ids(store: Store, query: RunQuery) -> list[str]:
    return [run.root_id for run in store.read(lambda r: r.runs(query))]


class StoreRuns(StoreBase):
    """Run summaries: order, filters, paging, node counts, failed nodes, busy; early callbacks."""

    def test_runs_are_listed_newest_first_and_narrowed_by_every_field(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        for i, root in enumerate(("r1", "r2", "r3", "r4")):
            store.unit(lambda tx, root=root, i=i: _run_at(tx, root, NOW + i))  # type: ignore[misc]
        store.unit(lambda tx: tx.put_state(_state("r2-n1", "r2", "FAILED"), None))
        store.unit(lambda tx: _end(tx, "r3", "FINISHED", NOW + 10))
        assert _ids(store, RunQuery()) == ["r4", "r3", "r2", "r1"]
        assert _ids(store, RunQuery(state="FINISHED")) == ["r3"]
        assert _ids(store, RunQuery(state="RUNNING")) == ["r4", "r2", "r1"]
        assert _ids(store, RunQuery(has_failed_nodes=True)) == ["r2"]
        assert _ids(store, RunQuery(has_failed_nodes=False)) == ["r4", "r3", "r1"]
        assert _ids(store, RunQuery(created_after=NOW + 0.5, created_before=NOW + 2.5)) == ["r3", "r2"]
        assert _ids(store, RunQuery(root_ids=["r1", "r3", "nope"])) == ["r3", "r1"]
        assert _ids(store, RunQuery(limit=2)) == ["r4", "r3"]
        assert _ids(store, RunQuery(limit=2, offset=2)) == ["r2", "r1"]
        assert _ids(store, RunQuery(offset=4)) == []

    def test_a_summary_counts_nodes_by_state_and_names_the_failed_ones(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        store.unit(lambda tx: _run_at(tx, "r1", NOW))
        store.unit(lambda tx: tx.put_state(_state("r1-n1", "r1", "FINISHED"), None))
        store.unit(lambda tx: tx.put_state(_state("r1-n2", "r1", "FAILED"), None))
        store.unit(lambda tx: tx.put_state(_state("r1-sub", "r1", "FAILED"), None))
        store.unit(lambda tx: _end(tx, "r1", "REVOKED", NOW + 3))
        (run,) = store.read(lambda r: r.runs(RunQuery()))
        assert isinstance(run, RunSummary)
        assert (run.root_id, run.name, run.created, run.started, run.archived) == (
            "r1", "REVOKED", NOW, NOW, NOW + 3,
        )  # fmt: skip
        assert run.counts == {"FINISHED": 1, "FAILED": 2}  # the root is not counted
        assert sorted(run.failed) == ["r1-n2", "r1-sub"]

    def test_busy_says_whether_the_engine_has_work_of_the_run(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        ready = store.unit(lambda tx: _run_at(tx, "ready", NOW, first=TokenStatus.READY))
        assert ready
        for i, root in enumerate(("parked", "poll", "cb-wait", "cb-pending", "retry", "stale")):
            token = store.unit(lambda tx, root=root, i=i: _run_at(tx, root, NOW + 1 + i))  # type: ignore[misc]
            store.unit(lambda tx, token=token: _park(tx, token))  # type: ignore[misc]
        store.unit(lambda tx: tx.put_state(_state("poll-n1", "poll"), None))
        store.unit(lambda tx: tx.put_wait(ScheduleRecord(0, "poll-n1", "v1", ScheduleType.POLL, 1, due=NOW)))
        store.unit(lambda tx: tx.put_state(_state("cb-wait-n1", "cb-wait"), None))
        store.unit(lambda tx: tx.put_wait(ScheduleRecord(0, "cb-wait-n1", "v1", ScheduleType.CALLBACK, 1)))
        store.unit(lambda tx: tx.put_state(_state("cb-pending-n1", "cb-pending"), None))
        store.unit(lambda tx: tx.put_wait(ScheduleRecord(0, "cb-pending-n1", "v1", ScheduleType.CALLBACK, 1)))
        store.unit(lambda tx: tx.put_wait(CallbackRecord(0, "cb-pending-n1", "v1", {"x": 1}, created=NOW)))
        store.unit(lambda tx: tx.put_state(_state("retry-n1", "retry", "FAILED"), None))
        store.unit(lambda tx: tx.put_wait(TimerRecord(0, KIND_RETRY, "retry-n1", "v1", NOW + 5)))
        # a timeout armed for a node that has failed since: it does nothing when it fires
        store.unit(lambda tx: tx.put_state(_state("stale-n1", "stale", "FAILED"), None))
        store.unit(lambda tx: tx.put_wait(TimerRecord(0, KIND_TIMEOUT, "stale-n1", "v1", NOW + 5)))
        busy = {run.root_id: run.busy for run in store.read(lambda r: r.runs(RunQuery()))}
        assert busy == {
            "ready": True, "parked": False, "poll": True, "cb-wait": False, "cb-pending": True,
            "retry": True, "stale": False,
        }  # fmt: skip

    def test_finished_before_lists_ended_runs_oldest_finished_first(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        for root in ("a", "b", "c", "d"):
            store.unit(lambda tx, root=root: _run_at(tx, root, NOW))  # type: ignore[misc]
        store.unit(lambda tx: _end(tx, "a", "FINISHED", NOW + 30))
        store.unit(lambda tx: _end(tx, "b", "REVOKED", NOW + 10))
        store.unit(lambda tx: _end(tx, "c", "FINISHED", NOW + 99))
        assert _ids(store, RunQuery(finished_before=NOW + 50)) == ["b", "a"]
        assert _ids(store, RunQuery(finished_before=NOW + 50, limit=1, offset=1)) == ["a"]

    @pytest.mark.parametrize(("limit", "offset"), [(0, 0), (RUNS_PER_QUERY + 1, 0), (10, -1)])
    def test_a_page_out_of_bounds_is_refused(self, tmp_path: Path, limit: int, offset: int) -> None:
        store = self._open(tmp_path)
        with pytest.raises(BadInputError):
            store.read(lambda r: r.runs(RunQuery(limit=limit, offset=offset)))

    def test_unscheduled_finds_pending_callbacks_whose_node_version_takes_none_yet(
        self, tmp_path: Path
    ) -> None:
        store = self._open(tmp_path)
        token = store.unit(lambda tx: _run_at(tx, "r1", NOW))
        for node in ("r1-n1", "r1-n2", "r1-sub"):
            store.unit(lambda tx, node=node: tx.put_wait(CallbackRecord(0, node, "v1", node, created=NOW)))  # type: ignore[misc]
        store.unit(lambda tx: tx.put_wait(ScheduleRecord(0, "r1-n2", "v1", ScheduleType.CALLBACK, token)))
        store.unit(lambda tx: tx.put_wait(ScheduleRecord(0, "r1-sub", "v1", ScheduleType.POLL, token)))
        query = CallbackQuery(pending=True, unscheduled=True)
        # no schedule yet, or a poll (which takes no callbacks); not the one with a callback wait
        assert [cb.node_id for cb in store.read(lambda r: r.waits(query))] == ["r1-n1", "r1-sub"]

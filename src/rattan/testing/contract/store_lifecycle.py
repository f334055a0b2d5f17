"""Store tests of a store's and a run's life: deleting runs, and migrating the schema (a store left
at an older version; stores and processes opening a fresh location at once)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from rattan.model.messages import Advance
from rattan.model.records import RunRecord
from rattan.model.states import TokenStatus
from rattan.testing.contract._children import _child_open, _Children
from rattan.testing.contract._store_base import StoreBase
from rattan.testing.contract._support import (
    LEASE,
    NOW,
    _append_units,
    _create_run,
    _delete_runs,
    _event_keys,
    _fill_run,
    _lease,
    _old_run,
    _owner,
    _run_threads,
    _run_view,
    _state,
)


class StoreLifecycle(StoreBase):
    """The deletion of runs and schema migrations."""

    # -- deleting runs -------------------------------------------------------------------------
    def test_delete_run_leaves_no_row_of_the_run_and_keeps_the_other_runs(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        nodes = {root: store.unit(partial(_fill_run, root_id=root)) for root in ("r1", "r2", "r3")}
        before = {root: self.rows_of_run(store, root, nodes[root]) for root in nodes}
        empty = [table for table, n in before["r2"].items() if n == 0]
        assert not empty, f"the test wrote no row of the run in {empty}: _fill_run misses a table"
        views = {root: store.read(partial(_run_view, root_id=root, nodes=nodes[root])) for root in nodes}
        store.unit(lambda tx: tx.delete_run("r2"))
        left = {table: n for table, n in self.rows_of_run(store, "r2", nodes["r2"]).items() if n}
        assert not left, f"rows of the deleted run remain: {left}"
        for root in ("r1", "r3"):
            assert self.rows_of_run(store, root, nodes[root]) == before[root]
            assert store.read(partial(_run_view, root_id=root, nodes=nodes[root])) == views[root]
        assert store.read(lambda r: (r.run("r2"), r.rollback.job("r2"), r.rollback.snapshots("r2"))) == (
            None, None, [],
        )  # fmt: skip

    def test_event_ids_are_never_handed_out_again_after_the_newest_run_is_deleted(
        self, tmp_path: Path
    ) -> None:
        store = self._open(tmp_path)
        for root in ("r1", "r2", "r3", "r4"):
            store.unit(partial(_create_run, root_id=root))
        _append_units(store, "r1", 3)
        _append_units(store, "r2", 3)
        top = store.read(lambda r: r.events(0, None, 1000))[-1].id
        store.unit(lambda tx: tx.delete_run("r2"))  # r2's events are the newest
        assert {e.root_id for e in store.read(lambda r: r.events(0, None, 1000))} == {"r1"}
        _append_units(store, "r3", 2)
        new = store.read(lambda r: r.events(top, None, 1000))
        assert [e.root_id for e in new] == ["r3"] * len(_event_keys("r3", 2))
        assert all(e.id > top for e in new)
        # again, from a second connection, after the newest run and all the others are gone
        top = new[-1].id
        store.unit(partial(_delete_runs, roots=["r3", "r1"]))
        again = self._open(tmp_path)
        _append_units(again, "r4", 1)
        assert [(e.root_id, e.id > top) for e in again.read(lambda r: r.events(0, None, 1000))] == [
            ("r4", True)
        ]

    # -- schema --------------------------------------------------------------------------------
    def test_migrate_is_idempotent_and_returns_the_schema_version(self, tmp_path: Path) -> None:
        store = self._open(tmp_path)
        store.unit(lambda tx: tx.put_state(_state("a", "r1"), None))
        version = store.migrate()
        assert isinstance(version, int) and version > 0
        if self.schema_version is not None:
            assert version == self.schema_version
        assert store.migrate() == version
        assert self._open(tmp_path).migrate() == version  # a second connection finds the work done
        assert store.read(lambda r: r.states(["a"])) == [_state("a", "r1")]
        store.unit(lambda tx: tx.put_state(_state("b", "r1"), None))  # and the store still writes

    @pytest.mark.timeout(60)
    def test_migrating_from_each_older_schema_version_keeps_the_run_readable_and_writable(
        self, tmp_path: Path
    ) -> None:
        """For every older version the backend builds (``make_old_store``): the store opens at the
        current version with the old run as it was, the run takes reads, compare-and-set writes,
        leases and deletion, a new run is written beside it, and migrating again changes nothing."""
        current = self._open(_location(tmp_path, "current")).migrate()
        if self.schema_version is not None:
            assert current == self.schema_version
        built = [v for v in range(1, current) if self._check_migration_from(tmp_path, v, current)]
        if not built:
            pytest.skip("the backend builds no store at an older schema version (make_old_store)")

    def _check_migration_from(self, tmp_path: Path, version: int, current: int) -> bool:
        location = _location(tmp_path, f"v{version}")
        run = _old_run()
        if not self.make_old_store(location, version, run):
            return False
        root, nodes = run.root_id, run.node_ids
        why = f"a store at schema version {version}"
        store = self._open(location)
        assert store.migrate() == current, why
        # the old run reads as it was written
        view = store.read(partial(_run_view, root_id=root, nodes=nodes))
        tree = json.loads(run.tree_json)
        assert view[0] == RunRecord(root, tree, run.root_data, run.options, run.created), why
        assert view[1] == dict.fromkeys(nodes, root), why
        assert view[2] == [run.root_state], why
        [token] = view[3]
        first = run.first_token
        assert (token.current, token.status, token.stack, token.owner) == (
            first.current, TokenStatus.READY, first.stack, None,
        ), why  # fmt: skip
        contexts = {
            (node, key): entry[1]
            for node, context in zip(nodes, view[4], strict=True)
            for key, entry in context.items()
        }
        assert contexts == {(row.pipeline_id, row.key): row.value for row in run.context}, why
        # migrating again, here or from another connection, is a no-op
        assert store.migrate() == current and self._open(location).migrate() == current, why
        assert store.read(partial(_run_view, root_id=root, nodes=nodes)) == view, why
        # the old run takes writes: compare-and-set, a lease of its unowned token, events
        done = replace(run.root_state, name="FINISHED", version="v1", archived=NOW + 1)
        store.unit(lambda tx: tx.put_state(done, run.root_state))
        assert store.read(lambda r: r.states([root])) == [done], why
        assert _lease(store, _owner("A", NOW + LEASE), NOW) == [(NOW, Advance(token.id))], why
        store.unit(lambda tx: tx.append_events(root, [["migrated", nodes[1]]], NOW))
        assert [e.event_type for e in store.read(lambda r: r.events(0, root, 10))] == ["migrated"], why
        # a new run beside it fills every table of the current version; deleting the old run
        # leaves the new one whole
        new_nodes = store.unit(partial(_fill_run, root_id="r-new"))
        new_view = store.read(partial(_run_view, root_id="r-new", nodes=new_nodes))
        store.unit(lambda tx: tx.delete_run(root))
        left = {table: n for table, n in self.rows_of_run(store, root, nodes).items() if n}
        assert not left, f"{why}: rows of the deleted old run remain: {left}"
        assert store.read(partial(_run_view, root_id="r-new", nodes=new_nodes)) == new_view, why
        return True

    @pytest.mark.timeout(60)
    def test_stores_opened_at_once_on_a_fresh_location_all_succeed(self, tmp_path: Path) -> None:
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        versions: list[int] = []

        def open_one(node_id: str) -> Callable[[], None]:
            def run() -> None:
                store = self._open(fresh)  # all four create the store at once
                versions.append(store.migrate())
                store.unit(lambda tx: tx.put_state(_state(node_id, "fresh"), None))

            return run

        names = [f"n{i}" for i in range(4)]
        _run_threads([open_one(name) for name in names])
        assert len(set(versions)) == 1
        assert [s.node_id for s in self._open(fresh).read(lambda r: r.states(names))] == names

    @pytest.mark.timeout(60)
    def test_processes_opening_a_fresh_location_at_once_all_succeed(self, tmp_path: Path) -> None:
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        locator, opener = self._subprocess_opener(fresh)
        with _Children(tmp_path) as children:
            for name in ("p0", "p1"):
                children.start(_child_open, opener, locator, name)
            children.wait_ready()
            children.go.set()
            mine = self._open(fresh)  # this process too, at the same moment
            versions = {*children.results(), mine.migrate()}
        assert len(versions) == 1
        assert [s.node_id for s in mine.read(lambda r: r.states(["p0", "p1"]))] == ["p0", "p1"]


def _location(tmp_path: Path, name: str) -> Path:
    """A fresh location of its own under the test's ``tmp_path``."""
    location = tmp_path / name
    location.mkdir()
    return location

"""The base of every store mixin: the hooks a backend provides (``StoreContract`` documents
them) and the plumbing that opens the stores of a test and closes them after it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from rattan.model.records import NewRun
from rattan.runtime.interface import Store
from rattan.testing.contract._support import StoreOpener


class StoreBase:
    """The hooks and plumbing the store mixins share; ``StoreContract`` puts the mixins together."""

    schema_version: ClassVar[int | None] = None

    # -- what a backend provides ---------------------------------------------------------------
    def make_store(self, tmp_path: Path) -> Store:
        """Open the store kept at ``tmp_path`` (create it when there is none). Called several
        times in one test, from several threads too: every call is one more connection to the
        SAME store. The suite closes every store it opened."""
        raise NotImplementedError("a StoreContract subclass provides make_store(tmp_path)")

    def rows_of_run(self, store: Store, root_id: str, node_ids: Sequence[str]) -> dict[str, int]:
        """Count, per table, the rows that still belong to the run ``root_id`` whose nodes (and
        pipelines) are ``node_ids``: every table that names a root id, node id or pipeline id,
        extension tables included, each table present in the result even when its count is 0."""
        raise NotImplementedError("a StoreContract subclass provides rows_of_run(store, root_id, node_ids)")

    def open_in_subprocess(self, tmp_path: Path) -> tuple[str, StoreOpener] | None:
        """A locator and an opener such that ``opener(locator)``, run in a spawned child process,
        opens the store ``make_store(tmp_path)`` opens (for SQLite: the file's path and the
        store class). None (the default) skips the cross-process tests."""
        return None

    def make_old_store(self, tmp_path: Path, version: int, run: NewRun) -> bool:
        """Leave at ``tmp_path`` a store at the older schema ``version``, as that version of the
        backend left it, with ``run`` written as that version's ``create_run`` wrote it: its run
        row, its node ids, its context rows, its root state and its first token (no owner).
        Write it without opening it through ``make_store`` (opening migrates); the suite opens it
        next with ``make_store(tmp_path)``. Return False when the backend has no store at
        ``version`` to build: the default, False for every version, skips the migration test."""
        return False

    # -- plumbing ------------------------------------------------------------------------------
    @pytest.fixture(autouse=True)
    def _contract_stores(self) -> Iterator[None]:
        self._stores: list[Store] = []
        self._stores_lock = threading.Lock()
        yield
        for store in reversed(self._stores):
            store.close()

    def _open(self, location: Path) -> Store:
        store = self.make_store(location)
        with self._stores_lock:
            self._stores.append(store)
        return store

    def _subprocess_opener(self, tmp_path: Path) -> tuple[str, StoreOpener]:
        found = self.open_in_subprocess(tmp_path)
        if found is None:
            pytest.skip("the backend names no way to open its store in a child (open_in_subprocess)")
        return found

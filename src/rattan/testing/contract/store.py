"""The store contract: the store mixins put together into the one class a backend subclasses."""

from __future__ import annotations

from typing import ClassVar

import pytest

from rattan.testing.contract.store_events import StoreEvents
from rattan.testing.contract.store_leases import StoreLeases
from rattan.testing.contract.store_lifecycle import StoreLifecycle
from rattan.testing.contract.store_runs import StoreRuns
from rattan.testing.contract.store_writes import StoreWrites


class StoreContract(StoreWrites, StoreLeases, StoreEvents, StoreLifecycle, StoreRuns):
    """The store half of the seam contract, as a pytest mixin (see ``rattan.testing.contract``).

    A subclass provides ``make_store`` and ``rows_of_run`` and, for the tests that run a second OS
    process against the store, ``open_in_subprocess``. Each test method checks one rule of
    ``rattan.runtime.interface``: compare-and-set writes, atomic units and savepoints, committed
    reads, the leasing of work, the event cursor, the deletion of runs, schema migrations (from each
    older version too) and the summaries of runs.

    Attributes:
        schema_version: The version ``migrate()`` must return; None accepts any (stable) version.

    Hooks (defined, with their defaults, in ``rattan.testing.contract._store_base.StoreBase``):
        make_store(tmp_path): Open the store kept at ``tmp_path``, creating it when there is none;
            every call is one more connection to the SAME store. Required.
        rows_of_run(store, root_id, node_ids): Per table, how many rows still belong to the run.
            Required.
        open_in_subprocess(tmp_path): A locator string and an opener that opens the store from it
            in a spawned child. Optional: the default (None) skips the cross-process tests.
        make_old_store(tmp_path, version, run): Leave at ``tmp_path`` a store at the older schema
            ``version`` (1 up to the current one, exclusive), as that version left it, with
            ``run`` (a ``NewRun``) written as that version's ``create_run`` wrote it: its run row,
            node ids, context rows, root state and first token (ready, no owner). Write it without
            ``make_store`` (opening migrates); return False for a version the backend cannot
            build. Optional: the default (False for every version) skips the test that migrating
            from each older version keeps the run readable and writable, ends at the current
            version, and that migrating again is a no-op.
    """

    # every test has a timeout, also in a project that sets none (the slow ones have 60 s)
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.timeout(120)]
    schema_version: ClassVar[int | None] = None

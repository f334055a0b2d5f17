"""Contract suites for rattan backends: what every store and every dispatcher must do.

The engine talks to its backends only through the Protocols of ``rattan.runtime.interface``
(``Store`` and its units of work, ``Dispatcher``, ``Clock``). This package turns the rules written
there into tests, as two pytest mixin classes in the manner of Huey's ``StorageTests``: a backend
author subclasses one in a test module, provides the methods it names, and pytest runs every
``test_...`` method of the contract against the backend::

    # tests/test_my_backend.py
    from collections.abc import Sequence
    from pathlib import Path

    from rattan.model.records import NewRun
    from rattan.runtime.interface import Clock, Dispatcher, Store
    from rattan.testing.contract import DispatcherContract, StoreContract, StoreOpener


    class TestMyStore(StoreContract):
        schema_version = 7  # optional: what migrate() must return

        def make_store(self, tmp_path: Path) -> Store:
            # Called several times in one test: every call opens the SAME store (one more
            # connection to it), the first call on an empty tmp_path creates it.
            return MyStore(f"mystore:///{tmp_path}/db")

        def rows_of_run(self, store: Store, root_id: str, node_ids: Sequence[str]) -> dict[str, int]:
            # table -> how many of its rows still belong to the run: those naming the run's root
            # id, or one of its node ids or pipeline ids (every table, extensions' included)
            ...

        def open_in_subprocess(self, tmp_path: Path) -> tuple[str, StoreOpener] | None:
            # Optional: a locator and a callable that opens the store from it in a child process
            # (the cross-process tests are skipped when this returns None).
            return f"mystore:///{tmp_path}/db", MyStore

        def make_old_store(self, tmp_path: Path, version: int, run: NewRun) -> bool:
            # Optional: leave at tmp_path a store at the older schema version ``version`` with
            # ``run`` written as that version wrote it, without opening it (opening migrates);
            # False for a version it cannot build (the migration test is skipped by default).
            build_mystore_at(tmp_path, version, run)
            return True


    class TestMyDispatcher(DispatcherContract):
        exactly_once = False  # at-least-once delivery: a message may be handled twice

        def make_dispatcher(self, clock: Clock) -> Dispatcher:
            return MyDispatcher(clock=clock)  # its due times follow ``clock`` (a FakeClock)

The suites need pytest and pytest-timeout (``pip install rattan[dev]``). The cross-process tests
start children with multiprocessing's ``spawn`` method: the opener must pickle by reference (a
class or a module-level function of an importable module) and the locator must be a string.
Every wait in the suites is bounded: a backend that breaks the contract fails a test, it does not
hang the run.
"""

from __future__ import annotations

from rattan.testing.contract._support import StoreOpener
from rattan.testing.contract.dispatcher import DispatcherContract
from rattan.testing.contract.store import StoreContract

__all__ = ["DispatcherContract", "StoreContract", "StoreOpener"]

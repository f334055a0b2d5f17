"""Store tests of the event cursor: a reader paging by the last id it saw never skips nor repeats
an event while writers (threads or processes) append."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from rattan.model.records import EventRecord
from rattan.runtime.interface import Reads, Store
from rattan.testing.contract._children import _child_append, _Children
from rattan.testing.contract._store_base import StoreBase
from rattan.testing.contract._support import (
    PAGE,
    WAIT,
    _append_units,
    _create_run,
    _event_keys,
    _events_of,
    _run_threads,
)


def _events_after(cursor: int, limit: int) -> Callable[[Reads], list[EventRecord]]:
    return lambda r: r.events(cursor, None, limit)


def _page_events(reader: Store, writers_done: Callable[[], bool]) -> list[EventRecord]:
    """Page through the event log from the start, keeping the last id as the cursor, until the
    writers are done and the log is read to its end."""
    seen: list[EventRecord] = []
    cursor = 0
    deadline = time.monotonic() + WAIT
    while True:
        # read before the page: once done, every event was committed before the page was read
        done = writers_done()
        page = reader.read(_events_after(cursor, PAGE))
        assert len(page) <= PAGE, f"events(limit={PAGE}) returned {len(page)} events"
        # fail at the first bad page: a repeating cursor would otherwise page until the deadline
        assert all(e.id > cursor for e in page), f"events(after={cursor}) returned {[e.id for e in page]}"
        if page:
            seen += page
            cursor = page[-1].id
        elif done:
            return seen
        assert time.monotonic() < deadline, f"the writers did not finish within {WAIT} s"


def _assert_cursor_saw_everything(reader: Store, seen: list[EventRecord], roots: dict[str, int]) -> None:
    """The paged read saw every appended event once, in id order, and is what a full read gives."""
    ids = [e.id for e in seen]
    assert all(a < b for a, b in itertools.pairwise(ids)), f"ids not increasing: {ids}"
    keys = [(e.root_id, e.data["unit"], e.data["i"]) for e in seen]
    expected = [key for root, units in roots.items() for key in _event_keys(root, units)]
    assert Counter(keys) == Counter(expected), (
        f"skipped {sorted((Counter(expected) - Counter(keys)).elements())}, "
        f"repeated or unknown {sorted((Counter(keys) - Counter(expected)).elements())}"
    )
    for root in roots:  # one writer's units commit one after another: its events keep their order
        mine = [(u, i) for r, u, i in keys if r == root]
        assert mine == sorted(mine), f"run {root}'s events out of order: {mine}"
    full = reader.read(lambda r: r.events(0, None, 100_000))
    assert full == seen, "a full read differs from the pages read while the writers ran"
    for root in roots:
        assert reader.read(partial(_events_of, root_id=root)) == [e for e in seen if e.root_id == root]


class StoreEvents(StoreBase):
    """The event cursor under concurrent writers."""

    # -- the event cursor ----------------------------------------------------------------------
    @pytest.mark.timeout(60)
    def test_the_event_cursor_never_skips_nor_repeats_with_writers_in_threads(self, tmp_path: Path) -> None:
        reader = self._open(tmp_path)
        roots = {"r1": 40, "r2": 40}
        for root in roots:
            reader.unit(partial(_create_run, root_id=root))
        writers = {root: self._open(tmp_path) for root in roots}
        finished: list[str] = []
        seen: list[EventRecord] = []

        def write(root: str) -> Callable[[], None]:
            def run() -> None:
                _append_units(writers[root], root, roots[root])
                finished.append(root)

            return run

        def read() -> None:
            seen.extend(_page_events(reader, lambda: len(finished) == len(roots)))

        _run_threads([write("r1"), write("r2"), read])
        _assert_cursor_saw_everything(reader, seen, roots)

    @pytest.mark.timeout(60)
    def test_the_event_cursor_never_skips_nor_repeats_with_writers_in_processes(self, tmp_path: Path) -> None:
        locator, opener = self._subprocess_opener(tmp_path)
        reader = self._open(tmp_path)
        roots = {"r1": 60, "r2": 60}
        for root in roots:
            reader.unit(partial(_create_run, root_id=root))
        with _Children(tmp_path) as children:
            for root, units in roots.items():
                children.start(_child_append, opener, locator, root, units)
            children.wait_ready()
            children.go.set()
            seen = _page_events(reader, lambda: not children.running())
            assert children.results() == list(roots.values())
        _assert_cursor_saw_everything(reader, seen, roots)

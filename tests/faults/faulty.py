"""Fault injection below the SQLite store: a ``sqlite3.Connection`` subclass whose statements
fail now and then with the errors SQLite itself raises (busy, I/O, full disk), and which can make
the database file unable to grow (``PRAGMA max_page_count``: SQLite's real SQLITE_FULL)."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter
from typing import Any, ClassVar

from rattan.runtime.sqlite import SQLiteStore

ERRORS = ("database is locked", "disk I/O error", "database or disk is full")
NEVER_FAIL = ("ROLLBACK", "RELEASE")  # undoing must work, or nothing can be trusted afterwards
BIG = 1_073_741_823  # SQLite's default max_page_count


class Faults:
    """The fault plan all connections of the store share."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.rate = 0.0  # share of statements that fail
        self.full = False  # the database file may not grow (real SQLITE_FULL)
        self.injected: Counter[str] = Counter()

    def pick(self, sql: str) -> str | None:
        if self.rate <= 0 or sql.lstrip().upper().startswith(NEVER_FAIL):
            return None
        with self.lock:
            if self.rng.random() >= self.rate:
                return None
            error = self.rng.choice(ERRORS)
            self.injected[error] += 1
            return error


class FaultyConnection(sqlite3.Connection):
    faults: ClassVar[Faults | None] = None

    def _check(self, sql: str) -> None:
        faults = FaultyConnection.faults
        if faults is None:
            return
        full = faults.full
        if getattr(self, "_full", False) != full:
            # set on the connection's own thread, as its next statement runs: the next page the
            # file needs beyond its size fails with SQLite's own "database or disk is full"
            limit = super().execute("PRAGMA page_count").fetchone()[0] if full else BIG
            super().execute(f"PRAGMA max_page_count={max(limit, 1)}")
            self._full = full
        error = faults.pick(sql)
        if error is not None:
            # a broken constraint is SQLite's IntegrityError; the rest are OperationalErrors
            kind = sqlite3.IntegrityError if error.endswith("constraint failed") else sqlite3.OperationalError
            raise kind(error)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self._check(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self._check(sql)
        return super().executemany(sql, parameters)


class FaultyStore(SQLiteStore):
    connection_class = FaultyConnection

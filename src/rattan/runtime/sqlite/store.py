"""The embedded store: one SQLite file in WAL mode, written through a group committer.

Why group commit: SQLite serialises writers and a durable commit costs an fsync (synchronous=FULL)
or a WAL append (NORMAL). The threads of a process therefore share one writer connection: each
unit of work runs inside a SAVEPOINT of the currently open transaction, and the transaction is
committed when no other thread is queued to join it. Every member waits for that commit before
it goes on (so user code only ever runs after the state it depends on is durable). A member
whose unit raises is rolled back to its savepoint alone; a failed COMMIT fails every member of
that group.

Several processes may open one file: SQLite's own lock serialises their transactions, and each
transaction starts by asking SQLite whether another connection committed since (``PRAGMA
data_version``); if so, the writer's cache is dropped before anything is read.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from rattan.errors import BackendUnavailableError
from rattan.model.states import TokenStatus
from rattan.runtime.interface import INTERFACE_VERSION, Reads, UnitOfWork
from rattan.runtime.sqlite.checkpoint import WAL_LIMIT_BYTES, Checkpointer
from rattan.runtime.sqlite.errors import translate
from rattan.runtime.sqlite.rows import WriterCache
from rattan.runtime.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from rattan.runtime.sqlite.unit import SQLiteUnit
from rattan.settings import DEFAULT_PAGE_SIZE

T = TypeVar("T")

CACHE_LIMIT = 50_000  # rows the writer keeps at most (see WriterCache): 25 MB or less
BUSY_MS = 30_000  # how long a statement waits for another process's lock before it fails
OPEN_TRIES = 50  # attempts at switching a new file to WAL while another process does the same
_PAGE_SIZES = frozenset(2**n for n in range(9, 17))
MAX_GROUP = 256  # members per commit; bounds how long the first member waits


def bind_as_they_are() -> None:
    """Register identity adapters for the parameter types the engine binds most after str and int.

    Why: CPython's sqlite3 binds an exact int, float or str directly; for anything else (bytes,
    None, a str enum) it first looks for an adapter, and a miss raises and clears an
    AttributeError on the way, about 0.2 microseconds a parameter, several parameters a row. A
    registered adapter is one dict hit. Each returns what it is given, so nothing binds
    differently; one that the application registered already is left in place."""
    same: dict[type, Callable[[Any], Any]] = {bytes: bytes, type(None): {}.get, TokenStatus: str}
    for kind, adapter in same.items():
        if (kind, sqlite3.PrepareProtocol) not in sqlite3.adapters:
            sqlite3.register_adapter(kind, adapter)


bind_as_they_are()


def parse_store_url(store: str | None) -> str:
    """``None`` → ``rattan.db`` in the working directory; ``sqlite:///path``; ``:memory:``; a path."""
    if store is None:
        return "rattan.db"
    if store.startswith("sqlite:///"):
        return store[len("sqlite:///") :] or ":memory:"
    if store.startswith("sqlite://"):
        return store[len("sqlite://") :] or ":memory:"
    if "://" in store:
        raise BackendUnavailableError(
            f"unsupported store URL {store!r}: the SQLite store takes 'sqlite:///path' or ':memory:'"
        )
    return store


class SQLiteStore:
    """Durable store over one SQLite database file (see the module docstring)."""

    interface_version = INTERFACE_VERSION
    # the class of every connection the store opens (a subclass injects faults in tests)
    connection_class: type[sqlite3.Connection] = sqlite3.Connection

    def __init__(self, path: str, synchronous: str = "FULL", page_size: int = DEFAULT_PAGE_SIZE) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ValueError(f"sqlite_synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        if not isinstance(page_size, int) or page_size not in _PAGE_SIZES:
            raise ValueError(f"sqlite_page_size must be a power of two from 512 to 65536, not {page_size!r}")
        self._page_size = page_size
        self.memory = path == ":memory:"
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if self.memory:
            # ":memory:" is a throw-away file: readers need their own connections, which a true
            # in-memory database cannot give without shared-cache table locks.
            self._tmpdir = tempfile.TemporaryDirectory(prefix="rattan-")
            path = os.path.join(self._tmpdir.name, "rattan.db")
        self.path = path
        self.url = ":memory:" if self.memory else f"sqlite:///{path}"
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self._writer = self._connect()
            self.migrate()
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"cannot open SQLite store {path!r}: {exc}") from exc
        self._cond = threading.Condition(threading.Lock())
        self._count_lock = threading.Lock()
        self._queued = 0  # threads announced but not yet holding the connection
        self._open_gen = 0  # generation of the open transaction (0: none open)
        self._next_gen = 1
        self._members = 0
        self._committed: int = 0
        self._failed: dict[int, tuple[BaseException, int]] = {}  # gen -> (why, members yet to see it)
        self._closed = False
        # rows as the writer last wrote or read them (see WriterCache), valid while no other
        # connection commits: PRAGMA data_version, read as each transaction begins, says when
        self._cache = WriterCache()
        self._data_version = -1
        self._checkpointer = Checkpointer(path, self._connect)

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=512,
            timeout=BUSY_MS / 1000, factory=self.connection_class,
        )  # fmt: skip
        conn.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        # only a store with no tables yet takes the page size (afterwards SQLite ignores it)
        conn.execute(f"PRAGMA page_size={self._page_size}")
        _enter_wal(conn)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def migrate(self) -> int:
        """Bring the schema up to date. Safe while other processes open or use the file: the
        migration runs in one IMMEDIATE transaction, and a process that finds the work done
        does nothing."""
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS rattan_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM rattan_meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise BackendUnavailableError(
                    f"store schema version {current} is newer than this rattan ({SCHEMA_VERSION}); "
                    "upgrade rattan"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    if statement.startswith("CREATE TABLE IF NOT EXISTS rattan_meta"):
                        continue
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO rattan_meta(key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (str(version),),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return SCHEMA_VERSION

    def schema_version(self) -> int:
        row = self._reader().execute("SELECT value FROM rattan_meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    # -- units of work -------------------------------------------------------------------------
    def unit(self, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in the shared write transaction and return once its effects are durable."""
        with self._count_lock:
            self._queued += 1
        cond = self._cond
        with cond:
            with self._count_lock:
                self._queued -= 1
            if self._closed:
                raise BackendUnavailableError("the store is closed")
            conn = self._writer
            if not self._open_gen:
                self._begin(conn)
            gen = self._open_gen
            # the first member needs no savepoint: if it fails, the whole transaction is its own
            alone = self._members == 0
            self._members += 1
            error: BaseException | None = None
            result: Any = None
            try:
                if not alone:
                    conn.execute("SAVEPOINT unit")
                result = fn(SQLiteUnit(conn, self._cache))
                if not alone:
                    conn.execute("RELEASE unit")
            except BaseException as exc:
                error = exc
                self._cache.clear()  # rolled back below: the cache may hold what never happened
                if not self._undo(conn, alone):
                    # the transaction is gone, not just this member's savepoint: SQLite rolls
                    # everything back on some errors (a full disk, an I/O error). The members
                    # before this one lost their writes too; the next unit begins anew.
                    self._end(gen, exc if self._members > 1 else None)
            if self._open_gen == gen:
                if self._queued == 0 or self._members >= MAX_GROUP:
                    self._commit(gen)
                else:
                    while self._committed < gen:
                        cond.wait()
            failed = self._take_failure(gen)
            if error is not None:
                if isinstance(error, sqlite3.Error):
                    raise translate(error) from error
                raise error
            if failed is not None:
                raise BackendUnavailableError(f"store commit failed: {failed}; retry later") from failed
            return result  # type: ignore[no-any-return]

    def _begin(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:  # a rollback that failed left one open: end it first
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"cannot start a store transaction: {exc}; retry later") from exc
        try:
            version: int | None = conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            version = None  # unknown: trust nothing cached
        if version is None or version != self._data_version or self._cache.size() > CACHE_LIMIT:
            # another connection wrote: trust nothing cached (or the cache is full: start again
            # from what the next steps read)
            self._cache.clear()
            self._data_version = -1 if version is None else version
        self._open_gen = self._next_gen
        self._next_gen += 1
        self._members = 0

    @staticmethod
    def _undo(conn: sqlite3.Connection, alone: bool) -> bool:
        """Undo a failed member's writes. True when the group's transaction goes on (only the
        member's savepoint was rolled back); False when it is gone."""
        try:
            if not alone and conn.in_transaction:
                conn.execute("ROLLBACK TO unit")
                conn.execute("RELEASE unit")
                return True
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # _begin ends what is left before the next transaction
        return False

    def waiting(self) -> bool:
        """True when another thread is queued to write (read without a lock: a hint)."""
        return self._queued > 0

    def _commit(self, gen: int) -> None:
        try:
            self._writer.execute("COMMIT")
        except sqlite3.Error as exc:
            self._cache.clear()
            try:
                self._writer.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._end(gen, exc)
            return
        self._end(gen, None)

    def _end(self, gen: int, failure: BaseException | None) -> None:
        """The group ``gen`` is over: committed, or (``failure``) lost for every member of it."""
        if failure is not None:
            self._failed[gen] = (failure, self._members)
        self._committed = gen
        self._open_gen = 0
        self._cond.notify_all()

    def _take_failure(self, gen: int) -> BaseException | None:
        """Why group ``gen`` failed, or None; each member asks once (the last one clears it)."""
        entry = self._failed.get(gen)
        if entry is None:
            return None
        failure, left = entry
        if left <= 1:
            del self._failed[gen]
        else:
            self._failed[gen] = (failure, left - 1)
        return failure

    def read(self, fn: Callable[[Reads], T]) -> T:
        """Run read-only ``fn`` on this thread's reader connection (committed data only)."""
        if self._closed:
            raise BackendUnavailableError("the store is closed")
        try:
            return fn(SQLiteUnit(self._reader()))
        except sqlite3.Error as exc:
            raise translate(exc, "store read failed") from exc

    @contextmanager
    def raw(self) -> Iterator[sqlite3.Connection]:
        """A reader connection, for diagnostics and tests."""
        yield self._reader()

    def close(self) -> None:
        self._checkpointer.stop()
        with self._cond:
            if self._closed:
                return
            if self._open_gen:
                self._commit(self._open_gen)
            self._closed = True
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._readers.clear()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode. A file already in WAL needs nothing; switching a new file takes
    an exclusive lock, which SQLite refuses at once (no busy wait) while another process opens
    the same new file: that attempt is retried, so opening never fails with "database is locked"."""
    for attempt in range(OPEN_TRIES):
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if attempt == OPEN_TRIES - 1 or "lock" not in str(exc):
                raise
            time.sleep(0.01 * (attempt + 1))

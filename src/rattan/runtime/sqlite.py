"""The embedded store: one SQLite file in WAL mode, written through a group committer.

Why group commit: SQLite serialises writers and a durable commit costs an fsync (synchronous=FULL)
or a WAL append (NORMAL). Worker threads therefore share one writer connection: each worker's unit
of work runs inside a SAVEPOINT of the currently open transaction, and the transaction is committed
when no other worker is queued to join it. Every member waits for that commit before it goes on (so
user code only ever runs after the state it depends on is durable). A member whose unit raises is
rolled back to its savepoint alone; a failed COMMIT fails every member of that group.
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
from rattan.runtime.queries import Tx, WriterCache
from rattan.runtime.schema import MIGRATIONS, SCHEMA_VERSION
from rattan.settings import DEFAULT_PAGE_SIZE

T = TypeVar("T")

CHECKPOINT_SECONDS = 0.1  # how often the checkpointer looks
CACHE_LIMIT = 50_000  # rows the writer keeps at most (see WriterCache): 25 MB or less
QUIET_SECONDS = 0.2  # no commit for this long: quiet enough to checkpoint
WAL_RESTART_BYTES = 32 * 2**20  # past this, rewind the WAL even while commits go on
WAL_LIMIT_BYTES = 64 * 2**20  # a rewound WAL longer than this is truncated to it
CHECKPOINT_WAIT_MS = 2000  # how long a checkpoint waits for the writer or for readers
_PAGE_SIZES = frozenset(2**n for n in range(9, 17))
MAX_GROUP = 256  # members per commit; bounds how long the first member waits


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
            f"unsupported store URL {store!r}: the embedded runtime takes 'sqlite:///path' or ':memory:'"
        )
    return store


class SQLiteStore:
    """Durable store over one SQLite database file."""

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
        self._uri = path
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self._writer = self._connect()
            self._migrate()
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"cannot open SQLite store {path!r}: {exc}") from exc
        self._cond = threading.Condition(threading.Lock())
        self._count_lock = threading.Lock()
        self._queued = 0  # threads announced but not yet holding the connection
        self._open_gen = 0  # generation of the open transaction (0: none open)
        self._next_gen = 1
        self._members = 0
        self._committed: int = 0
        self._last_commit = 0.0  # time.monotonic() of the last commit (read by the checkpointer)
        self._failed: dict[int, BaseException] = {}
        self._closed = False
        # rows as the writer last wrote or read them (see WriterCache), valid while no other
        # connection commits: PRAGMA data_version, read as each transaction begins, says when
        self._cache = WriterCache()
        self._data_version = -1
        # WAL checkpoints run on their own thread, not inside a worker's COMMIT (see _checkpoints)
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="rattan-checkpoint", daemon=True)
        self._checkpointer.start()

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._uri,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=512,
            timeout=30.0,
        )
        # only a store with no tables yet takes the page size (afterwards SQLite ignores it)
        conn.execute(f"PRAGMA page_size={self._page_size}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA busy_timeout=30000")
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

    def _migrate(self) -> None:
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
                    "INSERT OR REPLACE INTO rattan_meta(key, value) VALUES ('schema_version', ?)",
                    (str(version),),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _checkpoints(self) -> None:
        """Copy the WAL back into the database and rewind it, off the workers' commit path.

        Measured on this project's machines (docs/performance.md): appending to the WAL costs
        several times more than overwriting a WAL file that is already that long, because every
        append grows the file and the file system journals each size change; and a checkpoint's
        fsync stalls those appends. So the WAL is rewound (RESTART: copied back, then written
        again from its start, in place) whenever it passes WAL_RESTART_BYTES, and otherwise only
        in a quiet moment (no commit for QUIET_SECONDS), so a burst of work is not interrupted.
        PASSIVE checkpoints are never used: they copy pages but cannot rewind a WAL that a busy
        writer keeps appending to, so the file would only grow. A WAL longer than WAL_LIMIT_BYTES
        (one huge transaction) is truncated to zero instead, and ``journal_size_limit`` caps what
        a rewind leaves on disk.
        """
        conn: sqlite3.Connection | None = None
        wal = f"{self._uri}-wal"
        done_at = -1.0  # the last commit a checkpoint has already covered
        while not self._stop.wait(CHECKPOINT_SECONDS):
            try:
                last = self._last_commit
                if last == done_at:
                    continue  # nothing committed since the last checkpoint
                quiet = time.monotonic() - last >= QUIET_SECONDS
                size = os.path.getsize(wal)
                if not quiet and size < WAL_RESTART_BYTES:
                    continue
                if conn is None:
                    conn = self._connect()
                    # a RESTART holds the write lock while it waits for readers to move on: a
                    # slow reader may delay the workers this long at most (then it tries later)
                    conn.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
                # a WAL left long by a big transaction (or a long busy spell) is cut back to zero
                big = size > WAL_LIMIT_BYTES
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)" if big else "PRAGMA wal_checkpoint(RESTART)")
                done_at = last
            except (sqlite3.Error, OSError):
                pass
        if conn is not None:
            conn.close()

    def schema_version(self) -> int:
        row = self._reader().execute("SELECT value FROM rattan_meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else 0

    # -- units of work -------------------------------------------------------------------------
    def run(self, fn: Callable[[Tx], T]) -> T:
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
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise BackendUnavailableError(f"cannot start a store transaction: {exc}") from exc
                try:
                    version: int | None = conn.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error:
                    version = None  # unknown: trust nothing cached
                if version is None or version != self._data_version or self._cache.size() > CACHE_LIMIT:
                    # another connection wrote: trust nothing cached (or the cache is full: start
                    # again from what the next steps read)
                    self._cache.clear()
                    self._data_version = -1 if version is None else version
                self._open_gen = self._next_gen
                self._next_gen += 1
                self._members = 0
            gen = self._open_gen
            # the first member needs no savepoint: if it fails, the whole transaction is its own
            alone = self._members == 0
            self._members += 1
            if not alone:
                conn.execute("SAVEPOINT unit")
            error: BaseException | None = None
            result: Any = None
            try:
                result = fn(Tx(conn, self._cache))
                if not alone:
                    conn.execute("RELEASE unit")
            except BaseException as exc:
                error = exc
                self._cache.clear()  # rolled back below: the cache may hold what never happened
                try:
                    if alone:
                        conn.execute("ROLLBACK")
                        conn.execute("BEGIN IMMEDIATE")
                    else:
                        conn.execute("ROLLBACK TO unit")
                        conn.execute("RELEASE unit")
                except sqlite3.Error:
                    pass
            if self._queued == 0 or self._members >= MAX_GROUP:
                self._commit(gen)
            else:
                while self._committed < gen and gen not in self._failed:
                    cond.wait()
            failed = self._failed.pop(gen, None) if self._open_gen != gen else None
            if failed is not None:
                raise BackendUnavailableError(f"store commit failed: {failed}") from failed
            if error is not None:
                if isinstance(error, sqlite3.Error):
                    raise BackendUnavailableError(f"store error: {error}") from error
                raise error
            return result  # type: ignore[no-any-return]

    def has_waiters(self) -> bool:
        """True when another thread is queued to use the store (read without a lock: a hint)."""
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
            self._failed[gen] = exc
        self._committed = gen
        self._last_commit = time.monotonic()
        self._open_gen = 0
        self._cond.notify_all()

    def read(self, fn: Callable[[Tx], T]) -> T:
        """Run read-only ``fn`` on this thread's reader connection (committed data only)."""
        try:
            return fn(Tx(self._reader()))
        except sqlite3.Error as exc:
            raise BackendUnavailableError(f"store read failed: {exc}") from exc

    @contextmanager
    def raw(self) -> Iterator[sqlite3.Connection]:
        """A reader connection, for diagnostics and tests."""
        yield self._reader()

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join(5)
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

"""The PostgreSQL store: units of work on pooled connections, one transaction each.

Why a pool: opening a PostgreSQL connection costs a fork on the server and several round trips;
every unit of work borrows a connection that is already open (and whose statements the server
has already prepared) and gives it back. Many engine processes on many machines share one
database: every write is compare-and-set and every state a unit reads stays locked until it
commits (``unit.py``), claims skip locked rows (``leases.py``) and the event cursor waits for
transactions that are still open (``waits.py``), so READ COMMITTED transactions are enough and
units wait for each other only on the rows they share.

Round trips, not statements, are what a unit waits for: a unit runs in pipeline mode (its BEGIN
travels with its first statement), holds its writes back and sends them as one multi-row statement
per kind in one sync before COMMIT (``behind.py``), and a round reads the rows it will need in one
sync (``keyed.py``, ``prefetch``). A round of tens of tokens costs three or four round trips.

Connections run in autocommit: ``unit`` opens its transaction explicitly (BEGIN, COMMIT and
savepoints by hand, riding with the statements around them) and ``read`` runs each statement on
what is committed when it starts. Migrations take a transaction-scoped advisory lock, so any
number of processes may open (and migrate) one database at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool

from rattan.errors import BackendUnavailableError
from rattan.runtime.interface import INTERFACE_VERSION, Reads, UnitOfWork
from rattan.runtime.postgres.errors import redact, translate
from rattan.runtime.postgres.keyed import IdBlocks
from rattan.runtime.postgres.schema import META, MIGRATIONS, SCHEMA_VERSION
from rattan.runtime.postgres.unit import PostgresUnit

T = TypeVar("T")

POOL_SIZE = 16  # connections a store opens at most: the engine's workers, its timer and leases
POOL_WAIT = 30.0  # how long a unit waits for a free connection before the store is "unavailable"
CONNECT_TIMEOUT = 10  # seconds to reach the server (libpq's connect_timeout)
# prepare a statement on the server at its second use (psycopg's default is 5): the engine's
# statements are few and fixed, and every one of them runs many times
PREPARE_THRESHOLD = 2
# a transaction left open this long by a client that stopped talking (its machine died, its
# network went) is ended by the server: until then the rows it locked are skipped by every lease
IDLE_IN_TRANSACTION = "5min"
# the advisory lock that serialises migrations of one schema: (class, hash of the schema name)
MIGRATE_LOCK = 0x7261_7474  # "ratt"


class PostgresStore:
    """Durable store over one PostgreSQL database (see the module docstring).

    ``url`` is a libpq URL (``postgresql://user:password@host:5432/db?options=...``); the
    store's ``url`` attribute is that URL without the password."""

    interface_version = INTERFACE_VERSION

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self._conninfo = url
        self.url = redact(url)
        self._waiters = 0
        self._count_lock = threading.Lock()
        self._closed = False
        self._ids = IdBlocks()
        try:
            # a connection of its own for the migration: a server that cannot be reached fails
            # here at once, with its reason, and not as a pool timeout later
            with self._connect() as conn:
                self._migrate(conn)
        except psycopg.Error as exc:
            raise BackendUnavailableError(f"cannot open PostgreSQL store {self.url}: {exc}") from exc
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=True, timeout=POOL_WAIT, name="rattan",
            kwargs={"autocommit": True, "prepare_threshold": PREPARE_THRESHOLD,
                    "connect_timeout": CONNECT_TIMEOUT, "application_name": "rattan"},
            configure=_configure,
        )  # fmt: skip

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT, application_name="rattan"
        )

    # -- schema --------------------------------------------------------------------------------
    def migrate(self) -> int:
        """Bring the schema up to date. Safe while other processes open or use the database:
        the migration runs in one transaction under an advisory lock, and a process that finds
        the work done does nothing."""
        try:
            with self._connect() as conn:
                return self._migrate(conn)
        except psycopg.Error as exc:
            raise BackendUnavailableError(f"cannot migrate PostgreSQL store {self.url}: {exc}") from exc

    @staticmethod
    def _migrate(conn: psycopg.Connection[Any]) -> int:
        with conn.transaction():
            # taken before anything is read: CREATE TABLE IF NOT EXISTS is not safe against a
            # concurrent one, and the version read must be the one this process moves on from
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(coalesce(current_schema(), '')))",
                (MIGRATE_LOCK,),
            )
            conn.execute(META)
            row = conn.execute("SELECT value FROM rattan_meta WHERE key='schema_version'").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise BackendUnavailableError(
                    f"store schema version {current} is newer than this rattan ({SCHEMA_VERSION}); "
                    "upgrade rattan"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO rattan_meta(key, value) VALUES ('schema_version', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
                    (str(version),),
                )
        return SCHEMA_VERSION

    def schema_version(self) -> int:
        def version(r: Reads) -> int:
            assert isinstance(r, PostgresUnit)
            row = r.c.execute("SELECT value FROM rattan_meta WHERE key='schema_version'").fetchone()
            return int(row[0]) if row else 0

        return self.read(version)

    # -- units of work -------------------------------------------------------------------------
    @contextmanager
    def _borrow(self, doing: str) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; driver errors leave as rattan's. After a lost connection the
        pool drops every idle connection that is broken too (a server restart breaks them all),
        so the next unit starts on a good one."""
        if self._closed:
            raise BackendUnavailableError(f"the store {self.url} is closed")
        with self._count_lock:
            self._waiters += 1
        counted = True
        try:
            with self._pool.connection() as conn:
                with self._count_lock:
                    self._waiters -= 1
                counted = False
                yield conn
        except psycopg.Error as exc:
            error = translate(exc, self.url, doing)
            if isinstance(error, BackendUnavailableError) and not self._closed:
                with suppress(psycopg.Error):  # a server still down: the pool reconnects later
                    self._pool.check()
            raise error from exc
        finally:
            if counted:
                with self._count_lock:
                    self._waiters -= 1

    def unit(self, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in one transaction and return once it is committed."""
        # BEGIN and COMMIT are sent by hand, in pipeline mode: BEGIN travels with the unit's first
        # statement and COMMIT with its last writes (psycopg's transaction() syncs the pipeline on
        # entry and exit: measured, a round trip more and a third more client time per unit)
        with self._borrow("store unit of work") as conn:
            try:
                with conn.pipeline() as pipe:
                    conn.execute("BEGIN")
                    unit = PostgresUnit(conn, self.url, locking=True, ids=self._ids, pipe=pipe)
                    result = fn(unit)
                    unit.flush(last=True)  # what the unit held back, before (or with) its COMMIT
                    conn.execute("COMMIT")
            except BaseException:
                _abandon(conn)
                raise
            return result

    def read(self, fn: Callable[[Reads], T]) -> T:
        """Run read-only ``fn`` on committed data (each statement sees what is committed when it
        starts)."""
        with self._borrow("store read") as conn:
            return fn(PostgresUnit(conn, self.url))

    @contextmanager
    def raw(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit), for diagnostics and tests."""
        with self._borrow("store diagnostics") as conn:
            yield conn

    def waiting(self) -> bool:
        """True when another thread of this process waits for a connection (a hint)."""
        return self._waiters > 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close(timeout=5)


def _abandon(conn: psycopg.Connection[Any]) -> None:
    """End a unit's transaction that did not commit (a connection that broke is the pool's)."""
    if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    with suppress(psycopg.Error):
        conn.execute("ROLLBACK")


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Set up a new pooled connection (once per connection, not per unit)."""
    conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")

"""The PostgreSQL store (``rattan[postgres]``): all of its SQL and its schema live in this package."""

from rattan.runtime.postgres.store import PostgresStore

__all__ = ["PostgresStore"]

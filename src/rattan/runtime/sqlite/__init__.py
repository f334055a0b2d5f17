"""The SQLite store: all of rattan's SQL, its schema and the writer's cache live in this package."""

from rattan.runtime.sqlite.store import SQLiteStore, parse_store_url

__all__ = ["SQLiteStore", "parse_store_url"]

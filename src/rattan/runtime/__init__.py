"""Runtimes: implementations of the store / dispatcher seam (``rattan.runtime.interface``), and
the factories that turn ``Engine(store=..., dispatcher=...)`` arguments into them.

A backend is imported only when asked for, so ``import rattan`` never loads a driver, and an
optional one that is not installed is named with the extra that brings it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rattan.errors import BackendUnavailableError, BadInputError
from rattan.runtime.interface import INTERFACE_VERSION

if TYPE_CHECKING:
    from rattan.runtime.interface import Clock, Dispatcher, Store
    from rattan.settings import Settings

THREADS = ("threads", "thread://", "threads://")
STORE_SCHEMES = ("sqlite", "postgresql", "postgres")
DISPATCHER_SCHEMES = ("celery",)
# what each side takes, named in the errors that refuse a URL
STORES = "a path, sqlite:///PATH, postgresql://..."
DISPATCHERS = "'threads', celery://<broker URL>"


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def hide_password(url: str) -> str:
    """``url`` as messages show it: without a password (``user:***@host``, at every level of a
    nested URL such as ``celery://amqp://user:secret@host//``)."""
    return re.sub(r"(?<=://)([^/@:]*):[^/@]*@", r"\1:***@", url)


def _refused(kind: str, url: str) -> BackendUnavailableError:
    """The error for a URL ``open_store`` (kind "store") or ``open_dispatcher`` ("dispatcher")
    cannot open: one for the other side of the seam says where it goes; any other is unknown."""
    scheme, shown = _scheme(url), hide_password(url)
    if kind == "store" and (scheme in DISPATCHER_SCHEMES or url.lower() in THREADS):
        return BackendUnavailableError(
            f"{shown} is a dispatcher URL, not a store: pass it as dispatcher=... (stores: {STORES})"
        )
    if kind == "dispatcher" and scheme in STORE_SCHEMES:
        return BackendUnavailableError(
            f"{shown} is a store URL, not a dispatcher: pass it as store=... (dispatchers: {DISPATCHERS})"
        )
    known = STORES if kind == "store" else DISPATCHERS
    return BackendUnavailableError(f"unknown {kind} {shown!r}: {kind}s are {known}")


def check_version(backend: Any, kind: str) -> None:
    version = getattr(backend, "interface_version", None)
    if not isinstance(version, tuple) or not version or version[0] != INTERFACE_VERSION[0]:
        raise BackendUnavailableError(
            f"{kind} {type(backend).__name__} implements runtime interface {version!r}; this rattan "
            f"needs {INTERFACE_VERSION[0]}.x: upgrade the backend or rattan"
        )


def open_store(store: str | Store | None, settings: Settings) -> Store:
    """``None`` (rattan.db here), a path, ``sqlite:///path``, ``:memory:``, a PostgreSQL URL
    (``postgresql://...`` or ``postgres://...``), or a Store."""
    if store is not None and not isinstance(store, str):
        check_version(store, "store")
        return store
    if store is not None and _scheme(store) in ("postgresql", "postgres"):
        try:  # asked each time (not only on the backend's first import): is the driver there?
            for module in ("psycopg", "psycopg_pool"):
                __import__(module)
        except ImportError:
            raise BackendUnavailableError(
                f"a {_scheme(store)} store needs psycopg and psycopg-pool: pip install 'rattan[postgres]'"
            ) from None
        from rattan.runtime.postgres import PostgresStore

        return PostgresStore(store)
    if store is not None and "://" in store and _scheme(store) != "sqlite":
        raise _refused("store", store)
    from rattan.runtime.sqlite import SQLiteStore, parse_store_url

    return SQLiteStore(
        parse_store_url(store), settings.sqlite_synchronous, page_size=settings.sqlite_page_size
    )


def _celery_dispatcher(url: str, clock: Clock) -> Dispatcher:
    """``celery://<broker URL>``: a CeleryDispatcher on a rattan-configured app for that broker."""
    try:  # asked each time (not only on the backend's first import): is celery there?
        __import__("celery")
    except ImportError:
        raise BackendUnavailableError(
            "a celery:// dispatcher needs celery: pip install 'rattan[celery]'"
        ) from None
    from rattan.runtime.celery import CeleryDispatcher, broker_of

    broker = broker_of(url)
    if "://" not in broker:
        raise BadInputError(
            "a Celery dispatcher URL is celery://<broker URL>, e.g. 'celery://redis://127.0.0.1:6379/0' "
            "or 'celery://amqp://guest@127.0.0.1//'"
        )
    return CeleryDispatcher(broker, clock=clock)


def _is_celery_app(obj: object) -> bool:
    """A ``celery.Celery`` app (told without importing celery when it is not loaded)."""
    import sys

    celery = sys.modules.get("celery")
    app_type = getattr(celery, "Celery", None) if celery is not None else None
    return isinstance(app_type, type) and isinstance(obj, app_type)


def open_dispatcher(dispatcher: str | Dispatcher | None, settings: Settings, clock: Clock) -> Dispatcher:
    """``None`` or ``"threads"`` (worker threads in this process), ``"celery://<broker URL>"`` or a
    ``celery.Celery`` app (``rattan[celery]``), or a Dispatcher."""
    if dispatcher is None or (isinstance(dispatcher, str) and dispatcher.lower() in THREADS):
        from rattan.runtime.threads import ThreadDispatcher

        return ThreadDispatcher(settings.workers, clock)
    if isinstance(dispatcher, str) and _scheme(dispatcher) == "celery":
        return _celery_dispatcher(dispatcher, clock)
    if isinstance(dispatcher, str):
        raise _refused("dispatcher", dispatcher)
    if _is_celery_app(dispatcher):
        from rattan.runtime.celery import CeleryDispatcher

        return CeleryDispatcher(dispatcher, clock=clock)
    if not all(hasattr(dispatcher, name) for name in ("start", "send", "send_at", "stop", "wait_idle")):
        raise BadInputError(
            f"dispatcher {dispatcher!r} is neither a URL nor a Dispatcher "
            "(start, send, send_at, stop, wait_idle)"
        )
    check_version(dispatcher, "dispatcher")
    return dispatcher


__all__ = ["INTERFACE_VERSION", "check_version", "open_dispatcher", "open_store"]

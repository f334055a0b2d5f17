"""The Celery dispatcher (``pip install 'rattan[celery]'``): messages travel as Celery tasks over a
broker (Redis, RabbitMQ); ``rattan worker`` runs the engine in Celery worker processes."""

from rattan.runtime.celery.app import TASK_NAME, check_broker, make_app, queue_for, queue_names, safe_url
from rattan.runtime.celery.dispatcher import CeleryDispatcher
from rattan.runtime.celery.local import LocalFirstDispatcher

SCHEME = "celery://"


def broker_of(url: str) -> str:
    """The broker URL in a ``celery://<broker URL>`` dispatcher URL."""
    if not url.lower().startswith(SCHEME):
        raise ValueError(f"not a celery:// dispatcher URL: {safe_url(url)!r}")
    return url[len(SCHEME) :]


__all__ = [
    "SCHEME",
    "TASK_NAME",
    "CeleryDispatcher",
    "LocalFirstDispatcher",
    "broker_of",
    "check_broker",
    "make_app",
    "queue_for",
    "queue_names",
    "safe_url",
]

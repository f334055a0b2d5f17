"""Event signals without Django.

``pipeline_event`` carries every engine event (``event.event_type``, ``event.data``) to its
receivers, called as ``receiver(sender, event, **kwargs)`` with the emitting ``Engine`` as sender.
Receivers run after the change they report is committed and outside any transaction; an exception
in a receiver is logged and never affects the run. An engine emits only when it was created with
``enable_pipeline_event_signals=True`` (bamboo's ``ENABLE_PIPELINE_EVENT_SIGNALS``).

Every event is also appended to the store's durable event log (``Engine.events``), whatever the
signal setting: a consumer that was down catches up from there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rattan.model.records import EVENT_SCHEMA_VERSION

log = logging.getLogger("rattan.signals")

Receiver = Callable[..., Any]


@dataclass(frozen=True)
class Event:
    """One engine event: ``event_type`` (a string naming the event) and its ``data`` dict."""

    event_type: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "data": self.data}


class Signal:
    """A minimal synchronous signal: ``connect``, ``disconnect``, ``send``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._receivers: list[tuple[Receiver, object | None]] = []
        self._lock = threading.Lock()

    def connect(self, receiver: Receiver, sender: object | None = None, **_: Any) -> None:
        """Call ``receiver(sender, **kwargs)`` on every send (from ``sender`` only, if given)."""
        with self._lock:
            if not any(r is receiver and s is sender for r, s in self._receivers):
                self._receivers.append((receiver, sender))

    def disconnect(self, receiver: Receiver, sender: object | None = None, **_: Any) -> bool:
        with self._lock:
            before = len(self._receivers)
            self._receivers = [(r, s) for r, s in self._receivers if not (r is receiver and s is sender)]
            return len(self._receivers) != before

    @property
    def receivers(self) -> list[Receiver]:
        return [r for r, _ in self._receivers]

    def has_receivers(self) -> bool:
        return bool(self._receivers)

    def send(self, sender: object, **kwargs: Any) -> list[tuple[Receiver, Any]]:
        """Call every receiver; a raising receiver is logged and skipped."""
        results: list[tuple[Receiver, Any]] = []
        for receiver, only in list(self._receivers):
            if only is not None and only is not sender:
                continue
            try:
                results.append((receiver, receiver(sender, **kwargs)))
            except Exception:
                log.exception("receiver %r of signal %s raised", receiver, self.name)
        return results


pipeline_event = Signal("pipeline_event")
# after every committed state write: node_id, to_state, version, root_id, parent_id, loop
post_set_state = Signal("post_set_state")
# just before user code runs: service, data, parent_data (and callback_data for schedules)
pre_service_execute = Signal("pre_service_execute")
pre_service_schedule = Signal("pre_service_schedule")

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "Event",
    "Signal",
    "pipeline_event",
    "post_set_state",
    "pre_service_execute",
    "pre_service_schedule",
]

"""The states a plugin-execute job reports, under the names bamboo-pipeline's
``pipeline.contrib.plugin_execute`` uses."""

from __future__ import annotations

from typing import Final


class State:
    """A job's state: ``READY`` (accepted, the component has not started), ``RUNNING`` (``execute``
    is running, or the component waits for a poll or a callback), ``FINISHED``, ``FAILED``."""

    READY: Final = "READY"
    RUNNING: Final = "RUNNING"
    FINISHED: Final = "FINISHED"
    FAILED: Final = "FAILED"


__all__ = ["State"]

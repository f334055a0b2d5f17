"""``ExecutableEndEvent``: an end event that runs user code when reached."""

from __future__ import annotations

import abc
from typing import Any, ClassVar

from rattan.components.registry import Registry, register_coded_subclass

__all__ = ["ExecutableEndEvent"]


class ExecutableEndEvent(abc.ABC):
    """Runtime base class of executable end events (not the builder element of the same name).

    A subclass with a class attribute ``code`` registers under it when defined (the key is also a
    sink node type); ``Registry.register_end_event(key, cls)`` registers explicitly under any key.
    The engine creates a new instance for each run and calls ``execute``; raising fails the end event.

    Args:
        id: the end event's node id.
        name: its display name.
        data: opaque node data (as in bamboo).
    """

    code: ClassVar[str]

    def __init__(self, id: str = "", name: str | None = None, data: Any = None) -> None:
        self.id = id
        self.name = name
        self.data = data

    def __init_subclass__(
        cls, *, registry: Registry | None = None, register: bool = True, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        register_coded_subclass(cls, "end event", registry, register)

    @abc.abstractmethod
    def execute(self, in_subprocess: bool, root_pipeline_id: str, current_pipeline_id: str) -> Any:
        """Run when the end event is reached.

        Args:
            in_subprocess: true when the end event belongs to a subprocess.
            root_pipeline_id: the root pipeline id.
            current_pipeline_id: the id of the pipeline the end event is in.
        """

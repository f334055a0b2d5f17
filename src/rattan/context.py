"""Context values: the typed variables of one pipeline or subprocess."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from rattan.errors import EngineValueError


class ContextValueType(IntEnum):
    PLAIN = 1
    SPLICE = 2
    COMPUTE = 3


# tree item type string -> stored context type
TYPE_OF_ITEM = {
    "plain": ContextValueType.PLAIN,
    "splice": ContextValueType.SPLICE,
    "lazy": ContextValueType.COMPUTE,
}


@dataclass
class ContextValue:
    """One context variable. ``key`` is in ``${name}`` form; ``code`` names the lazy variable class."""

    key: str
    type: ContextValueType
    value: Any
    code: str | None = None

    def __post_init__(self) -> None:
        self.type = ContextValueType(self.type)
        if self.type == ContextValueType.COMPUTE and not self.code:
            raise EngineValueError(f"context value {self.key}: a COMPUTE value needs a code")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = int(self.type)
        return d

"""``FancyDict``: a dict whose keys are also attributes (the builder's and the data objects')."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["FancyDict"]


class FancyDict(dict[str, Any]):
    """A dict whose keys are also attributes: ``d.x`` is ``d["x"]``.

    A missing key read as an attribute raises ``AttributeError``. Dunder names are never looked up
    as keys, so ``copy``, ``pickle`` and friends behave as for a plain dict.
    """

    __slots__ = ()

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __deepcopy__(self, memo: dict[int, Any]) -> FancyDict:
        result = FancyDict()
        memo[id(self)] = result
        for key, value in self.items():
            result[key] = copy.deepcopy(value, memo)
        return result

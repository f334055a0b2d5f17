"""Small helpers for the builder."""

from __future__ import annotations

from typing import Any

__all__ = ["FancyDict"]


class FancyDict(dict[str, Any]):
    """A ``dict`` whose items can also be read and written as attributes.

    ``d.key = value`` is ``d["key"] = value``; reading a missing attribute raises ``AttributeError``.
    """

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc

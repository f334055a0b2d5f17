"""Small helpers for the builder."""

from __future__ import annotations

from rattan.fancy import FancyDict

__all__ = ["FancyDict"]

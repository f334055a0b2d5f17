"""Interval generators for POLL services (SPEC 8.1); the peer's ``pipeline.core.flow.activity`` names."""

from __future__ import annotations

from rattan.components.interval import (
    AbstractIntervalGenerator,
    DefaultIntervalGenerator,
    LinearIntervalGenerator,
    NullIntervalGenerator,
    SquareIntervalGenerator,
    StaticIntervalGenerator,
)

__all__ = [
    "AbstractIntervalGenerator",
    "DefaultIntervalGenerator",
    "LinearIntervalGenerator",
    "NullIntervalGenerator",
    "SquareIntervalGenerator",
    "StaticIntervalGenerator",
]

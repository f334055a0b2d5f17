"""Interval generators for POLL services, under bamboo's ``pipeline.core.flow.activity`` names."""

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

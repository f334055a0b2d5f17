"""``State`` under bamboo-pipeline's module name (``pipeline.contrib.plugin_execute.contants``,
spelt that way there), so code importing it moves over by changing the package only."""

from __future__ import annotations

from rattan.plugin_execute.constants import State

__all__ = ["State"]

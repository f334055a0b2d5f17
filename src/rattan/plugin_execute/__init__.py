"""Run one component on its own, outside any pipeline, as a job you can follow and control
(bamboo-pipeline's ``pipeline.contrib.plugin_execute``): ``api.run`` starts it, ``api.get_state``
reads it, ``api.callback``, ``api.retry`` and ``api.forced_fail`` control it.

A job runs on a ``rattan.Engine`` exactly like a service activity in a pipeline (polls, callbacks,
durability), so give the functions an engine: ``set_engine(engine)`` once, or ``engine=`` on each
call. See docs/plugin-execute.md.
"""

from __future__ import annotations

from rattan.plugin_execute import api
from rattan.plugin_execute.api import callback, forced_fail, get_engine, get_state, retry, run, set_engine
from rattan.plugin_execute.constants import State

__all__ = ["State", "api", "callback", "forced_fail", "get_engine", "get_state", "retry", "run", "set_engine"]

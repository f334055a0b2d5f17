"""``HookType``: the node hooks named by an enum, as bamboo-engine's ``bamboo_engine.eri.HookType``.

Same member names and values as in bamboo-engine. A ``str`` enum, so a member is the hook's name wherever
rattan takes one: ``Service.call_hook(HookType.NODE_ENTER, data, parent_data)`` calls the
``node_enter`` method, and a member equals the event type of the matching event in the durable log
and in ``pipeline_event`` (``HookType.NODE_ENTER == "node_enter"``).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["HookType"]


class HookType(StrEnum):
    """A node hook; the value is the ``Service`` method that receives it.

    ``EXECUTE`` and ``SCHEDULE`` name the service's main methods (bamboo-engine dispatches them the
    same way); ``PRE_EXECUTE`` ... ``POST_SCHEDULE`` the hooks around them (bamboo-engine's later
    releases and its test components name them).
    """

    PRE_RESUME_NODE = "pre_resume_node"
    POST_RESUME_NODE = "post_resume_node"
    PRE_PAUSE_NODE = "pre_pause_node"
    POST_PAUSE_NODE = "post_pause_node"
    PRE_RETRY_NODE = "pre_retry_node"
    POST_RETRY_NODE = "post_retry_node"
    PRE_SKIP_NODE = "pre_skip_node"
    POST_SKIP_NODE = "post_skip_node"
    PRE_FORCED_FAIL_ACTIVITY = "pre_forced_fail_activity"
    POST_FORCED_FAIL_ACTIVITY = "post_forced_fail_activity"
    PRE_CALLBACK = "pre_callback"
    POST_CALLBACK = "post_callback"
    NODE_EXECUTE_FAIL = "node_execute_fail"
    NODE_SCHEDULE_FAIL = "node_schedule_fail"
    NODE_EXECUTE_EXCEPTION = "node_execute_exception"
    NODE_SCHEDULE_EXCEPTION = "node_schedule_exception"
    NODE_ENTER = "node_enter"
    NODE_FINISH = "node_finish"
    EXECUTE = "execute"
    SCHEDULE = "schedule"
    PRE_EXECUTE = "pre_execute"
    POST_EXECUTE = "post_execute"
    PRE_SCHEDULE = "pre_schedule"
    POST_SCHEDULE = "post_schedule"

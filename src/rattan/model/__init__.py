"""The run-time vocabulary every layer below the engine speaks: records, states, messages."""

from rattan.model.messages import Advance, Callback, Execute, FireTimer, Message, Poll, Recover, Task
from rattan.model.records import (
    CallbackRecord,
    ContextRow,
    EventRecord,
    ExecutionData,
    HistoryRecord,
    NewRun,
    OwnerRecord,
    RunRecord,
    ScheduleRecord,
    StateRecord,
    TimerRecord,
    TokenRecord,
)
from rattan.model.states import StateType, TokenStatus

__all__ = [
    "Advance",
    "Callback",
    "CallbackRecord",
    "ContextRow",
    "EventRecord",
    "Execute",
    "ExecutionData",
    "FireTimer",
    "HistoryRecord",
    "Message",
    "NewRun",
    "OwnerRecord",
    "Poll",
    "Recover",
    "RunRecord",
    "ScheduleRecord",
    "StateRecord",
    "StateType",
    "Task",
    "TimerRecord",
    "TokenRecord",
    "TokenStatus",
]
